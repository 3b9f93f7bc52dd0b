// The whole studio flow in headless Chromium on the tiny model, once on WebGPU (SwiftShader)
// and once on the CPU fallback: upload a CSV with quirks (BOM, CRLF, quoted commas, Chinese),
// change the column mapping, read the data checks, load the model, start, pause, resume,
// watch the charts, finish, read metrics / confusion matrix / errors table, try it, export the
// .zip, check every file in it, load it back and evaluate it to the same accuracy, and make
// sure no request left the page's origin. Screenshots of each stage go to artifacts/.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ARTIFACTS, DATA, REPO, TINY_FILES, WEBGPU_ARGS, download, openPage, safetensorsHeader, waitForState, CLI } from './harness.mjs';

const { unzipSync } = await import(path.join(REPO, 'www', 'vendor', 'fflate.js'));
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const json = (bytes) => JSON.parse(new TextDecoder().decode(bytes));

async function studioFlow({ name, args, query, expectBackend, modelVia, timeoutMs, continueTraining = false, t }) {
  const session = await openPage({ args, query });
  const { page, problems } = session;
  const shot = (stage) => session.screenshot(`${name}-${stage}`);
  const out = path.join(ARTIFACTS, name);
  await rm(out, { recursive: true, force: true });
  try {
    let state = await waitForState(page, (s) => s.backend !== null && s.data !== null, 60_000);
    assert.deepEqual(state.errors, [], 'errors at start-up');
    assert.equal(state.backend.kind, expectBackend.kind);
    assert.match(await page.textContent('#backend'), expectBackend.text);
    assert.equal(state.data.name, 'sentiment-demo.csv', 'the bundled sample is previewed at start-up');

    // Data: upload through the file input; the guess takes "category" as the label.
    await page.setInputFiles('#data-file', DATA('studio-train.csv'));
    state = await waitForState(page, (s) => s.data?.name === 'studio-train.csv' && s.checks?.rows === 52, 30_000);
    assert.deepEqual(state.data.columns, ['phrase', 'category', 'polarity'], 'BOM stripped from the first header');
    assert.equal(await page.inputValue('#text-column'), 'phrase');
    assert.equal(await page.inputValue('#label-column'), 'category');
    const previewText = await page.textContent('#data-preview');
    assert.match(previewText, /"Quoted" title, great fun/, "quoted quotes and commas survive");
    assert.match(previewText, /Café scenes: dull, dull, dull/);
    assert.doesNotMatch(previewText, /\r/, 'no stray CR from CRLF');
    assert.deepEqual(state.checks.label_counts.map((c) => c.label).sort(), ['film', 'series']);
    // Change the mapping to the real label column; the checks follow.
    await page.selectOption('#label-column', 'polarity');
    state = await waitForState(page, (s) => s.checks?.label_counts.some((c) => c.label === 'positive'), 20_000);
    assert.deepEqual(state.checks.label_counts.map((c) => c.label).sort(), ['negative', 'positive']);
    assert.equal(state.checks.usable, 52);
    assert.ok(await page.isVisible('#data-checks li[data-check="rows"]'));
    assert.ok(await page.isVisible('#data-checks li[data-check="tokens"]'), 'asks for a model to count tokens');
    assert.match(await page.textContent('#data-preview'), /这部电影非常好看/);
    await shot('1-data');
    await session.screenshotOf('#data-section', `${name}-section-data`);

    // Model.
    if (modelVia === 'local') {
      await page.setInputFiles('#model-files', TINY_FILES);
      assert.ok(await page.isChecked('input[name="model-source"][value="local"]'));
    }
    await page.click('#load-model');
    state = await waitForState(page, (s) => s.model !== null && s.memory !== null, 30_000);
    assert.deepEqual(state.errors, [], 'errors while loading the model');
    assert.equal(state.model.layers, 2);
    assert.equal(state.model.hidden_size, 32);
    assert.equal(await page.textContent('#model-info dd[data-field="max positions"]'), '64');
    // Full fine-tuning: every parameter trains.
    assert.match(await page.textContent('#memory-estimate'), /Estimated memory to train at batch 16 × 64 tokens with this strategy \(([\d,]+) of \1 parameters train\): [\d.]+ [kM]B/);
    // With a tokenizer loaded, the checks count tokens (max length 64 at this point).
    state = await waitForState(page, (s) => s.checks?.tokens, 20_000);
    assert.equal(state.checks.tokens.of, 52);
    await shot('2-model');

    // Recipe: 39 training rows / batch 8 → 5 steps × 6 epochs = 30 steps; lr 1e-2 makes the
    // randomly initialised tiny model learn within them. Evaluate every 3 steps as well as at
    // each epoch end (every 5 steps).
    const recipe = { epochs: '6', lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25', seed: '42', 'eval-every': '3' };
    for (const [id, value] of Object.entries(recipe)) await page.fill(`#${id}`, value);
    const recipeFile = await download(page, '#recipe-download', out);
    const savedRecipe = JSON.parse(await readFile(recipeFile, 'utf8'));
    assert.deepEqual(
      { ...savedRecipe },
      { task: 'text-classification', epochs: 6, lr: 0.01, batch_size: 8, max_len: 32, warmup_ratio: 0.1, weight_decay: 0.01, seed: 42, eval_fraction: 0.25, eval_every: 3, strategy: 'full', top_layers: 2, freeze_embeddings: false, gradual_unfreeze: false, unfreeze_every: 0, layer_lr_decay: 1, schedule: 'linear', grad_accum: 1, early_stopping_patience: 0, early_stopping_metric: 'macro_f1', max_grad_norm: 1, lora_rank: 8, lora_alpha: 16, lora_dropout: 0.1, mix_temperature: 1, mlm_epochs: 0, mlm_lr: 0.0001, mlm_probability: 0.15, lora_targets: ['query', 'value'], mix_weights: [], text_column: 'phrase', label_column: 'polarity', domain_text_column: 'text', task_sampling: 'proportional' },
    );
    await shot('3-recipe');

    // Train, pausing once on the way.
    await page.click('#start');
    state = await waitForState(page, (s) => s.losses.length >= 3, timeoutMs);
    assert.deepEqual(state.errors, [], 'errors while starting');
    assert.equal(state.summary.total_steps, 30);
    assert.ok(state.before, 'the model was evaluated before fine-tuning');
    // The pause takes effect between slices of steps; on the CPU a slice of this tiny model can
    // hold every remaining step, and then the run ends before it (the button goes back to
    // Pause, disabled), possibly before the click. WebGPU (SwiftShader) is always slow enough
    // to pause mid-run.
    await page.click('#pause', { timeout: 5_000 }).catch(async (err) => {
      if (!(await page.evaluate(() => window.burnishState.done))) throw err;
    });
    let paused = false;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
      if ((await page.textContent('#pause')).trim() === 'Resume') {
        paused = true;
        break;
      }
      if (await page.evaluate(() => window.burnishState.done)) break;
    }
    let pausedState = null;
    if (paused) {
      await new Promise((r) => setTimeout(r, 1500)); // a slice in flight may still land
      pausedState = await waitForState(page, () => true, 0);
      paused = !pausedState.done; // that slice may also have been the last one
    }
    if (paused) {
      const pausedAt = pausedState.losses.length;
      assert.equal(pausedState.charts.loss, pausedAt, 'the loss chart has a point per step so far');
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal((await waitForState(page, () => true, 0)).losses.length, pausedAt, 'training went on while paused');
      assert.match(await page.textContent('#progress'), new RegExp(`step ${pausedAt}/30 · epoch \\d/6 .* examples/s .* tokens/s .* ETA \\d+:\\d\\d`));
      await shot('4-paused');
      await session.screenshotOf('#train-section', `${name}-section-training`);
      await page.click('#pause');
      await page.waitForSelector('#pause:text("Pause")');
      state = await waitForState(page, (s) => s.losses.length > pausedAt, 60_000);
    } else {
      assert.ok(expectBackend.kind === 'cpu', 'WebGPU runs must pause mid-run');
      t.diagnostic('the run ended within the slice in flight, before the pause took effect');
    }
    state = await waitForState(page, (s) => s.done, timeoutMs);
    assert.deepEqual(state.errors, [], 'errors while training');
    t.diagnostic(`losses ${state.losses.map((l) => l.toFixed(3)).join(' ')}`);
    assert.equal(state.losses.length, 30);
    assert.ok(mean(state.losses.slice(-10)) < mean(state.losses.slice(0, 10)), 'the loss fell');
    // Charts: one point per step (raw, smoothed, lr) and one per evaluation.
    const evalSteps = Array.from({ length: 30 }, (_, i) => i + 1).filter((s) => s % 3 === 0 || s % 5 === 0);
    assert.deepEqual(state.charts, { loss: 30, smoothed: 30, lr: 30, eval: evalSteps.length });
    assert.deepEqual(state.evals.map((e) => e.step), evalSteps);
    assert.equal(state.lrs.length, 30);
    assert.ok(Math.max(...state.lrs) <= 0.01 + 1e-12 && state.lrs[29] < state.lrs[5], 'warm-up then decay');
    await shot('5-trained');

    // Results: before/after table, confusion heatmap, errors filter, sorting.
    assert.ok(await page.isVisible('#results'));
    assert.equal(state.metrics.count, state.summary.eval_count);
    assert.equal(state.summary.train_count + state.summary.eval_count, 52);
    assert.equal(await page.locator('#confusion tbody tr').count(), 2);
    const table = await page.textContent('#metrics-table');
    assert.match(table, /before \(step 0\)/);
    assert.match(table, /after \(step 30\)/);
    assert.match(table, /positive: recall/);
    assert.match(await page.textContent('#metric-accuracy'), /^\d+(\.\d)?%$/);
    assert.equal(await page.locator('#predictions tbody tr').count(), state.summary.eval_count);
    const wrong = state.predictions.filter((p) => p.gold !== p.label).length;
    await page.check('#errors-only');
    assert.equal(await page.locator('#predictions tbody tr').count(), wrong);
    await page.uncheck('#errors-only');
    await page.selectOption('#sort-predictions', 'conf-asc');
    const confidences = await page.$$eval('#predictions tbody tr td:last-child', (tds) => tds.map((td) => parseFloat(td.textContent)));
    assert.deepEqual(confidences, [...confidences].sort((a, b) => a - b), 'sorted by confidence');
    await shot('6-results');
    await session.screenshotOf('#results', `${name}-section-results`);

    // Try it.
    await page.fill('#try-text', 'the story was wonderful');
    await page.click('#try-button');
    state = await waitForState(page, (s) => s.prediction !== null, 30_000);
    assert.deepEqual(state.errors, [], 'errors while predicting');
    assert.equal(state.prediction.probabilities.length, 2);
    assert.match(await page.textContent('#try-result'), /Predicted: (negative|positive) \(\d+(\.\d)?%\)/);

    // Export one .zip and check every file in it.
    const zipPath = await download(page, '#export', out);
    const entries = unzipSync(new Uint8Array(await readFile(zipPath)));
    const names = Object.keys(entries).map((n) => n.split('/').pop()).sort();
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors', 'metrics.json', 'recipe.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt']) {
      assert.ok(names.includes(f), `${f} in the archive (${names.join(', ')})`);
    }
    const file = (n) => entries[Object.keys(entries).find((k) => k.endsWith(`/${n}`))];
    const config = json(file('config.json'));
    assert.deepEqual(Object.values(config.id2label).sort(), ['negative', 'positive']);
    assert.deepEqual(config.architectures, ['BertForSequenceClassification']);
    assert.ok(json(file('tokenizer.json')).model.vocab, 'tokenizer.json has a vocabulary');
    const tensors = safetensorsHeader(file('model.safetensors'));
    assert.deepEqual(tensors['classifier.weight'].shape, [2, 32]);
    const metricsDoc = json(file('metrics.json'));
    assert.equal(metricsDoc.after.accuracy, state.metrics.accuracy);
    assert.equal(metricsDoc.train_losses.length, 30);
    assert.deepEqual(json(file('recipe.json')), savedRecipe);
    await shot('7-exported');

    // Load the archive back and evaluate it without training: the same weights, the same
    // seeded split, so the same accuracy and predictions.
    await page.setInputFiles('#model-files', zipPath);
    await page.click('#load-model');
    state = await waitForState(page, (s) => s.model?.labels?.length === 2, 30_000);
    assert.deepEqual(state.errors, []);
    assert.match(await page.textContent('#model-info'), /labels negative, positive/);
    const finalAccuracy = state.metrics.accuracy;
    const finalPredictions = state.predictions.map((p) => p.label);
    await page.click('#evaluate-only');
    state = await waitForState(page, (s) => s.done && s.metrics && s.summary?.total_steps === 30 && s.losses.length === 0, 60_000);
    assert.deepEqual(state.errors, []);
    assert.match(await page.textContent('#train-summary'), /classification head reused from the checkpoint/);
    assert.equal(state.metrics.accuracy, finalAccuracy);
    assert.deepEqual(state.predictions.map((p) => p.label), finalPredictions);

    if (continueTraining) {
      // Continue training the loaded archive: it starts from the fine-tuned weights (its
      // step-0 evaluation is the exported model's) with the head reused.
      await page.fill('#epochs', '1');
      await page.click('#start');
      state = await waitForState(page, (s) => s.done && s.summary?.total_steps === 5 && s.losses.length === 5 && s.metrics, 60_000);
      assert.deepEqual(state.errors, []);
      assert.match(await page.textContent('#train-summary'), /classification head reused from the checkpoint/);
      assert.equal(state.before.accuracy, finalAccuracy);
    }

    // The recipe the page wrote is accepted by the CLI (same Recipe type, --recipe).
    const bin = CLI;
    const cli = await promisify(execFile)(bin, ['train', '--model', path.dirname(TINY_FILES[0]), '--train', DATA('studio-train.csv'), '--recipe', recipeFile, '--epochs', '1', '--out', path.join(out, 'cli')]);
    const cliMetrics = JSON.parse(cli.stdout);
    assert.equal(cliMetrics.recipe.eval_every, 3);
    assert.equal(cliMetrics.eval_examples, state.summary.eval_count, 'the CLI makes the same seeded split');

    assert.deepEqual(problems.pageErrors, [], 'page errors');
    assert.deepEqual(problems.consoleErrors, [], 'console errors');
    assert.deepEqual(problems.foreignRequests, [], 'requests that left the page origin');
  } finally {
    await shot('final');
    await session.close();
  }
}

test('studio flow on WebGPU (SwiftShader), bundled tiny model', { timeout: 420_000 }, async (t) => {
  await studioFlow({
    name: 'webgpu',
    args: WEBGPU_ARGS,
    query: '?model=tiny-bert&backend=webgpu', // the menu's override: auto would measure SwiftShader slower and use the CPU
    expectBackend: { kind: 'webgpu', text: /^Backend: WebGPU — / },
    modelVia: 'bundled',
    timeoutMs: 300_000, // SwiftShader emulates the GPU on the CPU: slow
    t,
  });
});

test('studio flow on the CPU fallback, tiny model from local files', { timeout: 240_000 }, async (t) => {
  await studioFlow({
    name: 'cpu',
    args: [], // no --enable-unsafe-webgpu: no adapter, so the page must fall back
    query: '',
    expectBackend: { kind: 'cpu', text: /^Backend: CPU \(WebAssembly, \d+ threads?\)/ },
    modelVia: 'local',
    timeoutMs: 120_000,
    continueTraining: true,
    t,
  });
});
