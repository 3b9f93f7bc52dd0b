// Page quality: layout at 1280×800 and on a phone-sized window, the system dark theme,
// English/Chinese switch, labelled and keyboard-reachable controls, the Content Security
// Policy, a 50 MB CSV loading while the page stays responsive, and a Hugging Face model id
// downloaded with progress and then served from the Cache API (Hub URLs are routed to the
// tiny model's files: this machine cannot reach huggingface.co).

import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { test } from 'node:test';
import { DATA, TINY, openPage, waitForState } from './harness.mjs';

const noHorizontalScroll = (page) => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);

test('fits 1280×800 and a narrow window; follows the dark theme', { timeout: 90_000 }, async () => {
  for (const [name, viewport, colorScheme] of [
    ['layout-1280-light', { width: 1280, height: 800 }, 'light'],
    ['layout-narrow-dark', { width: 390, height: 844 }, 'dark'],
  ]) {
    const session = await openPage({ query: '?model=tiny-bert&backend=cpu', viewport, colorScheme });
    try {
      const { page, problems } = session;
      await waitForState(page, (s) => s.backend !== null && s.checks !== null, 30_000);
      assert.ok(await noHorizontalScroll(page), `${name}: the page scrolls sideways`);
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor.match(/\d+/g).slice(0, 3).map(Number));
      const brightness = bg.reduce((a, b) => a + b, 0) / 3;
      if (colorScheme === 'dark') assert.ok(brightness < 60, `dark theme background ${bg}`);
      else assert.ok(brightness > 200, `light theme background ${bg}`);
      await session.screenshot(name);
      await session.screenshotOf(null, `${name}-viewport`);
      assert.deepEqual(problems.consoleErrors, []);
    } finally {
      await session.close();
    }
  }
});

test('switches between English and Chinese, and remembers the choice', { timeout: 60_000 }, async () => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  try {
    const { page } = session;
    await waitForState(page, (s) => s.checks !== null, 30_000);
    assert.equal(await page.textContent('#start'), 'Start training');
    await page.selectOption('#lang', 'zh');
    assert.equal(await page.textContent('#start'), '开始训练');
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    assert.match(await page.textContent('#data-checks li[data-check="rows"]'), /行中有 \d+ 行可用/);
    await session.screenshot('lang-zh');
    await session.screenshotOf(null, 'lang-zh-viewport');
    await page.reload();
    await waitForState(page, (s) => s.checks !== null, 30_000);
    assert.equal(await page.inputValue('#lang'), 'zh');
    assert.equal(await page.textContent('#load-model'), '加载模型');
    await page.selectOption('#lang', 'en');
    assert.equal(await page.textContent('#load-model'), 'Load model');
  } finally {
    await session.close();
  }
});

test('every control is labelled and reachable with the keyboard; a strict CSP is set', { timeout: 60_000 }, async () => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  try {
    const { page } = session;
    await waitForState(page, (s) => s.checks !== null, 30_000);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, textarea, button')]
        .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' && el.textContent.trim())))
        .map((el) => el.id || el.outerHTML.slice(0, 60)),
    );
    assert.deepEqual(unlabelled, [], 'controls without a label');
    // Tab through the page and collect what receives focus.
    const reached = new Set();
    await page.focus('#lang');
    for (let i = 0; i < 120; i++) {
      await page.keyboard.press('Tab');
      reached.add(await page.evaluate(() => document.activeElement?.id || document.activeElement?.getAttribute('name') || ''));
    }
    for (const id of ['task-classify', 'task-chat', 'drop-zone', 'data-file', 'data-bundled', 'text-column', 'label-column', 'model-source', 'hub-id', 'model-files', 'model-folder', 'load-model', 'epochs', 'lr', 'recipe-download', 'recipe-file', 'start', 'checkpoint-every', 'try-text', 'export', 'mix-file']) {
      assert.ok(reached.has(id), `${id} is not reachable with Tab (reached: ${[...reached].join(', ')})`);
    }
    // Another task's controls, once it is chosen with the keyboard.
    await page.focus('#task-compare');
    await page.keyboard.press('Enter');
    reached.clear();
    for (let i = 0; i < 120; i++) {
      await page.keyboard.press('Tab');
      reached.add(await page.evaluate(() => document.activeElement?.id || document.activeElement?.getAttribute('name') || ''));
    }
    for (const id of ['compare-a', 'compare-b', 'compare-start']) assert.ok(reached.has(id), `${id} is not reachable with Tab in the compare task`);
    assert.equal(reached.has('try-text'), false, 'a classify-only control is reachable in the compare task');
    await page.click('#task-classify');
    // Enter on the drop zone opens the file chooser.
    const [chooser] = await Promise.all([page.waitForEvent('filechooser', { timeout: 5_000 }), page.focus('#drop-zone').then(() => page.keyboard.press('Enter'))]);
    assert.ok(chooser, 'no file chooser');
    const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /connect-src 'self' https:\/\/huggingface\.co https:\/\/\*\.hf\.co;/);
    assert.doesNotMatch(csp, /'unsafe-inline'|'unsafe-eval'/);
  } finally {
    await session.close();
  }
});

