// Generative models in the page (real wasm), on WebGPU (SwiftShader) and on the CPU fallback:
// a tiny Llama loads from sharded HF files, generates the CLI's greedy text (streamed; Stop ends
// a long generation on WebGPU), is instruction-tuned on prompt → completion pairs (loss chart,
// held-out loss falling, answers before and after side by side), and downloads as an HF folder
// whose answers from the CLI are the page's "after" answers. Bad input gets messages in place.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { ARTIFACTS, DATA, REPO, WEBGPU_ARGS, download, messageIn, openPage, safetensorsHeader, waitForState, CLI } from './harness.mjs';

const { unzipSync } = await import(path.join(REPO, 'www', 'vendor', 'fflate.js'));
const LLAMA = path.join(REPO, 'tests', 'fixtures', 'tiny-llama');
const BIN = CLI;
const cli = async (args) => JSON.parse((await promisify(execFile)(BIN, args)).stdout);

async function decoderFlow(t, { name, args, query, kind, timeout }) {
  const session = await openPage({ args, query, task: 'chat' });
  const { page, problems } = session;
  const out = path.join(ARTIFACTS, `decoder-${name}`);
  try {
    await waitForState(page, (s) => s.backend !== null && s.backend !== undefined, 30_000);
    assert.equal((await page.evaluate(() => window.burnishState)).backend.kind, kind);
    const files = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'model.safetensors.index.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];
    await page.setInputFiles('#decoder-files', files.map((f) => path.join(LLAMA, f)));
    let state = await waitForState(page, (s) => s.decoder !== null, 60_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.decoder.architecture, 'LlamaForCausalLM');
    assert.equal(state.decoder.layers, 2);
    assert.match(await page.textContent('#decoder-summary'), /LlamaForCausalLM, 2 layers, 42,848 parameters/);

    // The chat template came with chat_template.jinja: chat prompts are on by default; the page
    // wraps the prompt in it exactly as the CLI's --chat does.
    assert.equal(state.decoder.chat_template, true);
    assert.equal(await page.isChecked('#gen-chat'), true);
    // 8-bit weights are the page's default; the engine uses them on the CPU only (the CLI's
    // --int8 runs the same code).
    assert.equal(await page.isChecked('#gen-int8'), true);
    const int8 = kind === 'cpu' ? ['--int8'] : [];
    const chatWant = await cli(['generate', '--model', LLAMA, '--prompt', 'Say hello.', '--chat', '--max-new-tokens', '6', '--json', ...int8]);
    await page.fill('#gen-prompt', 'Say hello.');
    await page.fill('#gen-max', '6');
    await page.click('#gen-start');
    state = await waitForState(page, (s) => s.generation?.done, timeout);
    assert.equal(state.generation.text, chatWant.text);
    assert.equal(state.generation.int8, kind === 'cpu');
    assert.equal(chatWant.int8, kind === 'cpu');
    await page.uncheck('#gen-chat');
    // The exact f32 weights from here on.
    await page.uncheck('#gen-int8');

    // Greedy generation: the CLI's text for the same model and prompt.
    const prompt = 'The film was great and';
    const want = await cli(['generate', '--model', LLAMA, '--prompt', prompt, '--max-new-tokens', '10', '--json']);
    await page.fill('#gen-prompt', prompt);
    await page.fill('#gen-max', '10');
    await page.click('#gen-start');
    state = await waitForState(page, (s) => s.generation?.done && s.generation.prompt === prompt, timeout);
    assert.equal(state.generation.text, want.text);
    assert.equal(state.generation.tokens, 10);
    assert.equal(state.generation.stopped, 'max_tokens');
    assert.equal(await page.textContent('#gen-output'), want.text);

    if (kind === 'webgpu') {
      // A long generation streams in pieces and Stop ends it.
      await page.fill('#gen-max', '100');
      await page.fill('#gen-temperature', '1');
      await page.click('#gen-start');
      state = await waitForState(page, (s) => s.generation && !s.generation.done && s.generation.tokens >= 2, timeout);
      const shown = state.generation.tokens;
      await page.click('#gen-stop');
      state = await waitForState(page, (s) => s.generation.done, timeout);
      assert.equal(state.generation.stopped, 'user');
      assert.ok(state.generation.tokens >= shown && state.generation.tokens < 100, `stopped after ${state.generation.tokens} tokens`);
      await page.fill('#gen-temperature', '0');
    }

    // Instruction tuning on prompt → completion pairs with the question-answering template.
    await page.setInputFiles('#lm-file', DATA('instruct-pairs.jsonl'));
    state = await waitForState(page, (s) => s.lmData !== null, 20_000);
    assert.equal(state.lmData.rows, 12);
    assert.equal(await page.inputValue('#lm-task'), 'instruct');
    await page.selectOption('#lm-template', { index: 1 });
    assert.equal(await page.inputValue('#lm-template-text'), 'Question: {prompt}\nAnswer: ');
    // LoRA is the default; the memory estimate follows the strategy. WebGPU runs LoRA (adapters
    // merged for generation, PEFT export), the CPU run trains every weight.
    assert.equal(await page.inputValue('#lm-strategy'), 'lora');
    await page.fill('#lm-max-len', '64');
    state = await waitForState(page, (s) => s.lmMemory?.len === 64, 20_000);
    assert.ok(state.lmMemory.trainable > 0 && state.lmMemory.trainable < 42_848);
    assert.match(await page.textContent('#lm-memory'), /Estimated memory to fine-tune at batch 4 × 64 tokens \(\d[\d,]* of 42,848 parameters train\)/);
    const loraMemory = state.lmMemory;
    const lora = kind === 'webgpu';
    if (!lora) {
      await page.selectOption('#lm-strategy', 'full');
      state = await waitForState(page, (s) => s.lmMemory?.trainable === 42_848, 20_000);
      assert.ok(state.lmMemory.total > loraMemory.total, 'full fine-tuning needs more memory than LoRA');
      assert.equal(await page.isHidden('#lm-lora-rank'), true);
    } else {
      await page.selectOption('#lm-lora-targets', { index: 2 });
    }
    for (const [id, v] of Object.entries({ 'lm-epochs': '6', 'lm-lr': lora ? '3e-2' : '1e-2', 'lm-batch': '4', 'lm-max-len': '64' })) await page.fill(`#${id}`, v);
    await page.click('#lm-start');
    // While it trains, the run panel follows it (Stop only: decoder runs have no Pause).
    await page.waitForSelector('#run-panel:not([hidden])', { timeout: 30_000 });
    assert.equal(await page.isVisible('#run-panel-pause'), false);
    state = await waitForState(page, (s) => s.lm?.done && s.runs.length > 0, timeout);
    assert.deepEqual(state.errors, []);
    const lm = state.lm;
    // Remembered with its held-out perplexity before and after, and the panel gone.
    assert.equal(state.runs[0].task, 'instruct');
    assert.ok(Math.abs(state.runs[0].perplexity - lm.history[6].perplexity) < 1e-9, JSON.stringify(state.runs[0]));
    assert.match(await page.textContent('#runs-table tbody tr:nth-child(1)'), /instruct.*instruct-pairs\.jsonl.*perplexity [\d.]+ → [\d.]+/s);
    assert.equal(await page.isVisible('#run-panel'), false);
    assert.equal(lm.summary.train_rows, 10);
    assert.equal(lm.summary.eval_rows, 2);
    assert.equal(lm.losses.length, lm.summary.total_steps);
    assert.equal(lm.history.length, 7, 'held-out loss before and after each epoch');
    t.diagnostic(`${kind}: held-out loss ${lm.history[0].loss.toFixed(3)} → ${lm.history[6].loss.toFixed(3)}`);
    assert.ok(lm.history[6].loss < lm.history[0].loss, 'the held-out loss falls');
    assert.equal(lm.before.length, 2);
    assert.equal(lm.after.length, 2);
    if (lora) {
      assert.deepEqual(lm.summary.lora_modules, ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj']);
      assert.ok(lm.summary.trainable < 42_848);
    } else {
      assert.deepEqual(lm.summary.lora_modules, []);
      assert.equal(lm.summary.trainable, 42_848);
    }
    assert.match(await page.textContent('#lm-progress'), /tokens\/s/);
    // Exact match, ROUGE-L and chrF of the held-out answers, before and after.
    assert.equal(lm.metrics.after.count, 2);
    const metricRows = await page.$$eval('#lm-metrics tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.deepEqual(metricRows.map((r) => r[0]), ['before fine-tuning', 'after fine-tuning']);
    assert.equal(metricRows[1][3], lm.metrics.after.chrf.toFixed(1));
    const rows = await page.$$eval('#lm-compare tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.equal(rows.length, 2);
    assert.equal(rows[0][3], lm.after[0]);
    assert.equal(await page.isDisabled('#gen-tuned'), false);
    await session.screenshotOf('#decoder-section', `decoder-${name}`);

    // The download is an HF folder; the CLI's greedy answers from it are the page's "after".
    const zipPath = await download(page, '#lm-export', out);
    const entries = unzipSync(new Uint8Array(await readFile(zipPath)));
    const folder = Object.keys(entries)[0].split('/')[0];
    const config = JSON.parse(new TextDecoder().decode(entries[`${folder}/config.json`]));
    assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
    const header = safetensorsHeader(entries[`${folder}/model.safetensors`]);
    assert.ok(header['lm_head.weight'] && header['model.layers.1.self_attn.k_proj.weight']);
    if (lora) {
      const adapter = JSON.parse(new TextDecoder().decode(entries[`${folder}/peft/adapter_config.json`]));
      assert.equal(adapter.task_type, 'CAUSAL_LM');
      assert.equal(adapter.r, 8);
      const ah = safetensorsHeader(entries[`${folder}/peft/adapter_model.safetensors`]);
      assert.deepEqual(ah['base_model.model.model.layers.1.mlp.down_proj.lora_A.weight'].shape.length, 2);
    } else {
      assert.equal(entries[`${folder}/peft/adapter_config.json`], undefined);
    }
    const dir = path.join(out, 'unzipped');
    await mkdir(dir, { recursive: true });
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors']) await writeFile(path.join(dir, f), entries[`${folder}/${f}`]);
    const again = await cli(['generate', '--model', dir, '--prompt', lm.summary.eval_prompts[0].prompt, '--max-new-tokens', '24', '--json']);
    assert.equal(again.text, lm.after[0], 'the exported model answers like the page');
    // GGUF (Q8_0): the page's file is byte for byte the CLI's export-gguf of the downloaded folder.
    const ggufPath = await download(page, '#lm-gguf-q8', out);
    const gguf = await readFile(ggufPath);
    assert.equal(gguf.subarray(0, 4).toString(), 'GGUF');
    for (const f of ['tokenizer_config.json', 'chat_template.jinja']) if (entries[`${folder}/${f}`]) await writeFile(path.join(dir, f), entries[`${folder}/${f}`]);
    const cliGguf = path.join(out, 'cli.gguf');
    await promisify(execFile)(BIN, ['export-gguf', '--model', dir, '--type', 'q8_0', '--name', path.basename(ggufPath).replace(/-q8_0\.gguf$/, ''), '--out', cliGguf]);
    assert.ok(gguf.equals(await readFile(cliGguf)), 'the page and the CLI write the same GGUF');
    const fromGguf = await cli(['generate', '--model', ggufPath, '--prompt', lm.summary.eval_prompts[0].prompt, '--max-new-tokens', '4', '--json']);
    assert.ok(fromGguf.ids.length >= 1 && fromGguf.ids.length <= 4, `the GGUF generates (${fromGguf.ids})`);
    // The page's recipe.json (in the download) is the CLI's --recipe: the same run, same plan.
    const pageRecipe = JSON.parse(new TextDecoder().decode(entries[`${folder}/recipe.json`]));
    await writeFile(path.join(out, 'recipe.json'), JSON.stringify(pageRecipe));
    const cliOut = path.join(out, 'cli-from-page-recipe');
    await promisify(execFile)(BIN, ['train', '--model', LLAMA, '--train', DATA('instruct-pairs.jsonl'), '--recipe', path.join(out, 'recipe.json'), '--out', cliOut]);
    const cliRun = JSON.parse(await readFile(path.join(cliOut, 'metrics.json'), 'utf8'));
    for (const key of ['task', 'epochs', 'lr', 'batch_size', 'max_len', 'strategy', 'prompt_template']) assert.deepEqual(cliRun.recipe[key], pageRecipe[key], key);
    assert.equal(cliRun.train_losses.length, lm.summary.total_steps, 'the CLI plans the steps the page ran');
    assert.deepEqual([cliRun.train_rows, cliRun.eval_rows], [lm.summary.train_rows, lm.summary.eval_rows]);

    if (kind === 'cpu') {
      // Conversations: rendered with the chat template, assistant turns learnt; the held-out
      // prompts are the conversations so far, ending with the assistant's opening.
      await page.setInputFiles('#lm-file', DATA('chat.jsonl'));
      state = await waitForState(page, (s) => s.lmData?.name === 'chat.jsonl', 20_000);
      assert.match(await page.textContent('#lm-data-summary'), /conversations: the model's chat template/);
      assert.equal(await page.inputValue('#lm-task'), 'instruct');
      await page.fill('#lm-epochs', '2');
      await page.click('#lm-start');
      state = await waitForState(page, (s) => s.lm?.done && s.lm.summary.eval_prompts[0]?.chat, timeout);
      assert.deepEqual(state.errors, []);
      assert.equal(state.lm.summary.train_rows + state.lm.summary.eval_rows, 10);
      assert.ok(state.lm.summary.eval_prompts.every((p) => p.chat && p.prompt.startsWith('user: ') && p.prompt.endsWith('assistant: ')));
      assert.equal(state.lm.after.length, 2);
      assert.equal(state.lm.metrics.after.count, 2);
    }

    // Bad input, next to the controls.
    await page.fill('#gen-top-p', '0');
    await page.click('#gen-start');
    await messageIn(page, '#err-gen-top-p', /Top-p must be a number/);
    await page.fill('#gen-top-p', '1');
    await page.setInputFiles('#lm-file', DATA('domain-reviews.txt'));
    await waitForState(page, (s) => s.lmData?.name === 'domain-reviews.txt', 20_000);
    await page.selectOption('#lm-task', 'instruct');
    await page.click('#lm-start');
    await messageIn(page, '#lm-error', /no prompt column "prompt"/);
    await page.setInputFiles('#decoder-files', [path.join(LLAMA, 'config.json')]);
    await messageIn(page, '#decoder-error', /Choose tokenizer\.json too/);
    assert.deepEqual(problems.consoleErrors, [], 'console errors');
    assert.deepEqual(problems.pageErrors, [], 'page errors');
    assert.deepEqual(problems.foreignRequests, [], 'requests that left the page origin');
  } finally {
    await session.close();
  }
}

test('generate and instruction-tune a tiny Llama on the CPU fallback', { timeout: 240_000 }, (t) =>
  decoderFlow(t, { name: 'cpu', args: [], query: '?model=tiny-bert&backend=cpu', kind: 'cpu', timeout: 120_000 }));

test('generate, stop, and instruction-tune a tiny Llama on WebGPU (SwiftShader)', { timeout: 480_000 }, (t) =>
  decoderFlow(t, { name: 'webgpu', args: WEBGPU_ARGS, query: '?model=tiny-bert&backend=webgpu', kind: 'webgpu', timeout: 360_000 }));

test('the bundled SmolLM2-135M-Instruct (GGUF) loads in the tab and answers as transformers does', { timeout: 240_000 }, async (t) => {
  const reference = JSON.parse(await readFile(path.join(REPO, 'tests', 'fixtures', 'gguf_reference.json'), 'utf8')).smollm2.prompts[0];
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu', task: 'chat' });
  const { page, problems } = session;
  try {
    await waitForState(page, (s) => s.backend !== null && s.backend !== undefined, 30_000);
    await page.click('#decoder-bundled');
    let state = await waitForState(page, (s) => s.decoder !== null, 180_000);
    assert.equal(state.decoder.parameters, 134_515_008);
    assert.equal(state.decoder.layers, 30);
    // Its chat template (from the GGUF) is on by default: a plain question gets wrapped as the
    // CLI's --chat wraps it (the rendering itself is checked against transformers natively).
    assert.equal(state.decoder.chat_template, true);
    assert.equal(await page.isChecked('#gen-chat'), true);
    const question = 'What is the capital of France?';
    // On 8-bit weights (the default on the CPU): the CLI's --int8 answer.
    const chatWant = await cli(['generate', '--model', path.join(REPO, 'www', 'assets', 'models', 'SmolLM2-135M-Instruct.Q4_1.gguf'), '--prompt', question, '--chat', '--max-new-tokens', '8', '--json', '--int8']);
    assert.equal(chatWant.int8, true);
    await page.fill('#gen-prompt', question);
    await page.fill('#gen-max', '8');
    await page.click('#gen-start');
    state = await waitForState(page, (s) => s.generation?.done && s.generation.prompt === question, 180_000);
    assert.equal(state.generation.text, chatWant.text);
    assert.equal(state.generation.int8, true);
    t.diagnostic(`SmolLM2 in the tab (CPU, 8-bit weights): ${state.generation.tokens_per_s.toFixed(1)} tokens/s`);
    // Unchecked, the prompt is taken as it is: transformers' greedy answer to the ChatML prompt,
    // on the exact f32 weights.
    await page.uncheck('#gen-chat');
    await page.uncheck('#gen-int8');
    await page.fill('#gen-prompt', reference.text);
    await page.click('#gen-start');
    state = await waitForState(page, (s) => s.generation?.done && s.generation.prompt === reference.text, 180_000);
    assert.equal(state.generation.text, 'The capital of France is Paris.');
    assert.equal(state.generation.tokens, reference.greedy.length);
    assert.equal(state.generation.stopped, 'eos');
    assert.equal(state.generation.int8, false);
    t.diagnostic(`SmolLM2 in the tab (CPU, f32 weights): ${state.generation.tokens_per_s.toFixed(1)} tokens/s`);
    assert.deepEqual(problems.consoleErrors, []);
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await session.close();
  }
});

test('a decoder run checkpointed in the tab resumes after a reload with the same curve (CPU)', { timeout: 300_000 }, async (t) => {
  const session = await openPage({ query: '?model=tiny-bert&backend=cpu', task: 'chat' });
  const { page, problems } = session;
  try {
    await waitForState(page, (s) => s.backend !== null && s.backend !== undefined, 30_000);
    const files = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'model.safetensors.index.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];
    const setUp = async (every) => {
      await page.setInputFiles('#decoder-files', files.map((f) => path.join(LLAMA, f)));
      await waitForState(page, (s) => s.decoder !== null, 60_000);
      await page.setInputFiles('#lm-file', DATA('instruct-pairs.jsonl'));
      await waitForState(page, (s) => s.lmData !== null, 20_000);
      await page.selectOption('#lm-template', { index: 1 });
      for (const [id, v] of Object.entries({ 'lm-epochs': '200', 'lm-lr': '1e-2', 'lm-batch': '4', 'lm-max-len': '64', 'lm-checkpoint-every': String(every) })) await page.fill(`#${id}`, v);
      await page.click('#lm-start');
    };
    // The uninterrupted run (no checkpoints).
    await setUp(0);
    let state = await waitForState(page, (s) => s.lm?.done, 240_000);
    assert.deepEqual(state.errors, []);
    const whole = state.lm.losses;
    assert.equal(whole.length, 600);
    // The same run again, checkpointed every 50 steps, cut off by a reload after the second.
    await setUp(50);
    await waitForState(page, (s) => s.lmCheckpoints.length >= 2, 240_000);
    await page.reload();
    state = await waitForState(page, (s) => s.lmSavedRun !== null && s.lmSavedRun !== undefined, 60_000);
    const saved = state.lmSavedRun.progress.step;
    assert.ok(saved >= 100 && saved < 600, `saved at step ${saved}`);
    assert.match(await page.textContent('#lm-resume-text'), new RegExp(`saved at step ${saved} of 600`));
    await page.click('#lm-resume');
    state = await waitForState(page, (s) => s.lm?.done, 240_000);
    assert.deepEqual(state.errors, []);
    assert.equal(state.lm.resumedFrom, saved);
    t.diagnostic(`resumed at step ${saved} of 600`);
    assert.deepEqual(state.lm.losses, whole, 'the resumed curve is the uninterrupted one, bit for bit');
    assert.equal(state.lm.history.length, 201);
    // The finished run is gone from storage: a reload offers nothing.
    await page.reload();
    await waitForState(page, (s) => s.backend !== null && s.backend !== undefined, 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await page.isHidden('#lm-resume-banner'), true);
    assert.deepEqual(problems.pageErrors, []);
  } finally {
    await session.close();
  }
});
