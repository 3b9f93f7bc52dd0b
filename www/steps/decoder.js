// The generative tasks (chat/instruction tuning, continuing text in a style): the decoder (the
// bundled SmolLM2 GGUF or local files), its data, recipe, run, before/after answers, generation
// and export; an unfinished run resumes after a reload.

import { IN } from '../protocol.js';
import { t } from '../i18n.js';
import { MlmChart } from '../charts.js';
import { fetchHubDecoder, fileBytes, readBody } from '../sources.js';
import { DECODER_RUN, discardSavedRun, opfsAvailable, readSavedRun, saveRunStart, savedFile } from '../saved-run.js';
import { DECODER_GALLERY, renderGallery } from '../views/gallery.js';
import { currentTask, showTask } from '../views/tasks.js';
import { lossText, panelKind, showRunPanel, updateRunPanel } from '../views/runpanel.js';
import { $, bytes, bytes as fmtBytes, downloadProgress, fillTable, fmt, log } from '../lib/dom.js';
import { tableBytes } from '../lib/files.js';
import { downloadZip } from '../lib/downloads.js';
import { prepareCheckpoints, request } from '../lib/engine.js';
import { clearErrors, concerning, failWith, guarded, showError } from '../lib/errors.js';
import { state } from '../lib/state.js';
import { backendReady } from './backend.js';
import { schemaLimits } from './recipe.js';
import { keep } from './runs.js';

const BUNDLED_DECODER = 'assets/models/SmolLM2-135M-Instruct.Q4_1.gguf';
const lmChart = new MlmChart($('lm-chart'), { label: 'next-token loss' });
const generationWaiters = new Map(); // generation id → resolve(final state), for before/after runs

function decoderReady(summary, source) {
  state.decoder = { ...summary, source };
  state.lm = null;
  state.generation = null;
  $('decoder-summary').textContent = `${source}: ${summary.architecture}, ${summary.layers} layers, ${summary.parameters.toLocaleString()} parameters, vocabulary ${summary.vocab_size.toLocaleString()}, up to ${summary.max_positions.toLocaleString()} tokens${summary.chat_template ? ', chat template' : ''}`;
  $('gen-start').disabled = false;
  $('gen-tuned').checked = false;
  $('gen-tuned').disabled = true;
  // Instruction-tuned models answer best in their chat template: on by default when there is one.
  $('gen-chat').checked = summary.chat_template;
  $('gen-chat').disabled = !summary.chat_template;
  $('lm-start').disabled = !state.lmData;
  setLmExport(true);
  guarded('lm', updateLmMemory)();
}

$('decoder-bundled').addEventListener('click', guarded('decoder', () => loadBundledDecoder()));
$('decoder-hub-load').addEventListener('click', guarded('decoder', () => loadHubDecoder($('decoder-hub-id').value)));
$('decoder-hub-id').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') $('decoder-hub-load').click();
});

/** A decoder from the Hub (Cache API after the first download), as a folder of files would load. */
async function loadHubDecoder(id) {
  clearErrors('decoder');
  await concerning('backend', () => backendReady);
  const bar = $('decoder-progress');
  const progress = downloadProgress(bar, $('decoder-status'));
  $('decoder-hub-load').disabled = true;
  try {
    const files = await fetchHubDecoder(id, progress).catch((err) => {
      err.concerns = 'decoder';
      throw err;
    });
    $('decoder-status').textContent = t('model.loading');
    const { source, ...payload } = files;
    decoderReady(await request(IN.DECODER_LOAD, payload), source);
    state.decoderSource = { kind: 'hub', id: id.trim() };
    $('decoder-status').textContent = '';
  } catch (err) {
    $('decoder-status').textContent = '';
    throw err;
  } finally {
    bar.hidden = true;
    $('decoder-hub-load').disabled = false;
  }
}

/** The decoder gallery (views/gallery.js), with the memory the decoder recipe needs for each. */
export async function updateDecoderGallery() {
  const batch = Math.round(Number($('lm-batch').value));
  const len = Math.round(Number($('lm-max-len').value));
  if (!(batch >= 1 && len >= 1)) return;
  const recipe = { task: $('lm-task').value, ...lmStrategy(false) };
  state.decoderGallery = await renderGallery({
    list: DECODER_GALLERY,
    table: 'decoder-gallery-table',
    estimate: (config) => request(IN.DECODER_MEMORY_FOR_CONFIG, { config, batchSize: batch, maxLen: len, recipe }),
    use: (g) => {
      $('decoder-hub-id').value = g.id;
      $('decoder-hub-load').focus();
      log(`${g.id} chosen: press Download and load to fetch it from huggingface.co${g.checked ? ' (or load the bundled GGUF of the same model)' : ''}.`);
    },
  });
}