test('a 50 MB CSV loads with progress while the page stays responsive', { timeout: 180_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'burnish-big-'));
  const big = path.join(dir, 'big.csv');
  const out = createWriteStream(big);
  out.write('text,label\n');
  let size = 0;
  let rows = 0;
  const words = ['good', 'bad', 'film', 'plot', 'actor', 'scene', 'music', 'long', 'short', 'funny'];
  while (size < 50 * 1024 * 1024) {
    const text = Array.from({ length: 30 }, (_, j) => words[(rows * 7 + j * 3) % words.length]).join(' ') + ` review number ${rows}`;
    const line = `"${text}",${rows % 3 === 0 ? 'positive' : rows % 3 === 1 ? 'negative' : 'neutral'}\n`;
    if (!out.write(line)) await once(out, 'drain');
    size += line.length;
    rows += 1;
  }
  out.end();
  await once(out, 'finish');
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  try {
    const { page, problems } = session;
    await waitForState(page, (s) => s.checks !== null, 30_000);
    // A timer on the page records the longest pause between its ticks: a frozen main thread
    // shows up as a gap as long as the parse itself.
    await page.evaluate(() => {
      window.__ticks = 0;
      window.__maxGap = 0;
      let last = performance.now();
      setInterval(() => {
        const now = performance.now();
        window.__maxGap = Math.max(window.__maxGap, now - last);
        last = now;
        window.__ticks += 1;
      }, 50);
    });
    const started = Date.now();
    await page.setInputFiles('#data-file', big);
    const statuses = new Set();
    const deadline = Date.now() + 150_000;
    for (;;) {
      const snap = await page.evaluate(() => ({ status: document.getElementById('data-status').textContent, ticks: window.__ticks, name: window.burnishState.data?.name, checks: window.burnishState.checks?.rows, errors: window.burnishState.errors.length }));
      if (snap.status) statuses.add(snap.status.replace(/[\d.]+ [kMG]?B/g, 'N'));
      if ((snap.name === 'big.csv' && snap.checks === rows) || snap.errors) break;
      assert.ok(Date.now() < deadline, 'the big file did not finish loading');
      await new Promise((r) => setTimeout(r, 200));
    }
    const seconds = (Date.now() - started) / 1000;
    const { maxGap, ticks } = await page.evaluate(() => ({ maxGap: window.__maxGap, ticks: window.__ticks }));
    t.diagnostic(`${rows} rows loaded and checked in ${seconds.toFixed(1)} s; ${ticks} timer ticks, longest gap ${maxGap.toFixed(0)} ms`);
    const state = await waitForState(page, () => true, 0);
    assert.deepEqual(state.errors, []);
    assert.equal(state.data.row_count, rows);
    assert.equal(state.checks.usable, rows);
    assert.ok([...statuses].some((s) => /Parsing big\.csv/.test(s)), `no parsing status shown: ${[...statuses].join(' | ')}`);
    // Timers kept firing on the page while the worker parsed: the tab did not freeze. (A
    // generous bound: parsing on the main thread would stall it for the whole parse.)
    assert.ok(maxGap < 2000, `the page froze for ${maxGap.toFixed(0)} ms while loading`);
    assert.deepEqual(problems.consoleErrors, []);
  } finally {
    await session.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a Hugging Face model id downloads with progress, then loads from the Cache API', { timeout: 90_000 }, async () => {
  const session = await openPage({ query: '?backend=cpu' });
  try {
    const { page, context, problems } = session;
    const served = [];
    await context.route('https://huggingface.co/**', async (route) => {
      const url = new URL(route.request().url());
      const m = url.pathname.match(/^\/test-org\/tiny-bert\/resolve\/main\/(.+)$/);
      served.push(url.pathname);
      // Like many Hub models, this one has no tokenizer_config.json (optional for Burnish).
      if (!m || m[1] === 'tokenizer_config.json') return route.fulfill({ status: 404, body: 'Entry not found', headers: { 'access-control-allow-origin': '*' } });
      const body = await readFile(path.join(TINY, m[1])).catch(() => null);
      if (!body) return route.fulfill({ status: 404, body: 'Entry not found' });
      return route.fulfill({ status: 200, body, headers: { 'access-control-allow-origin': '*', 'content-length': String(body.length) } });
    });
    await waitForState(page, (s) => s.backend !== null, 30_000);
    await page.fill('#hub-id', 'test-org/tiny-bert');
    assert.ok(await page.isChecked('input[name="model-source"][value="hub"]'));
    const statuses = new Set();
    await page.click('#load-model');
    for (let i = 0; i < 200; i++) {
      statuses.add(await page.textContent('#model-status'));
      if ((await page.evaluate(() => window.burnishState.model?.source)) || (await page.evaluate(() => window.burnishState.errors.length))) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    let state = await waitForState(page, (s) => s.model !== null, 30_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.model.source, 'huggingface.co/test-org/tiny-bert');
    assert.equal(state.model.hidden_size, 32);
    assert.ok(served.includes('/test-org/tiny-bert/resolve/main/model.safetensors'));
    assert.ok(served.includes('/test-org/tiny-bert/resolve/main/tokenizer_config.json'));
    assert.ok([...statuses].some((s) => /Downloading|Checking|Loaded/.test(s)), [...statuses].join(' | '));
    // The user asked for huggingface.co: those are the only requests that left the origin.
    assert.ok(problems.foreignRequests.every((u) => u.startsWith('https://huggingface.co/test-org/tiny-bert/resolve/main/')), problems.foreignRequests.join(', '));

    // Reload: the same id loads from the Cache API without touching the network.
    const before = served.length;
    await page.reload();
    await waitForState(page, (s) => s.backend !== null, 30_000);
    await page.fill('#hub-id', 'test-org/tiny-bert');
    await page.click('#load-model');
    state = await waitForState(page, (s) => s.model !== null, 30_000);
    assert.deepEqual(state.errors, []);
    assert.equal(served.length, before, `cached files were downloaded again: ${served.slice(before).join(', ')}`);
    assert.match(await page.textContent('#model-status'), /Loaded/);
  } finally {
    await session.close();
  }
});

