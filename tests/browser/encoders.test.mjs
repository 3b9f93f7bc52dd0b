// RoBERTa, XLM-RoBERTa and DistilBERT in the page: a tiny checkpoint of each (written by
// transformers, tests/fixtures/make_encoders.py) loads from a folder, fine-tunes on the studio
// data, predicts, and exports a folder whose tensors carry exactly the names transformers gave
// them; the CLI, loading that export, predicts the same probabilities as the page. DistilBERT
// also trains on WebGPU (SwiftShader), where no tensor may be read synchronously.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ARTIFACTS, CLI, REPO, WEBGPU_ARGS, download, loadStudioData, openPage, safetensorsHeader, waitForState } from './harness.mjs';

const { unzipSync } = await import(path.join(REPO, 'www', 'vendor', 'fflate.js'));
const FIXTURE = (name) => path.join(REPO, 'tests', 'fixtures', name);
const TEXT = 'the story was wonderful';

async function fineTune({ name, modelType, architecture, backend, args = [] }) {
  const session = await openPage({ args, query: `?backend=${backend}` });
  const { page, problems } = session;
  const out = path.join(ARTIFACTS, `encoder-${name}-${backend}`);
  await rm(out, { recursive: true, force: true });
  try {
    await waitForState(page, (s) => s.backend !== null, 60_000);
    await loadStudioData(page, { epochs: '2', lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25', seed: '3' });
    await page.setInputFiles('#model-folder', FIXTURE(name));
    await page.click('#load-model');
    let state = await waitForState(page, (s) => (s.model !== null && s.memory !== null) || s.errors.length > 0, 30_000);
    assert.deepEqual(state.errors, [], `errors loading ${name}`);
    assert.equal(state.model.model_type, modelType);
    assert.match(await page.textContent('#model-info'), new RegExp(`\\(${modelType}\\)`));

    await page.click('#start');
    state = await waitForState(page, (s) => s.done || s.errors.length > 0, 240_000);
    assert.deepEqual(state.errors, [], `errors training ${name}`);
    assert.equal(state.losses.length, 10, '39 rows / batch 8 → 5 steps × 2 epochs');
    assert.ok(state.losses.every(Number.isFinite), state.losses.join(' '));

    await page.fill('#try-text', TEXT);
    await page.click('#try-button');
    state = await waitForState(page, (s) => s.prediction !== null || s.errors.length > 0, 30_000);
    assert.deepEqual(state.errors, []);
    const pageProbabilities = state.prediction.probabilities;

    // The export: transformers' class and exactly the tensor names transformers wrote.
    const zipPath = await download(page, '#export', out);
    const entries = unzipSync(new Uint8Array(await readFile(zipPath)));
    const folder = path.join(out, 'model');
    await mkdir(folder, { recursive: true });
    for (const [k, bytes] of Object.entries(entries)) {
      if (!k.endsWith('/') && !k.includes('/peft/')) await writeFile(path.join(folder, k.split('/').pop()), bytes);
    }
    const config = JSON.parse(await readFile(path.join(folder, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, [architecture]);
    assert.equal(config.model_type, modelType);
    const exported = Object.keys(safetensorsHeader(new Uint8Array(await readFile(path.join(folder, 'model.safetensors'))))).filter((n) => n !== '__metadata__').sort();
    const original = Object.keys(safetensorsHeader(new Uint8Array(await readFile(path.join(FIXTURE(name), 'model.safetensors'))))).filter((n) => n !== '__metadata__').sort();
    assert.deepEqual(exported, original);

    // The CLI on the exported folder predicts what the page did.
    const { stdout } = await promisify(execFile)(CLI, ['predict', '--model', folder, '--max-len', '32', '--text', TEXT]);
    const cli = JSON.parse(stdout.trim().split('\n')[0]);
    assert.equal(cli.probabilities.length, pageProbabilities.length);
    const diff = Math.max(...cli.probabilities.map((p, i) => Math.abs(p - pageProbabilities[i])));
    assert.ok(diff < 1e-4, `page ${pageProbabilities} vs CLI ${cli.probabilities}`);

    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
    assert.deepEqual(problems.foreignRequests, []);
  } finally {
    await session.screenshot(`encoder-${name}-${backend}`);
    await session.close();
  }
}

for (const [name, modelType, architecture] of [
  ['tiny-roberta', 'roberta', 'RobertaForSequenceClassification'],
  ['tiny-xlmr', 'xlm-roberta', 'XLMRobertaForSequenceClassification'],
  ['tiny-distilbert', 'distilbert', 'DistilBertForSequenceClassification'],
]) {
  test(`${modelType}: loads from a folder, fine-tunes, exports under transformers' names; the CLI agrees (CPU)`, { timeout: 240_000 }, async () => {
    await fineTune({ name, modelType, architecture, backend: 'cpu' });
  });
}

test('distilbert fine-tunes on WebGPU (SwiftShader) and exports the same way', { timeout: 420_000 }, async () => {
  await fineTune({ name: 'tiny-distilbert', modelType: 'distilbert', architecture: 'DistilBertForSequenceClassification', backend: 'webgpu', args: WEBGPU_ARGS });
});