async function loadBundledDecoder() {
  clearErrors('decoder');
  await concerning('backend', () => backendReady);
  $('decoder-summary').textContent = 'downloading and dequantizing SmolLM2…';
  const res = await fetch(BUNDLED_DECODER).catch((err) => failWith('decoder', `Could not fetch ${BUNDLED_DECODER}: ${err.message}`));
  if (!res.ok) failWith('decoder', `Could not fetch ${BUNDLED_DECODER}: HTTP ${res.status}. Are the bundled assets installed (python3 scripts/fetch_assets.py)?`);
  const gguf = await readBody(res);
  decoderReady(await request(IN.DECODER_LOAD, { gguf }, [gguf.buffer]), 'SmolLM2-135M-Instruct (GGUF)');
  state.decoderSource = { kind: 'bundled' };
}

$('decoder-files').addEventListener('change', guarded('decoder', async (e) => {
  const files = [...e.target.files];
  e.target.value = '';
  if (files.length) await loadDecoderFromFiles(files);
}));

async function loadDecoderFromFiles(files) {
  clearErrors('decoder');
  await concerning('backend', () => backendReady);
  const byName = new Map(files.map((f) => [f.name, f]));
  const read = (f) => fileBytes(f);
  const gguf = files.find((f) => f.name.toLowerCase().endsWith('.gguf'));
  if (gguf) {
    const bytes = await read(gguf);
    decoderReady(await request(IN.DECODER_LOAD, { gguf: bytes }, [bytes.buffer]), gguf.name);
    state.decoderSource = { kind: 'files', files: [gguf] };
    return;
  }
  const need = (n) => byName.get(n) ?? failWith('decoder', `Choose ${n} too: a model needs config.json, tokenizer.json and model.safetensors (or its shards with model.safetensors.index.json), or one .gguf file.`);
  const config = await read(need('config.json'));
  const tokenizer = await read(need('tokenizer.json'));
  let weights;
  if (byName.has('model.safetensors.index.json')) {
    // The shard names come from the index (parsed in Rust, like the CLI does).
    const index = await read(byName.get('model.safetensors.index.json'));
    const names = JSON.parse(new TextDecoder().decode(index)).weight_map ?? {};
    const shards = [...new Set(Object.values(names))].sort();
    weights = await Promise.all(shards.map((n) => read(need(n))));
  } else {
    weights = [await read(need('model.safetensors'))];
  }
  // Optional: tokenizer_config.json and chat_template.jinja bring the chat template (both are
  // exported with the model).
  const tokenizerConfig = byName.has('tokenizer_config.json') ? await read(byName.get('tokenizer_config.json')) : undefined;
  const chatTemplate = byName.has('chat_template.jinja') ? await byName.get('chat_template.jinja').text() : undefined;
  const dir = files[0].webkitRelativePath?.split('/')[0] || 'local files';
  decoderReady(await request(IN.DECODER_LOAD, { config, tokenizer, weights, tokenizerConfig, chatTemplate }), dir);
  state.decoderSource = { kind: 'files', files };
}

/** The number in input `id`, within the limits (`min`/`max` inclusive, `gt`/`lt` exclusive; min 0 unless `gt`). */
function fieldNumber(id, name, { int = false, gt, lt, min = gt === undefined ? 0 : undefined, max = Infinity } = {}) {
  const raw = $(id).value.trim();
  const v = Number(raw);
  const ok = raw !== '' && Number.isFinite(v) && (!int || Number.isInteger(v)) &&
    (min === undefined || v >= min) && (gt === undefined || v > gt) && v <= max && (lt === undefined || v < lt);
  if (!ok) {
    const range = [min !== undefined && `from ${min}`, gt !== undefined && `above ${gt}`, max < Infinity && `to ${max}`, lt !== undefined && `below ${lt}`].filter(Boolean).join(' ');
    failWith(`field:${id}`, `${name} must be ${int ? 'a whole number' : 'a number'}${range ? ` ${range}` : ''} (got ${raw || 'nothing'}).`);
  }
  return v;
}

