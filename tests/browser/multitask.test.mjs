// Multi-task fine-tuning in the page (real wasm): the main training file (sentiment) and an
// added file (topic, other columns and labels) train one shared encoder with a head each.
// Proportional sampling draws each task's batches exactly in its share per epoch; round-robin
// alternates; every task gets its own metrics, a text gets every task's label, and the export
// holds one Hugging Face classifier folder per task.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { ARTIFACTS, DATA, REPO, WEBGPU_ARGS, download, loadStudioData, messageIn, openPage, safetensorsHeader, waitForState, watchRunPanel } from './harness.mjs';

const { unzipSync } = await import(path.join(REPO, 'www', 'vendor', 'fflate.js'));

async function multitask({ name, args, query, kind, epochs, timeout, t, full }) {
  const session = await openPage({ args, query, task: 'multitask' });
  const { page, problems } = session;
  const out = path.join(ARTIFACTS, `multitask-${name}`);
  try {
    await loadStudioData(page, { epochs: String(epochs), lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25' });
    let state = await page.evaluate(() => window.burnishState);
    assert.equal(state.backend.kind, kind);
    await page.setInputFiles('#task-file', DATA('topic-train.tsv'));
    state = await waitForState(page, (s) => s.tasks.length === 1, 20_000);
    assert.equal(state.tasks[0].name, 'topic-train');
    assert.equal(await page.inputValue('#task-table select.task-text'), 'sentence');
    assert.equal(await page.inputValue('#task-table select.task-label'), 'kind');

    // Proportional: each epoch holds every task's batches once.
    const panel = await watchRunPanel(page);
    await page.click('#multitask-start');
    state = await waitForState(page, (s) => s.multitask?.done, timeout);
    assert.deepEqual(state.errors, []);
    let mt = state.multitask;
    assert.deepEqual(mt.summary.tasks.map((x) => x.name), ['studio-train', 'topic-train']);
    assert.deepEqual(mt.summary.tasks[1].labels, ['film', 'music', 'sport']);
    const batches = mt.summary.tasks.map((x) => x.batches_per_epoch);
    assert.deepEqual(mt.drawn, batches.map((b) => b * epochs), 'each task drawn in exactly its share');
    const total = batches[0] + batches[1];
    assert.ok(Math.abs(mt.summary.tasks[0].share - batches[0] / total) < 1e-12);
    assert.equal(mt.metrics.length, 2);
    assert.deepEqual(mt.evals.map((e) => e.length), [epochs, epochs], 'per-task metrics after every epoch');
    assert.deepEqual(mt.charts.eval, [epochs, epochs]);
    assert.deepEqual(mt.charts.loss, mt.drawn);
    t.diagnostic(`proportional: drawn ${mt.drawn}; accuracy ${mt.metrics.map((m) => m.accuracy.toFixed(3))}`);
    // The run panel followed the run; it is remembered with the tasks' mean accuracy.
    assert.ok((await panel()).some((line) => /^step \d+\/\d+ · task (studio|topic)-train · loss/.test(line)), `run panel: ${(await panel()).slice(-2)}`);
    const kept = (await waitForState(page, (s) => s.runs.some((r) => r.task === 'multi-task'), 10_000)).runs.find((r) => r.task === 'multi-task');
    assert.ok(Math.abs(kept.accuracy - (mt.metrics[0].accuracy + mt.metrics[1].accuracy) / 2) < 1e-9);
    const cells = await page.$$eval('#task-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
    assert.equal(cells[1][6], `${(100 * batches[1] / total).toFixed(1)}%`);
    assert.equal(cells[1][8], `${(100 * mt.metrics[1].accuracy).toFixed(1)}%`);

    if (full) {
      // Round-robin: the tasks take turns.
      await page.selectOption('#task-sampling', 'round_robin');
      await page.click('#multitask-start');
      state = await waitForState(page, (s) => s.multitask?.done && s.multitask.summary.recipe.task_sampling === 'round_robin', timeout);
      mt = state.multitask;
      assert.ok(mt.sequence.every((task, i) => task === i % 2), `alternating: ${mt.sequence}`);
      assert.ok(Math.abs(mt.drawn[0] - mt.drawn[1]) <= 1, `${mt.drawn}`);
      assert.deepEqual(mt.summary.tasks.map((x) => x.share), [0.5, 0.5]);
      await session.screenshotOf('#multitask-section', 'multitask');
    }

    // Every task labels one text.
    await page.fill('#multitask-text', 'a new song');
    await page.click('#multitask-predict');
    state = await waitForState(page, (s) => s.multitask?.predictions?.length === 2, 20_000);
    assert.ok(['negative', 'positive'].includes(state.multitask.predictions[0].label));
    assert.ok(['film', 'music', 'sport'].includes(state.multitask.predictions[1].label));

    // One classifier folder per task.
    const zipPath = await download(page, '#multitask-export', out);
    const entries = unzipSync(new Uint8Array(await readFile(zipPath)));
    const root = Object.keys(entries)[0].split('/')[0];
    for (const [task, labels] of [['studio-train', ['negative', 'positive']], ['topic-train', ['film', 'music', 'sport']]]) {
      const config = JSON.parse(new TextDecoder().decode(entries[`${root}/${task}/config.json`]));
      assert.deepEqual(config.architectures, ['BertForSequenceClassification']);
      assert.deepEqual(Object.values(config.id2label), labels);
      const header = safetensorsHeader(entries[`${root}/${task}/model.safetensors`]);
      assert.deepEqual(header['classifier.weight'].shape, [labels.length, 32]);
    }

    if (full) {
      // Bad input: only one task left.
      await page.click('#task-table button');
      await waitForState(page, (s) => s.tasks.length === 0, 10_000);
      await page.click('#multitask-start');
      await messageIn(page, '#multitask-error', /Add at least one more labelled file/);
    }
    assert.deepEqual(problems.consoleErrors, [], 'console errors');
    assert.deepEqual(problems.pageErrors, [], 'page errors');
    assert.deepEqual(problems.foreignRequests, [], 'requests that left the page origin');
  } finally {
    await session.close();
  }
}

test('multi-task fine-tuning on the CPU fallback: proportional and round-robin', { timeout: 180_000 }, async (t) => {
  await multitask({ name: 'cpu', args: [], query: '?model=tiny-bert&backend=cpu', kind: 'cpu', epochs: 3, timeout: 120_000, t, full: true });
});

test('multi-task fine-tuning on WebGPU (SwiftShader)', { timeout: 420_000 }, async (t) => {
  await multitask({ name: 'webgpu', args: WEBGPU_ARGS, query: '?model=tiny-bert&backend=webgpu', kind: 'webgpu', epochs: 1, timeout: 360_000, t, full: false });
});
