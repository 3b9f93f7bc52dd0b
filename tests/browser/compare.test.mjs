// The strategy comparison view (real wasm, CPU): two presets train in turns on the same data;
// both curves are drawn, the table reports each one's trainable parameters and metrics, and the
// numbers match what the strategies mean (the head-only run trains the pooler and classifier
// only; full fine-tuning trains everything).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadStudioData, messageIn, openPage, waitForState, watchRunPanel } from './harness.mjs';

test('compare two strategies side by side', { timeout: 150_000 }, async (t) => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu', task: 'compare' });
  const { page, problems } = session;
  try {
    await waitForState(page, (s) => s.presets.length > 0, 30_000);
    await loadStudioData(page, { epochs: '3', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25', 'eval-every': '2' });
    const names = (await page.$$eval('#compare-a option', (os) => os.map((o) => o.value)));
    assert.deepEqual(names, ['full', 'head', 'top2', 'gradual', 'discriminative', 'lora']);

    await page.selectOption('#compare-a', 'head');
    await page.selectOption('#compare-b', 'full');
    const panel = await watchRunPanel(page);
    await page.click('#compare-start');
    const state = await waitForState(page, (s) => s.compare?.done, 120_000);
    assert.deepEqual(state.errors, []);
    const { summary, losses, evals, results } = state.compare;
    assert.deepEqual(summary.runs.map((r) => r.name), ['head', 'full']);
    const steps = summary.runs[0].total_steps;
    assert.equal(summary.runs[1].total_steps, steps, 'the same budget');
    assert.deepEqual(losses.map((l) => l.length), [steps, steps]);
    // Evaluated every 2 steps and at each epoch's end.
    const perEpoch = steps / 3;
    const expected = [...Array(steps).keys()].map((i) => i + 1).filter((s) => s % 2 === 0 || s % perEpoch === 0);
    assert.deepEqual(evals.map((e) => e.map((x) => x.step)), [expected, expected]);
    assert.notDeepEqual(losses[0], losses[1], 'two different runs');
    assert.deepEqual(state.compare.charts.loss, [steps, steps]);

    // hidden 32, 2 labels: the head is 32·32 + 32 + 32·2 + 2 = 1122 parameters.
    const [head, full] = results;
    assert.equal(head.trainable.trainable_parameters, 1122);
    assert.equal(full.trainable.trainable_parameters, full.trainable.total_parameters);
    assert.equal(summary.runs[0].recipe.lr, 1e-3);
    assert.equal(summary.runs[1].recipe.lr, 5e-5);
    const rows = await page.$$eval('#compare-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.deepEqual(rows.map((r) => r[0]), ['head', 'full']);
    assert.equal(rows[0][2], '1,122 (' + ((100 * 1122) / head.trainable.total_parameters).toFixed(1) + '%)');
    assert.equal(rows[1][3], `${(100 * full.metrics.accuracy).toFixed(1)}%`);
    t.diagnostic(`head: accuracy ${head.metrics.accuracy}, full: accuracy ${full.metrics.accuracy}`);
    await session.screenshotOf('#compare-section', 'compare-strategies');
    // The run panel followed both runs; both are remembered and ticked side by side.
    assert.ok((await panel()).some((line) => new RegExp(`^step \\d+/${2 * steps} · full · loss`).test(line)), `run panel: ${(await panel()).slice(-2)}`);
    const kept = await waitForState(page, (s) => s.runs.filter((r) => / \(compare: /.test(r.data)).length === 2, 10_000);
    assert.deepEqual(kept.runs.slice(0, 2).map((r) => r.data.match(/compare: (\w+)/)[1]), ['full', 'head'], 'newest first');
    assert.ok(Math.abs(kept.runs[0].accuracy - full.metrics.accuracy) < 1e-9);
    await page.waitForSelector('#runs-compare:not([hidden])');
    assert.equal(await page.isVisible('#run-panel'), false, 'the panel goes once the comparison ends');

    // The same strategy twice is refused next to the view.
    await page.selectOption('#compare-b', 'head');
    await page.click('#compare-start');
    await messageIn(page, '#compare-error', /two different strategies/);
    assert.deepEqual(problems.consoleErrors, []);
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await session.close();
  }
});