function generationOptions() {
  const stop = $('gen-stop-text').value;
  return {
    max_new_tokens: fieldNumber('gen-max', 'Max new tokens', { int: true, min: 1, max: 4096 }),
    temperature: fieldNumber('gen-temperature', 'Temperature'),
    top_k: fieldNumber('gen-top-k', 'Top-k', { int: true }),
    top_p: fieldNumber('gen-top-p', 'Top-p', { min: 1e-9, max: 1 }),
    repetition_penalty: fieldNumber('gen-repetition', 'Repetition penalty', { min: 1e-9 }),
    seed: fieldNumber('gen-seed', 'Seed', { int: true }),
    stop: stop ? [stop] : [],
    use_cache: true,
    int8: $('gen-int8').checked, // models/q8.rs; the engine uses it on the CPU for Llama/Qwen2 only
  };
}

/** Starts a generation; resolves with its final state when it ends. */
async function generate(prompt, options, tuned, show = true, { chat = false, templated = false } = {}) {
  if (!state.decoder) failWith('generate', 'Load a model first (the bundled SmolLM2, or your own files).');
  const started = await request(IN.GENERATE, { prompt, options, tuned, chat, templated });
  const { id } = started;
  state.generation = { id, prompt, text: '', tokens: 0, done: false, stopped: null, tokens_per_s: 0, tuned, show, int8: Boolean(started.int8) };
  if (show) {
    $('gen-output').textContent = '';
    $('gen-start').disabled = true;
    $('gen-stop').disabled = false;
  }
  return new Promise((resolve) => generationWaiters.set(id, resolve));
}

export function showGeneration(p) {
  const g = state.generation;
  if (!g || g.id !== p.id) return;
  if (p.text !== null && p.text !== undefined) Object.assign(g, { text: p.text, tokens: p.tokens, tokens_per_s: p.tokens_per_s });
  g.done = p.done;
  g.stopped = p.stopped ?? null;
  if (g.show) {
    $('gen-output').textContent = g.text;
    $('gen-stats').textContent = `${g.tokens} tokens · ${fmt(g.tokens_per_s, 1)} tokens/s${g.int8 ? ' · 8-bit weights' : ''}${g.done ? ` · ended: ${String(g.stopped).replace('_', ' ')}` : ''}`;
  }
  if (g.done) {
    $('gen-start').disabled = !state.decoder;
    $('gen-stop').disabled = true;
    generationWaiters.get(p.id)?.(g);
    generationWaiters.delete(p.id);
  }
}

$('gen-start').addEventListener('click', guarded('generate', async () => {
  clearErrors('generate');
  const options = generationOptions();
  const prompt = $('gen-prompt').value;
  if (!prompt.trim()) failWith('generate', 'Write a prompt for the model to continue.');
  await generate(prompt, options, $('gen-tuned').checked, true, { chat: $('gen-chat').checked });
}));
$('gen-stop').addEventListener('click', guarded('generate', async () => {
  $('gen-stop').disabled = true;
  await request(IN.GENERATE_STOP);
}));

$('lm-template').addEventListener('change', () => {
  $('lm-template-text').value = $('lm-template').value.replaceAll('\\n', '\n');
});

$('lm-file').addEventListener('change', guarded('lm', async (e) => {
  const file = e.target.files[0];
  e.target.value = '';
  if (file) await loadLmData(file);
}));

async function loadLmData(file) {
  clearErrors('lm');
  await concerning('backend', () => backendReady);
  const bytes = await tableBytes(await fileBytes(file), file.name, 'lm');
  const info = await request(IN.LM_DATA, { bytes, name: file.name }, [bytes.buffer]);
  state.lmData = info;
  state.lmFile = file;
  const chat = info.columns.includes('messages');
  const pairs = info.columns.includes('prompt') && info.columns.includes('completion');
  $('lm-task').value = chat || pairs ? 'instruct' : 'causal-lm';
  const kind = chat ? ` (conversations: the model's chat template, assistant turns learnt${state.decoder && !state.decoder.chat_template ? '; this model has no chat template' : ''})` : pairs ? ' (prompt → completion pairs)' : '';
  $('lm-data-summary').textContent = `${info.name}: ${info.rows} rows, columns ${info.columns.join(', ')}${kind}`;
  $('lm-start').disabled = !state.decoder;
}

