// Hostile files and failing engines in the page (real wasm; docs/reliability.md lists what each
// fault gets): a zip bomb is refused by its declared sizes, off the page's thread; a chat
// template that never ends runs out of fuel and the page goes on; a trap in the wasm module, a
// worker stuck for good and a WebGPU device lost in the middle of a run each end in a message,
// a restart of the engine and a resume of the saved run from its last checkpoint. The server
// sends the Content-Security-Policy (with frame-ancestors) as a header. Faults are real ones,
// caused on demand by the page's fault drills (worker.js `faultDrill`): a panic in the engine,
// a busy loop in the worker, `GPUDevice.destroy()`.

import assert from 'node:assert/strict';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { deflateRawSync } from 'node:zlib';
import { startServer } from '../../scripts/serve.mjs';
import { DATA, REPO, TINY_FILES, WEBGPU_ARGS, loadStudioData, messageIn, openPage, waitForState } from './harness.mjs';

const { unzipSync, zipSync } = await import(path.join(REPO, 'www', 'vendor', 'fflate.js'));
const { unzipLimited, ZIP_LIMITS } = await import(path.join(REPO, 'www', 'unzip.js'));
const LLAMA = path.join(REPO, 'tests', 'fixtures', 'tiny-llama');

test('the server sends the page\'s CSP as a header, with frame-ancestors, and the isolation headers', async () => {
  const server = await startServer({ port: 0 });
  try {
    const res = await fetch(`${server.url}/`);
    const html = await res.text();
    const meta = html.match(/<meta http-equiv="Content-Security-Policy" content="([^"]+)"/)[1];
    assert.equal(res.headers.get('content-security-policy'), `${meta}; frame-ancestors 'none'`);
    assert.doesNotMatch(meta, /'unsafe-inline'|'unsafe-eval'|\*;/);
    assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(res.headers.get('cross-origin-embedder-policy'), 'require-corp');
    assert.equal(res.headers.get('cross-origin-resource-policy'), 'same-origin');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    // Workers take their policy from their own script's response: the page's, plus blob:
    // workers (the threaded module's pool starts from a blob of its own script).
    const js = await fetch(`${server.url}/worker.js`);
    assert.equal(js.headers.get('content-security-policy'), `${meta.replace("worker-src 'self'", "worker-src 'self' blob:")}; frame-ancestors 'none'`);
  } finally {
    await server.close();
  }
});

/** A .zip of `entries` ({name, data (deflated bytes), size (declared)}), written by hand so that
 * the sizes can be whatever a hostile archive says. */
function handZip(entries) {
  const parts = [];
  const central = [];
  let offset = 0;
  for (const { name, data, size } of entries) {
    const n = Buffer.from(name);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(n.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(8, 10);
    cd.writeUInt32LE(data.length, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(n.length, 28);
    cd.writeUInt32LE(offset, 42);
    parts.push(local, n, data);
    central.push(cd, n);
    offset += 30 + n.length + data.length;
  }
  const cdBytes = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cdBytes.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, cdBytes, end]);
}

// A real zip bomb: four entries of 1 GiB of zeros each (4 GiB unpacked, past the 3 GiB limit),
// 4 MB on disk.
function zipBomb() {
  const gib = deflateRawSync(Buffer.alloc(2 ** 30), { level: 1 });
  return handZip([0, 1, 2, 3].map((i) => ({ name: `model-${i}.safetensors`, data: gib, size: 2 ** 30 })));
}