test('a file dropped on the drop zone loads; a model folder loads through the folder picker', { timeout: 60_000 }, async () => {
  const session = await openPage({ query: '?backend=cpu' });
  try {
    const { page, problems } = session;
    await waitForState(page, (s) => s.checks !== null, 30_000);
    const csv = await readFile(DATA('studio-train.csv'), 'utf8');
    const dataTransfer = await page.evaluateHandle((text) => {
      const dt = new DataTransfer();
      dt.items.add(new File([text], 'dropped.csv', { type: 'text/csv' }));
      return dt;
    }, csv);
    await page.dispatchEvent('#drop-zone', 'dragenter', { dataTransfer });
    assert.ok(await page.evaluate(() => document.getElementById('drop-zone').classList.contains('dragging')));
    await page.dispatchEvent('#drop-zone', 'drop', { dataTransfer });
    let state = await waitForState(page, (s) => s.data?.name === 'dropped.csv' && s.checks?.rows === 52, 20_000);
    assert.deepEqual(state.errors, []);
    assert.deepEqual(state.data.columns, ['phrase', 'category', 'polarity']);

    await page.setInputFiles('#model-folder', TINY);
    assert.ok(await page.isChecked('input[name="model-source"][value="local"]'));
    await page.click('#load-model');
    state = await waitForState(page, (s) => s.model !== null, 30_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.model.hidden_size, 32);
    assert.deepEqual(problems.consoleErrors, []);
  } finally {
    await session.close();
  }
});
