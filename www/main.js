// The page's logic: reads files and form fields, talks to the wasm worker through
// BurnishClient, and renders progress, results and errors. `window.burnishState` mirrors
// what the page shows, for the browser tests.

import { BurnishClient, CONCERNS, IN, OUT } from './protocol.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const bundledModel = params.get('model') || 'all-MiniLM-L6-v2';
const BUNDLED_DATA = 'assets/data/sentiment-demo.csv';

const state = (window.burnishState = {
  backend: null, // {kind, adapter, note}
  model: null, // loadModel's summary
  data: null, // inspectData's summary
  summary: null, // startTraining's summary
  recipe: null,
  losses: [], // one number per step, in order
  metrics: null,
  prediction: null,
  training: false,
  done: false,
  errors: [], // {message, concerns, step}
});
let modelKey = null; // which source the loaded model came from
let dataKey = null; // which source the inspected data came from
let dataGeneration = 0; // only the newest inspection is rendered
let exportUrls = [];

// ---------------------------------------------------------------- errors
const SECTION_ERROR = {
  backend: 'backend-error', model: 'model-error', data: 'data-error', recipe: 'recipe-error',
  train: 'train-error', results: 'results-error', try: 'try-error', export: 'export-error',
};

function showError(err, concerns = err?.concerns) {
  const message = err instanceof Error ? err.message : String(err?.message ?? err);
  const step = err?.step ?? null;
  state.errors.push({ message, concerns: concerns ?? null, step });
  const where = concerns ? ` (${concerns}${step ? `, step ${step}` : ''})` : '';
  $('error').textContent = `Error${where}: ${message}`;
  $('error').hidden = false;
  const near = $(SECTION_ERROR[concerns]);
  if (near) {
    near.textContent = message;
    near.hidden = false;
  }
}

function clearErrors(...concerns) {
  for (const c of concerns) $(SECTION_ERROR[c]).hidden = true;
  $('error').hidden = true;
}

/** Wraps an event handler so that nothing it throws escapes to the console. */
const guarded = (concerns, fn) => async (event) => {
  try {
    await fn(event);
  } catch (err) {
    showError(err, err?.concerns ?? concerns);
  }
};

/** Runs `fn`, tagging any error it throws with the section it concerns. */
async function concerning(concerns, fn) {
  try {
    return await fn();
  } catch (err) {
    if (err && typeof err === 'object' && !err.concerns) err.concerns = concerns;
    throw err;
  }
}

window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  showError(event.reason);
});

// ---------------------------------------------------------------- worker
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const client = new BurnishClient(worker, onWorkerEvent);
const request = (type, payload, transfer) =>
  concerning(CONCERNS[type], () => client.request(type, payload, transfer));

function onWorkerEvent({ type, payload }) {
  try {
    if (type === OUT.PROGRESS) showProgress(payload.reports);
    else if (type === OUT.METRICS) showResults(payload);
    else if (type === OUT.LOG) log(payload.message);
    else if (type === OUT.ERROR) showError(payload);
    else if (type === OUT.DONE) trainingEnded(payload);
  } catch (err) {
    showError(new Error(`Could not show the worker's ${type} message: ${err.message}`), type === OUT.METRICS ? 'results' : 'train');
  }
}

function log(message) {
  const li = document.createElement('li');
  li.textContent = message;
  $('log').append(li);
}

