// The page ↔ worker boundary (www/protocol.js), checked statically beside tsc's check of the
// worker ↔ engine boundary (www/tsconfig.json): every request the page sends has a handler in the
// worker and a place for its errors, every handler is a request the protocol names, and every
// event the worker posts is one the page listens for.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { REPO } from './harness.mjs';

const www = (f) => readFile(path.join(REPO, 'www', f), 'utf8');
const { IN, OUT, CONCERNS } = await import(path.join(REPO, 'www', 'protocol.js'));
const used = (text, ns) => new Set([...text.matchAll(new RegExp(`\\b${ns}\\.([A-Z_]+)\\b`, 'g'))].map((m) => m[1]));

test('every request the page sends has a worker handler, and every handler a request', async () => {
  const [main, worker] = await Promise.all([www('main.js'), www('worker.js')]);
  const handled = new Set([...worker.matchAll(/^\s+(?:async )?\[IN\.([A-Z_]+)\]\(/gm)].map((m) => m[1]));
  assert.ok(handled.size >= 40, `${handled.size} handlers found`);
  for (const name of used(main, 'IN')) {
    assert.ok(name in IN, `main.js sends IN.${name}, which protocol.js does not define`);
    assert.ok(handled.has(name), `main.js sends IN.${name}, which worker.js does not handle`);
  }
  for (const name of handled) assert.ok(name in IN, `worker.js handles IN.${name}, which protocol.js does not define`);
  for (const name of Object.keys(IN)) {
    assert.ok(handled.has(name), `IN.${name} has no handler in worker.js`);
    assert.ok(CONCERNS[IN[name]], `IN.${name} has no page section for its errors (CONCERNS)`);
  }
});

test('every event the worker posts is one the page handles', async () => {
  const [main, worker] = await Promise.all([www('main.js'), www('worker.js')]);
  const posted = used(worker, 'OUT');
  const listened = used(main, 'OUT');
  for (const name of posted) {
    assert.ok(name in OUT, `worker.js posts OUT.${name}, which protocol.js does not define`);
    assert.ok(listened.has(name) || name === 'RESULT' || name === 'ERROR', `worker.js posts OUT.${name}, which main.js never handles`);
  }
});
