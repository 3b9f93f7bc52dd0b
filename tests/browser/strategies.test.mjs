// Fine-tuning strategies in the page (real wasm, CPU): top layers + head with gradual
// unfreezing, discriminative learning rates and a cosine schedule. The page shows what trains,
// the per-layer learning rates and the unfreezing schedule, and they match what happened; the
// recipe it writes runs the same strategy in the CLI.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ARTIFACTS, DATA, REPO, TINY, download, loadStudioData, openPage, safetensorsHeader, waitForState, CLI } from './harness.mjs';

const { unzipSync } = await import(path.join(REPO, 'www', 'vendor', 'fflate.js'));


test('top layers + gradual unfreezing + layer-wise LR + cosine, shown and done', { timeout: 120_000 }, async (t) => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  const { page, problems } = session;
  try {
    await loadStudioData(page);
    // "Top layers" and "Unfreeze every" show once the strategy and gradual unfreezing ask for them.
    assert.equal(await page.isVisible('#top-layers'), false);
    assert.equal(await page.isVisible('#unfreeze-every'), false);
    await page.selectOption('#strategy', 'top');
    await page.selectOption('#schedule', 'cosine');
    await page.check('#gradual-unfreeze');
    const fields = { epochs: '2', lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25', 'top-layers': '1', 'unfreeze-every': '3', 'layer-lr-decay': '0.5' };
    for (const [id, value] of Object.entries(fields)) await page.fill(`#${id}`, value);
    // The layer picture shows the plan before the run: the head trains, encoder layer 1 joins
    // at step 4, the rest stays frozen; each group at lr × 0.5^depth.
    const picture = (await waitForState(page, (s) => s.layerPicture?.length === 4, 10_000)).layerPicture;
    assert.deepEqual(picture.map((g) => [g.name, g.state, g.start]), [
      ['head (pooler + classifier)', 'trains', 'step 1'], ['encoder layer 1', 'later', 'step 4'], ['encoder layer 0', 'frozen', 'frozen'], ['embeddings', 'frozen', 'frozen'],
    ]);
    assert.deepEqual(picture.map((g) => g.lrFactor), [1, 0.5, 0.25, 0.125]);
    assert.match(await page.textContent('#layer-stack'), /encoder layer 1trains from step 4LR 5\.0e-3 \(×0\.50\)/);
    await page.click('#start');
    let state = await waitForState(page, (s) => s.done, 90_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.summary.total_steps, 10);

    // What trained, when: head from step 1, encoder layer 1 from step 4, nothing more (top 1).
    const history = state.trainableHistory.map((h) => [h.step + 1, h.training]);
    assert.deepEqual(history, [
      [1, ['head (pooler + classifier)']],
      [4, ['head (pooler + classifier)', 'encoder layer 1']],
    ]);
    const [first, second] = state.trainableHistory;
    assert.ok(second.trainable_parameters > first.trainable_parameters);
    assert.match(await page.textContent('#trainable'), new RegExp(`Training ${second.trainable_parameters.toLocaleString('en-US')} of [\\d,]+ parameters`));
    assert.match(await page.textContent('#log'), /step 4: unfroze encoder layer 1/);
    const rows = await page.$$eval('#layer-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.deepEqual(rows.map((r) => r[0]), ['head (pooler + classifier)', 'encoder layer 1', 'encoder layer 0', 'embeddings']);
    assert.deepEqual(rows.map((r) => r[2]), ['1.000', '0.500', '0.250', '0.125']);
    assert.deepEqual(rows.map((r) => r[4]), ['step 1', 'step 4', 'frozen', 'frozen']);
    assert.deepEqual(rows.map((r) => r[5]), ['yes', 'yes', 'no', 'no']);
    // Cosine: after warm-up the rate falls along a cosine to near 0.
    const peak = Math.max(...state.lrs);
    assert.ok(peak <= 0.01 + 1e-12 && state.lrs.at(-1) < 0.05 * peak, `lrs ${state.lrs}`);
    await session.screenshotOf('#train-section', 'strategies-train-section');

    // The recipe carries the strategy; the CLI runs it and reports the same final set.
    const recipeFile = await download(page, '#recipe-download', path.join(ARTIFACTS, 'strategies'));
    const recipe = JSON.parse(await readFile(recipeFile, 'utf8'));
    assert.deepEqual(
      { s: recipe.strategy, k: recipe.top_layers, g: recipe.gradual_unfreeze, u: recipe.unfreeze_every, d: recipe.layer_lr_decay, c: recipe.schedule },
      { s: 'top', k: 1, g: true, u: 3, d: 0.5, c: 'cosine' },
    );
    const bin = CLI;
    const cli = await promisify(execFile)(bin, ['train', '--model', TINY, '--train', DATA('studio-train.csv'), '--recipe', recipeFile, '--out', path.join(ARTIFACTS, 'strategies', 'cli')]);
    const metrics = JSON.parse(cli.stdout);
    assert.deepEqual(metrics.trainable.training, second.training);
    assert.equal(metrics.trainable.trainable_parameters, second.trainable_parameters);
    t.diagnostic(`trained ${second.trainable_parameters} of ${second.total_parameters} parameters`);
    assert.deepEqual(problems.consoleErrors, []);
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await session.close();
  }
});

test('gradient accumulation and early stopping with the best weights kept', { timeout: 120_000 }, async () => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  const { page, problems } = session;
  try {
    await loadStudioData(page);
    // 38 training rows in micro-batches of 4 (10 per epoch), 2 per step: 5 steps per epoch.
    // A learning rate too small to change any prediction: accuracy cannot improve after the
    // first evaluation, so patience 2 stops after the third.
    const fields = { epochs: '3', lr: '1e-9', 'batch-size': '4', 'grad-accum': '2', 'max-len': '32', 'eval-fraction': '0.25', 'eval-every': '1', 'warmup-ratio': '0', 'early-stopping-patience': '2' };
    for (const [id, value] of Object.entries(fields)) await page.fill(`#${id}`, value);
    await page.selectOption('#early-stopping-metric', 'accuracy');
    await page.click('#start');
    const state = await waitForState(page, (s) => s.done, 90_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.summary.total_steps, 15);
    assert.equal(state.losses.length, 3, 'stopped after three steps');
    assert.deepEqual(state.earlyStop && [state.earlyStop.stopped_at, state.earlyStop.best_step, state.earlyStop.early], [3, 1, true]);
    assert.match(await page.textContent('#log'), /Early stopping at step 3: no better accuracy for 2 evaluations; kept the weights of step 1/);
    // The final evaluation is of the restored weights: the same accuracy as at step 1.
    assert.equal(state.metrics.accuracy, state.evals[0].accuracy);
    assert.match(await page.textContent('#progress'), /step 3\/15 .* \d+(\.\d)? examples\/s/);
    assert.deepEqual(problems.consoleErrors, []);
  } finally {
    await session.close();
  }
});