function lmRecipe() {
  const task = $('lm-task').value;
  const template = $('lm-template-text').value;
  if (task === 'instruct' && !template.includes('{prompt}')) failWith('field:lm-template-text', 'The template must contain {prompt} where the prompt goes.');
  const text = state.lmData?.columns.includes('text') ? 'text' : state.lmData?.columns[0];
  return {
    task, prompt_template: template, text_column: text ?? 'text',
    epochs: fieldNumber('lm-epochs', 'Epochs', schemaLimits('epochs')),
    lr: fieldNumber('lm-lr', 'Learning rate', schemaLimits('lr')),
    batch_size: fieldNumber('lm-batch', 'Batch size', schemaLimits('batch_size')),
    max_len: fieldNumber('lm-max-len', 'Max length', { ...schemaLimits('max_len'), max: state.decoder?.max_positions ?? 1e9 }),
    warmup_ratio: 0, weight_decay: 0, eval_fraction: 0.2, seed: 42,
    ...lmStrategy(true),
  };
}

/** The strategy fields of the decoder recipe (`strict`: refuse bad numbers with a message). */
function lmStrategy(strict) {
  const strategy = $('lm-strategy').value;
  if (strategy !== 'lora') return { strategy };
  const num = (id, name, key, fallback) => (strict ? fieldNumber(id, name, schemaLimits(key)) : (Number.isFinite(Number($(id).value)) && $(id).value !== '' ? Number($(id).value) : fallback));
  return {
    strategy,
    lora_rank: num('lm-lora-rank', 'LoRA rank', 'lora_rank', 8),
    lora_alpha: num('lm-lora-alpha', 'LoRA alpha', 'lora_alpha', 16),
    lora_dropout: num('lm-lora-dropout', 'LoRA dropout', 'lora_dropout', 0.05),
    lora_targets: $('lm-lora-targets').value.split(','),
  };
}

/** The training-memory estimate for the loaded decoder, and what the backend says about it. */
async function updateLmMemory() {
  if (!state.decoder) return;
  const batch = Math.round(Number($('lm-batch').value));
  const len = Math.round(Number($('lm-max-len').value));
  if (!(batch >= 1 && len >= 1)) return;
  const m = await request(IN.LM_MEMORY, { batchSize: batch, maxLen: len, recipe: lmStrategy(false) });
  state.lmMemory = Object.assign(m, { batch, len });
  $('lm-memory').textContent = `Estimated memory to fine-tune at batch ${batch} × ${len} tokens (${m.trainable.toLocaleString('en-US')} of ${m.parameters.toLocaleString('en-US')} parameters train): ${bytes(m.total)} (weights ${bytes(m.weights)}, gradients ${bytes(m.gradients)}, AdamW state ${bytes(m.optimizer)}, activations ${bytes(m.activations)}; largest tensor ${bytes(m.largest_tensor)}).`;
  $('lm-memory-warning').hidden = m.warnings.length === 0;
  $('lm-memory-warning').textContent = m.warnings.map((w) => `Warning: ${w}.`).join(' ');
}

const LM_LR = { lora: '5e-4', full: '5e-5' };
$('lm-strategy').addEventListener('change', () => {
  const lora = $('lm-strategy').value === 'lora';
  for (const el of document.querySelectorAll('.lm-lora')) el.hidden = !lora;
  // The usual peak rate of the other strategy, unless the rate was edited.
  if (Object.values(LM_LR).includes($('lm-lr').value)) $('lm-lr').value = LM_LR[$('lm-strategy').value];
});
let lmMemoryTimer = null;
for (const id of ['lm-strategy', 'lm-lora-rank', 'lm-lora-targets', 'lm-batch', 'lm-max-len']) {
  $(id).addEventListener(id.endsWith('strategy') || id.endsWith('targets') ? 'change' : 'input', () => {
    clearTimeout(lmMemoryTimer);
    lmMemoryTimer = setTimeout(guarded('lm', async () => {
      await updateLmMemory();
      await updateDecoderGallery();
    }), 150);
  });
}

/** Greedy answers to the held-out prompts (before, or after, fine-tuning). */
async function answers(prompts, tuned) {
  const out = [];
  for (const p of prompts) {
    const g = await generate(p.prompt, { max_new_tokens: 24, temperature: 0, top_k: 0, top_p: 1, repetition_penalty: 1, seed: 0, stop: [], use_cache: true, int8: $('gen-int8').checked }, tuned, false, { templated: p.chat });
    out.push(g.text);
  }
  return out;
}