test('unzip limits: entry count, declared sizes, lying headers, and fuzzed archives never hang or escape', async (t) => {
  const ok = zipSync({ 'a/config.json': new TextEncoder().encode('{"x": 1}'), 'a/model.safetensors': new Uint8Array(5000).fill(7) });
  const files = unzipLimited(ok, 'ok.zip', unzipSync);
  assert.deepEqual(Object.keys(files).sort(), ['a/config.json', 'a/model.safetensors']);
  // Too many entries.
  const many = zipSync(Object.fromEntries(Array.from({ length: ZIP_LIMITS.entries + 1 }, (_, i) => [`f${i}`, new Uint8Array(1)])));
  assert.throws(() => unzipLimited(many, 'many.zip', unzipSync), /many\.zip: the archive has more than 256 entries/);
  // One entry declaring more than the per-file limit.
  const huge = handZip([{ name: 'big.bin', data: deflateRawSync(Buffer.alloc(10)), size: 2 ** 31 + 1 }]);
  assert.throws(() => unzipLimited(huge, 'huge.zip', unzipSync), /entry big\.bin unpacks to 2\.00 GiB; the limit is 2 GiB per file/);
  // A header that lies low: inflating stops at the declared size.
  const lying = handZip([{ name: 'x.bin', data: deflateRawSync(Buffer.alloc(10_000_000)), size: 10 }]);
  const out = unzipLimited(lying, 'lying.zip', unzipSync);
  assert.equal(out['x.bin'].length, 10);
  // Fuzzing: mutations of a real archive either unpack within the limits or throw an Error.
  let seed = 12345;
  const rand = (n) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  let unpacked = 0;
  const cases = 3000;
  for (let i = 0; i < cases; i++) {
    const b = new Uint8Array(ok);
    for (let k = 0, n = 1 + rand(4); k < n; k++) {
      const at = rand(b.length);
      if (rand(3) === 0) b[at] = [0, 0xff, 0x7f, 0x80][rand(4)];
      else b[at] ^= 1 << rand(8);
    }
    const input = rand(10) === 0 ? b.subarray(0, rand(b.length)) : b;
    try {
      const got = unzipLimited(input, 'f.zip', unzipSync);
      const total = Object.values(got).reduce((s, f) => s + f.length, 0);
      assert.ok(total <= ZIP_LIMITS.totalBytes);
      unpacked += 1;
    } catch (err) {
      assert.ok(err instanceof Error && err.message.startsWith('f.zip'), `case ${i}: ${err}`);
    }
  }
  t.diagnostic(`unzip fuzz: ${cases} cases, none escaped; ${unpacked} unpacked`);
});

