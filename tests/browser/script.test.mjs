// "Export as a training script": the page writes the recipe on show as a Hugging Face Trainer +
// PEFT train.py, the same bytes as `burnish export-script` writes for the recipe the page
// downloads; where Python has torch, transformers, datasets and peft, the script runs a step on
// the CPU (scripts/verify_script.py checks what it trains, in the test command).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ARTIFACTS, CLI, DATA, REPO, download, loadStudioData, openPage, waitForState } from './harness.mjs';

const run = promisify(execFile);

test('export as a training script: the recipe on show, the CLI\'s same script, and it runs', { timeout: 180_000 }, async (t) => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu' });
  const out = path.join(ARTIFACTS, 'training-script');
  await rm(out, { recursive: true, force: true });
  try {
    const { page, problems } = session;
    await loadStudioData(page, { epochs: '2', lr: '3e-4', 'batch-size': '8', 'max-len': '32', seed: '11' });
    await page.click('#load-model');
    await waitForState(page, (s) => s.model !== null, 60_000);
    await page.selectOption('#strategy', 'top');
    await page.fill('#top-layers', '1');
    const recipeFile = await download(page, '#recipe-download', out);
    const scriptFile = await download(page, '#export-script', out);
    const state = await waitForState(page, (s) => s.trainingScript !== null, 10_000);
    assert.deepEqual(state.errors, []);
    assert.equal(path.basename(scriptFile), 'train.py');
    assert.deepEqual(state.trainingScript.trainFiles, ['studio-train.csv']);
    const script = await readFile(scriptFile, 'utf8');
    const settings = JSON.parse(script.match(/RECIPE = json\.loads\(r"""([\s\S]*?)"""\)/)[1]);
    assert.equal(settings.model, './model');
    assert.equal(settings.model_type, 'bert');
    assert.deepEqual(settings.train_files, ['studio-train.csv']);
    assert.equal(settings.recipe.strategy, 'top');
    assert.equal(settings.recipe.top_layers, 1);
    assert.equal(settings.recipe.lr, 3e-4);
    assert.equal(settings.recipe.seed, 11);
    assert.equal(settings.recipe.text_column, 'phrase');
    assert.equal(settings.recipe.label_column, 'polarity');
    assert.match(await page.textContent('#export-script-status'), /accelerate launch train\.py/);

    // The CLI writes the same script for the recipe the page downloaded.
    const cliScript = path.join(out, 'cli-train.py');
    await run(CLI, ['export-script', '--model', path.join(REPO, 'tests/fixtures/tiny-bert'), '--model-id', './model', '--train', 'studio-train.csv', '--recipe', recipeFile, '--out', cliScript]);
    assert.equal(await readFile(cliScript, 'utf8'), script);

    // Where Python has the libraries, the script runs a step on the CPU with the tiny model.
    const py = await run('python3', ['-c', 'import torch, transformers, datasets, peft']).then(() => true, () => false);
    if (py) {
      const { stdout } = await run('python3', [scriptFile, '--model', path.join(REPO, 'tests/fixtures/tiny-bert'), '--train', DATA('studio-train.csv'), '--output-dir', path.join(out, 'run'), '--max-steps', '1'],
        { env: { ...process.env, CUDA_VISIBLE_DEVICES: '' }, maxBuffer: 1 << 24 });
      const metrics = JSON.parse(stdout.trim().split('\n').at(-1));
      assert.ok(Number.isFinite(metrics.eval_loss), stdout);
      const groups = JSON.parse(await readFile(path.join(out, 'run', 'param_groups.json'), 'utf8'));
      assert.deepEqual(groups.map((g) => g.group), ['head', 'encoder layer 1', 'encoder layer 0', 'embeddings']);
    } else {
      t.diagnostic('python3 lacks torch/transformers/datasets/peft: the script was not run here');
    }
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.consoleErrors, []);
  } finally {
    await session.close();
  }
});