function renderLmCompare() {
  const lm = state.lm;
  if (!lm) return;
  const m = lm.metrics;
  $('lm-metrics').hidden = !m;
  if (m) {
    fillTable($('lm-metrics'), ['', 'exact match', 'ROUGE-L', 'chrF', 'answers'],
      [['before fine-tuning', m.before], ['after fine-tuning', m.after]].map(([what, x]) => [{ th: what }, fmt(x.exact_match, 2), fmt(x.rouge_l, 3), fmt(x.chrf, 1), String(x.count)]));
  }
  fillTable($('lm-compare'), ['prompt', 'reference', 'before fine-tuning', 'after fine-tuning'],
    lm.summary.eval_prompts.map((p, i) => [p.prompt, p.reference ?? '—', lm.before?.[i] ?? '…', lm.after?.[i] ?? (lm.done ? '…' : 'after the run')]));
}

$('lm-start').addEventListener('click', guarded('lm', async () => {
  clearErrors('lm');
  if (!state.decoder) failWith('lm', 'Load a model first.');
  if (!state.lmData) failWith('lm', 'Choose the training data first.');
  const recipe = lmRecipe();
  const every = fieldNumber('lm-checkpoint-every', 'Checkpoint every', { int: true, min: 0, max: 1e6 });
  $('lm-start').disabled = true;
  setLmExport(true);
  $('lm-links').replaceChildren();
  lmChart.reset();
  try {
    let checkpointEvery = every > 0 && opfsAvailable() ? every : 0;
    if (checkpointEvery) {
      const files = [state.lmFile, ...(state.decoderSource?.kind === 'files' ? state.decoderSource.files : [])];
      if (!(await prepareCheckpoints(() => saveLmRun(recipe, checkpointEvery), files, 'lm'))) checkpointEvery = 0;
    }
    state.lmCheckpoints = [];
    const summary = await request(IN.LM_TRAIN, { recipe, checkpointEvery });
    state.lm = { summary, losses: [], history: [], done: false, stopped: false, before: null, after: null, metrics: null, exported: null, recipe };
    $('lm-stop').disabled = false;
    $('gen-start').disabled = true;
    showRunPanel('lm');
    const what = summary.lora_modules.length ? `LoRA adapters on ${summary.lora_modules.join(', ')} in every layer` : 'every weight';
    $('lm-progress').textContent = `${summary.train_rows} training rows, ${summary.eval_rows} held out · ${summary.total_steps} steps · training ${what}: ${summary.trainable.toLocaleString('en-US')} of ${summary.parameters.toLocaleString('en-US')} parameters`;
    renderLmCompare();
  } catch (err) {
    $('lm-start').disabled = false;
    throw err;
  }
}));
$('lm-stop').addEventListener('click', guarded('lm', async () => {
  $('lm-stop').disabled = true;
  await request(IN.LM_STOP);
}));

export function showLmProgress({ reports, history }) {
  const lm = state.lm;
  if (!lm) return;
  for (const r of reports) lm.losses.push(r.loss);
  const fresh = history.slice(lm.history.length);
  lm.history = history;
  lmChart.add(reports, fresh);
  const last = reports[reports.length - 1];
  if (last) $('lm-progress').textContent = `step ${last.step}/${last.total_steps} · epoch ${last.epoch}/${last.epochs} · loss ${fmt(last.loss)} · ${fmt(last.tokens_per_s, 0)} tokens/s`;
  if (last && panelKind() === 'lm') {
    const ev = lm.history[lm.history.length - 1];
    const ppl = ev ? ` · ${t('runPanel.perplexity')} ${fmt(ev.perplexity, 2)}` : '';
    updateRunPanel({ step: last.step, total: last.total_steps, text: lossText(last.loss) + ppl, losses: lm.losses });
  }
  fillTable($('lm-table'), ['', 'held-out loss', 'perplexity', 'tokens'],
    lm.history.map((e) => [{ th: e.step === 0 ? 'before fine-tuning' : `after epoch ${e.epoch}` }, fmt(e.loss), fmt(e.perplexity, 2), String(e.tokens)]));
}

