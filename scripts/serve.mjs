// A dependency-free static file server for Burnish's www/ folder, bound to 127.0.0.1.
// CLI: `node scripts/serve.mjs [port]` (or PORT=...; default 8080). Tests import
// `startServer({root, port: 0})`, which resolves to {url, close} once it listens.

import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_ROOT = path.resolve(HERE, '..', 'www');

const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.csv': 'text/csv; charset=utf-8',
  '.tsv': 'text/tab-separated-values; charset=utf-8',
  '.jsonl': 'application/jsonl; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.safetensors': 'application/octet-stream',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json; charset=utf-8',
};

/** The page's Content-Security-Policy, read from the <meta> of index.html (one source for both),
 * plus what only a header can say: `frame-ancestors 'none'` (no other site may frame the page). */
export async function contentSecurityPolicy(root) {
  const html = await readFile(path.join(root, 'index.html'), 'utf8').catch(() => '');
  const meta = html.match(/<meta http-equiv="Content-Security-Policy" content="([^"]+)"/);
  if (!meta) throw new Error(`${root}/index.html has no Content-Security-Policy <meta>`);
  const page = `${meta[1]}; frame-ancestors 'none'`;
  return { page, worker: page.replace("worker-src 'self'", "worker-src 'self' blob:") };
}

function send(res, status, message) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`${status} ${message}\n`);
}

/** Maps a URL path to a file inside `root`, or null when it would leave `root`. */
async function resolveFile(root, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  let file = path.join(root, path.normalize(decoded));
  if (!file.startsWith(root + path.sep) && file !== root) return null;
  // A symlink inside root must not point outside it either.
  try {
    if ((await stat(file)).isDirectory()) file = path.join(file, 'index.html');
    const real = await realpath(file);
    if (!real.startsWith(root + path.sep)) return null;
    const info = await stat(real);
    return info.isFile() ? { file: real, size: info.size } : null;
  } catch {
    return null;
  }
}

async function handle(root, req, res, isolate, csp) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    return send(res, 405, 'Method Not Allowed');
  }
  const { pathname } = new URL(req.url, 'http://localhost');
  const found = await resolveFile(root, pathname);
  if (!found) return send(res, 404, 'Not Found');
  // The wasm module goes out gzipped (build_wasm.sh writes burnish_bg.wasm.gz beside it) to
  // browsers that accept it, as static hosts do: about a fifth of the bytes.
  let body = found;
  const headers = {
    'Content-Type': MIME_TYPES[path.extname(found.file).toLowerCase()] ?? 'application/octet-stream',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    // Module workers take their policy from their own script's response: the page's, except that
    // workers may start blob: workers (wasm-bindgen-rayon spawns its thread pool from a blob of
    // its own script), which the document itself may not.
    'Content-Security-Policy': found.file.endsWith('.js') ? csp.worker : csp.page,
    'Referrer-Policy': 'no-referrer',
  };
  // Cross-origin isolation, which WebAssembly threads (shared memory) need: the page then loads
  // the threaded CPU module (www/pkg-mt). `isolate: false` serves as a plain static host does,
  // where www/coi-serviceworker.js adds these headers instead (after one reload).
  if (isolate) {
    headers['Cross-Origin-Opener-Policy'] = 'same-origin';
    headers['Cross-Origin-Embedder-Policy'] = 'require-corp';
    headers['Cross-Origin-Resource-Policy'] = 'same-origin';
  }
  if (found.file.endsWith('.wasm') && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
    const gz = await resolveFile(root, `${pathname}.gz`);
    if (gz && (await stat(gz.file)).mtimeMs >= (await stat(found.file)).mtimeMs) {
      body = gz;
      headers['Content-Encoding'] = 'gzip';
      headers.Vary = 'Accept-Encoding';
    }
  }
  headers['Content-Length'] = body.size;
  res.writeHead(200, headers);
  if (req.method === 'HEAD') return res.end();
  createReadStream(body.file)
    .on('error', () => res.destroy())
    .pipe(res);
}

/** Starts serving `root` on 127.0.0.1:`port` (0 picks a free port), with the COOP/COEP headers
 * unless `isolate` is false. */
export async function startServer({ root = DEFAULT_ROOT, port = 0, isolate = true } = {}) {
  const realRoot = await realpath(path.resolve(root));
  const csp = await contentSecurityPolicy(realRoot);
  const server = createServer((req, res) => {
    handle(realRoot, req, res, isolate, csp).catch(() => {
      if (!res.headersSent) send(res, 500, 'Internal Server Error');
      else res.destroy();
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${server.address().port}`;
  const close = () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return { url, close };
}

async function runAsCli() {
  try {
    return import.meta.url === pathToFileURL(await realpath(process.argv[1])).href;
  } catch {
    return false;
  }
}

if (await runAsCli()) {
  const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve.mjs: not a port number: ${process.argv[2] ?? process.env.PORT}`);
    process.exit(2);
  }
  try {
    const { url } = await startServer({ port });
    console.log(`Serving ${path.relative(process.cwd(), DEFAULT_ROOT) || '.'} at ${url}/`);
  } catch (err) {
    console.error(`serve.mjs: ${err.message}`);
    process.exit(1);
  }
}
