// Unpacking a .zip the user chose, as untrusted input: fflate's unzipSync with limits checked on
// every entry's declared size before any is inflated (fflate inflates into a buffer of exactly that
// size, so a header that lies cannot make it write more), on the number of entries, and on the
// total. Runs inside unzip-worker.js, never on the page's thread; the page gives the worker a
// time limit too (sources.js).

/** Limits of an archive: a Burnish export holds a handful of files of at most a model's size. */
export const ZIP_LIMITS = Object.freeze({
  entries: 256,
  entryBytes: 2 ** 31, // 2 GiB, the most one ArrayBuffer of a wasm32 engine can take in
  totalBytes: 3 * 2 ** 30, // 3 GiB unpacked in all
});

const gib = (n) => `${(n / 2 ** 30).toFixed(n % 2 ** 30 ? 2 : 0)} GiB`;

/**
 * The archive's files as {path: Uint8Array}; throws an Error whose message names the archive,
 * the entry and the limit when one is passed.
 * @param {Uint8Array} bytes
 * @param {string} name the archive's file name, for messages
 * @param {(data: Uint8Array, opts: any) => Record<string, Uint8Array>} unzipSync fflate's
 * @param {typeof ZIP_LIMITS} limits
 */
export function unzipLimited(bytes, name, unzipSync, limits = ZIP_LIMITS) {
  let entries = 0;
  let total = 0;
  const refuse = (message) => {
    throw Object.assign(new Error(`${name}: ${message}`), { limit: true });
  };
  let files;
  try {
    // First every entry's declared size, inflating nothing (the filter says no to each), so that
    // the limits hold before any byte is unpacked; then the entries themselves.
    unzipSync(bytes, {
      filter(file) {
        entries += 1;
        if (entries > limits.entries) refuse(`the archive has more than ${limits.entries} entries; a Burnish export has a handful`);
        const size = Number(file.originalSize);
        if (!Number.isFinite(size) || size < 0) refuse(`entry ${file.name} declares no valid size`);
        if (size > limits.entryBytes) refuse(`entry ${file.name} unpacks to ${gib(size)}; the limit is ${gib(limits.entryBytes)} per file`);
        total += size;
        if (total > limits.totalBytes) refuse(`the entries unpack to more than ${gib(limits.totalBytes)} in all (a zip bomb?); the limit is ${gib(limits.totalBytes)}`);
        return false;
      },
    });
    files = unzipSync(bytes, { filter: (file) => !file.name.endsWith('/') });
  } catch (err) {
    if (err.limit) throw err;
    throw Object.assign(new Error(`${name} is not a readable .zip archive (${err.message}).`), { code: 'page.not-a-zip', args: { name, error: err.message } });
  }
  return files;
}
