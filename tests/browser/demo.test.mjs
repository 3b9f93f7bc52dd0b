// The class demo: one link (?demo=sentiment) loads the bundled MiniLM and the sample reviews,
// lets the page pick its backend (here the CPU: no WebGPU adapter), shows the steps and the
// objective in large type, and one click trains until the held-out accuracy has visibly risen.
// How long that takes is reported (t.diagnostic) and recorded in BENCHMARKS.md, not asserted.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, waitForState } from './harness.mjs';

test('class demo: ?demo=sentiment trains the bundled model and the accuracy rises', { timeout: 420_000 }, async (t) => {
  const session = await openPage({ query: '?demo=sentiment', task: null, viewport: { width: 1280, height: 800 } });
  try {
    const { page, problems } = session;
    // The demo chose the task, the data and the model by itself.
    let state = await waitForState(page, (s) => s.model !== null && s.data !== null && s.backend !== null, 120_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.task, 'classify');
    assert.equal(state.model.source, 'all-MiniLM-L6-v2');
    assert.equal(state.data.name, 'sentiment-demo.csv');
    assert.equal(state.backend.kind, 'cpu');
    assert.equal(state.backend.mode, 'auto');
    assert.equal(await page.isVisible('#demo-panel'), true);
    assert.equal(await page.isVisible('#demo-objective'), true);
    assert.match(await page.textContent('#demo-objective'), /softmax/);
    // Large type for a projector.
    const size = await page.evaluate(() => Number.parseFloat(getComputedStyle(document.body).fontSize));
    assert.ok(size >= 20, `body font ${size}px`);
    await page.waitForSelector('#demo-steps li[data-step="model"].done', { timeout: 5_000 });
    assert.deepEqual(await page.$$eval('#demo-steps li', (lis) => lis.map((li) => li.className)), ['done', 'done', 'current', '', '']);

    const started = Date.now();
    await page.click('#demo-start');
    // When the held-out accuracy first stood 15 points above the untrained model's, seen from here.
    let risenAt = null;
    state = await waitForState(page, (s) => {
      if (risenAt === null && s.before && s.evals.some((e) => e.accuracy >= s.before.accuracy + 0.15)) risenAt = (Date.now() - started) / 1000;
      return s.done;
    }, 360_000);
    const seconds = (Date.now() - started) / 1000;
    assert.deepEqual(state.errors, []);
    assert.equal(state.summary.total_steps, 48);
    assert.equal(state.recipe.eval_every, 6);
    const before = state.before.accuracy;
    const curve = state.evals.map((e) => [e.step, e.accuracy]);
    const best = Math.max(...state.evals.map((e) => e.accuracy));
    // Visibly rising: at least 15 points above the untrained model on the 96 held-out reviews.
    assert.ok(best >= before + 0.15, `accuracy ${before} before, curve ${JSON.stringify(curve)}`);
    const risen = state.evals.find((e) => e.accuracy >= before + 0.15);
    await page.waitForSelector('#demo-steps li[data-step="evaluate"].done', { timeout: 5_000 });
    assert.deepEqual(await page.$$eval('#demo-steps li', (lis) => lis.map((li) => li.className)), ['done', 'done', 'done', 'done', 'done']);
    assert.match(await page.textContent('#demo-score'), /before → \d+% at step 48/);
    t.diagnostic(`demo on ${state.backend.kind} (${state.backend.note ?? ''}): accuracy ${before.toFixed(3)} before → ${state.metrics.accuracy.toFixed(3)} after; curve ${JSON.stringify(curve)}; risen by 15 points at step ${risen.step}, ${risenAt?.toFixed(0)} s after Start; whole run ${seconds.toFixed(0)} s`);
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
    assert.deepEqual(problems.foreignRequests, []);
  } finally {
    await session.screenshot('demo');
    await session.close();
  }
});

test('an unknown demo says which demos there are', { timeout: 60_000 }, async () => {
  const session = await openPage({ query: '?demo=nope&model=tiny-bert', task: null });
  try {
    const { page } = session;
    await page.waitForSelector('#error:not([hidden])');
    assert.match(await page.textContent('#error'), /There is no demo called "nope": the demos are sentiment\./);
    assert.equal(await page.isVisible('#demo-panel'), false);
  } finally {
    await session.close();
  }
});
