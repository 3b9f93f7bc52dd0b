// A dataset by its Hugging Face id (huggingface.co routed to tests/data/hub/, written by
// tests/fixtures/make_parquet.py with `datasets`): the page lists the repository's data files
// and the Hub's Parquet conversion, narrows them by split, downloads the one picked with
// progress into the Cache API, and reads it (Parquet, in a worker of its own) into the same
// preview, column guess and checks as a file from disk; the model then trains on it. A damaged
// Parquet file gets a clear message and leaves the engine, with its loaded model, working.

import assert from 'node:assert/strict';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, openPage, waitForState } from './harness.mjs';

const HUB_DIR = path.join(REPO, 'tests', 'data', 'hub');
const cors = { 'access-control-allow-origin': '*' };

async function tree(dir, prefix = '') {
  const out = [];
  for (const e of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push({ type: 'directory', path: rel }, ...(await tree(dir, rel)));
    else out.push({ type: 'file', path: rel, size: (await stat(path.join(dir, rel))).size });
  }
  return out;
}

/** Serves tests/data/hub/<owner>/<name> as the Hub's dataset API; records every request. */
async function routeHub(context) {
  const served = [];
  await context.route('https://huggingface.co/**', async (route) => {
    const url = new URL(route.request().url());
    served.push(url.pathname);
    const p = decodeURIComponent(url.pathname);
    let m = p.match(/^\/api\/datasets\/([\w-]+\/[\w-]+)\/tree\/main$/);
    if (m) {
      const dir = path.join(HUB_DIR, m[1]);
      const entries = await tree(dir).catch(() => null);
      if (!entries) return route.fulfill({ status: 404, headers: cors, body: '{"error":"Repository not found"}' });
      return route.fulfill({ status: 200, headers: { ...cors, 'content-type': 'application/json' }, body: JSON.stringify(entries) });
    }
    m = p.match(/^\/api\/datasets\/([\w-]+\/[\w-]+)\/parquet$/);
    if (m) {
      if (m[1] !== 'test-org/reviews') return route.fulfill({ status: 404, headers: cors, body: '{}' });
      const body = { default: { train: [`https://huggingface.co/api/datasets/${m[1]}/parquet/default/train/0.parquet`] } };
      return route.fulfill({ status: 200, headers: { ...cors, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    }
    m = p.match(/^\/api\/datasets\/test-org\/reviews\/parquet\/default\/train\/0\.parquet$/);
    const file = m ? path.join(HUB_DIR, 'test-org/reviews/data/train-00000-of-00001.parquet') : (p.match(/^\/datasets\/([\w-]+\/[\w-]+)\/resolve\/main\/(.+)$/) ?? []).slice(1).join('/');
    const body = file ? await readFile(m ? file : path.join(HUB_DIR, file)).catch(() => null) : null;
    if (!body) return route.fulfill({ status: 404, headers: cors, body: 'Entry not found' });
    return route.fulfill({ status: 200, headers: { ...cors, 'content-length': String(body.length) }, body });
  });
  return served;
}

const listed = (page) => page.$$eval('#dataset-files tbody tr', (trs) => trs.map((tr) => tr.cells[0].textContent));

test('a Hub dataset by id: list, narrow by split, download Parquet with progress, train on it; from the cache after a reload', { timeout: 180_000 }, async () => {
  const session = await openPage({ query: '?backend=cpu' });
  try {
    const { page, context, problems } = session;
    const served = await routeHub(context);
    await waitForState(page, (s) => s.backend !== null && s.checks !== null, 60_000);
    await page.click('#hub-data summary');
    await page.fill('#dataset-id', 'test-org/reviews');
    await page.click('#dataset-list');
    let state = await waitForState(page, (s) => s.hubDataset !== null || s.errors.length > 0, 30_000);
    assert.deepEqual(state.errors, []);
    assert.deepEqual((await listed(page)).sort(), ['data/test-00000-of-00001.parquet', 'data/train-00000-of-00001.parquet', 'default/train/0.parquet', 'extra/notes.csv', 'extra/topics.tsv']);
    assert.match(await page.textContent('#dataset-status'), /test-org\/reviews: 5 data files/);

    // Narrowed to the train split: the repository's train shard and the Hub's conversion.
    await page.fill('#dataset-split', 'train');
    await page.click('#dataset-list');
    state = await waitForState(page, (s) => s.hubDataset?.files.length === 2, 30_000);
    assert.deepEqual((await listed(page)).sort(), ['data/train-00000-of-00001.parquet', 'default/train/0.parquet']);

    // Train on the repository's shard: the same preview, guess and checks as a file from disk.
    await page.click('#dataset-files button[aria-label="Train on it: data/train-00000-of-00001.parquet"]');
    state = await waitForState(page, (s) => s.data?.name === 'train-00000-of-00001.parquet' && s.checks?.rows === 52, 60_000);
    assert.deepEqual(state.errors, []);
    assert.deepEqual(state.data.columns, ['text', 'label', 'length']);
    assert.equal(await page.inputValue('#text-column'), 'text');
    assert.equal(await page.inputValue('#label-column'), 'label');
    assert.deepEqual(state.checks.label_counts.map((c) => c.label).sort(), ['negative', 'positive'], 'ClassLabel ints read as their names');
    assert.match(await page.textContent('#data-preview'), /这部电影非常好看/);
    assert.ok(served.includes('/datasets/test-org/reviews/resolve/main/data/train-00000-of-00001.parquet'));

    // The test split as the evaluation data, then a short run.
    await page.fill('#dataset-split', 'test');
    await page.click('#dataset-list');
    await waitForState(page, (s) => s.hubDataset?.files.length === 1, 30_000);
    await page.click('#dataset-files button[aria-label="Evaluate on it: data/test-00000-of-00001.parquet"]');
    state = await waitForState(page, (s) => s.evalData?.row_count === 4 || s.errors.length > 0, 60_000);
    assert.deepEqual(state.errors, []);
    await page.click('#load-model');
    await waitForState(page, (s) => s.model !== null, 60_000);
    for (const [id, value] of Object.entries({ epochs: '1', 'batch-size': '16', 'max-len': '32' })) await page.fill(`#${id}`, value);
    await page.click('#start');
    state = await waitForState(page, (s) => s.done || s.errors.length > 0, 120_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.summary.train_count, 52);
    assert.equal(state.summary.eval_count, 4);

    // After a reload the file comes from the Cache API: only the listing asks the Hub.
    await page.reload();
    await waitForState(page, (s) => s.backend !== null && s.checks !== null, 60_000);
    await page.click('#hub-data summary');
    await page.fill('#dataset-id', 'test-org/reviews');
    await page.fill('#dataset-split', 'train');
    await page.click('#dataset-list');
    await waitForState(page, (s) => s.hubDataset?.files.length === 2, 30_000);
    const before = served.filter((p) => p.includes('/resolve/')).length;
    await page.click('#dataset-files button[aria-label="Train on it: data/train-00000-of-00001.parquet"]');
    state = await waitForState(page, (s) => s.data?.name === 'train-00000-of-00001.parquet', 60_000);
    assert.equal(served.filter((p) => p.includes('/resolve/')).length, before, 'downloaded again');
    assert.match(await page.textContent('#dataset-status'), /from this browser's cache/);
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
    assert.ok(problems.foreignRequests.every((u) => u.startsWith('https://huggingface.co/')), problems.foreignRequests.join(', '));
  } finally {
    await session.screenshotOf('#data-section', 'hub-dataset');
    await session.close();
  }
});

test('Hub datasets: a bad id, a missing dataset, and a damaged Parquet file that leaves the engine working', { timeout: 120_000 }, async () => {
  const session = await openPage({ query: '?backend=cpu' });
  try {
    const { page, context, problems } = session;
    await routeHub(context);
    // waitForState returns on any error: each case starts from an empty list.
    const forget = () => page.evaluate(() => { window.burnishState.errors.length = 0; });
    await waitForState(page, (s) => s.backend !== null && s.checks !== null, 60_000);
    await page.click('#load-model');
    await waitForState(page, (s) => s.model !== null, 60_000);
    await page.click('#hub-data summary');
    await page.fill('#dataset-id', 'not a/valid/id');
    await page.click('#dataset-list');
    let state = await waitForState(page, () => false, 10_000);
    assert.equal(state.errors[0].code, 'page.bad-dataset-id');
    assert.match(await page.textContent('#data-error'), /is not a valid dataset id/);
    await forget();
    await page.fill('#dataset-id', 'test-org/no-such-dataset');
    await page.click('#dataset-list');
    state = await waitForState(page, () => false, 10_000);
    assert.equal(state.errors[0].code, 'page.no-such-dataset');
    assert.match(await page.textContent('#data-error'), /There is no dataset test-org\/no-such-dataset on huggingface\.co \(HTTP 404\)/);
    await forget();

    // A Parquet file that makes the reader fail: said by name; the engine (and the model) stay.
    await page.fill('#dataset-id', 'test-org/broken');
    await page.click('#dataset-list');
    state = await waitForState(page, (s) => s.hubDataset?.id === 'test-org/broken', 10_000);
    assert.deepEqual(state.errors, []);
    await page.click('#dataset-files button[aria-label="Train on it: data/train-00000-of-00001.parquet"]');
    state = await waitForState(page, () => false, 60_000);
    assert.equal(state.errors[0].code, 'data.parquet', JSON.stringify(state.errors));
    assert.match(await page.textContent('#data-error'), /train-00000-of-00001\.parquet: cannot read this Parquet file: the file is damaged/);
    await forget();
    // The engine still answers, with the model it had: the bundled sample loads and is checked with it.
    await page.click('#data-bundled');
    state = await waitForState(page, (s) => s.data?.name === 'sentiment-demo.csv' && s.checks?.tokens, 30_000);
    assert.deepEqual(state.errors, []);
    assert.ok(state.model !== null);
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await session.close();
  }
});