test('a zip bomb is refused by its declared sizes, off the page\'s thread, a file past 2 GiB by its size, and the page goes on', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'burnish-bomb-'));
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  const { page } = session;
  try {
    const bomb = path.join(dir, 'bomb.zip');
    await writeFile(bomb, zipBomb());
    await waitForState(page, (s) => s.backend !== null && s.data !== null, 30_000);
    const t0 = Date.now();
    await page.setInputFiles('#model-files', bomb);
    await page.click('#load-model');
    await messageIn(page, '#model-error', /bomb\.zip: the entries unpack to more than 3 GiB in all \(a zip bomb\?\); the limit is 3 GiB/);
    assert.ok(Date.now() - t0 < 10_000, `refused before anything is inflated (${Date.now() - t0} ms)`);
    // A file past what 32-bit WebAssembly can take (sparse: nothing is written) is refused by
    // its size before it is read.
    const huge = path.join(dir, 'huge.csv');
    await writeFile(huge, '');
    await truncate(huge, 2 ** 31 + 2 ** 26);
    await page.setInputFiles('#data-file', huge);
    await messageIn(page, '#data-error', /huge\.csv is 2\.06 GiB; the page reads files of at most 2\.00 GiB/);
    // The page answers, and real model files still load.
    assert.equal(await page.evaluate(() => 1 + 1), 2);
    // The expected error is noted; from here on, none.
    await page.evaluate(() => {
      window.burnishState.model = null;
      window.burnishState.errors.length = 0;
    });
    await page.setInputFiles('#model-files', TINY_FILES);
    await page.click('#load-model');
    const state = await waitForState(page, (s) => s.model !== null, 30_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.model.hidden_size, 32);
  } finally {
    await session.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a chat template that never ends runs out of fuel, and the page goes on', { timeout: 180_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'burnish-tpl-'));
  const session = await openPage({ query: '?backend=cpu', task: 'chat' });
  const { page, problems } = session;
  try {
    const files = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors.index.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];
    const paths = files.map((f) => path.join(LLAMA, f));
    const jinja = path.join(dir, 'chat_template.jinja');
    await writeFile(jinja, '{% for i in range(100000) %}{% for j in range(100000) %}{{ messages[0].content }}{% endfor %}{% endfor %}');
    await waitForState(page, (s) => s.backend !== null && s.backend !== undefined, 30_000);
    await page.setInputFiles('#decoder-files', [...paths, jinja]);
    await waitForState(page, (s) => s.decoder !== null, 60_000);
    await page.setInputFiles('#lm-file', DATA('chat.jsonl'));
    await waitForState(page, (s) => s.lmData?.name === 'chat.jsonl', 20_000);
    await page.fill('#lm-epochs', '1');
    const t0 = Date.now();
    await page.click('#lm-start');
    await messageIn(page, '#lm-error', /the chat template did not finish: it used up its budget of 5000000 steps/, 60_000);
    const took = Date.now() - t0;
    // The engine is still there: plain generation (no template) works.
    await page.evaluate(() => {
      window.burnishState.errors.length = 0;
    });
    await page.uncheck('#gen-chat');
    await page.fill('#gen-prompt', 'The film was');
    await page.fill('#gen-max', '4');
    await page.click('#gen-start');
    const state = await waitForState(page, (s) => s.generation?.done, 60_000);
    assert.deepEqual(state.errors, []);
    assert.ok(state.generation.text.length > 0);
    assert.equal(await page.isVisible('#fault-banner'), false);
    assert.deepEqual(problems.pageErrors, []);
    t.diagnostic(`the endless template was stopped by its fuel after ${took} ms`);
  } finally {
    await session.close();
    await rm(dir, { recursive: true, force: true });
  }
});

/** Starts a checkpointed run, causes `drill` once a checkpoint exists, restarts the engine from
 * the fault banner (`restart`: its button) and resumes the saved run to the end. */