// ---------------------------------------------------------------- formatting helpers
const fmt = (x, digits = 4) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '—');
const sci = (x) => (typeof x === 'number' && Number.isFinite(x) ? x.toExponential(2) : '—');
const pct = (x) => (typeof x === 'number' ? `${(100 * x).toFixed(1)}%` : '—');
function bytes(n) {
  if (!n) return '0 B';
  const units = ['B', 'kB', 'MB', 'GB'];
  const i = Math.min(units.length - 1, Math.floor(Math.log10(n) / 3));
  return `${(n / 1000 ** i).toFixed(i ? 1 : 0)} ${units[i]}`;
}
function millions(n) {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

/** Fills a <table> from a header row and body rows (cells are text; a th cell is {th: text}). */
function fillTable(table, header, rows) {
  const cell = (tag, value) => {
    const el = document.createElement(value?.th !== undefined ? 'th' : tag);
    el.textContent = value?.th ?? value ?? '';
    return el;
  };
  const thead = document.createElement('thead');
  const headRow = thead.insertRow();
  header.forEach((h) => headRow.append(cell('th', h)));
  const tbody = document.createElement('tbody');
  for (const row of rows) {
    const tr = tbody.insertRow();
    row.forEach((v) => tr.append(cell('td', v)));
  }
  table.replaceChildren(thead, tbody);
}

// ---------------------------------------------------------------- backend
const forceCpu = params.get('backend') === 'cpu';
$('force-cpu').checked = forceCpu;
$('force-cpu').addEventListener('change', () => {
  const url = new URL(location.href);
  if ($('force-cpu').checked) url.searchParams.set('backend', 'cpu');
  else url.searchParams.delete('backend');
  $('backend-reload').href = url.href;
  $('backend-note').hidden = $('force-cpu').checked === forceCpu;
});

const backendReady = request(IN.INIT, { forceCpu }).then((info) => {
  state.backend = info;
  $('backend').textContent =
    info.kind === 'webgpu'
      ? `Backend: WebGPU — ${info.adapter}${info.note ? ` (${info.note})` : ''}`
      : `Backend: CPU (WebAssembly) — ${info.note ?? info.adapter ?? ''}`;
  return info;
});
backendReady.catch((err) => {
  $('backend').textContent = 'Backend: not available';
  showError(err, 'backend');
});

// ---------------------------------------------------------------- model
$('bundled-model-name').textContent = bundledModel;
const radioValue = (name) => document.querySelector(`input[name="${name}"]:checked`).value;
const fileKey = (...files) => files.map((f) => f && `${f.name}:${f.size}:${f.lastModified}`).join('|');

/** Fetches a URL to bytes, reporting progress; a 404 on an optional file gives undefined. */
async function fetchBytes(url, onProgress, { optional = false } = {}) {
  const res = await fetch(url);
  if (!res.ok) {
    if (optional && res.status === 404) return undefined;
    throw new Error(`Could not fetch ${url}: HTTP ${res.status}. Are the bundled assets installed (python3 scripts/fetch_assets.py)?`);
  }
  const total = Number(res.headers.get('content-length')) || 0;
  const reader = res.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onProgress?.(loaded, total);
  }
  const out = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

const readFile = async (file) => new Uint8Array(await file.arrayBuffer());

function currentModelKey() {
  if (radioValue('model-source') === 'bundled') return `bundled:${bundledModel}`;
  return `local:${fileKey($('model-config').files[0], $('model-tokenizer').files[0], $('model-weights').files[0], $('model-tokenizer-config').files[0])}`;
}

async function modelBytes() {
  if (radioValue('model-source') === 'bundled') {
    const base = `assets/models/${encodeURIComponent(bundledModel)}/`;
    const status = $('model-status');
    const config = await fetchBytes(base + 'config.json');
    const tokenizer = await fetchBytes(base + 'tokenizer.json');
    const tokenizerConfig = await fetchBytes(base + 'tokenizer_config.json', null, { optional: true });
    const weights = await fetchBytes(base + 'model.safetensors', (loaded, total) => {
      status.textContent = `downloading weights: ${bytes(loaded)}${total ? ` of ${bytes(total)}` : ''}`;
    });
    return { config, tokenizer, weights, tokenizerConfig };
  }
  const [config, tokenizer, weights] = ['model-config', 'model-tokenizer', 'model-weights'].map((id) => $(id).files[0]);
  if (!config || !tokenizer || !weights) {
    throw new Error('Choose config.json, tokenizer.json and model.safetensors (or use the bundled model).');
  }
  const tokenizerConfigFile = $('model-tokenizer-config').files[0];
  return {
    config: await readFile(config),
    tokenizer: await readFile(tokenizer),
    weights: await readFile(weights),
    tokenizerConfig: tokenizerConfigFile ? await readFile(tokenizerConfigFile) : undefined,
  };
}

async function loadModel() {
  clearErrors('model');
  await concerning('backend', () => backendReady);
  const key = currentModelKey();
  const payload = await concerning('model', modelBytes);
  $('model-status').textContent = 'loading…';
  const transfer = Object.values(payload).filter(Boolean).map((b) => b.buffer);
  try {
    const info = await request(IN.LOAD_MODEL, payload, transfer);
    state.model = info;
    modelKey = key;
    $('model-status').textContent = 'loaded';
    $('model-summary').textContent =
      `${info.architecture} (${info.model_type}) · ${millions(info.parameters)} parameters · ` +
      `${info.layers} layers · hidden size ${info.hidden_size} · ${info.heads} heads · ` +
      `vocabulary ${info.vocab_size} · max positions ${info.max_position_embeddings} · ` +
      `weights ${bytes(info.weights_bytes)}` +
      (info.labels?.length ? ` · labels in config: ${info.labels.join(', ')}` : '');
  } catch (err) {
    $('model-status').textContent = '';
    throw err;
  }
}

const ensureModel = () => (modelKey === currentModelKey() ? null : loadModel());

for (const id of ['model-config', 'model-tokenizer', 'model-weights', 'model-tokenizer-config']) {
  $(id).addEventListener('change', () => (document.querySelector('input[name="model-source"][value="local"]').checked = true));
}
$('load-model').addEventListener('click', guarded('model', loadModel));

// ---------------------------------------------------------------- data
function currentDataKey() {
  return radioValue('data-source') === 'bundled' ? `bundled:${BUNDLED_DATA}` : `file:${fileKey($('data-file').files[0])}`;
}

/** Picks the likely text and label columns: exact names first, then look-alikes, then first/last. */
function guessColumns(columns) {
  const lower = columns.map((c) => c.toLowerCase());
  const find = (names) => {
    for (const n of names) if (lower.includes(n)) return lower.indexOf(n);
    for (const n of names) {
      const i = lower.findIndex((c) => c.includes(n));
      if (i >= 0) return i;
    }
    return -1;
  };
  let text = find(['text', 'sentence', 'review', 'content', 'document', 'comment']);
  let label = find(['label', 'category', 'class', 'sentiment', 'target']);
  if (text < 0) text = 0;
  if (label < 0 || label === text) label = columns.length > 1 ? columns.length - 1 : -1;
  if (label === text) label = -1;
  return { text, label };
}

function fillSelect(select, columns, selected, { allowNone = false } = {}) {
  select.replaceChildren(...columns.map((c, i) => new Option(c, c, false, i === selected)));
  if (allowNone) select.append(new Option('(none)', '', false, selected < 0));
}

async function inspectData() {
  clearErrors('data');
  await concerning('backend', () => backendReady);
  const key = currentDataKey();
  const generation = ++dataGeneration;
  let bytesIn, name;
  if (radioValue('data-source') === 'bundled') {
    bytesIn = await concerning('data', () => fetchBytes(BUNDLED_DATA));
    name = BUNDLED_DATA.split('/').pop();
  } else {
    const file = $('data-file').files[0];
    if (!file) throw Object.assign(new Error('Choose a data file (or use the bundled dataset).'), { concerns: 'data' });
    bytesIn = await readFile(file);
    name = file.name;
  }
  const info = await request(IN.INSPECT_DATA, { bytes: bytesIn, fileName: name }, [bytesIn.buffer]);
  if (generation !== dataGeneration) return; // a newer inspection superseded this one
  state.data = info;
  dataKey = key;
  $('data-summary').textContent = `${info.name}: ${info.format.toUpperCase()}, ${info.row_count} rows, columns: ${info.columns.join(', ')}`;
  fillTable($('data-preview'), info.columns, info.preview);
  const guess = guessColumns(info.columns);
  fillSelect($('text-column'), info.columns, guess.text);
  fillSelect($('label-column'), info.columns, guess.label, { allowNone: true });
}

const ensureData = () => (dataKey === currentDataKey() ? null : inspectData());

$('data-file').addEventListener('change', guarded('data', () => {
  if (!$('data-file').files[0]) return;
  document.querySelector('input[name="data-source"][value="file"]').checked = true;
  return inspectData();
}));
for (const radio of document.querySelectorAll('input[name="data-source"]')) {
  radio.addEventListener('change', guarded('data', () => (radio.value === 'file' && !$('data-file').files[0] ? null : ensureData())));
}

$('eval-file').addEventListener('change', guarded('data', async () => {
  const file = $('eval-file').files[0];
  if (!file) return;
  await backendReady;
  const data = await readFile(file);
  const info = await request(IN.INSPECT_EVAL_DATA, { bytes: data, fileName: file.name }, [data.buffer]);
  $('eval-summary').textContent = `${info.name}: ${info.format.toUpperCase()}, ${info.row_count} rows (used instead of the eval fraction)`;
  $('eval-clear').hidden = false;
}));
$('eval-clear').addEventListener('click', guarded('data', async () => {
  await request(IN.CLEAR_EVAL_DATA);
  $('eval-file').value = '';
  $('eval-summary').textContent = '';
  $('eval-clear').hidden = true;
}));

// Preview the bundled dataset right away (it is small); failures show in the Data section.
backendReady.then(guarded('data', () => ensureData()), () => {});

// ---------------------------------------------------------------- recipe and training
const RECIPE_FIELDS = {
  epochs: 'epochs', lr: 'lr', batch_size: 'batch-size', max_len: 'max-len',
  warmup_ratio: 'warmup-ratio', weight_decay: 'weight-decay', seed: 'seed', eval_fraction: 'eval-fraction',
};

/** The recipe's numbers; the column choices are added once the data is inspected. */
function readRecipe() {
  const recipe = {};
  for (const [key, id] of Object.entries(RECIPE_FIELDS)) {
    const input = $(id);
    const value = Number(input.value);
    if (input.value.trim() === '' || !Number.isFinite(value)) {
      throw Object.assign(new Error(`${input.labels[0].textContent.trim()} must be a number.`), { concerns: 'recipe' });
    }
    recipe[key] = value;
  }
  return recipe;
}

function setTrainingButtons(running) {
  $('start').disabled = running;
  $('pause').disabled = !running;
  $('stop').disabled = !running;
  $('pause').textContent = 'Pause';
}

async function startTraining() {
  clearErrors('backend', 'model', 'data', 'recipe', 'train', 'results');
  const recipe = readRecipe(); // before any loading, so a typo fails fast
  $('start').disabled = true;
  try {
    await concerning('backend', () => backendReady);
    await ensureModel();
    await ensureData(); // fills the column selects
    recipe.text_column = $('text-column').value || undefined;
    recipe.label_column = $('label-column').value || undefined;
    Object.assign(state, { summary: null, losses: [], metrics: null, done: false, recipe });
    $('loss-log').replaceChildren();
    $('epoch-log').replaceChildren();
    $('log').replaceChildren();
    $('results').hidden = true;
    const summary = await request(IN.TRAIN, state.recipe);
    state.summary = summary;
    state.training = true;
    setTrainingButtons(true);
    $('progress-bar').max = summary.total_steps;
    $('progress-bar').value = 0;
    $('progress').textContent = `step 0/${summary.total_steps}`;
    const report = summary.load_report ?? { initialized: [], unexpected: [] };
    $('train-summary').textContent =
      `${summary.train_count} training rows, ${summary.eval_count} evaluation rows` +
      (summary.skipped_rows ? `, ${summary.skipped_rows} rows skipped` : '') +
      ` · labels: ${summary.labels.join(', ')} · ${summary.total_steps} steps` +
      ` · newly initialised weights: ${report.initialized.length ? report.initialized.join(', ') : 'none'}` +
      (report.unexpected.length ? ` · unused weights in the file: ${report.unexpected.length}` : '');
  } catch (err) {
    $('start').disabled = false;
    throw err;
  }
}

function showProgress(reports) {
  const items = [];
  for (const r of reports) {
    state.losses.push(r.loss);
    const li = document.createElement('li');
    li.dataset.step = r.step;
    li.dataset.loss = r.loss;
    li.textContent = `step ${r.step}: loss ${fmt(r.loss)} · lr ${sci(r.lr)} · grad norm ${fmt(r.grad_norm, 3)}`;
    items.push(li);
    if (r.epoch_end) {
      const e = r.epoch_end;
      const li2 = document.createElement('li');
      li2.textContent =
        `epoch ${e.epoch} ended at step ${e.step}: train loss ${fmt(e.train_loss)}` +
        (e.eval ? ` · eval loss ${fmt(e.eval.loss)} · accuracy ${pct(e.eval.accuracy)} · macro-F1 ${fmt(e.eval.macro_f1, 3)}` : '');
      $('epoch-log').append(li2);
    }
  }
  $('loss-log').append(...items);
  const last = reports[reports.length - 1];
  if (!last) return;
  $('progress-bar').max = last.total_steps;
  $('progress-bar').value = last.step;
  $('progress').textContent =
    `step ${last.step}/${last.total_steps} · epoch ${last.epoch}/${last.epochs} · loss ${fmt(last.loss)} · ` +
    `${fmt(last.examples_per_s, 0)} ex/s · ${fmt(last.tokens_per_s, 0)} tokens/s · ${fmt(last.elapsed_s, 1)} s`;
}

function trainingEnded({ ok, stopped, step }) {
  state.training = false;
  state.done = true;
  setTrainingButtons(false);
  log(ok ? (stopped ? `Stopped at step ${step}.` : 'Training finished.') : `Training failed at step ${step}.`);
}

$('start').addEventListener('click', guarded('train', startTraining));
$('pause').addEventListener('click', guarded('train', async () => {
  const resume = $('pause').textContent === 'Resume';
  await request(resume ? IN.RESUME : IN.PAUSE);
  $('pause').textContent = resume ? 'Pause' : 'Resume';
}));
$('stop').addEventListener('click', guarded('train', async () => {
  $('stop').disabled = true;
  $('pause').disabled = true;
  await request(IN.STOP);
}));

// ---------------------------------------------------------------- results
function showResults({ metrics, predictions = [] }) {
  state.metrics = metrics;
  $('metric-accuracy').textContent = pct(metrics.accuracy);
  $('metric-f1').textContent = fmt(metrics.macro_f1, 3);
  $('metric-loss').textContent = fmt(metrics.loss);
  $('metric-count').textContent = String(metrics.count);
  fillTable(
    $('per-class'),
    ['label', 'precision', 'recall', 'F1', 'support'],
    metrics.per_class.map((c) => [{ th: c.label }, fmt(c.precision, 3), fmt(c.recall, 3), fmt(c.f1, 3), String(c.support)]),
  );
  fillTable(
    $('confusion'),
    ['gold \\ predicted', ...metrics.labels],
    metrics.confusion.map((row, gold) => [{ th: metrics.labels[gold] }, ...row.map(String)]),
  );
  fillTable(
    $('predictions'),
    ['text', 'gold', 'predicted', 'confidence'],
    predictions.slice(0, 20).map((p) => [p.text, p.gold, p.label, pct(p.confidence)]),
  );
  for (const [i, p] of predictions.slice(0, 20).entries()) {
    if (p.gold !== p.label) $('predictions').tBodies[0].rows[i].classList.add('wrong');
  }
  $('results').hidden = false;
}

// ---------------------------------------------------------------- try it
$('try-button').addEventListener('click', guarded('try', async () => {
  clearErrors('try');
  const text = $('try-text').value;
  if (!text.trim()) throw Object.assign(new Error('Type some text to classify first.'), { concerns: 'try' });
  await ensureModel();
  const prediction = await request(IN.PREDICT, { text });
  state.prediction = prediction;
  const labels = state.summary?.labels ?? state.model?.labels ?? [];
  const name = (i) => labels[i] ?? `class ${i}`;
  const title = document.createElement('p');
  title.textContent = `Predicted: ${prediction.label} (${pct(prediction.probabilities[prediction.label_id])})`;
  const list = document.createElement('ul');
  prediction.probabilities.forEach((p, i) => {
    const li = document.createElement('li');
    li.textContent = `${name(i)}: ${pct(p)}`;
    list.append(li);
  });
  $('try-result').replaceChildren(title, list);
}));

// ---------------------------------------------------------------- export
function addDownload(name, blob) {
  const url = URL.createObjectURL(blob);
  exportUrls.push(url);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.textContent = `${name} (${bytes(blob.size)})`;
  const li = document.createElement('li');
  li.append(a);
  $('export-links').append(li);
}

$('export').addEventListener('click', guarded('export', async () => {
  clearErrors('export');
  $('export').disabled = true;
  try {
    const files = await request(IN.EXPORT);
    exportUrls.forEach((u) => URL.revokeObjectURL(u));
    exportUrls = [];
    $('export-links').replaceChildren();
    for (const { name, bytes: data } of files) addDownload(name, new Blob([new Uint8Array(data)]));
    const json = (value) => new Blob([JSON.stringify(value, null, 2) + '\n'], { type: 'application/json' });
    addDownload('metrics.json', json({ metrics: state.metrics, losses: state.losses, recipe: state.recipe, backend: state.backend }));
    addDownload('recipe.json', json(state.recipe));
  } finally {
    $('export').disabled = false;
  }
}));
