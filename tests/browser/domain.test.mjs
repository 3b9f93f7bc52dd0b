// Masked-LM domain adaptation in the page (real wasm): domain text is chosen, the two-stage
// run adapts the encoder (masked-LM loss per step, held-out loss / perplexity / masked-token
// accuracy before and after each epoch) and then fine-tunes the classifier from it; the adapted
// encoder downloads as a BertForMaskedLM folder; the CLI given the page's recipe and files scores
// the same held-out masks the same way. On WebGPU (SwiftShader) and on the CPU fallback.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ARTIFACTS, DATA, REPO, TINY, WEBGPU_ARGS, download, loadStudioData, messageIn, openPage, safetensorsHeader, waitForState, CLI, watchRunPanel } from './harness.mjs';

const { unzipSync } = await import(path.join(REPO, 'www', 'vendor', 'fflate.js'));

async function twoStage({ name, args, query, kind, timeout, t, full }) {
  const session = await openPage({ args, query });
  const { page, problems } = session;
  const out = path.join(ARTIFACTS, `domain-${name}`);
  try {
    await loadStudioData(page, { epochs: '2', lr: '1e-2', 'batch-size': '8', 'max-len': '32', 'eval-fraction': '0.25' });
    let state = await page.evaluate(() => window.burnishState);
    assert.equal(state.backend.kind, kind);

    await page.setInputFiles('#domain-file', DATA('domain-reviews.txt'));
    state = await waitForState(page, (s) => s.domain?.name === 'domain-reviews.txt', 20_000);
    assert.equal(state.domain.row_count, 40);
    assert.equal(await page.inputValue('#domain-column'), 'text');
    assert.equal(await page.inputValue('#mlm-epochs'), '1', 'choosing domain text turns the adaptation on');
    assert.match(await page.textContent('#domain-summary'), /domain-reviews\.txt: 40 lines/);
    await page.fill('#mlm-epochs', '3');
    await page.fill('#mlm-lr', '5e-3');

    await page.click('#start');
    state = await waitForState(page, (s) => s.adaptation !== null, 20_000);
    assert.equal(await page.isVisible('#mlm-panel'), true);
    state = await waitForState(page, (s) => s.done, timeout);
    assert.deepEqual(state.errors, []);
    const a = state.adaptation;
    // 30 training lines, 10 held out (eval share 0.25); batches of 8: 4 steps per epoch.
    assert.equal(a.summary.train_count, 30);
    assert.equal(a.summary.eval_count, 10);
    assert.equal(a.summary.total_steps, 12);
    assert.equal(a.losses.length, 12);
    assert.equal(a.history.length, 4, 'held-out scores before and after each epoch');
    const [before, , , after] = a.history;
    t.diagnostic(`held-out MLM loss ${before.loss.toFixed(3)} → ${after.loss.toFixed(3)}, perplexity ${before.perplexity.toFixed(1)} → ${after.perplexity.toFixed(1)}, masked-token accuracy ${before.masked_accuracy.toFixed(3)} → ${after.masked_accuracy.toFixed(3)}`);
    assert.ok(after.loss < before.loss, 'the held-out masked-LM loss falls');
    assert.equal(before.masked_tokens, after.masked_tokens);
    assert.deepEqual(a.chart, { loss: 12, heldOut: 4 });
    const rows = await page.$$eval('#mlm-table tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent.trim())));
    assert.equal(rows.length, 4);
    assert.equal(rows[0][0], 'before adaptation');
    assert.equal(rows[3][0], 'after epoch 3');
    assert.equal(rows[3][3], after.perplexity.toFixed(1));
    // Stage two ran from the adapted encoder, to the end, with its own evaluation.
    assert.equal(state.summary.total_steps, 2 * Math.ceil(39 / 8));
    assert.equal(state.losses.length, state.summary.total_steps);
    assert.ok(state.metrics && state.before, 'classifier evaluated before and after');
    const logText = await page.textContent('#log');
    assert.match(logText, /Stage 2: fine-tuning the classifier from the adapted encoder/);
    await session.screenshotOf('#train-section', `domain-${name}`);

    // Fill-mask with the adapted encoder: five guesses with probabilities per [MASK].
    await page.fill('#fill-text', 'The film was [MASK] and the [MASK] was slow.');
    await page.click('#fill-button');
    state = await waitForState(page, (s) => s.fill?.masks?.length === 2, 20_000);
    for (const m of state.fill.masks) {
      assert.equal(m.candidates.length, 5);
      const scores = m.candidates.map((c) => c.score);
      assert.ok(scores.every((x, i) => x > 0 && x <= 1 && (i === 0 || x <= scores[i - 1])), `sorted probabilities: ${scores}`);
    }
    assert.equal(await page.$$eval('#fill-result tbody tr', (trs) => trs.length), 2);

    // The adapted encoder downloads as an HF BertForMaskedLM folder.
    const zipPath = await download(page, '#export-adapted', out);
    const entries = unzipSync(new Uint8Array(await readFile(zipPath)));
    const folder = Object.keys(entries)[0].split('/')[0];
    const config = JSON.parse(new TextDecoder().decode(entries[`${folder}/config.json`]));
    assert.deepEqual(config.architectures, ['BertForMaskedLM']);
    const header = safetensorsHeader(entries[`${folder}/model.safetensors`]);
    for (const n of ['cls.predictions.bias', 'cls.predictions.transform.dense.weight', 'cls.predictions.transform.LayerNorm.weight', 'bert.embeddings.word_embeddings.weight']) {
      assert.ok(header[n], `${n} in the adapted encoder`);
    }
    assert.ok(!Object.keys(header).some((n) => n.startsWith('cls.predictions.decoder')), 'the decoder is tied to the embeddings');
    assert.ok(entries[`${folder}/tokenizer.json`] && entries[`${folder}/metrics.json`]);

    if (full) {
      // The page's recipe in the CLI, with the same files: the same held-out masks, the same
      // starting weights, so the same "before" score; the same number of steps.
      const recipeFile = await download(page, '#recipe-download', out);
      const recipe = JSON.parse(await readFile(recipeFile, 'utf8'));
      assert.equal(recipe.mlm_epochs, 3);
      assert.equal(recipe.domain_text_column, 'text');
      const bin = CLI;
      const cli = await promisify(execFile)(bin, [
        'train', '--model', TINY, '--train', DATA('studio-train.csv'), '--domain', DATA('domain-reviews.txt'), '--recipe', recipeFile,
        '--out', path.join(out, 'cli'),
      ]);
      const m = JSON.parse(cli.stdout);
      const cliBefore = m.domain_adaptation.history[0];
      assert.equal(cliBefore.masked_tokens, before.masked_tokens);
      assert.ok(Math.abs(cliBefore.loss - before.loss) < 1e-4, `CLI ${cliBefore.loss} vs page ${before.loss}`);
      assert.equal(m.domain_adaptation.train_losses.length, 12);

      // The sample movie text loads with one click.
      await page.click('#domain-sample');
      state = await waitForState(page, (s) => s.domain?.name === 'movie-domain.txt', 20_000);
      assert.equal(state.domain.row_count, 3000);

      // Bad input, next to the fields: no [MASK] to fill; a masking share out of range; no
      // domain text at all.
      await page.fill('#fill-text', 'no mask here');
      await page.click('#fill-button');
      await messageIn(page, '#domain-error', /Write \[MASK\] where the model should guess a word/);
      await page.fill('#mlm-probability', '1.5');
      await page.click('#start');
      await messageIn(page, '#err-mlm-probability', /Masking share must be below 1/);
      await page.fill('#mlm-probability', '0.15');
      await page.click('#domain-clear');
      await waitForState(page, (s) => s.domain === null, 10_000);
      assert.equal(await page.inputValue('#mlm-epochs'), '0');
      await page.fill('#mlm-epochs', '1');
      await page.click('#start');
      await messageIn(page, '#domain-error', /Choose the domain text for the adaptation stage/);
    }
    assert.deepEqual(problems.consoleErrors, [], 'console errors');
    assert.deepEqual(problems.pageErrors, [], 'page errors');
    assert.deepEqual(problems.foreignRequests, [], 'requests that left the page origin');
  } finally {
    await session.close();
  }
}

test('two-stage domain adaptation on the CPU fallback, with the CLI on the same recipe', { timeout: 180_000 }, async (t) => {
  await twoStage({ name: 'cpu', args: [], query: '?model=tiny-bert&backend=cpu', kind: 'cpu', timeout: 120_000, t, full: true });
});

test('two-stage domain adaptation on WebGPU (SwiftShader)', { timeout: 420_000 }, async (t) => {
  await twoStage({ name: 'webgpu', args: WEBGPU_ARGS, query: '?model=tiny-bert&backend=webgpu', kind: 'webgpu', timeout: 360_000, t, full: false });
});

test('masked-LM adaptation only: no labelled data, then fill-mask and the adapted encoder', { timeout: 180_000 }, async (t) => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu', task: 'adapt' });
  const { page, problems } = session;
  const out = path.join(ARTIFACTS, 'domain-only');
  try {
    await page.setInputFiles('#domain-file', DATA('domain-reviews.txt'));
    await waitForState(page, (s) => s.domain?.name === 'domain-reviews.txt', 20_000);
    await page.waitForFunction(() => document.querySelector('#mlm-epochs').value === '1'); // set on choosing
    for (const [id, v] of Object.entries({ 'mlm-epochs': '2', 'mlm-lr': '5e-3', 'batch-size': '8', 'max-len': '32', 'domain-eval-fraction': '0.25' })) await page.fill(`#${id}`, v);
    const panel = await watchRunPanel(page);
    await page.click('#adapt-only');
    let state = await waitForState(page, (s) => s.done, 120_000);
    assert.deepEqual(state.errors, []);
    const a = state.adaptation;
    assert.equal(a.only, true);
    assert.equal(a.summary.total_steps, 8, '30 training lines in batches of 8, two epochs');
    assert.equal(a.losses.length, 8);
    assert.equal(a.history.length, 3);
    t.diagnostic(`held-out MLM loss ${a.history[0].loss.toFixed(3)} → ${a.history[2].loss.toFixed(3)}`);
    assert.ok(a.history[2].loss < a.history[0].loss, 'the held-out masked-LM loss falls');
    assert.equal(state.summary, null, 'no classifier stage');
    assert.equal(state.losses.length, 0);
    assert.match(await page.textContent('#log'), /Domain adaptation finished: try the adapted encoder with fill-mask, or download it/);
    assert.equal(await page.isDisabled('#start'), false);
    // The run panel followed the adaptation; the run is remembered with its perplexity before → after.
    assert.ok((await panel()).some((line) => /^step \d+\/8 · domain adaptation · loss [\d.]+/.test(line)), `run panel: ${(await panel()).slice(-3)}`);
    state = await waitForState(page, (s) => s.runs.some((r) => r.task === 'masked-lm'), 10_000);
    const kept = state.runs.find((r) => r.task === 'masked-lm');
    assert.ok(Math.abs(kept.perplexity - a.history[2].perplexity) < 1e-9, 'the remembered perplexity is the last evaluation');
    assert.match(await page.textContent('#runs-table tbody tr:first-child'), /masked-lm.*perplexity [\d.]+ → [\d.]+/);

    await page.fill('#fill-text', 'The film was [MASK].');
    await page.click('#fill-button');
    state = await waitForState(page, (s) => s.fill?.masks?.length === 1, 20_000);
    assert.equal(state.fill.masks[0].candidates.length, 5);

    const zipPath = await download(page, '#export-adapted', out);
    const entries = unzipSync(new Uint8Array(await readFile(zipPath)));
    const folder = Object.keys(entries)[0].split('/')[0];
    assert.deepEqual(JSON.parse(new TextDecoder().decode(entries[`${folder}/config.json`])).architectures, ['BertForMaskedLM']);
    assert.ok(safetensorsHeader(entries[`${folder}/model.safetensors`])['cls.predictions.bias']);

    // No epochs, then no domain text: each refused next to its control.
    await page.fill('#mlm-epochs', '0');
    await page.click('#adapt-only');
    await messageIn(page, '#err-mlm-epochs', /Set the adaptation epochs above 0/);
    await page.click('#domain-clear');
    await waitForState(page, (s) => s.domain === null, 10_000);
    await page.click('#adapt-only');
    await messageIn(page, '#domain-error', /Choose the domain text to adapt the model on/);
    assert.deepEqual(problems.consoleErrors, [], 'console errors');
    assert.deepEqual(problems.pageErrors, [], 'page errors');
  } finally {
    await session.close();
  }
});
