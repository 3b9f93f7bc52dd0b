// A one-shot worker that reads one Parquet file with its own copy of the engine (pkg/, the
// module's `parquetToJsonl`) and answers with the table as JSON Lines, which the engine's worker
// then reads like any .jsonl. The reader can trap on a damaged or hostile file; a trap ends only
// this copy, never the engine holding the user's model and run. The page terminates this worker
// when it answers or when its time limit passes (lib/files.js).

import init, { parquetToJsonl } from './pkg/burnish.js';

self.addEventListener('message', async (/** @type {MessageEvent} */ { data: { bytes, name } }) => {
  try {
    await init({ module_or_path: new URL('./pkg/burnish_bg.wasm', import.meta.url) });
    const jsonl = parquetToJsonl(new Uint8Array(bytes), name);
    self.postMessage({ jsonl }, [jsonl.buffer]);
  } catch (err) {
    if (err instanceof WebAssembly.RuntimeError) {
      const error = `the file is damaged (the reader stopped: ${err.message})`;
      self.postMessage({ error: `${name}: cannot read this Parquet file: ${error}`, code: 'data.parquet', args: { name, error } });
    } else {
      const e = /** @type {{ message?: string, code?: string, args?: object }} */ (err);
      self.postMessage({ error: e?.message ?? String(err), code: e?.code ?? null, args: e?.args ?? null });
    }
  }
});
