// The page ↔ worker boundary (www/protocol.js), checked statically beside tsc's check of the
// worker ↔ engine boundary (www/tsconfig.json): every request the page sends has a handler in the
// worker and a place for its errors, every handler is a request the protocol names, and every
// event the worker posts is one the page listens for.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { REPO } from './harness.mjs';

const www = (f) => readFile(path.join(REPO, 'www', f), 'utf8');
/** The page's own modules: the shell (main.js) and its steps, views and shared lib/. */
async function pageModules() {
  const dirs = ['lib', 'steps', 'views'];
  const files = ['main.js', ...(await Promise.all(dirs.map(async (d) => (await readdir(path.join(REPO, 'www', d))).filter((f) => f.endsWith('.js')).map((f) => `${d}/${f}`)))).flat()];
  return (await Promise.all(files.map(www))).join('\n');
}
const { IN, OUT, CONCERNS } = await import(path.join(REPO, 'www', 'protocol.js'));
const used = (text, ns) => new Set([...text.matchAll(new RegExp(`\\b${ns}\\.([A-Z0-9_]+)\\b`, 'g'))].map((m) => m[1]));

test('every request the page sends has a worker handler, and every handler a request', async () => {
  const [main, worker] = await Promise.all([pageModules(), www('worker.js')]);
  const handled = new Set([...worker.matchAll(/^\s+(?:async )?\[IN\.([A-Z0-9_]+)\]\(/gm)].map((m) => m[1]));
  assert.ok(handled.size >= 40, `${handled.size} handlers found`);
  for (const name of used(main, 'IN')) {
    assert.ok(name in IN, `the page sends IN.${name}, which protocol.js does not define`);
    assert.ok(handled.has(name), `the page sends IN.${name}, which worker.js does not handle`);
  }
  for (const name of handled) assert.ok(name in IN, `worker.js handles IN.${name}, which protocol.js does not define`);
  for (const name of Object.keys(IN)) {
    assert.ok(handled.has(name), `IN.${name} has no handler in worker.js`);
    assert.ok(CONCERNS[IN[name]], `IN.${name} has no page section for its errors (CONCERNS)`);
  }
});

test('every event the worker posts is one the page handles', async () => {
  const [main, worker] = await Promise.all([pageModules(), www('worker.js')]);
  const posted = used(worker, 'OUT');
  const listened = used(main, 'OUT');
  for (const name of posted) {
    assert.ok(name in OUT, `worker.js posts OUT.${name}, which protocol.js does not define`);
    assert.ok(listened.has(name) || name === 'RESULT' || name === 'ERROR', `worker.js posts OUT.${name}, which the page never handles`);
  }
});

// The page is plain ES modules split by step (main.js, steps/, views/, lib/): tsc reads them all
// from main.js and names anything one of them uses but neither defines nor imports, an import of
// a name a module does not export, and an assignment to an imported binding.
test('every name a page module uses is defined or imported (tsc over the module graph)', async () => {
  const tsc = path.join(REPO, 'tests', 'browser', 'node_modules', 'typescript', 'bin', 'tsc');
  const run = promisify(execFile)(process.execPath, [tsc, '-p', path.join(REPO, 'www', 'tsconfig.page.json')], { maxBuffer: 1 << 24 });
  const out = await run.then((r) => r.stdout, (err) => err.stdout ?? '');
  // The other diagnostics are about DOM types (the page is not typed); these are real mistakes.
  const NAME_ERRORS = ['TS2304', 'TS2552', 'TS2305', 'TS2724', 'TS2614', 'TS2632', 'TS2448', 'TS2451', 'TS2300'];
  const lines = out.split('\n').filter((l) => NAME_ERRORS.some((code) => l.includes(`error ${code}:`)));
  assert.deepEqual(lines, [], 'unresolved names in the page modules');
  const missing = out.split('\n').filter((l) => l.includes('error TS2307:') && !l.includes('./vendor/'));
  assert.deepEqual(missing, [], 'imports of modules that do not exist');
});
