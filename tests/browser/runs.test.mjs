// Runs remembered in the browser (real wasm, CPU): two finished runs of the tiny model appear in
// "Your earlier runs" with their recipe, data and scores; ticking both shows them side by side
// (the recipe fields that differ, scores before → after, both loss curves); Re-run puts a run's
// recipe back in the form; Delete forgets one; the list survives a reload (IndexedDB).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadStudioData, openPage, waitForState } from './harness.mjs';

test('finished runs are remembered, compared side by side, re-run and deleted', { timeout: 240_000 }, async () => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  const { page, problems } = session;
  try {
    assert.equal(await page.isVisible('#runs-empty'), true);
    await loadStudioData(page, { epochs: '2', lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25', 'checkpoint-every': '0' });
    await page.click('#start');
    await waitForState(page, (s) => s.done && s.runs.length === 1, 120_000);
    await page.fill('#lr', '3e-3');
    await page.fill('#epochs', '3');
    await page.click('#start');
    let state = await waitForState(page, (s) => s.done && s.runs.length === 2, 120_000);
    assert.deepEqual(state.errors, []);
    assert.deepEqual(state.runs.map((r) => [r.data, r.lr]), [['studio-train.csv', 0.003], ['studio-train.csv', 0.01]], 'newest first');
    assert.ok(state.runs.every((r) => typeof r.accuracy === 'number'));
    assert.equal(await page.locator('#runs-table tbody tr').count(), 2);
    assert.match(await page.textContent('#runs-table tbody tr:nth-child(1)'), /studio-train\.csv.*full.*3.*3\.00e-3.*%\s*→\s*[\d.]+%/s);

    // Side by side: only the recipe fields that differ, and both curves.
    await page.check('#runs-table tbody tr:nth-child(1) input[type=checkbox]');
    assert.equal(await page.isVisible('#runs-compare'), false, 'one run is not a comparison');
    await page.check('#runs-table tbody tr:nth-child(2) input[type=checkbox]');
    await page.waitForSelector('#runs-compare:not([hidden])', { timeout: 10_000 });
    const table = await page.textContent('#runs-compare-table');
    assert.match(table, /epochs\s*3\s*2/);
    assert.match(table, /lr\s*0\.003\s*0\.01/);
    assert.doesNotMatch(table, /batch_size/, 'equal fields are not listed');
    assert.match(table, /accuracy.*→.*→/s);
    assert.equal(await page.locator('#runs-curves polyline').count(), 2);

    // Re-run: the older run's recipe is back in the form.
    await page.click('#runs-table tbody tr:nth-child(2) button:text("Re-run")');
    assert.equal(await page.inputValue('#lr'), '0.01');
    assert.equal(await page.inputValue('#epochs'), '2');

    // Delete one; the other stays after a reload.
    await page.click('#runs-table tbody tr:nth-child(1) button:text("Delete")');
    state = await waitForState(page, (s) => s.runs.length === 1, 10_000);
    await page.reload();
    state = await waitForState(page, (s) => s.runs.length === 1, 30_000);
    assert.equal(state.runs[0].lr, 0.01);
    assert.equal(await page.isVisible('#runs-compare'), false);
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
  } finally {
    await session.close();
  }
});
