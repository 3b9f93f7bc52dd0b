// "Export as a web app": after fine-tuning in the studio, the exported .zip holds a plain page,
// the engine and the model; unzipped and served by a plain static file server (no COOP/COEP
// headers, no Burnish UI), it loads offline and gives the same probabilities as the studio's
// Try it for the same texts.

import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { ARTIFACTS, REPO, download, loadStudioData, openPage, waitForState } from './harness.mjs';

const { unzipSync } = await import(path.join(REPO, 'www', 'vendor', 'fflate.js'));
const TEXTS = ['the story was wonderful', 'dull, dull, dull', '这部电影非常好看'];

test('export as a web app: served from a plain static host, it predicts what the studio did', { timeout: 240_000 }, async () => {
  const out = path.join(ARTIFACTS, 'webapp');
  await rm(out, { recursive: true, force: true });
  const studio = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  const studioProbs = [];
  let zipPath, int8Zip;
  try {
    const { page, problems } = studio;
    await loadStudioData(page, { epochs: '3', lr: '1e-2', 'batch-size': '8', 'max-len': '32', seed: '5' });
    await page.click('#load-model');
    await waitForState(page, (s) => s.model !== null, 60_000);
    await page.click('#start');
    let state = await waitForState(page, (s) => s.done, 120_000);
    assert.deepEqual(state.errors, []);
    for (const text of TEXTS) {
      await page.evaluate(() => { window.burnishState.prediction = null; });
      await page.fill('#try-text', text);
      await page.click('#try-button');
      state = await waitForState(page, (s) => s.prediction !== null, 30_000);
      studioProbs.push(state.prediction.probabilities);
    }
    zipPath = await download(page, '#export-app', out);
    state = await waitForState(page, (s) => s.exportedApp !== null, 30_000);
    assert.deepEqual(state.errors, []);
    // The int8 export: its report, then a web app with those weights.
    await download(page, '#export-int8', path.join(out, 'int8'));
    state = await waitForState(page, (s) => s.int8 !== null, 30_000);
    assert.ok(state.int8.int8_bytes < 0.4 * state.int8.f32_bytes, JSON.stringify(state.int8));
    assert.equal(state.int8.f32.accuracy, state.metrics.accuracy, 'the f32 side is the model trained here');
    assert.match(await page.textContent('#export-status'), /int8 weights: .* % of the f32 .*; accuracy [\d.]+ % → [\d.]+ % on the \d+ evaluation examples/);
    await page.check('#app-int8');
    int8Zip = await download(page, '#export-app', path.join(out, 'int8-app'));
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await studio.close();
  }

  const unzip = async (zip, dir) => {
    const entries = unzipSync(new Uint8Array(await readFile(zip)));
    for (const [name, bytes] of Object.entries(entries)) {
      if (name.endsWith('/')) continue;
      const rel = name.split('/').slice(1).join('/');
      await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
      await writeFile(path.join(dir, rel), bytes);
    }
    return Object.keys(entries).map((n) => n.split('/').slice(1).join('/')).sort();
  };
  /** Opens the served app and returns its predictions for TEXTS. */
  const predictIn = async (dir, shot) => {
    const app = await openPage({ root: dir, isolate: false, task: null });
    try {
      const { page, problems } = app;
      for (let i = 0; i < 240 && !(await page.evaluate(() => window.appState?.ready || window.appState?.error)); i++) await new Promise((r) => setTimeout(r, 250));
      assert.equal(await page.evaluate(() => window.appState.error), null);
      assert.deepEqual(await page.evaluate(() => window.appState.labels), ['negative', 'positive']);
      const out = [];
      for (const text of TEXTS) {
        await page.evaluate(() => { window.appState.prediction = null; });
        await page.fill('#text', text);
        await page.click('#classify');
        for (let k = 0; k < 120 && !(await page.evaluate(() => window.appState.prediction)); k++) await new Promise((r) => setTimeout(r, 250));
        out.push(await page.evaluate(() => window.appState.prediction));
      }
      assert.match(await page.textContent('#result'), /Predicted: (negative|positive)/);
      await app.screenshot(shot);
      assert.deepEqual(problems.pageErrors, []);
      assert.deepEqual(problems.consoleErrors, []);
      assert.deepEqual(problems.foreignRequests, [], 'the app asks nothing of any other origin');
      return out;
    } finally {
      await app.close();
    }
  };

  // Unzip as a user would and serve the folder from a plain static server.
  const dir = path.join(out, 'site');
  const names = await unzip(zipPath, dir);
  for (const f of ['index.html', 'app.js', 'app-worker.js', 'app.json', 'pkg/burnish.js', 'pkg/burnish_bg.wasm', 'model/config.json', 'model/tokenizer.json', 'model/model.safetensors']) {
    assert.ok(names.includes(f), `${f} in the web app (${names.join(', ')})`);
  }
  assert.ok(!names.some((n) => n.startsWith('steps/') || n === 'main.js'), 'no Burnish UI in the app');
  const f32 = await predictIn(dir, 'webapp');
  for (const [i, p] of f32.entries()) {
    const diff = Math.max(...p.probabilities.map((x, j) => Math.abs(x - studioProbs[i][j])));
    assert.ok(diff < 1e-5, `${TEXTS[i]}: app ${p.probabilities} vs studio ${studioProbs[i]}`);
  }
  // The int8 app: a quarter of the weights' bytes, within the quantization error.
  const dir8 = path.join(out, 'site-int8');
  await unzip(int8Zip, dir8);
  const [w32, w8] = [await readFile(path.join(dir, 'model/model.safetensors')), await readFile(path.join(dir8, 'model/model.safetensors'))];
  assert.ok(w8.length < 0.4 * w32.length, `${w8.length} vs ${w32.length} bytes`);
  const int8 = await predictIn(dir8, 'webapp-int8');
  for (const [i, p] of int8.entries()) {
    const diff = Math.max(...p.probabilities.map((x, j) => Math.abs(x - studioProbs[i][j])));
    assert.ok(diff < 0.05, `${TEXTS[i]} (int8): app ${p.probabilities} vs studio ${studioProbs[i]}`);
  }
});
