// WebAssembly threads (scripts/build_wasm.sh builds www/pkg-mt: the CPU backend on a rayon pool
// of Web Workers sharing the module's memory). The worker loads it when the page is
// cross-origin isolated and the CPU trains: serve.mjs sends COOP/COEP; a static host that
// cannot gets them from coi-serviceworker.js after one reload; where neither happens the page
// trains on one thread and says why. The threaded run computes the same losses as the
// single-threaded one (rayon splits the work, not the sums' order, within float tolerance).

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, WEBGPU_ARGS, openPage, waitForState } from './harness.mjs';

const manifest = async (dir) => JSON.parse(await readFile(path.join(REPO, 'www', dir, 'manifest.json'), 'utf8'));

/** Loads the tiny model, trains one epoch on the sample data, returns the state. */
async function trainOneEpoch(page) {
  await waitForState(page, (s) => s.backend !== null && s.data !== null, 60_000);
  await page.click('#load-model');
  let state = await waitForState(page, (s) => s.model !== null, 60_000);
  assert.deepEqual(state.errors, []);
  await page.fill('#epochs', '1');
  await page.click('#start');
  state = await waitForState(page, (s) => s.done, 120_000);
  assert.deepEqual(state.errors, []);
  return state;
}

/** Polls `predicate` on the page across the service worker's reload (which destroys the
 * evaluation context once). */
async function eventually(page, fn, timeout) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await page.evaluate(fn).catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${fn}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test('without an adapter the CPU trains on every core, with the losses of one thread', { timeout: 300_000 }, async () => {
  const threaded = await openPage({ query: '?model=tiny-bert' });
  let losses;
  try {
    const { page, problems } = threaded;
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true, 'serve.mjs isolates the page');
    const cores = await page.evaluate(() => Math.min(navigator.hardwareConcurrency || 1, 8));
    let state = await waitForState(page, (s) => s.backend !== null, 60_000);
    assert.equal(state.backend.engine, 'pkg-mt');
    assert.equal(state.backend.kind, 'cpu');
    assert.equal(state.backend.threads, cores);
    assert.equal(await page.textContent('#backend'), `Backend: CPU (WebAssembly, ${cores} thread${cores === 1 ? '' : 's'}) — no WebGPU adapter in this browser`);
    const m = await manifest('pkg-mt');
    assert.deepEqual(state.wasmDownload, { loaded: m.wasm_bytes, total: m.wasm_bytes, wire: m.wasm_gzip_bytes });
    state = await trainOneEpoch(page);
    assert.ok(state.losses.length > 0);
    assert.ok(state.losses.every(Number.isFinite));
    losses = state.losses;
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
  } finally {
    await threaded.close();
  }

  const single = await openPage({ query: '?model=tiny-bert&threads=1' });
  try {
    const { page } = single;
    let state = await waitForState(page, (s) => s.backend !== null, 60_000);
    assert.equal(state.backend.engine, 'pkg');
    assert.equal(state.backend.threads, 1);
    assert.match(await page.textContent('#backend'), /^Backend: CPU \(WebAssembly, 1 thread\) — no WebGPU adapter in this browser; one thread \(asked for in the address: threads=1\)$/);
    state = await trainOneEpoch(page);
    assert.equal(state.losses.length, losses.length);
    for (const [i, l] of state.losses.entries()) {
      assert.ok(Math.abs(l - losses[i]) <= 1e-4 * Math.max(1, Math.abs(l)), `step ${i + 1}: ${losses[i]} on threads, ${l} on one`);
    }
  } finally {
    await single.close();
  }
});

test('a software adapter in auto mode: the threaded CPU module, and the reason shown', { timeout: 180_000 }, async () => {
  const session = await openPage({ args: WEBGPU_ARGS, query: '?model=tiny-bert' });
  try {
    const { page, problems } = session;
    const state = await waitForState(page, (s) => s.backend !== null, 60_000);
    assert.equal(state.backend.engine, 'pkg-mt');
    assert.equal(state.backend.kind, 'cpu');
    assert.ok(state.backend.threads >= 1);
    assert.match(
      await page.textContent('#backend'),
      /^Backend: CPU \(WebAssembly, \d+ threads?\) — the WebGPU adapter \(.*swiftshader.*\) is a software emulation of a GPU, far slower than the CPU; choose WebGPU in the menu to use it anyway$/i,
    );
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await session.close();
  }
});

test('a static host without COOP/COEP: the service worker isolates the page after one reload', { timeout: 180_000 }, async () => {
  const session = await openPage({ isolate: false, query: '?model=tiny-bert' });
  try {
    const { page, problems } = session;
    await eventually(page, () => self.crossOriginIsolated && navigator.serviceWorker.controller !== null, 60_000);
    const state = await eventually(page, () => window.burnishState?.backend ?? null, 60_000);
    assert.equal(state.engine, 'pkg-mt');
    assert.ok(state.threads >= 1);
    const head = await fetch(`${session.url}/index.html`, { method: 'HEAD' });
    assert.equal(head.headers.get('cross-origin-embedder-policy'), null, 'the server itself sends no COEP');
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await session.close();
  }
});

test('neither headers nor a service worker: one thread, and the page says why', { timeout: 120_000 }, async () => {
  const session = await openPage({ isolate: false, contextOptions: { serviceWorkers: 'block' }, query: '?model=tiny-bert' });
  try {
    const { page } = session;
    const state = await waitForState(page, (s) => s.backend !== null, 60_000);
    assert.equal(state.backend.engine, 'pkg');
    assert.equal(state.backend.threads, 1);
    assert.match(await page.textContent('#backend'), /^Backend: CPU \(WebAssembly, 1 thread\) — no WebGPU adapter in this browser; one thread: this page is not cross-origin isolated/);
  } finally {
    await session.close();
  }
});
