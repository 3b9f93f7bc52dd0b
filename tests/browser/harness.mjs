// Shared set-up for the browser tests: launches Debian's Chromium through playwright-core,
// serves www/ with scripts/serve.mjs, and records console errors, page errors and any
// request that leaves the test server. Tests differ only in Chromium flags and expectations.

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startServer } from '../../scripts/serve.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const ARTIFACTS = path.join(HERE, 'artifacts');

export const BASE_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];
// SwiftShader gives headless Chromium a WebGPU adapter without a GPU; without these flags
// navigator.gpu.requestAdapter() returns null, which is how the CPU fallback is exercised.
export const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

/**
 * Starts a server for `root` and a browser with `args`, opens a page, and returns
 * {page, url, problems, screenshot(name), close()}. `problems` collects console errors,
 * page errors and foreign requests as they happen.
 */
export async function openPage({ args = [], root, query = '' } = {}) {
  const server = await startServer({ root, port: 0 });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [...BASE_ARGS, ...args],
  });
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const origin = new URL(server.url).origin;
  const problems = { consoleErrors: [], pageErrors: [], foreignRequests: [] };
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => problems.pageErrors.push(err.message));
  // Context-level, so requests made by the worker are seen too.
  context.on('request', (req) => {
    const url = new URL(req.url());
    if ((url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'ws:') && url.origin !== origin) {
      problems.foreignRequests.push(req.url());
    }
  });
  await page.goto(`${server.url}/${query}`);
  return {
    page,
    url: server.url,
    problems,
    async screenshot(name) {
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true }).catch(() => {});
    },
    async close() {
      await browser.close().catch(() => {});
      await server.close();
    },
  };
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Polls `window.burnishState` until `predicate(state)` holds or an error was recorded, and
 * returns the state. Polling from Node (page.evaluate) rather than page.waitForFunction,
 * whose in-page eval the page's CSP rightly refuses.
 */
export async function waitForState(page, predicate, timeout) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const state = await page.evaluate(() => window.burnishState ?? null);
    if (state && (state.errors.length > 0 || predicate(state))) return state;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${predicate}; state: ${JSON.stringify(state)?.slice(0, 2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * The whole user flow on tiny-bert: upload tests/data/browser-train.csv, set a short recipe,
 * train, check progress/results/try-it/export, and assert the run stayed clean.
 * `assert` is node:assert/strict; `log` is the test context's diagnostic(); `root` replaces www/.
 */
export async function trainTinyBert({ name, args, root, expectBackend, timeoutMs, assert, log }) {
  const session = await openPage({ args, root, query: '?model=tiny-bert' });
  const { page, problems } = session;
  try {
    // Backend line.
    let state = await waitForState(page, (s) => s.backend !== null, 60_000);
    assert.deepEqual(state.errors, [], 'errors while starting the backend');
    assert.equal(state.backend.kind, expectBackend.kind);
    const backendText = await page.textContent('#backend');
    assert.match(backendText, expectBackend.text);
    log(`${backendText}`);

    // Data: upload, preview, column guesses.
    await page.setInputFiles('#data-file', path.join(REPO, 'tests', 'data', 'browser-train.csv'));
    state = await waitForState(page, (s) => s.data?.name === 'browser-train.csv', 30_000);
    assert.deepEqual(state.errors, [], 'errors while inspecting the data');
    assert.equal(state.data.row_count, 48);
    assert.equal(await page.inputValue('#text-column'), 'text');
    assert.equal(await page.inputValue('#label-column'), 'label');
    assert.ok((await page.locator('#data-preview tbody tr').count()) > 0, 'the data preview is empty');

    // Recipe: 36 training rows / batch 8 x 6 epochs = 30 steps; lr 1e-2 makes the randomly
    // initialised tiny model's loss fall clearly within them (measured natively: 0.72 → 0.14).
    const recipe = { epochs: '6', lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25', seed: '42' };
    for (const [id, value] of Object.entries(recipe)) await page.fill(`#${id}`, value);

    const started = Date.now();
    await page.click('#start');
    state = await waitForState(page, (s) => s.done, timeoutMs);
    const seconds = (Date.now() - started) / 1000;
    assert.deepEqual(state.errors, [], 'errors while training');
    log(`${state.summary.total_steps} steps in ${seconds.toFixed(1)} s; losses ${state.losses.map((l) => l.toFixed(3)).join(' ')}`);

    // Loss history: one loss per step, and it went down.
    const steps = state.summary.total_steps;
    assert.ok(steps >= 8, `expected a real run, got ${steps} steps`);
    assert.equal(state.losses.length, steps);
    assert.equal(await page.locator('#loss-log [data-step][data-loss]').count(), steps);
    const third = Math.floor(steps / 3);
    const first = mean(state.losses.slice(0, third));
    const last = mean(state.losses.slice(-third));
    assert.ok(last < first, `loss did not fall: first third ${first.toFixed(4)}, last third ${last.toFixed(4)}`);
    assert.match(await page.textContent('#progress'), new RegExp(`step ${steps}/${steps}`));

    // Results.
    assert.ok(state.metrics, 'no metrics arrived');
    assert.ok(await page.isVisible('#confusion'), '#confusion is not visible');
    const labels = state.summary.labels;
    assert.deepEqual([...labels].sort(), ['negative', 'positive']);
    assert.equal(await page.locator('#confusion tbody tr').count(), labels.length);
    assert.match(await page.textContent('#metric-accuracy'), /^\d+(\.\d)?%$/);

    // Try it.
    await page.fill('#try-text', 'this movie was wonderful');
    await page.click('#try-button');
    state = await waitForState(page, (s) => s.prediction !== null, 30_000);
    assert.deepEqual(state.errors, [], 'errors while predicting');
    assert.ok(labels.includes(state.prediction.label), `unknown label ${state.prediction.label}`);
    assert.match(await page.textContent('#try-result'), /Predicted: (negative|positive)/);

    // Export.
    await page.click('#export');
    await page.waitForSelector('#export-links a[download="model.safetensors"]', { timeout: 60_000 });
    for (const file of ['config.json', 'tokenizer.json', 'metrics.json', 'recipe.json']) {
      assert.equal(await page.locator(`#export-links a[download="${file}"]`).count(), 1, `no ${file} link`);
    }
    const href = await page.getAttribute('#export-links a[download="model.safetensors"]', 'href');
    assert.match(href, /^blob:/);

    state = await page.evaluate(() => window.burnishState);
    assert.deepEqual(state.errors, []);
    assert.deepEqual(problems.pageErrors, [], 'page errors');
    assert.deepEqual(problems.consoleErrors, [], 'console errors');
    assert.deepEqual(problems.foreignRequests, [], 'requests that left the test server');
  } finally {
    await session.screenshot(name);
    await session.close();
  }
}