export async function lmEnded({ ok, stopped }) {
  const lm = state.lm;
  if (panelKind() === 'lm') showRunPanel(null);
  // Finished or stopped on purpose: nothing to resume. (After an error the checkpoint stays.)
  if (ok) discardSavedRun(DECODER_RUN).catch(() => {});
  $('lm-stop').disabled = true;
  $('lm-start').disabled = !state.decoder;
  $('gen-start').disabled = !state.decoder;
  if (!lm) return;
  lm.stopped = stopped;
  if (ok && lm.losses.length) {
    $('gen-tuned').disabled = false;
    setLmExport(false);
    try {
      lm.before = await answers(lm.summary.eval_prompts, false);
      renderLmCompare();
      lm.after = await answers(lm.summary.eval_prompts, true);
      const refs = lm.summary.eval_prompts.map((p) => p.reference);
      if (refs.length && refs.every((r) => r != null)) {
        const score = (preds) => request(IN.LM_METRICS, { pairs: preds.map((p, i) => [p.trim(), refs[i]]) });
        lm.metrics = { before: await score(lm.before), after: await score(lm.after) };
      }
    } catch (err) {
      showError(err, 'lm');
    }
  }
  lm.done = true;
  renderLmCompare();
  if (ok && lm.losses.length) keepLmRun(lm, stopped).catch((err) => showError(err, 'runs'));
}

/** A finished decoder run, remembered like a classifier run: held-out loss and perplexity
 * before (step 0) and after. */
async function keepLmRun(lm, stopped) {
  const first = lm.history.find((e) => e.step === 0) ?? null;
  const last = lm.history.length ? lm.history[lm.history.length - 1] : null;
  const score = (e) => (e ? { loss: e.loss, perplexity: e.perplexity } : null);
  await keep({
    task: lm.recipe.task,
    model: state.decoder?.source ?? '—',
    data: state.lmFile?.name ?? '—',
    recipe: lm.recipe,
    steps: lm.losses.length,
    total_steps: lm.summary.total_steps,
    stopped: Boolean(stopped),
    before: first && first !== last ? score(first) : null,
    after: score(last),
    losses: lm.losses,
  });
}

/** The export buttons (the HF folder and the GGUF files) go on and off together. */
function setLmExport(disabled) {
  for (const id of ['lm-export', 'lm-gguf-f16', 'lm-gguf-q8']) $(id).disabled = disabled;
}

/** The fine-tuned decoder as one GGUF file (f16 or q8_0) for llama.cpp, Ollama, LM Studio. */
async function exportGguf(type) {
  clearErrors('lm');
  const base = (state.decoder?.source ?? 'model').split('/').pop().replace(/\.gguf$/i, '').replace(/[^\w.-]+/g, '-');
  const bytes = await request(IN.LM_EXPORT_GGUF, { type, name: `${base}-burnish` });
  const name = `${base}-burnish-${type}.gguf`;
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const a = Object.assign(document.createElement('a'), { href: url, download: name, textContent: `${name} (${fmtBytes(bytes.length)})` });
  const li = document.createElement('li');
  li.append(a);
  $('lm-links').append(li);
  a.click();
  state.lm.gguf = [...(state.lm.gguf ?? []), { name, type, size: bytes.length }];
}
$('lm-gguf-f16').addEventListener('click', guarded('lm', () => exportGguf('f16')));
$('lm-gguf-q8').addEventListener('click', guarded('lm', () => exportGguf('q8_0')));

$('lm-export').addEventListener('click', guarded('lm', async () => {
  const files = await request(IN.LM_EXPORT, { baseName: state.decoder?.source ?? 'base-model' });
  const lm = state.lm;
  const docs = { 'metrics.json': { history: lm.history, train_losses: lm.losses, before: lm.before, after: lm.after, prompts: lm.summary.eval_prompts, generation_metrics: lm.metrics }, 'recipe.json': lm.recipe };
  lm.exported = await downloadZip(lm.recipe.task, files, docs, $('lm-links'), '', state.decoder?.source);
}));

// Resuming a decoder run
/** Stores what a reload needs to continue the run: the model (the bundled one by name, or the
 * chosen files), the training file and the recipe; the worker adds checkpoints. */
async function saveLmRun(recipe, checkpointEvery) {
  const src = state.decoderSource;
  if (!src || !state.lmFile) return;
  const files = [[`data-${state.lmFile.name}`, state.lmFile]];
  if (src.kind === 'files') for (const f of src.files) files.push([`model-${f.name}`, f]);
  const model = src.kind === 'bundled' ? { source: 'bundled' } : src.kind === 'hub' ? { source: 'hub', id: src.id } : { source: 'files', files: src.files.map((f) => f.name) };
  const meta = {
    version: 1, model,
    data: state.lmFile.name, recipe, checkpointEvery, started_at: new Date().toISOString(),
  };
  await saveRunStart(meta, files, DECODER_RUN);
}

