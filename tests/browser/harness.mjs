import assert from 'node:assert/strict';
// Shared set-up for the browser tests: launches Debian's Chromium through playwright-core,
// serves www/ with scripts/serve.mjs, and records console errors, page errors and any
// request that leaves the test server. Tests differ only in Chromium flags and expectations.

import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
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
 * page errors and foreign requests as they happen. `isolate: false` serves without the COOP/COEP
 * headers, as a plain static host does.
 */
export async function openPage({ args = [], root, query = '', task = 'classify', viewport = { width: 1280, height: 800 }, colorScheme = 'light', locale = 'en-US', isolate = true, contextOptions = {} } = {}) {
  const server = await startServer({ root, port: 0, isolate });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [...BASE_ARGS, ...args],
  });
  const context = await browser.newContext({ viewport, colorScheme, locale, acceptDownloads: true, ...contextOptions });
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
  if (task) await chooseTask(page, task);
  return {
    page,
    context,
    origin,
    url: server.url,
    problems,
    async screenshot(name) {
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true }).catch(() => {});
    },
    /** A screenshot of one element (for the README), or of the viewport when `selector` is null. */
    async screenshotOf(selector, name) {
      await mkdir(ARTIFACTS, { recursive: true });
      const file = path.join(ARTIFACTS, `${name}.png`);
      if (selector) await page.locator(selector).screenshot({ path: file }).catch(() => {});
      else await page.screenshot({ path: file }).catch(() => {});
    },
    async close() {
      await browser.close().catch(() => {});
      await server.close();
    },
  };
}

/**
 * Picks `task` on the page's task choice (as a person clicks it) and unfolds every "Advanced"
 * group, so that tests can set any field; a test of the folding itself opens with `task: null`.
 */
export async function chooseTask(page, task) {
  await page.click(`#task-picker [data-task="${task}"]`);
  await page.evaluate(() => {
    for (const d of document.querySelectorAll('details.advanced')) d.open = true;
  });
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Polls `window.burnishState` until `predicate(state)` holds or an error was recorded, and
 * returns the state. Polling from Node (page.evaluate) rather than page.waitForFunction,
 * whose in-page eval the page's CSP rightly refuses.
 */
/** Records every line the run panel shows from now on; the returned function reads them back. */
export async function watchRunPanel(page) {
  await page.evaluate(() => {
    window.runPanelSeen = [];
    const text = document.querySelector('#run-panel-text');
    const panel = document.querySelector('#run-panel');
    new MutationObserver(() => {
      if (!panel.hidden) window.runPanelSeen.push(text.textContent);
    }).observe(text, { childList: true, characterData: true, subtree: true });
  });
  return () => page.evaluate(() => window.runPanelSeen);
}

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

/** Waits for an element to show a message matching `re` and returns its text. */
export async function messageIn(page, selector, re, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const text = await page.evaluate((sel) => {
      const el = document.querySelector(sel);
      return el && !el.hidden ? el.textContent : null;
    }, selector);
    if (text && re.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} in ${selector}; it shows: ${JSON.stringify(text)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export const TINY = path.join(REPO, 'tests', 'fixtures', 'tiny-bert');
export const TINY_FILES = ['config.json', 'tokenizer.json', 'model.safetensors'].map((f) => path.join(TINY, f));
/** The CLI the page's results are compared with: the test command's build (scripts/test.sh sets
 * BURNISH_BIN; otherwise the `ci` profile's binary that `cargo test --profile ci` builds). */
export const CLI = process.env.BURNISH_BIN ?? path.join(process.env.CARGO_TARGET_DIR ?? path.join(homedir(), '.cache/burnish/target'), 'ci', 'burnish');
export const DATA = (name) => path.join(REPO, 'tests', 'data', name);

/** Clicks `selector` and saves the download it starts under `dir`; returns the file path. */
export async function download(page, selector, dir) {
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), page.click(selector)]);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, dl.suggestedFilename());
  await dl.saveAs(file);
  return file;
}

/** Parses a safetensors file: the header's tensor names, dtypes and shapes, checked against the size. */
export function safetensorsHeader(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  let end = 0;
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    assert.equal(t.dtype, 'F32', `${name} dtype`);
    assert.equal(t.data_offsets[1] - t.data_offsets[0], 4 * t.shape.reduce((a, b) => a * b, 1), `${name} size`);
    end = Math.max(end, t.data_offsets[1]);
  }
  assert.equal(8 + n + end, bytes.length, 'safetensors data length');
  return header;
}

/** The quirky studio CSV loaded, with its real label column chosen; then `fields` filled in. */
export async function loadStudioData(page, fields = {}) {
  await waitForState(page, (s) => s.checks !== null, 30_000);
  await page.setInputFiles('#data-file', DATA('studio-train.csv'));
  await waitForState(page, (s) => s.data?.name === 'studio-train.csv', 20_000);
  await page.selectOption('#label-column', 'polarity');
  for (const [id, value] of Object.entries(fields)) await page.fill(`#${id}`, value);
}
