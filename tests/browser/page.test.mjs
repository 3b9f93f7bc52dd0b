// Page behaviour beyond the training runs: a clear message when www/pkg is missing (on a copy
// of the page without the build), and pause / resume / stop on the real wasm (CPU backend).

import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, openPage, waitForState } from './harness.mjs';

const PAGE_FILES = ['index.html', 'main.js', 'worker.js', 'protocol.js', 'style.css', 'i18n.js', 'charts.js', 'sources.js', 'saved-run.js', 'runs.js', 'unzip.js', 'unzip-worker.js', 'datasets.js', 'parquet-worker.js'];

/** A temporary copy of the page without the wasm build. */
async function pageRoot() {
  const root = await mkdtemp(path.join(tmpdir(), 'burnish-page-'));
  for (const file of PAGE_FILES) await cp(path.join(REPO, 'www', file), path.join(root, file));
  for (const dir of ['views', 'steps', 'lib']) await cp(path.join(REPO, 'www', dir), path.join(root, dir), { recursive: true });
  return root;
}

test('explains a missing wasm build', { timeout: 60_000 }, async () => {
  const root = await pageRoot();
  const session = await openPage({ root });
  try {
    const { page, problems } = session;
    await page.waitForSelector('#backend-error:not([hidden])', { timeout: 20_000 });
    assert.match(await page.textContent('#backend-error'), /pkg\/burnish\.js/);
    assert.match(await page.textContent('#backend-error'), /Build it first/);
    // Without the set-up's vendor libraries the charts explain themselves instead of breaking the page.
    assert.match(await page.textContent('#chart-error'), /chart library .* is missing/);
    assert.equal(await page.textContent('#backend'), 'Backend: not available');
    // Every control still answers with a message instead of an exception.
    await page.click('#start');
    await waitForState(page, (s) => s.errors.length >= 2, 10_000);
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.foreignRequests, []);
    // The only console errors allowed are the 404s for the missing module itself.
    const unexpected = problems.consoleErrors.filter((m) => !/404|Failed to load resource/.test(m));
    assert.deepEqual(unexpected, [], 'console errors besides the missing module');
  } finally {
    await session.screenshot('missing-wasm');
    await session.close();
    await rm(root, { recursive: true, force: true });
  }
});

test('pauses, resumes and stops training (real wasm, CPU)', { timeout: 120_000 }, async () => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  try {
    const { page, problems } = session;
    let state = await waitForState(page, (s) => s.backend !== null, 20_000);
    assert.equal(state.backend.kind, 'cpu');
    assert.match(await page.textContent('#backend'), /^Backend: CPU \(WebAssembly, \d+ threads?\)/);
    assert.equal(await page.inputValue('#backend-choice'), 'cpu');
    await page.setInputFiles('#data-file', path.join(REPO, 'tests', 'data', 'browser-train.csv'));
    await waitForState(page, (s) => s.data?.name === 'browser-train.csv', 10_000);
    await page.fill('#epochs', '200');
    await page.fill('#batch-size', '4');
    await page.click('#start');
    await waitForState(page, (s) => s.losses.length >= 3, 10_000);

    await page.click('#pause');
    await page.waitForSelector('#pause:text("Resume")');
    const paused = (await waitForState(page, () => true, 0)).losses.length;
    await new Promise((r) => setTimeout(r, 600));
    state = await waitForState(page, () => true, 0);
    assert.ok(state.losses.length <= paused + 4, 'training went on while paused'); // one slice may be in flight
    const afterPause = state.losses.length;
    await new Promise((r) => setTimeout(r, 600));
    assert.equal((await waitForState(page, () => true, 0)).losses.length, afterPause, 'training went on while paused');

    await page.click('#pause');
    await waitForState(page, (s) => s.losses.length > afterPause, 10_000);
    await page.click('#stop');
    state = await waitForState(page, (s) => s.done, 10_000);
    assert.deepEqual(state.errors, []);
    assert.ok(state.losses.length < state.summary.total_steps, 'stop did not stop early');
    assert.ok(state.metrics, 'no evaluation after stopping');
    assert.ok(await page.isVisible('#results'));
    assert.ok(await page.isEnabled('#start'));
    assert.ok(await page.isDisabled('#stop'));
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
  } finally {
    await session.close();
  }
});