async function offerSavedLmRun() {
  const saved = await readSavedRun(DECODER_RUN);
  state.lmSavedRun = saved;
  $('lm-resume-banner').hidden = !saved;
  if (!saved) return;
  const { meta, progress } = saved;
  if (!currentTask()) showTask(meta.recipe?.task === 'causal-lm' ? 'continue' : 'chat');
  const model = meta.model.source === 'bundled' ? 'SmolLM2-135M-Instruct (bundled)' : meta.model.source === 'hub' ? `huggingface.co/${meta.model.id}` : meta.model.files.join(', ');
  $('lm-resume-text').textContent =
    `An unfinished fine-tuning run was saved at step ${progress.step} of ${progress.total_steps} (${new Date(progress.saved_at).toLocaleString()}): ` +
    `model ${model}, data ${meta.data}. Resume it where it stopped, or discard it.`;
}

/** Reloads the saved run's model and data, then continues from its last checkpoint. */
async function resumeSavedLmRun() {
  clearErrors('lm');
  const saved = await readSavedRun(DECODER_RUN);
  if (!saved) {
    $('lm-resume-banner').hidden = true;
    failWith('lm', 'The saved run is no longer in this browser\'s storage.');
  }
  const { meta } = saved;
  $('lm-resume').disabled = true;
  try {
    if (meta.model.source === 'bundled') await loadBundledDecoder();
    else if (meta.model.source === 'hub') await loadHubDecoder(meta.model.id); // from the Cache API
    else await loadDecoderFromFiles(await Promise.all(meta.model.files.map((n) => savedFile('model', n, DECODER_RUN))));
    await loadLmData(await savedFile('data', meta.data, DECODER_RUN));
    const r = meta.recipe;
    $('lm-task').value = r.task;
    $('lm-template-text').value = r.prompt_template;
    $('lm-strategy').value = r.strategy;
    for (const el of document.querySelectorAll('.lm-lora')) el.hidden = r.strategy !== 'lora';
    for (const [id, v] of [['lm-epochs', r.epochs], ['lm-lr', r.lr], ['lm-batch', r.batch_size], ['lm-max-len', r.max_len], ['lm-checkpoint-every', meta.checkpointEvery]]) $(id).value = String(v);
    if (r.strategy === 'lora') {
      for (const [id, v] of [['lm-lora-rank', r.lora_rank], ['lm-lora-alpha', r.lora_alpha], ['lm-lora-dropout', r.lora_dropout]]) $(id).value = String(v);
      $('lm-lora-targets').value = r.lora_targets.join(',');
    }
    $('lm-start').disabled = true;
    setLmExport(true);
    $('lm-links').replaceChildren();
    lmChart.reset();
    state.lmCheckpoints = [];
    const summary = await request(IN.LM_RESUME, { recipe: r, checkpointEvery: meta.checkpointEvery });
    state.lm = { summary, losses: [], history: [], done: false, stopped: false, before: null, after: null, metrics: null, exported: null, recipe: r, resumedFrom: summary.step };
    $('lm-stop').disabled = false;
    $('gen-start').disabled = true;
    showRunPanel('lm');
    // The curve so far, from the checkpoint.
    showLmProgress({
      reports: summary.losses.map((loss, i) => ({ step: i + 1, total_steps: summary.total_steps, epoch: 0, epochs: summary.epochs, loss, lr: 0, grad_norm: 0, tokens_per_s: 0, elapsed_s: 0, done: false, eval: null })),
      history: summary.history,
    });
    $('lm-progress').textContent = `resumed at step ${summary.step} of ${summary.total_steps}`;
    $('lm-resume-banner').hidden = true;
    renderLmCompare();
  } finally {
    $('lm-resume').disabled = false;
  }
}

$('lm-resume').addEventListener('click', guarded('lm', resumeSavedLmRun));
$('lm-discard').addEventListener('click', guarded('lm', async () => {
  await discardSavedRun(DECODER_RUN);
  state.lmSavedRun = null;
  $('lm-resume-banner').hidden = true;
}));
backendReady.then(() => offerSavedLmRun()).catch(() => {});
backendReady.then(() => updateDecoderGallery()).catch((err) => showError(err, 'decoder'));