async function faultAndResume(t, { args = [], query, drill, banner, restart, kind, epochs, timeout, stop = false }) {
  const session = await openPage({ args, query });
  const { page } = session;
  try {
    await loadStudioData(page, { epochs, lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25', 'checkpoint-every': '2' });
    assert.equal((await page.evaluate(() => window.burnishState)).backend.kind, kind);
    await page.click('#start');
    let state = await waitForState(page, (s) => s.checkpoints.length >= 1, timeout);
    await page.evaluate((d) => {
      window.burnishFaultDrill(d).catch(() => {});
    }, drill);
    const t0 = Date.now();
    if (stop) await page.click('#stop');
    await page.waitForSelector('#fault-banner:not([hidden])', { timeout: 60_000 });
    if (stop) t.diagnostic(`Stop on the stuck engine: restarted after ${Date.now() - t0} ms`);
    const text = await page.textContent('#fault-text');
    assert.match(text, banner);
    const saved = Number(text.match(/saved at step (\d+) of/)[1]);
    assert.ok(saved >= 2, text);
    assert.equal(await page.isDisabled('#start'), true, 'the dead engine cannot be asked for anything');
    await Promise.all([page.waitForNavigation(), page.click(restart)]);
    state = await waitForState(page, (s) => s.savedRun !== null, 60_000);
    assert.match(await page.textContent('#fault-text'), /The engine was restarted after a fault/);
    assert.equal(state.savedRun.progress.step, saved);
    await page.click('#resume-run');
    state = await waitForState(page, (s) => s.done, timeout);
    assert.deepEqual(state.errors, []);
    assert.equal(state.resumedFrom, saved);
    assert.equal(state.losses.length, state.summary.total_steps);
    t.diagnostic(`${drill}: saved at step ${saved}, resumed on ${state.backend.kind} to step ${state.summary.total_steps}`);
    return state;
  } finally {
    await session.close();
  }
}

test('a trap in the wasm module: the worker restarts and the saved run resumes (CPU)', { timeout: 240_000 }, (t) =>
  faultAndResume(t, { query: '?model=tiny-bert&backend=cpu', drill: 'trap', banner: /The engine crashed \(a trap in the WebAssembly module: unreachable/, restart: '#fault-restart', kind: 'cpu', epochs: '20', timeout: 120_000 }));

test('a worker stuck for good: the watchdog restarts it and the saved run resumes (CPU)', { timeout: 240_000 }, (t) =>
  faultAndResume(t, { query: '?model=tiny-bert&backend=cpu&watchdog=4', drill: 'hang', banner: /The engine stopped responding \(no answer for \d+ s\)/, restart: '#fault-restart', kind: 'cpu', epochs: '20', timeout: 120_000 }));

test('Stop on an engine stuck for good restarts it within 30 s (the watchdog would wait 100 s)', { timeout: 240_000 }, (t) =>
  faultAndResume(t, { query: '?model=tiny-bert&backend=cpu&watchdog=100', drill: 'hang', stop: true, banner: /The engine did not stop \(Stop was not honoured within 30 s\)/, restart: '#fault-restart', kind: 'cpu', epochs: '20', timeout: 120_000 }));

test('a WebGPU device lost mid-run: the run resumes on the CPU from its last checkpoint', { timeout: 480_000 }, async (t) => {
  const state = await faultAndResume(t, {
    args: WEBGPU_ARGS, query: '?model=tiny-bert&backend=webgpu', drill: 'gpu-lost', banner: /The GPU device was lost \(destroyed/, restart: '#fault-restart-cpu', kind: 'webgpu', epochs: '3', timeout: 300_000,
  });
  assert.equal(state.backend.kind, 'cpu');
});

test('full storage: the run pauses, says what a checkpoint needs, and goes on without checkpoints only when told', { timeout: 240_000 }, async (t) => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  const { page, origin } = session;
  try {
    const cdp = await session.context.newCDPSession(page);
    await loadStudioData(page, { epochs: '4', lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25', 'checkpoint-every': '2' });
    // Room for the run's files, not for a checkpoint (weights and AdamW's state: ~0.4 MB), on
    // top of what the page already stores (its IndexedDB of earlier runs).
    const used = await page.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: used + 60_000 });
    await page.click('#start');
    await page.waitForSelector('#quota-banner:not([hidden])', { timeout: 60_000 });
    const text = await page.textContent('#quota-text');
    assert.match(text, /The checkpoint at step \d+ needs [\d.]+ kB, and the browser refused to store it: its storage for this page is full \(it estimates .* left\)\..*The run is paused until you choose/);
    // Paused: no step is made while the question is open.
    const before = (await page.evaluate(() => window.burnishState)).losses.length;
    await page.waitForTimeout(1500);
    assert.equal((await page.evaluate(() => window.burnishState)).losses.length, before);
    await page.click('#quota-continue');
    let state = await waitForState(page, (s) => s.done, 120_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.losses.length, state.summary.total_steps);
    assert.ok(state.checkpoints.every((step) => step < Number(text.match(/step (\d+)/)[1])), 'none after the refused one');
    // Storage too full even for the run's files: nothing starts unless the user agrees.
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 1 });
    await page.click('#start');
    await page.waitForSelector('#quota-banner:not([hidden])', { timeout: 30_000 });
    assert.match(await page.textContent('#quota-text'), /Keeping this run's files for checkpoints needs .*Training starts when you choose/);
    await page.click('#quota-stop');
    state = await waitForState(page, (s) => s.errors.length > 0, 30_000);
    assert.match(state.errors[0].message, /Training was not started: this browser's storage for the page is full/);
    t.diagnostic(text);
  } finally {
    await session.close();
  }
});
