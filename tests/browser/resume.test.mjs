// Checkpoints in the browser (real wasm, on the CPU backend and on WebGPU): a run saves
// checkpoints to origin-private storage every N steps; after a reload in the middle of a run the
// page offers to resume it, reloads the same model, data file and recipe, and continues from the
// last checkpoint. The resumed run's loss curve and final metrics equal those of a run that was
// never interrupted (bit for bit). A finished run is not offered. On WebGPU every tensor of a
// checkpoint must be read asynchronously: a synchronous read would fail the save.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WEBGPU_ARGS, loadStudioData, openPage, waitForState } from './harness.mjs';

const savedRunExists = (page) =>
  page.evaluate(async () => (await navigator.storage.getDirectory()).getDirectoryHandle('burnish-run').then(() => true, () => false));

async function resumeFlow(t, { args = [], query, kind, epochs, timeout }) {
  const session = await openPage({ args, query });
  const { page, problems } = session;
  try {
    await loadStudioData(page, { epochs, lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25', 'checkpoint-every': '3' });
    assert.equal((await page.evaluate(() => window.burnishState)).backend.kind, kind);

    // An uninterrupted run: checkpoints are written, and dropped when it finishes.
    await page.click('#start');
    let state = await waitForState(page, (s) => s.done, timeout);
    assert.deepEqual(state.errors, []);
    const whole = { losses: state.losses, lrs: state.lrs, metrics: state.metrics, steps: state.summary.total_steps };
    assert.ok(state.checkpoints.length >= 2, `checkpoints at ${state.checkpoints}`);
    for (let i = 0; i < 50 && (await savedRunExists(page)); i++) await page.waitForTimeout(100);
    assert.equal(await savedRunExists(page), false, 'a finished run is not kept');

    // The same run again, cut off by a reload after its second checkpoint.
    await page.click('#start');
    state = await waitForState(page, (s) => s.checkpoints.length >= 2, timeout);
    await page.click('#pause');
    // The slice in flight (and a checkpoint it may write) ends; then nothing moves until Resume.
    let last = -1;
    for (let i = 0; i < 40; i++) {
      await page.waitForTimeout(300);
      state = await page.evaluate(() => window.burnishState);
      if (state.losses.length === last) break;
      last = state.losses.length;
    }
    const savedAt = state.checkpoints.at(-1);
    await page.reload();
    state = await waitForState(page, (s) => s.savedRun !== null, 30_000);
    assert.equal(state.savedRun.progress.step, savedAt);
    assert.match(await page.textContent('#resume-text'), new RegExp(`saved at step ${savedAt} of ${whole.steps}.*data studio-train\\.csv`));
    assert.equal(await page.isVisible('#resume-banner'), true);

    await page.click('#resume-run');
    state = await waitForState(page, (s) => s.done, timeout);
    assert.deepEqual(state.errors, []);
    assert.equal(state.resumedFrom, savedAt);
    assert.equal(state.data.name, 'studio-train.csv');
    assert.equal(state.losses.length, whole.steps);
    assert.deepEqual(state.losses, whole.losses, 'the resumed curve is the uninterrupted one');
    assert.deepEqual(state.lrs, whole.lrs);
    assert.equal(state.metrics.accuracy, whole.metrics.accuracy);
    assert.equal(state.metrics.loss, whole.metrics.loss);
    t.diagnostic(`${kind}: resumed at step ${savedAt} of ${whole.steps}; final accuracy ${state.metrics.accuracy}`);
    assert.deepEqual(problems.consoleErrors, []);
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await session.close();
  }
}

test('a checkpointed run resumes after a reload with the same curve (CPU)', { timeout: 180_000 }, (t) =>
  resumeFlow(t, { query: '?model=tiny-bert&backend=cpu', kind: 'cpu', epochs: '20', timeout: 120_000 }));

test('a checkpointed run resumes after a reload with the same curve (WebGPU)', { timeout: 360_000 }, (t) =>
  resumeFlow(t, { args: WEBGPU_ARGS, query: '?model=tiny-bert&backend=webgpu', kind: 'webgpu', epochs: '3', timeout: 240_000 }));