test('LoRA: adapters on chosen layers, estimate = what trains, merged + PEFT export that peft loads', { timeout: 150_000 }, async (t) => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  const { page, problems } = session;
  try {
    await loadStudioData(page);
    assert.equal(await page.isVisible('#lora-rank'), false, 'LoRA fields hidden for other strategies');
    await page.selectOption('#strategy', 'lora');
    const fields = { epochs: '2', lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25', 'lora-rank': '4', 'lora-alpha': '8', 'lora-dropout': '0.1' };
    for (const [id, value] of Object.entries(fields)) await page.fill(`#${id}`, value);
    await page.click('#load-model');
    await waitForState(page, (s) => s.model !== null && s.memory !== null, 30_000);
    await page.check('input[name="lora-target"][value="output"]');

    // The estimate's trainable count (from the config) is what the built model trains.
    const estimate = await waitForState(page, (s) => s.memory?.recipe?.strategy === 'lora' && s.memory.recipe.lora_targets.join() === 'query,value,output', 20_000);
    await page.click('#start');
    const state = await waitForState(page, (s) => s.done, 120_000);
    assert.deepEqual(state.errors, []);
    const trained = state.trainableHistory[0];
    assert.equal(trained.trainable_parameters, estimate.memory.trainable);
    assert.equal(trained.total_parameters, estimate.memory.parameters);
    assert.match(await page.textContent('#memory-estimate'), new RegExp(`${trained.trainable_parameters.toLocaleString('en-US')} of [\\d,]+ parameters train`));
    assert.match(trained.training.at(-1), /LoRA adapters \(rank 4\) on attention\.self\.query, attention\.self\.value, output\.dense/);
    const rows = await page.$$eval('#layer-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.deepEqual(rows.map((r) => r[4]), ['step 1', 'step 1 (LoRA adapters only)', 'step 1 (LoRA adapters only)', 'frozen']);
    assert.deepEqual(rows.map((r) => r[5]), ['yes', 'adapters', 'adapters', 'no']);

    // The export holds the merged HF folder and the PEFT adapter folder.
    const zipPath = await download(page, '#export', path.join(ARTIFACTS, 'lora'));
    const entries = unzipSync(new Uint8Array(await readFile(zipPath)));
    const folder = Object.keys(entries)[0].split('/')[0];
    const file = (name) => entries[`${folder}/${name}`] ?? assert.fail(`${name} missing from the export`);
    const peftConfig = JSON.parse(new TextDecoder().decode(file('peft/adapter_config.json')));
    assert.deepEqual([peftConfig.peft_type, peftConfig.task_type, peftConfig.r, peftConfig.lora_alpha, peftConfig.base_model_name_or_path], ['LORA', 'SEQ_CLS', 4, 8, 'tiny-bert']);
    const names = Object.keys(safetensorsHeader(file('peft/adapter_model.safetensors'))).filter((n) => n !== '__metadata__');
    assert.equal(names.filter((n) => /^base_model\.model\.bert\.encoder\.layer\.[01]\.(attention\.self\.(query|value)|output\.dense)\.lora_[AB]\.weight$/.test(n)).length, 12);
    assert.equal(names.length, 16);
    safetensorsHeader(file('model.safetensors'));
    const dir = path.join(ARTIFACTS, 'lora', 'unzipped');
    await rm(dir, { recursive: true, force: true });
    for (const [name, bytes] of Object.entries(entries)) {
      if (name.endsWith('/')) continue;
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), bytes);
    }
    const bin = CLI;
    // Where peft is installed: it loads the page's adapter on the base model with Burnish's logits.
    const peft = await promisify(execFile)('python3', ['-c', 'import peft']).then(() => true, () => false);
    if (peft) {
      const out = await promisify(execFile)('python3', [path.join(REPO, 'scripts', 'verify_peft.py'), '--export', path.join(dir, folder), '--base', TINY, '--burnish', bin]);
      assert.match(out.stdout, /PASS/);
    } else {
      t.diagnostic('peft not installed: skipped loading the adapter with peft');
    }
    // The recipe runs LoRA in the CLI with the same trainable parameters.
    const recipeFile = await download(page, '#recipe-download', path.join(ARTIFACTS, 'lora'));
    const recipe = JSON.parse(await readFile(recipeFile, 'utf8'));
    assert.deepEqual([recipe.strategy, recipe.lora_rank, recipe.lora_targets], ['lora', 4, ['query', 'value', 'output']]);
    const cli = await promisify(execFile)(bin, ['train', '--model', TINY, '--train', DATA('studio-train.csv'), '--recipe', recipeFile, '--out', path.join(ARTIFACTS, 'lora', 'cli')]);
    assert.equal(JSON.parse(cli.stdout).trainable.trainable_parameters, trained.trainable_parameters);
    await session.screenshotOf('#recipe-section', 'lora-recipe');
    // No target at all is refused next to the targets.
    for (const v of ['query', 'value', 'output']) await page.uncheck(`input[name="lora-target"][value="${v}"]`);
    await page.click('#start');
    assert.match(await page.textContent('#err-lora-targets'), /Choose at least one layer for the LoRA adapters/);
    assert.deepEqual(problems.consoleErrors, []);
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await session.close();
  }
});
