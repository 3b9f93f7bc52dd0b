// Data mixing in the page (real wasm, CPU): a second training file is added, the mixture table
// shows each file's share by size and then by the typed weights, bad weights and a file without
// the label column get their messages next to the table, training draws from the files in the
// configured proportions (shown live), and the CLI given the page's recipe and the same files
// draws exactly the same examples from each file.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ARTIFACTS, DATA, TINY, download, loadStudioData, messageIn, openPage, waitForState, CLI } from './harness.mjs';

test('data mixing: shares shown, weights applied, batches drawn as configured, same as the CLI', { timeout: 150_000 }, async (t) => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  const { page, problems } = session;
  try {
    await loadStudioData(page, { epochs: '2', lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25' });

    // By size (temperature 1) first.
    await page.setInputFiles('#mix-file', DATA('mix-extra.csv'));
    let state = await waitForState(page, (s) => s.mixture?.length === 2, 20_000);
    const [main, extra] = state.mixture;
    assert.deepEqual([main.name, extra.name], ['studio-train.csv', 'mix-extra.csv']);
    assert.equal(extra.rows, 18); // 24 rows, a stratified quarter held out for evaluation
    assert.ok(Math.abs(extra.probability - extra.rows / (main.rows + extra.rows)) < 1e-12);

    // Weights 1 : 3.
    const weights = page.locator('#mix-table input.mix-weight');
    await weights.nth(0).fill('1');
    await weights.nth(1).fill('3');
    state = await waitForState(page, (s) => Math.abs((s.mixture?.[1]?.probability ?? 0) - 0.75) < 1e-12, 10_000);
    const row = await page.$$eval('#mix-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
    assert.equal(row[1][3], '75.0%');
    assert.equal(row[0][3], '25.0%');

    await page.click('#start');
    state = await waitForState(page, (s) => s.done, 120_000);
    assert.deepEqual(state.errors, []);
    const trainRows = state.mixture[0].rows + state.mixture[1].rows;
    assert.equal(state.summary.train_count, trainRows);
    const total = state.drawn[0] + state.drawn[1];
    assert.equal(total, 2 * trainRows, 'two epochs of draws');
    const share = state.drawn[1] / total;
    t.diagnostic(`drawn ${state.drawn} (mix-extra.csv ${(100 * share).toFixed(1)}%, configured 75%)`);
    // 2 × 56 draws: binomial standard deviation ≈ 0.041.
    assert.ok(Math.abs(share - 0.75) < 0.13, `share ${share}`);
    const drawnCells = await page.$$eval('#mix-table tbody tr', (trs) => trs.map((tr) => tr.cells[6].textContent));
    assert.equal(drawnCells[1], `${state.drawn[1]} (${(100 * share).toFixed(1)}%)`);
    await session.screenshotOf('#mix', 'data-mixing');

    // The page's recipe + the same files in the CLI: the same draws from each file.
    const recipeFile = await download(page, '#recipe-download', path.join(ARTIFACTS, 'mixing'));
    const recipe = JSON.parse(await readFile(recipeFile, 'utf8'));
    assert.deepEqual(recipe.mix_weights, [1, 3]);
    const bin = CLI;
    const cli = await promisify(execFile)(bin, [
      'train', '--model', TINY, '--train', DATA('studio-train.csv'), '--train', DATA('mix-extra.csv'), '--recipe', recipeFile,
      '--out', path.join(ARTIFACTS, 'mixing', 'cli'),
    ]);
    const metrics = JSON.parse(cli.stdout);
    assert.deepEqual(metrics.mixture.drawn, state.drawn);
    assert.deepEqual(metrics.mixture.files.map((f) => f.probability), state.mixture.map((m) => m.probability));

    // Bad input, next to the mixture table: a negative weight, a file without the label column.
    await weights.nth(1).fill('-1');
    await messageIn(page, '#mix-error', /mixing weight must be a number ≥ 0/);
    await weights.nth(1).fill('3');
    await page.setInputFiles('#mix-file', DATA('mix-no-label.csv'));
    await messageIn(page, '#mix-error', /mix-no-label\.csv: no label column "polarity"/);
    await page.click('#mix-table tr[data-file="mix-no-label.csv"] button');
    state = await page.evaluate(() => window.burnishState);
    for (let i = 0; i < 40 && state.mixFiles.length !== 1; i++) {
      await page.waitForTimeout(250);
      state = await page.evaluate(() => window.burnishState);
    }
    assert.deepEqual(state.mixFiles.map((f) => f.name), ['mix-extra.csv']);
    assert.deepEqual(state.errors.map((e) => e.concerns), ['mix', 'mix']);
    assert.deepEqual(problems.consoleErrors, []);
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await session.close();
  }
});
