// The model gallery: suggested Hub encoders with languages, size and the memory the form's recipe
// needs, worked out by the engine from each config before any download. The bundled model's row
// must agree with the estimate for the loaded model itself (same config, same recipe).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPage, waitForState } from './harness.mjs';

test('model gallery: sizes and memory from the engine, a Chinese model, Use fills the id', { timeout: 120_000 }, async () => {
  const session = await openPage({ query: '?backend=cpu' });
  try {
    const { page, problems } = session;
    let state = await waitForState(page, (s) => s.gallery?.length === 6, 60_000);
    assert.deepEqual(state.errors, []);
    const rows = await page.$$eval('#gallery-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.ok(rows.some((r) => /中文/.test(r[1])), 'a model for Chinese text');
    const byId = Object.fromEntries(state.gallery.map((g) => [g.id, g]));
    // BertModel + pooler + a 2-label head, as transformers counts them.
    assert.equal(byId['google-bert/bert-base-uncased'].parameters, 109_482_240 + 768 * 2 + 2);
    assert.equal(byId['google-bert/bert-base-chinese'].parameters, 102_267_648 + 768 * 2 + 2);
    // Larger batches need more memory, on every row.
    const before = state.gallery.map((g) => g.total);
    await page.fill('#batch-size', '32');
    state = await waitForState(page, (s) => s.gallery.every((g, i) => g.total > before[i]), 10_000);

    // The bundled model's row = the estimate for the model once loaded, for the same recipe.
    await page.click('#load-model');
    state = await waitForState(page, (s) => s.model !== null && s.memory?.batch === 32, 60_000);
    assert.deepEqual(state.errors, []);
    const mini = state.gallery.find((g) => g.id === 'sentence-transformers/all-MiniLM-L6-v2');
    assert.equal(mini.total, state.memory.total);
    assert.equal(mini.parameters, state.memory.parameters);

    // Use: the Hub id goes into the form, ready for Load model.
    await page.click('#gallery-table button[aria-label="Use google-bert/bert-base-chinese"]');
    assert.equal(await page.inputValue('#hub-id'), 'google-bert/bert-base-chinese');
    assert.equal(await page.isChecked('input[name="model-source"][value="hub"]'), true);
    await page.click('#gallery-table button[aria-label="Use sentence-transformers/all-MiniLM-L6-v2"]');
    assert.equal(await page.isChecked('input[name="model-source"][value="bundled"]'), true);
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
    assert.deepEqual(problems.foreignRequests, []);
  } finally {
    await session.screenshotOf('#model-section', 'gallery');
    await session.close();
  }
});
