// The run always in view (real wasm, CPU): while a run trains, a compact panel (progress, loss
// and accuracy sparkline, ETA, Pause and Stop) stays in the window wherever the page is
// scrolled, its buttons work, and it goes when the run ends.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadStudioData, openPage, waitForState } from './harness.mjs';

test('the run panel stays in view while training, and its Pause and Stop work', { timeout: 180_000 }, async () => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  const { page, problems } = session;
  try {
    assert.equal(await page.isVisible('#run-panel'), false, 'no run, no panel');
    await loadStudioData(page, { epochs: '60', lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25', 'checkpoint-every': '0' });
    await page.click('#start');
    await waitForState(page, (s) => s.evals.length >= 2, 60_000);
    // Scrolled to the very end of the page, and to the top: the panel is inside the window.
    for (const y of [1e6, 0]) {
      await page.evaluate((top) => window.scrollTo(0, top), y);
      const box = await page.locator('#run-panel').boundingBox();
      const height = await page.evaluate(() => window.innerHeight);
      assert.ok(box && box.y >= 0 && box.y + box.height <= height, `in view at scroll ${y}: ${JSON.stringify(box)}`);
    }
    assert.match(await page.textContent('#run-panel-text'), /step \d+\/\d+ · loss [\d.]+ · accuracy [\d.]+% · ETA \d+:\d\d/);
    const points = (await page.getAttribute('#run-panel-loss', 'points')).split(' ');
    assert.ok(points.length >= 2, 'a loss sparkline');
    assert.ok((await page.getAttribute('#run-panel-eval', 'points')).split(' ').length >= 2, 'an accuracy sparkline');
    // Pause from the panel: no step is made; Resume; Stop ends the run and the panel goes.
    await page.click('#run-panel-pause');
    await waitForState(page, (s) => s.paused, 10_000);
    await page.waitForTimeout(1500); // a slice in flight may still land
    const held = (await page.evaluate(() => window.burnishState)).losses.length;
    await page.waitForTimeout(1000);
    assert.equal((await page.evaluate(() => window.burnishState)).losses.length, held, 'paused');
    assert.equal((await page.textContent('#run-panel-pause')).trim(), 'Resume');
    await page.click('#run-panel-pause');
    await waitForState(page, (s) => s.losses.length > held, 30_000);
    await page.click('#run-panel-stop');
    const state = await waitForState(page, (s) => s.done, 60_000);
    assert.deepEqual(state.errors, []);
    assert.ok(state.losses.length < state.summary.total_steps, 'stopped early');
    assert.equal(await page.isVisible('#run-panel'), false);
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await session.close();
  }
});
