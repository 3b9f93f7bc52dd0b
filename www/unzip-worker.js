// A one-shot worker that unpacks one .zip (unzip.js, with its limits) off the page's thread: the
// page sends {bytes, name}, gets {files} or {error, code, args} back, and terminates this worker when it
// answers or when its time limit passes (sources.js), so no archive can freeze the tab.

import { unzipSync } from './vendor/fflate.js';
import { unzipLimited } from './unzip.js';

self.addEventListener('message', ({ data: { bytes, name } }) => {
  try {
    const files = unzipLimited(new Uint8Array(bytes), name, unzipSync);
    self.postMessage({ files }, Object.values(files).map((f) => f.buffer));
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? err.message : String(err), code: err?.code ?? null, args: err?.args ?? null });
  }
});
