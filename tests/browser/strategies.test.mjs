// Fine-tuning strategies in the page (real wasm, CPU): top layers + head with gradual
// unfreezing, discriminative learning rates and a cosine schedule. The page shows what trains,
// the per-layer learning rates and the unfreezing schedule, and they match what happened; the
// recipe it writes runs the same strategy in the CLI.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ARTIFACTS, DATA, TINY, download, openPage, waitForState } from './harness.mjs';

/** The quirky studio CSV with its real label column chosen. */
async function loadStudioData(page) {
  await waitForState(page, (s) => s.checks !== null, 30_000);
  await page.setInputFiles('#data-file', DATA('studio-train.csv'));
  await waitForState(page, (s) => s.data?.name === 'studio-train.csv', 20_000);
  await page.selectOption('#label-column', 'polarity');
}

test('top layers + gradual unfreezing + layer-wise LR + cosine, shown and done', { timeout: 120_000 }, async (t) => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  const { page, problems } = session;
  try {
    await loadStudioData(page);
    const fields = { epochs: '2', lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25', 'top-layers': '1', 'unfreeze-every': '3', 'layer-lr-decay': '0.5' };
    for (const [id, value] of Object.entries(fields)) await page.fill(`#${id}`, value);
    await page.selectOption('#strategy', 'top');
    await page.selectOption('#schedule', 'cosine');
    await page.check('#gradual-unfreeze');
    await page.click('#start');
    let state = await waitForState(page, (s) => s.done, 90_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.summary.total_steps, 10);

    // What trained, when: head from step 1, encoder layer 1 from step 4, nothing more (top 1).
    const history = state.trainableHistory.map((h) => [h.step + 1, h.training]);
    assert.deepEqual(history, [
      [1, ['head (pooler + classifier)']],
      [4, ['head (pooler + classifier)', 'encoder layer 1']],
    ]);
    const [first, second] = state.trainableHistory;
    assert.ok(second.trainable_parameters > first.trainable_parameters);
    assert.match(await page.textContent('#trainable'), new RegExp(`Training ${second.trainable_parameters.toLocaleString('en-US')} of [\\d,]+ parameters`));
    assert.match(await page.textContent('#log'), /step 4: unfroze encoder layer 1/);
    const rows = await page.$$eval('#layer-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.deepEqual(rows.map((r) => r[0]), ['head (pooler + classifier)', 'encoder layer 1', 'encoder layer 0', 'embeddings']);
    assert.deepEqual(rows.map((r) => r[2]), ['1.000', '0.500', '0.250', '0.125']);
    assert.deepEqual(rows.map((r) => r[4]), ['step 1', 'step 4', 'frozen', 'frozen']);
    assert.deepEqual(rows.map((r) => r[5]), ['yes', 'yes', 'no', 'no']);
    // Cosine: after warm-up the rate falls along a cosine to near 0.
    const peak = Math.max(...state.lrs);
    assert.ok(peak <= 0.01 + 1e-12 && state.lrs.at(-1) < 0.05 * peak, `lrs ${state.lrs}`);
    await session.screenshotOf('#train-section', 'strategies-train-section');

    // The recipe carries the strategy; the CLI runs it and reports the same final set.
    const recipeFile = await download(page, '#recipe-download', path.join(ARTIFACTS, 'strategies'));
    const recipe = JSON.parse(await readFile(recipeFile, 'utf8'));
    assert.deepEqual(
      { s: recipe.strategy, k: recipe.top_layers, g: recipe.gradual_unfreeze, u: recipe.unfreeze_every, d: recipe.layer_lr_decay, c: recipe.schedule },
      { s: 'top', k: 1, g: true, u: 3, d: 0.5, c: 'cosine' },
    );
    const bin = path.join(process.env.CARGO_TARGET_DIR ?? path.join(homedir(), '.cache/burnish/target'), 'release', 'burnish');
    const cli = await promisify(execFile)(bin, ['train', '--model', TINY, '--train', DATA('studio-train.csv'), '--recipe', recipeFile, '--out', path.join(ARTIFACTS, 'strategies', 'cli')]);
    const metrics = JSON.parse(cli.stdout);
    assert.deepEqual(metrics.trainable.training, second.training);
    assert.equal(metrics.trainable.trainable_parameters, second.trainable_parameters);
    t.diagnostic(`trained ${second.trainable_parameters} of ${second.total_parameters} parameters`);
    assert.deepEqual(problems.consoleErrors, []);
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await session.close();
  }
});

test('gradient accumulation and early stopping with the best weights kept', { timeout: 120_000 }, async () => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  const { page, problems } = session;
  try {
    await loadStudioData(page);
    // 38 training rows in micro-batches of 4 (10 per epoch), 2 per step: 5 steps per epoch.
    // A learning rate too small to change any prediction: accuracy cannot improve after the
    // first evaluation, so patience 2 stops after the third.
    const fields = { epochs: '3', lr: '1e-9', 'batch-size': '4', 'grad-accum': '2', 'max-len': '32', 'eval-fraction': '0.25', 'eval-every': '1', 'warmup-ratio': '0', 'early-stopping-patience': '2' };
    for (const [id, value] of Object.entries(fields)) await page.fill(`#${id}`, value);
    await page.selectOption('#early-stopping-metric', 'accuracy');
    await page.click('#start');
    const state = await waitForState(page, (s) => s.done, 90_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.summary.total_steps, 15);
    assert.equal(state.losses.length, 3, 'stopped after three steps');
    assert.deepEqual(state.earlyStop && [state.earlyStop.stopped_at, state.earlyStop.best_step, state.earlyStop.early], [3, 1, true]);
    assert.match(await page.textContent('#log'), /Early stopping at step 3: no better accuracy for 2 evaluations; kept the weights of step 1/);
    // The final evaluation is of the restored weights: the same accuracy as at step 1.
    assert.equal(state.metrics.accuracy, state.evals[0].accuracy);
    assert.match(await page.textContent('#progress'), /step 3\/15 .* \d+(\.\d)? examples\/s/);
    assert.deepEqual(problems.consoleErrors, []);
  } finally {
    await session.close();
  }
});
