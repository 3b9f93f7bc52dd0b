// What every step that takes a data file shares: the file types it accepts, Parquet read off the
// engine's worker, and a guess at its text and label columns.

import { DATA_EXTENSIONS } from './state.js';
import { failCoded } from './errors.js';

/** How long reading one Parquet file may take before the page gives up on it. */
export const PARQUET_TIMEOUT_MS = 120_000;

const isParquet = (b) => b.length >= 12 && b[0] === 0x50 && b[1] === 0x41 && b[2] === 0x52 && b[3] === 0x31
  && b[b.length - 4] === 0x50 && b[b.length - 3] === 0x41 && b[b.length - 2] === 0x52 && b[b.length - 1] === 0x31;

/**
 * The bytes the engine reads for a data file: a Parquet file (by its PAR1 magic) becomes JSON
 * Lines in a one-shot worker with its own copy of the engine (parquet-worker.js), so that a
 * damaged file cannot take down the engine holding the model; anything else is returned as is.
 */
export async function tableBytes(bytes, name, concerns, timeoutMs = PARQUET_TIMEOUT_MS) {
  if (!isParquet(bytes)) return bytes;
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('../parquet-worker.js', import.meta.url), { type: 'module' });
    const done = (fn, value) => {
      clearTimeout(timer);
      worker.terminate();
      fn(value);
    };
    const fault = (code, args, msg) => {
      try {
        failCoded(concerns, code, args, msg);
      } catch (err) {
        done(reject, err);
      }
    };
    const timer = setTimeout(() => fault('data.parquet', { name, error: `reading it took longer than ${Math.round(timeoutMs / 1000)} s` },
      `${name}: cannot read this Parquet file: reading it took longer than ${Math.round(timeoutMs / 1000)} s`), timeoutMs);
    worker.addEventListener('message', ({ data }) => {
      if (data.jsonl) done(resolve, data.jsonl);
      else fault(data.code ?? 'data.parquet', data.args ?? { name, error: data.error }, data.error);
    });
    worker.addEventListener('error', (e) => {
      e.preventDefault();
      const error = `its reader did not start (${e.message || 'pkg/burnish.js did not load'})`;
      fault('data.parquet', { name, error }, `${name}: cannot read this Parquet file: ${error}`);
    });
    const copy = bytes.slice();
    worker.postMessage({ bytes: copy.buffer, name }, [copy.buffer]);
  });
}

/** Picks the likely text and label columns: exact names first, then look-alikes, then first/last. */
export function guessColumns(columns) {
  const lower = columns.map((c) => c.toLowerCase());
  const find = (names) => {
    for (const n of names) if (lower.includes(n)) return lower.indexOf(n);
    for (const n of names) {
      const i = lower.findIndex((c) => c.includes(n));
      if (i >= 0) return i;
    }
    return -1;
  };
  let text = find(['text', 'sentence', 'review', 'content', 'document', 'comment', 'body', 'message']);
  let label = find(['label', 'category', 'class', 'sentiment', 'target', 'topic', 'tag']);
  if (text < 0) text = 0;
  if (label < 0 || label === text) {
    label = -1;
    for (let i = columns.length - 1; i >= 0; i--) {
      if (i !== text) {
        label = i;
        break;
      }
    }
  }
  return { text, label };
}

/** Refuses an empty file by name, next to the step it concerns. */
export function checkNotEmpty(file, concerns) {
  if (file.size === 0) failCoded(concerns, 'data.empty-file', { name: file.name }, `${file.name}: the file is empty`);
}

export function checkExtension(name, concerns) {
  const lower = name.toLowerCase();
  if (!DATA_EXTENSIONS.some((e) => lower.endsWith(e))) {
    failCoded(concerns, 'page.unsupported-file', { name }, `${name}: unsupported file type. Use CSV (.csv), TSV (.tsv), JSON Lines (.jsonl), Parquet (.parquet) or plain text (.txt).`);
  }
}
