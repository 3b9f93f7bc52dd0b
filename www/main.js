// The studio page: reads files and form fields, talks to the wasm worker through
// BurnishClient, and renders data checks, model info, live charts, results and exports.
// `window.burnishState` mirrors what the page shows, for the browser tests.

import { BurnishClient, CONCERNS, IN, OUT } from './protocol.js';
import { applyLanguage, initialLanguage, saveLanguage, t } from './i18n.js';
import { CompareCharts, LabelChart, MlmChart, TrainingCharts, chartsAvailable } from './charts.js';
import { fetchHubModel, fflate, fileBytes, pickModelFiles, readBody } from './sources.js';
import { DECODER_RUN, discardSavedRun, opfsAvailable, readSavedRun, saveRunStart, savedFile } from './saved-run.js';
import { forgetRun, listRuns, rememberRun, runsAvailable } from './runs.js';
import { currentTask, initTasks, renderSteps, showTask } from './views/tasks.js';
import { layerPlan, renderLayerPicture, startText } from './views/layers.js';
import { demoWanted, startDemo } from './views/demo.js';
import { renderGallery } from './views/gallery.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const bundledModel = params.get('model') || 'all-MiniLM-L6-v2';
const BUNDLED_DATA = 'assets/data/sentiment-demo.csv';
const SAMPLE_DOMAIN = 'assets/data/movie-domain.txt';
const DATA_EXTENSIONS = ['.csv', '.tsv', '.tab', '.jsonl', '.ndjson', '.json', '.txt', '.text'];

const state = (window.burnishState = {
  backend: null, // {kind, adapter, note, mode, gpu, measurement} (src/web/backend.rs BackendReport)
  wasmDownload: null, // {loaded, total, wire}: the wasm module's download
  model: null, // loadModel's summary + {source}
  task: null, // the chosen task (views/tasks.js): classify, adapt, chat, continue, compare, multitask
  layerPicture: null, // the recipe's layer picture: [{name, state, lrFactor, start}] top first
  gallery: null, // the model gallery's rows: [{id, parameters, total}] (memory for the form's recipe)
  runs: [], // the remembered runs (runs.js), newest first: {id, model, data, lr, accuracy}
  memory: null, // estimateMemory's answer
  data: null, // inspectData's summary
  evalData: null, // inspectEvalData's summary
  checks: null, // checkData's answer
  summary: null, // startTraining's summary
  recipe: null, // the recipe of the current run
  losses: [], // one number per step, in order
  lrs: [],
  evals: [], // {step, accuracy, macro_f1, loss} from periodic/epoch evaluations
  before: null, // metrics at step 0
  metrics: null, // latest final metrics
  predictions: [],
  prediction: null,
  charts: null, // points drawn per chart
  training: false,
  paused: false,
  done: false,
  exported: null, // {name, files, size}
  errors: [], // {message, concerns, step}
  mixFiles: [], // training files added for data mixing: {name, row_count, columns}
  mixture: null, // mixturePlan's answer (or the run's): [{name, rows, probability, per_epoch, passes}]
  drawn: null, // examples drawn from each training file so far (during a mixed run)
  compare: null, // {summary, losses: number[][], evals: {step, accuracy}[][], results, done, stopped}
  presets: [], // strategyPresets()
  savedRun: null, // {meta, progress} of an unfinished run found in OPFS at load
  checkpoints: [], // steps at which this run's checkpoints were written
  domain: null, // setDomainData's summary of the domain text (masked-LM adaptation)
  adaptation: null, // {summary, losses, history, done, step} of the run's adaptation stage
  adaptedExport: null, // {name, size, files} of the downloaded adapted encoder
  tasks: [], // multi-task: added task files {name, file, row_count, columns}
  multitask: null, // {summary, losses[][], evals[][], drawn, metrics, done, stopped, predictions, exported}
  decoder: null, // the loaded causal LM's summary (+ source)
  lmData: null, // {name, columns, rows} of the decoder's training file
  lmCheckpoints: [], // steps of the decoder run whose checkpoint was written to OPFS
  lmSavedRun: null, // {meta, progress} of an unfinished decoder run found in OPFS at load
  decoderSource: null, // what was loaded: {kind: 'bundled'} or {kind: 'files', files: File[]}
  lmFile: null, // the decoder's training File
  lmMemory: null, // estimateDecoderMemory's answer {total, trainable, largest_tensor, warnings, …}
  lm: null, // {summary, losses, history, done, stopped, before: {prompt: text}, after: {prompt: text}, exported}
  generation: null, // {id, prompt, text, tokens, done, stopped, tokens_per_s, tuned}
});
// The data files as chosen (null: the bundled sample), kept to store them with a saved run.
const sourceFiles = { main: null, extras: [], eval: null };
let modelKey = null; // which source the loaded model came from
let dataGeneration = 0; // only the newest inspection is rendered

// ---------------------------------------------------------------- language
const langSelect = $('lang');
langSelect.value = initialLanguage();
applyLanguage(langSelect.value);
langSelect.addEventListener('change', () => {
  applyLanguage(langSelect.value);
  saveLanguage(langSelect.value);
  renderDataSummary();
  renderChecks();
  renderMemory();
  renderSteps();
  updateLayerPicture();
  setTrainingButtons(state.training);
});

// ---------------------------------------------------------------- intro
try {
  if (localStorage.getItem('burnish.introSeen') === '1') $('intro').open = false;
} catch {
  // storage unavailable: keep the intro open
}
$('intro-hide').addEventListener('click', () => {
  $('intro').open = false;
  try {
    localStorage.setItem('burnish.introSeen', '1');
  } catch {
    // not fatal
  }
});

// ---------------------------------------------------------------- errors
const SECTION_ERROR = {
  backend: 'backend-error', model: 'model-error', data: 'data-error', columns: 'columns-error', eval: 'eval-error',
  decoder: 'decoder-error', generate: 'generate-error', lm: 'lm-error', runs: 'runs-error',
  recipe: 'recipe-error', mix: 'mix-error', domain: 'domain-error', multitask: 'multitask-error', compare: 'compare-error', train: 'train-error', results: 'results-error', try: 'try-error', export: 'export-error',
};

function showError(err, concerns = err?.concerns) {
  const message = err instanceof Error ? err.message : String(err?.message ?? err);
  const step = err?.step ?? null;
  state.errors.push({ message, concerns: concerns ?? null, step });
  const near = $(SECTION_ERROR[concerns]) ?? (concerns?.startsWith?.('field:') ? fieldError(concerns.slice(6)) : null);
  if (near) {
    near.textContent = message;
    near.hidden = false;
    $('error').hidden = true;
    near.scrollIntoView?.({ block: 'nearest' });
  } else {
    $('error').textContent = message;
    $('error').hidden = false;
  }
}

function clearErrors(...concerns) {
  for (const c of concerns) {
    const el = $(SECTION_ERROR[c]);
    if (el) el.hidden = true;
  }
  $('error').hidden = true;
}

const failWith = (concerns, message) => {
  throw Object.assign(new Error(message), { concerns });
};

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
const request = (type, payload, transfer) => {
  if (STOP_REQUESTS.has(type) && !watch.stopAsked) watch.stopAsked = performance.now();
  return concerning(CONCERNS[type], () => client.request(type, payload, transfer));
};
// The browser benchmark (bench/browser.mjs) times the loaded models through the worker.
window.burnishBench = (payload) => client.request(IN.BENCH, payload);
// Fault drills (worker.js): real faults on demand, to try the recovery (tests/browser/reliability.test.mjs).
window.burnishFaultDrill = (kind) => client.request(IN.FAULT_DRILL, { kind });

// ---------------------------------------------------------------- engine faults
// The worker beats every second (OUT.ALIVE). A worker that misses beats for WATCHDOG_S (a trap
// that left it dead, a synchronous call that never returns) or that does not honour Stop within
// STOP_GRACE_S, a wasm trap and a lost or failing GPU all end the same way: the worker is
// terminated, the page says what happened, and a restart (a reload, on the CPU if the GPU
// failed) offers to resume the run from its last checkpoint in OPFS.
const WATCHDOG_S = Number(params.get('watchdog')) > 0 ? Number(params.get('watchdog')) : 180;
const STOP_GRACE_S = Math.min(30, WATCHDOG_S);
const watch = { lastAlive: performance.now(), stopAsked: 0, fault: null };
const STOP_REQUESTS = new Set([IN.STOP, IN.LM_STOP, IN.GENERATE_STOP, IN.COMPARE_STOP, IN.MULTITASK_STOP]);
const RUN_ENDED = new Set([OUT.DONE, OUT.LM_DONE, OUT.COMPARE_DONE, OUT.MT_DONE]);

const FAULT_TEXT = {
  trap: (m) => `The engine crashed (a trap in the WebAssembly module: ${m}).`,
  hang: (m) => `The engine stopped responding (${m}).`,
  stop: (m) => `The engine did not stop (${m}).`,
  'gpu-lost': (m) => `The GPU device was lost (${m}): the GPU was reset, its driver restarted, or the browser took it back.`,
  'gpu-oom': (m) => `The GPU ran out of memory (${m}): a smaller batch size or max length, LoRA, or the CPU backend needs less.`,
  'gpu-error': (m) => `The GPU reported an error (${m}).`,
};
const GPU_FAULTS = new Set(['gpu-lost', 'gpu-oom', 'gpu-error']);

/** Ends the worker after a fault and offers a restart that can resume the saved run. */
async function engineFault({ kind, message }) {
  if (watch.fault) return;
  watch.fault = { kind, message };
  worker.terminate();
  state.training = false;
  const text = (FAULT_TEXT[kind] ?? FAULT_TEXT.trap)(message);
  const saved = (await readSavedRun().catch(() => null)) ?? (await readSavedRun(DECODER_RUN).catch(() => null));
  const after = saved
    ? ` Your run was saved at step ${saved.progress.step} of ${saved.progress.total_steps}: restart the engine to resume it from there.`
    : ' Nothing was saved to resume (checkpoints are off, or none was written yet): restart the engine to start again.';
  $('fault-text').textContent = text + after;
  $('fault-actions').hidden = false;
  $('fault-restart-cpu').hidden = backendMode === 'cpu';
  $('fault-banner').hidden = false;
  $('fault-banner').scrollIntoView?.({ block: 'nearest' });
  (GPU_FAULTS.has(kind) ? $('fault-restart-cpu') : $('fault-restart')).focus();
  document.querySelectorAll('button').forEach((b) => {
    if (!b.closest('#fault-banner')) b.disabled = true;
  });
}

/** A restart is a reload (a fresh worker and wasm instance), with `recover` saying why. */
function restartEngine(cpu) {
  const url = new URL(location.href);
  url.searchParams.set('recover', watch.fault?.kind ?? 'trap');
  if (cpu) url.searchParams.set('backend', 'cpu');
  location.assign(url.href);
}
$('fault-restart').addEventListener('click', () => restartEngine(false));
$('fault-restart-cpu').addEventListener('click', () => restartEngine(true));

// After a restart: say why it happened (the resume banners offer the saved run).
if (params.get('recover')) {
  const kind = params.get('recover');
  $('fault-text').textContent = `The engine was restarted after a fault (${kind}${params.get('backend') === 'cpu' ? '; it now runs on the CPU' : ''}). If a run was saved, resume it from its last checkpoint below.`;
  $('fault-actions').hidden = true;
  $('fault-banner').hidden = false;
  const url = new URL(location.href);
  url.searchParams.delete('recover');
  history.replaceState(null, '', url.href);
}

setInterval(() => {
  if (watch.fault) return;
  const now = performance.now();
  const silent = (now - watch.lastAlive) / 1000;
  if (silent > WATCHDOG_S) engineFault({ kind: 'hang', message: `no answer for ${Math.round(silent)} s` });
  else if (watch.stopAsked && (now - watch.stopAsked) / 1000 > STOP_GRACE_S) engineFault({ kind: 'stop', message: `Stop was not honoured within ${STOP_GRACE_S} s` });
}, 1000);

/** Storage ran out (a checkpoint at `step`, or the run's files at the start when `step` is
 * null): says what was needed and what is left, and resolves true when the user chooses to train
 * on without checkpoints, false when they choose to stop. */
let quotaAnswer = null;
function askAboutStorage({ needed, free, step }) {
  const mb = (n) => (n == null ? 'an unknown amount' : bytes(n));
  const what = step == null ? 'Keeping this run\'s files for checkpoints' : `The checkpoint at step ${step}`;
  $('quota-text').textContent =
    `${what} needs ${mb(needed)}, and the browser refused to store it: its storage for this page is full (it estimates ${mb(free)} left). ` +
    'Free some space (or allow this site more storage) and start again, or train on without checkpoints: a crash would then lose the run. ' +
    (step == null ? 'Training starts when you choose.' : 'The run is paused until you choose.');
  $('quota-banner').hidden = false;
  $('quota-continue').focus();
  return new Promise((resolve) => (quotaAnswer = resolve));
}
for (const [id, go] of [['quota-continue', true], ['quota-stop', false]]) {
  $(id).addEventListener('click', () => {
    $('quota-banner').hidden = true;
    const answer = quotaAnswer;
    quotaAnswer = null;
    answer?.(go);
  });
}

/** What the browser still grants this origin, in bytes (null when it does not say). */
async function storageFree() {
  const e = await navigator.storage?.estimate?.().catch(() => null);
  return e?.quota != null ? Math.max(0, e.quota - (e.usage ?? 0)) : null;
}

/** Stores a run's description and files for checkpoints (`save`); `true` when it did. When
 * storage is full, asks first: false means train without checkpoints, and the user's "stop"
 * ends the start with a message. */
async function prepareCheckpoints(save, files, concerns) {
  try {
    await save();
    return true;
  } catch (err) {
    if (err?.name !== 'QuotaExceededError') {
      log(`Could not prepare checkpoints in this browser's storage (${err.message}); training without them.`);
      return false;
    }
    const needed = files.reduce((n, f) => n + (f?.size ?? 0), 0);
    if (!(await askAboutStorage({ needed, free: await storageFree(), step: null }))) {
      failWith(concerns, 'Training was not started: this browser\'s storage for the page is full.');
    }
    log('Training without checkpoints (storage is full).');
    return false;
  }
}

/** A checkpoint did not fit (worker): the run is paused until the user chooses. */
async function storageFull(payload) {
  const go = await askAboutStorage(payload);
  if (!go) await request(payload.concerns === 'lm' ? IN.LM_STOP : IN.STOP);
  await request(IN.CONTINUE_WITHOUT_CHECKPOINTS); // wakes the paused run: it trains on, or sees Stop
  if (go) log('Training goes on without checkpoints.');
}

function onWorkerEvent({ type, payload }) {
  if (type === OUT.ALIVE) {
    watch.lastAlive = performance.now();
    if (!payload?.busy) watch.stopAsked = 0; // nothing runs: Stop has nothing left to stop
    return;
  }
  if (RUN_ENDED.has(type) || (type === OUT.GEN_TOKENS && payload?.done)) watch.stopAsked = 0;
  try {
    if (type === OUT.FAULT) engineFault(payload);
    else if (type === OUT.QUOTA) storageFull(payload);
    else if (type === OUT.PROGRESS) showProgress(payload.reports);
    else if (type === OUT.METRICS) showResults(payload);
    else if (type === OUT.LOG) log(payload.key ? t(payload.key) : payload.message);
    else if (type === OUT.ERROR) showError(payload);
    else if (type === OUT.DONE) trainingEnded(payload);
    else if (type === OUT.CHECKPOINT) state.checkpoints.push(payload.step);
    else if (type === OUT.COMPARE_PROGRESS) showCompareProgress(payload.reports);
    else if (type === OUT.COMPARE_DONE) compareEnded(payload);
    else if (type === OUT.MLM_PROGRESS) showAdaptProgress(payload);
    else if (type === OUT.STAGE) classifierStageStarted(payload.summary);
    else if (type === OUT.MT_PROGRESS) showMultitaskProgress(payload.reports);
    else if (type === OUT.MT_DONE) multitaskEnded(payload);
    else if (type === OUT.LM_PROGRESS) showLmProgress(payload);
    else if (type === OUT.LM_DONE) lmEnded(payload);
    else if (type === OUT.LM_CHECKPOINT) state.lmCheckpoints.push(payload.step);
    else if (type === OUT.GEN_TOKENS) showGeneration(payload);
    else if (type === OUT.WASM_PROGRESS) showWasmProgress(payload);
    else if (type === OUT.BACKEND) showBackend(payload);
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
const pct = (x) => (typeof x === 'number' && Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '—');
function bytes(n) {
  if (!n) return '0 B';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  const i = Math.min(units.length - 1, Math.floor(Math.log10(n) / 3));
  return `${(n / 1000 ** i).toFixed(i ? 1 : 0)} ${units[i]}`;
}
const millions = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n));
function duration(s) {
  if (!Number.isFinite(s)) return '—';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** Fills a <table> from a header row and body rows (cells are text, or {th}, or {text, cls}). */
function fillTable(table, header, rows) {
  const cell = (tag, value) => {
    const el = document.createElement(value?.th !== undefined ? 'th' : tag);
    if (value?.node) el.append(value.node); // a control inside the cell
    else el.textContent = value?.th ?? value?.text ?? value ?? '';
    if (value?.cls) el.className = value.cls;
    if (value?.th !== undefined) el.scope = 'row';
    return el;
  };
  const thead = document.createElement('thead');
  const headRow = thead.insertRow();
  header.forEach((h) => {
    const th = cell('th', h);
    th.scope = 'col';
    headRow.append(th);
  });
  const tbody = document.createElement('tbody');
  for (const row of rows) {
    const tr = tbody.insertRow();
    row.forEach((v) => tr.append(cell('td', v)));
  }
  table.replaceChildren(thead, tbody);
}

// ---------------------------------------------------------------- backend
// ?backend=auto (default: time the loaded model on both and use the faster), cpu or webgpu.
const backendMode = ['cpu', 'webgpu'].includes(params.get('backend')) ? params.get('backend') : 'auto';
$('backend-choice').value = backendMode;
$('backend-choice').addEventListener('change', () => {
  const url = new URL(location.href);
  const v = $('backend-choice').value;
  if (v === 'auto') url.searchParams.delete('backend');
  else url.searchParams.set('backend', v);
  $('backend-reload').href = url.href;
  $('backend-note').hidden = v === backendMode;
});

const ms = (x) => `${x < 10 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US')} ms`;

/** The backend line: what runs, and why (forced, no adapter, or the measured figures). */
function showBackend(info) {
  state.backend = info;
  const gpuName = info.gpu ? `WebGPU (${info.gpu.adapter})` : 'WebGPU';
  const m = info.measurement;
  let why;
  if (info.measuring) why = `timing the loaded model on the CPU and on ${gpuName}…`;
  else if (m) {
    const gpu = m.gpu_ms != null ? ms(m.gpu_ms) : `did not finish within ${ms(m.gpu_limit_ms)}`;
    why = `measured faster on the loaded model (${m.what}): CPU ${ms(m.cpu_ms)}, ${gpuName} ${gpu}`; // the backend in use is the faster one
  } else if (info.mode === 'cpu') why = 'chosen in the menu below';
  else if (info.gpu?.software) why = `the WebGPU adapter (${info.gpu.adapter}) is a software emulation of a GPU; the loaded model is timed on both before a run`;
  else if (!info.gpu) why = (info.threads ?? 1) > 1 && info.threadsNote ? info.threadsNote : info.note ? 'no WebGPU adapter in this browser' : info.adapter ?? '';
  // How many threads the CPU trains on (worker.js: the threaded module when the page is
  // cross-origin isolated), and why only one when so.
  const threads = info.threads ?? 1;
  if (info.kind === 'cpu' && threads === 1 && info.threadsNote && why !== info.threadsNote) why = `${why}; ${info.threadsNote}`;
  const text =
    info.kind === 'webgpu'
      ? `Backend: WebGPU — ${info.adapter}${info.mode === 'webgpu' ? ' (chosen in the menu below)' : m ? `, ${why}` : ''}`
      : `Backend: CPU (WebAssembly, ${threads} thread${threads === 1 ? '' : 's'}) — ${why ?? info.adapter ?? ''}`;
  $('backend').textContent = info.measuring && info.kind === 'webgpu' ? `${text} (${why})` : text;
  $('backend').title = info.note ?? info.gpu?.note ?? ''; // the full reason, on hover
  $('backend').dataset.kind = info.kind;
}

/** The wasm module's download (first visit; later ones come from the HTTP cache). */
function showWasmProgress({ loaded, total, wire }) {
  state.wasmDownload = { loaded, total, wire };
  const bar = $('engine-progress');
  bar.hidden = loaded >= total;
  bar.max = total || 1;
  bar.value = loaded;
  $('engine-status').textContent =
    loaded >= total ? '' : `Downloading the training engine (WebAssembly, ${bytes(wire)} compressed): ${Math.floor((100 * loaded) / (total || 1))} %`;
}

// ?threads=N sets the CPU's thread count (1: the single-threaded module); default: every core.
const threadsWanted = Math.max(0, Math.min(16, Number.parseInt(params.get('threads') ?? '0', 10) || 0));
const backendReady = request(IN.INIT, { mode: backendMode, threads: threadsWanted }).then((info) => {
  applySchema(info.recipe_schema);
  showBackend(info);
  return info;
});
backendReady.catch((err) => {
  $('backend').textContent = 'Backend: not available';
  showError(err, 'backend');
});

// ---------------------------------------------------------------- data
/** Reads a File with a progress bar (the page stays responsive; parsing runs in the worker). */
async function readWithProgress(file, bar, status) {
  bar.hidden = false;
  bar.max = file.size || 1;
  bar.value = 0;
  const res = new Response(file.stream(), { headers: { 'content-length': String(file.size) } });
  return readBody(res, (loaded) => {
    bar.value = loaded;
    status.textContent = t('data.reading', { name: file.name, done: bytes(loaded), total: bytes(file.size) });
  }, file.name);
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
  let text = find(['text', 'sentence', 'review', 'content', 'document', 'comment', 'body', 'message']);
  let label = find(['label', 'category', 'class', 'sentiment', 'target', 'topic', 'tag']);
  if (text < 0) text = 0;
  if (label < 0 || label === text) {
    label = -1;
    for (let i = columns.length - 1; i >= 0; i--) {
      if (i !== text) {
        label = i;
        break;
      }
    }
  }
  return { text, label };
}

function fillSelect(select, columns, selected, { allowNone = false } = {}) {
  select.replaceChildren(...columns.map((c, i) => new Option(c, c, false, i === selected)));
  if (allowNone) select.append(new Option('(none)', '', false, selected < 0));
}

function checkExtension(name, concerns) {
  const lower = name.toLowerCase();
  if (!DATA_EXTENSIONS.some((e) => lower.endsWith(e))) {
    failWith(concerns, `${name}: unsupported file type. Use CSV (.csv), TSV (.tsv), JSON Lines (.jsonl) or plain text (.txt).`);
  }
}

/** Loads training data from a File (or the bundled sample when `file` is null). */
async function loadData(file) {
  clearErrors('data', 'columns');
  const generation = ++dataGeneration;
  const status = $('data-status');
  const bar = $('data-progress');
  let data, name;
  if (file) {
    checkExtension(file.name, 'data');
    if (file.size === 0) failWith('data', `${file.name}: the file is empty`);
    data = await readWithProgress(file, bar, status);
    name = file.name;
  } else {
    status.textContent = t('data.reading', { name: BUNDLED_DATA, done: '…', total: '…' });
    const res = await fetch(BUNDLED_DATA).catch((err) => failWith('data', `Could not fetch ${BUNDLED_DATA}: ${err.message}`));
    if (!res.ok) failWith('data', `Could not fetch ${BUNDLED_DATA}: HTTP ${res.status}. Are the bundled assets installed (python3 scripts/fetch_assets.py)?`);
    data = await readBody(res);
    name = BUNDLED_DATA.split('/').pop();
  }
  status.textContent = t('data.parsing', { name, size: bytes(data.length) });
  await concerning('backend', () => backendReady);
  let info;
  try {
    info = await request(IN.INSPECT_DATA, { bytes: data, fileName: name }, [data.buffer]);
  } finally {
    bar.hidden = true;
    if (generation === dataGeneration) status.textContent = '';
  }
  if (generation !== dataGeneration) return; // a newer file superseded this one
  state.data = info;
  sourceFiles.main = file;
  $('data-loaded').hidden = false;
  renderDataSummary();
  fillTable($('data-preview'), info.columns, info.preview);
  const guess = guessColumns(info.columns);
  fillSelect($('text-column'), info.columns, guess.text);
  fillSelect($('label-column'), info.columns, guess.label, { allowNone: true });
  renderTasks();
  await runChecks();
  if (state.mixFiles.length) await refreshMixture().catch((err) => showError(err, 'mix'));
}

function renderDataSummary() {
  const info = state.data;
  if (info) $('data-summary').textContent = t('data.loaded', { name: info.name, format: info.format.toUpperCase(), rows: info.row_count, columns: info.columns.join(', ') });
}

const labelChart = new LabelChart($('label-chart'));

/** Re-runs the data checks for the chosen columns and max length. */
async function runChecks() {
  if (!state.data) return;
  clearErrors('columns');
  const textColumn = $('text-column').value;
  const labelColumn = $('label-column').value;
  const maxLen = Math.max(2, Math.round(Number($('max-len').value)) || 64);
  try {
    state.checks = await request(IN.CHECK_DATA, { textColumn, labelColumn, maxLen });
  } catch (err) {
    state.checks = null;
    renderChecks();
    err.concerns = err.concerns === 'data' ? 'columns' : err.concerns;
    throw err;
  }
  renderChecks();
}

function renderChecks() {
  const list = $('data-checks');
  const c = state.checks;
  if (!c) {
    list.replaceChildren();
    return;
  }
  const items = [];
  const add = (key, level, text) => {
    const li = document.createElement('li');
    li.dataset.check = key;
    li.className = level;
    li.textContent = text;
    items.push(li);
  };
  add('rows', 'info', t('check.rows', { usable: c.usable, rows: c.rows }));
  if (c.empty_text) add('empty_text', 'warn', t('check.emptyText', { n: c.empty_text }));
  if (c.empty_label) add('empty_label', 'warn', t('check.emptyLabel', { n: c.empty_label }));
  if (c.duplicates) add('duplicates', c.conflicting_duplicates ? 'bad' : 'warn', t('check.duplicates', { n: c.duplicates, c: c.conflicting_duplicates }));
  if (c.label_counts.length === 1) add('one_class', 'bad', t('check.oneClass', { label: c.label_counts[0].label }));
  if (c.rare_labels.length) add('rare', 'warn', t('check.rare', { k: c.rare_threshold, list: c.rare_labels.map((l) => `${l.label} (${l.count})`).join(', ') }));
  const tk = c.tokens;
  if (tk) {
    if (tk.truncated) add('truncated', 'warn', t('check.truncated', { n: tk.truncated, of: tk.counted, max: tk.max_len, longest: tk.max, p95: tk.p95 }));
    else add('truncated', 'ok', t('check.notTruncated', { max: tk.max_len, longest: tk.max, mean: tk.mean.toFixed(1) }));
    if (tk.short) add('short', 'warn', t('check.short', { n: tk.short }));
    if (tk.counted < tk.of) add('sampled', 'info', t('check.sampled', { counted: tk.counted, of: tk.of }));
  } else {
    add('tokens', 'info', t('check.noTokenizer'));
  }
  if (c.eval) {
    add('eval_rows', 'info', t('check.evalRows', { usable: c.eval.usable, rows: c.eval.rows }));
    if (c.eval.unseen_labels.length) add('eval_unseen', 'bad', t('check.evalUnseen', { list: c.eval.unseen_labels.map((l) => `${l.label} (${l.count})`).join(', ') }));
    if (c.eval.in_train) add('eval_leak', 'warn', t('check.evalLeak', { n: c.eval.in_train }));
  }
  list.replaceChildren(...items);
  labelChart.show(c.label_counts, c.eval?.label_counts);
}

function dataFromEvent(files) {
  if (!files?.length) return null;
  if (files.length > 1) failWith('data', `Drop one file at a time (got ${files.length}).`);
  return files[0];
}

$('data-file').addEventListener('change', guarded('data', async () => {
  const file = dataFromEvent($('data-file').files);
  if (file) await loadData(file);
}));
$('data-bundled').addEventListener('click', guarded('data', () => loadData(null)));
const dropZone = $('drop-zone');
dropZone.addEventListener('keydown', (e) => {
  if (e.target === dropZone && (e.key === 'Enter' || e.key === ' ')) {
    e.preventDefault();
    $('data-file').click();
  }
});
for (const type of ['dragenter', 'dragover']) {
  dropZone.addEventListener(type, (e) => {
    e.preventDefault();
    dropZone.classList.add('dragging');
  });
}
dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
dropZone.addEventListener('drop', guarded('data', async (e) => {
  e.preventDefault();
  dropZone.classList.remove('dragging');
  const file = dataFromEvent(e.dataTransfer?.files);
  if (file) await loadData(file);
}));
// A file dropped anywhere else must not navigate away from the page (and lose the work).
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', (e) => e.preventDefault());

for (const id of ['text-column', 'label-column']) $(id).addEventListener('change', guarded('columns', runChecks));

// Evaluation data: held-out share or a separate file.
const evalMode = () => document.querySelector('input[name="eval-mode"]:checked').value;
async function loadEvalFile(file = $('eval-file').files[0]) {
  clearErrors('eval');
  if (!file) return;
  document.querySelector('input[name="eval-mode"][value="file"]').checked = true;
  checkExtension(file.name, 'eval');
  await concerning('backend', () => backendReady);
  const data = await fileBytes(file);
  try {
    state.evalData = await concerning('eval', () => request(IN.INSPECT_EVAL_DATA, { bytes: data, fileName: file.name }, [data.buffer]));
  } catch (err) {
    err.concerns = 'eval';
    state.evalData = null;
    $('eval-summary').textContent = '';
    throw err;
  }
  sourceFiles.eval = file;
  $('eval-summary').textContent = `${state.evalData.name}: ${state.evalData.row_count} rows`;
  await runChecks();
}
$('eval-file').addEventListener('change', guarded('eval', () => loadEvalFile()));
for (const radio of document.querySelectorAll('input[name="eval-mode"]')) {
  radio.addEventListener('change', guarded('eval', async () => {
    if (evalMode() === 'split') {
      await request(IN.CLEAR_EVAL_DATA);
      state.evalData = null;
      sourceFiles.eval = null;
      $('eval-summary').textContent = '';
      await runChecks();
    } else if ($('eval-file').files[0]) {
      await loadEvalFile();
    }
  }));
}

// The bundled sample is previewed right away, so that Start works immediately.
backendReady.then(guarded('data', () => (state.data ? null : loadData(null))), () => {});

// ---------------------------------------------------------------- model
$('bundled-model-name').textContent = bundledModel;
const radioValue = (name) => document.querySelector(`input[name="${name}"]:checked`).value;
const fileKey = (files) => [...files].map((f) => `${f.webkitRelativePath || f.name}:${f.size}:${f.lastModified}`).join('|');
let localFiles = []; // the last chosen files or folder

function currentModelKey() {
  const source = radioValue('model-source');
  if (source === 'bundled') return `bundled:${bundledModel}`;
  if (source === 'hub') return `hub:${$('hub-id').value.trim()}`;
  return `local:${fileKey(localFiles)}`;
}

function onLocalFiles(input) {
  localFiles = [...input.files];
  document.querySelector('input[name="model-source"][value="local"]').checked = true;
  $('model-files-summary').textContent = localFiles.length ? localFiles.map((f) => f.name).slice(0, 6).join(', ') + (localFiles.length > 6 ? ` … (${localFiles.length})` : '') : '';
}
$('model-files').addEventListener('change', () => onLocalFiles($('model-files')));
$('model-folder').addEventListener('change', () => onLocalFiles($('model-folder')));
$('hub-id').addEventListener('input', () => (document.querySelector('input[name="model-source"][value="hub"]').checked = true));

async function modelBytes() {
  const source = radioValue('model-source');
  const bar = $('model-progress');
  const status = $('model-status');
  const progress = ({ file, loaded, total, cached }) => {
    bar.hidden = false;
    bar.max = total || loaded || 1;
    bar.value = loaded;
    status.textContent = cached ? t('model.fromCache', { file }) : t('model.fetching', { file, done: bytes(loaded), total: total ? bytes(total) : '?' });
  };
  if (source === 'hub') return fetchHubModel($('hub-id').value, progress);
  if (source === 'local') return pickModelFiles(localFiles);
  const base = `assets/models/${encodeURIComponent(bundledModel)}/`;
  const get = async (file, optional = false) => {
    const res = await fetch(base + file).catch((err) => failWith('model', `Could not fetch ${base + file}: ${err.message}`));
    if (!res.ok) {
      if (optional && res.status === 404) return undefined;
      failWith('model', `Could not fetch ${base + file}: HTTP ${res.status}. Are the bundled assets installed (python3 scripts/fetch_assets.py)?`);
    }
    return readBody(res, (loaded, total) => progress({ file, loaded, total, cached: false }));
  };
  return {
    config: await get('config.json'),
    tokenizer: await get('tokenizer.json'),
    tokenizerConfig: await get('tokenizer_config.json', true),
    weights: await get('model.safetensors'),
    source: bundledModel,
  };
}

async function loadModel() {
  clearErrors('model');
  await concerning('backend', () => backendReady);
  const key = currentModelKey();
  const button = $('load-model');
  button.disabled = true;
  try {
    const files = await concerning('model', modelBytes);
    $('model-status').textContent = t('model.loading');
    const payload = { config: files.config, tokenizer: files.tokenizer, weights: files.weights, tokenizerConfig: files.tokenizerConfig };
    const transfer = Object.values(payload).filter(Boolean).map((b) => b.buffer);
    const info = await request(IN.LOAD_MODEL, payload, transfer);
    state.model = { ...info, source: files.source };
    modelKey = key;
    $('model-status').textContent = t('model.loaded');
    renderModelInfo();
    updateLayerPicture();
    if (files.recipe) applyRecipeText(new TextDecoder().decode(files.recipe), 'recipe.json in the archive');
    await updateMemory();
    if (state.data) await runChecks().catch((err) => showError(err, 'columns'));
  } catch (err) {
    $('model-status').textContent = '';
    throw err;
  } finally {
    $('model-progress').hidden = true;
    button.disabled = false;
  }
}

function renderModelInfo() {
  const m = state.model;
  const rows = [
    ['source', m.source],
    ['architecture', `${m.architecture} (${m.model_type})`],
    ['parameters', `${millions(m.parameters)} (${m.parameters.toLocaleString('en-US')})`],
    ['layers', m.layers],
    ['hidden size', `${m.hidden_size} · ${m.heads} attention heads · feed-forward ${m.intermediate_size}`],
    ['vocabulary', m.vocab_size.toLocaleString('en-US')],
    ['max positions', m.max_position_embeddings],
    ['weights file', bytes(m.weights_bytes)],
    ['classification head', m.labels?.length ? `labels ${m.labels.join(', ')} (reused when the data has exactly these labels)` : 'none (a new head is initialised for your labels)'],
  ];
  const dl = $('model-info');
  dl.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = String(v);
    dd.dataset.field = k;
    return [dt, dd];
  }));
  dl.hidden = false;
  $('max-len').max = String(m.max_position_embeddings);
}

/** What the memory estimates need from the form: batch × length and what the strategy trains. */
function memoryInputs() {
  const batch = Math.round(Number($('batch-size').value));
  const len = Math.round(Number($('max-len').value));
  if (!(batch >= 1 && len >= 1)) return null;
  // What the chosen strategy trains decides the gradients' and AdamW's share.
  const num = (id, fallback) => (Number.isFinite(Number($(id).value)) && $(id).value !== '' ? Number($(id).value) : fallback);
  const recipe = {
    strategy: $('strategy').value, top_layers: Math.max(0, Math.round(num('top-layers', 2))), freeze_embeddings: $('freeze-embeddings').checked,
    lora_rank: Math.max(1, Math.round(num('lora-rank', 8))), lora_targets: loraTargetBoxes().filter((b) => b.checked).map((b) => b.value),
  };
  return { batch, len, recipe, numLabels: state.checks?.label_counts?.length ?? 2 };
}

async function updateMemory() {
  if (!state.model) return;
  const inputs = memoryInputs();
  if (!inputs) return;
  const { batch, len, recipe, numLabels } = inputs;
  state.memory = await request(IN.ESTIMATE_MEMORY, { batchSize: batch, maxLen: len, recipe, numLabels });
  Object.assign(state.memory, { batch, len, recipe });
  renderMemory();
}

// ---------------------------------------------------------------- model gallery
// Suggested Hub models (views/gallery.js) with the memory this recipe needs on each.
async function updateGallery() {
  const inputs = memoryInputs();
  if (!inputs) return;
  const { batch, len, recipe, numLabels } = inputs;
  state.gallery = await renderGallery({
    estimate: (config) => request(IN.ESTIMATE_MEMORY_FOR_CONFIG, { config, batchSize: batch, maxLen: len, recipe, numLabels }),
    use: (g) => {
      const bundled = g.checked && g.id.endsWith(`/${bundledModel}`);
      document.querySelector(`input[name="model-source"][value="${bundled ? 'bundled' : 'hub'}"]`).checked = true;
      if (!bundled) $('hub-id').value = g.id;
      $('load-model').focus();
      log(`${g.id} chosen: press Load model${bundled ? '' : ' to download it from huggingface.co'}.`);
    },
    bytes, millions, tr: t,
  });
}

function renderMemory() {
  const m = state.memory;
  if (!m) return;
  $('memory-estimate').textContent = t('model.memory', {
    batch: m.batch, len: m.len, total: bytes(m.total), weights: bytes(m.weights), gradients: bytes(m.gradients),
    optimizer: bytes(m.optimizer), activations: bytes(m.activations),
    trainable: m.trainable.toLocaleString('en-US'), parameters: m.parameters.toLocaleString('en-US'),
  }) + m.warnings.map((w) => ` Warning: ${w}.`).join('');
}

const ensureModel = () => (modelKey === currentModelKey() && state.model ? null : loadModel());
$('load-model').addEventListener('click', guarded('model', loadModel));

// ---------------------------------------------------------------- recipe
// The recipe's form fields: recipe key → input id (and the name messages use). Kinds, limits,
// choices and help come from the engine's schema (recipe.rs `FIELDS`, `recipeSchema()`), so the
// page, the CLI and the engine check the same limits.
const RECIPE_FIELDS = {
  epochs: { id: 'epochs' },
  lr: { id: 'lr' },
  batch_size: { id: 'batch-size' },
  max_len: { id: 'max-len' },
  warmup_ratio: { id: 'warmup-ratio' },
  weight_decay: { id: 'weight-decay' },
  seed: { id: 'seed' },
  eval_fraction: { id: 'eval-fraction', name: 'Evaluation share' },
  eval_every: { id: 'eval-every' },
  top_layers: { id: 'top-layers' },
  unfreeze_every: { id: 'unfreeze-every' },
  layer_lr_decay: { id: 'layer-lr-decay' },
  grad_accum: { id: 'grad-accum', name: 'Gradient accumulation' },
  early_stopping_patience: { id: 'early-stopping-patience', name: 'Early stopping patience' },
  max_grad_norm: { id: 'max-grad-norm' },
  lora_rank: { id: 'lora-rank' },
  lora_alpha: { id: 'lora-alpha' },
  lora_dropout: { id: 'lora-dropout' },
  mix_temperature: { id: 'mix-temperature', name: 'Mixing temperature' },
  mlm_epochs: { id: 'mlm-epochs', name: 'Adaptation epochs' },
  mlm_lr: { id: 'mlm-lr', name: 'Adaptation learning rate' },
  mlm_probability: { id: 'mlm-probability', name: 'Masking share' },
};
/** The engine's recipe schema ({fields: [{name, kind, default, min, max, min_exclusive, …}]}), set when the engine loads. */
let recipeSchema = null;
function schemaField(key) {
  const f = recipeSchema?.fields.find((x) => x.name === key);
  if (!f) throw new Error(recipeSchema ? `internal: the engine's recipe has no field "${key}"` : 'The training engine is still loading; try again in a moment.');
  return f;
}
/** `fieldNumber` limits of recipe field `key`: {int, min | gt, max | lt} from the schema. */
function schemaLimits(key) {
  const f = schemaField(key);
  const out = { int: f.kind === 'integer' };
  if (f.min !== null) out[f.min_exclusive ? 'gt' : 'min'] = f.min;
  if (f.max !== null) out[f.max_exclusive ? 'lt' : 'max'] = f.max;
  return out;
}
/** Puts the schema's limits and help on the recipe inputs (min/max attributes, tooltips). */
function applySchema(schema) {
  recipeSchema = schema;
  for (const [key, { id }] of Object.entries(RECIPE_FIELDS)) {
    const f = schemaField(key);
    const input = $(id);
    if (f.min !== null) input.min = String(f.min);
    if (f.max !== null) input.max = String(f.max);
    if (f.help && !input.title) input.title = f.help;
  }
}
const LORA_TARGETS = ['query', 'key', 'value', 'attention_output', 'intermediate', 'output'];
const loraTargetBoxes = () => [...document.querySelectorAll('input[name="lora-target"]')];
const RECIPE_CHOICES = { strategy: 'strategy', schedule: 'schedule', early_stopping_metric: 'early-stopping-metric', task_sampling: 'task-sampling' }; // <select>s
const RECIPE_FLAGS = { freeze_embeddings: 'freeze-embeddings', gradual_unfreeze: 'gradual-unfreeze' }; // checkboxes
/** Every recipe key the engine knows (a recipe.json of any task, from the CLI or the page). */
const recipeKeys = () => recipeSchema.fields.map((f) => f.name);

/** A setting shows only when it applies: LoRA's own fields with the LoRA strategy, the number
 * of top layers with "top layers + head", the unfreezing interval with gradual unfreezing. */
function showStrategyFields() {
  const lora = $('strategy').value === 'lora';
  for (const el of document.querySelectorAll('[data-lora]')) el.hidden = !lora;
  const applies = { top: $('strategy').value === 'top', gradual: $('gradual-unfreeze').checked };
  for (const el of document.querySelectorAll('[data-when]')) el.hidden = !applies[el.dataset.when];
  updateLayerPicture();
}

// ---------------------------------------------------------------- the layer picture
// What the strategy freezes and trains, and each group's learning rate, drawn from the form as
// it changes (views/layers.js). Before a model is loaded it shows the bundled model's layers.
let pictureLayers = null;
fetch(`assets/models/${encodeURIComponent(bundledModel)}/config.json`)
  .then((res) => (res.ok ? res.json() : null))
  .then((config) => {
    if (Number.isInteger(config?.num_hidden_layers) && config.num_hidden_layers > 0) pictureLayers = config.num_hidden_layers;
    updateLayerPicture();
  })
  .catch(() => {});

function updateLayerPicture() {
  const layers = state.model?.layers ?? pictureLayers;
  const figure = $('layer-picture');
  if (!layers) {
    figure.hidden = true;
    return;
  }
  const num = (id, fallback) => (($(id).value !== '' && Number.isFinite(Number($(id).value))) ? Number($(id).value) : fallback);
  const recipe = {
    strategy: $('strategy').value, top_layers: Math.max(1, Math.round(num('top-layers', 2))), freeze_embeddings: $('freeze-embeddings').checked,
    gradual_unfreeze: $('gradual-unfreeze').checked, unfreeze_every: Math.max(0, Math.round(num('unfreeze-every', 0))),
    layer_lr_decay: num('layer-lr-decay', 1), epochs: Math.max(1, Math.round(num('epochs', 1))),
  };
  const plan = layerPlan({ layers, recipe });
  renderLayerPicture($('layer-stack'), plan, num('lr', 2e-4), t);
  state.layerPicture = plan.map((g) => ({ name: g.name, state: g.state, lrFactor: g.lrFactor, start: startText(g) }));
  figure.hidden = false;
}
for (const id of ['strategy', 'top-layers', 'freeze-embeddings', 'gradual-unfreeze', 'unfreeze-every', 'layer-lr-decay', 'lr', 'epochs']) {
  $(id).addEventListener('input', showStrategyFields);
  $(id).addEventListener('change', showStrategyFields);
}
showStrategyFields();

function fieldError(id) {
  let el = $(`err-${id}`);
  if (!el) {
    el = document.createElement('p');
    el.id = `err-${id}`;
    el.className = 'error field-error';
    el.setAttribute('role', 'alert');
    const help = $(`help-${id}`) ?? $(id);
    help.after(el);
  }
  return el;
}

function clearFieldErrors() {
  $('err-lora-targets')?.setAttribute('hidden', '');
  for (const { id } of Object.values(RECIPE_FIELDS)) {
    $(id).removeAttribute('aria-invalid');
    const el = $(`err-${id}`);
    if (el) el.hidden = true;
  }
}

/** The recipe from the form; a bad field throws a message shown next to that field. */
function readRecipe() {
  clearFieldErrors();
  const recipe = { task: $('task').value };
  for (const [key, field] of Object.entries(RECIPE_FIELDS)) {
    const spec = { ...field, ...schemaLimits(key) };
    const input = $(spec.id);
    const name = spec.name ?? (input.labels[0]?.textContent.trim() || key);
    const raw = input.value.trim();
    const value = Number(raw);
    let problem = null;
    if (raw === '' || !Number.isFinite(value)) problem = `${name} must be a number.`;
    else if (spec.int && !Number.isInteger(value)) problem = `${name} must be a whole number (got ${raw}).`;
    else if (spec.min !== undefined && value < spec.min) problem = `${name} must be at least ${spec.min} (got ${raw}).`;
    else if (spec.max !== undefined && value > spec.max) problem = `${name} must be at most ${spec.max} (got ${raw}).`;
    else if (spec.gt !== undefined && !(value > spec.gt)) problem = `${name} must be greater than ${spec.gt} (got ${raw}).`;
    else if (spec.lt !== undefined && !(value < spec.lt)) problem = `${name} must be below ${spec.lt} (got ${raw}).`;
    else if (key === 'max_len' && state.model && value > state.model.max_position_embeddings) {
      problem = `${name} must be at most the model's ${state.model.max_position_embeddings} positions (got ${raw}).`;
    }
    if (problem) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      failWith(`field:${spec.id}`, problem);
    }
    recipe[key] = value;
  }
  for (const [key, id] of Object.entries(RECIPE_CHOICES)) recipe[key] = $(id).value;
  for (const [key, id] of Object.entries(RECIPE_FLAGS)) recipe[key] = $(id).checked;
  recipe.lora_targets = loraTargetBoxes().filter((b) => b.checked).map((b) => b.value);
  if (recipe.strategy === 'lora' && !recipe.lora_targets.length) {
    loraTargetBoxes()[0].focus();
    failWith('field:lora-targets', 'Choose at least one layer for the LoRA adapters (query and value is the usual choice).');
  }
  recipe.mix_weights = mixWeights();
  if ($('text-column').value) recipe.text_column = $('text-column').value;
  if ($('label-column').value) recipe.label_column = $('label-column').value;
  recipe.domain_text_column = $('domain-column').value || 'text';
  return recipe;
}

/** Fills the generative-model section from a decoder recipe (causal-lm or instruct). */
function applyDecoderRecipe(recipe, source) {
  const set = (id, v) => { if (v !== undefined) $(id).value = String(v); };
  set('lm-task', recipe.task);
  set('lm-epochs', recipe.epochs);
  set('lm-lr', recipe.lr);
  set('lm-batch', recipe.batch_size);
  set('lm-max-len', recipe.max_len);
  if (recipe.strategy === 'full' || recipe.strategy === 'lora') $('lm-strategy').value = recipe.strategy;
  set('lm-lora-rank', recipe.lora_rank);
  set('lm-lora-alpha', recipe.lora_alpha);
  set('lm-lora-dropout', recipe.lora_dropout);
  if (Array.isArray(recipe.lora_targets)) {
    const option = [...$('lm-lora-targets').options].find((o) => o.value === recipe.lora_targets.join(','));
    if (option) $('lm-lora-targets').value = option.value;
    else log(`${source}: LoRA targets ${recipe.lora_targets.join(', ')} are not one of the page's choices; keeping ${$('lm-lora-targets').value}.`);
  }
  if (recipe.prompt_template !== undefined) $('lm-template-text').value = recipe.prompt_template;
  $('lm-strategy').dispatchEvent(new Event('change'));
  log(`Decoder recipe loaded from ${source} into the generative model's recipe.`);
}

/** Fills the form from a recipe JSON text (the page's download, or the CLI's recipe.json). */
function applyRecipeText(text, source) {
  let recipe;
  try {
    recipe = JSON.parse(text);
  } catch (err) {
    failWith('recipe', `${source} is not valid JSON: ${err.message}`);
  }
  if (!recipe || typeof recipe !== 'object' || Array.isArray(recipe)) failWith('recipe', `${source} must be a JSON object like {"epochs": 3, "lr": 5e-5}.`);
  const known = recipeKeys();
  const unknown = Object.keys(recipe).filter((k) => !known.includes(k));
  if (unknown.length) failWith('recipe', `${source}: unknown field ${unknown.map((k) => `"${k}"`).join(', ')} (known: ${known.join(', ')}).`);
  const tasks = schemaField('task').choices;
  if (recipe.task !== undefined && !tasks.includes(recipe.task)) {
    failWith('recipe', `${source}: task "${recipe.task}" is not supported (supported: ${tasks.join(', ')}).`);
  }
  for (const [key, spec] of Object.entries(RECIPE_FIELDS)) {
    if (recipe[key] === undefined) continue;
    if (typeof recipe[key] !== 'number') failWith('recipe', `${source}: "${key}" must be a number (got ${JSON.stringify(recipe[key])}).`);
  }
  for (const key of Object.keys(RECIPE_CHOICES)) {
    if (recipe[key] === undefined) continue;
    const options = schemaField(key).choices;
    if (!options.includes(recipe[key])) failWith('recipe', `${source}: "${key}" must be one of ${options.join(', ')} (got ${JSON.stringify(recipe[key])}).`);
  }
  for (const key of Object.keys(RECIPE_FLAGS)) {
    if (recipe[key] !== undefined && typeof recipe[key] !== 'boolean') failWith('recipe', `${source}: "${key}" must be true or false (got ${JSON.stringify(recipe[key])}).`);
  }
  if (recipe.task === 'causal-lm' || recipe.task === 'instruct') {
    showTask(recipe.task === 'instruct' ? 'chat' : 'continue');
    applyDecoderRecipe(recipe, source);
    return;
  }
  if (recipe.task === 'masked-lm') {
    // A masked-LM run (burnish train --task masked-lm) is the page's domain-adaptation stage.
    recipe = { ...recipe, mlm_epochs: recipe.epochs ?? 1, mlm_lr: recipe.lr ?? 1e-4, task: 'text-classification' };
    delete recipe.epochs;
    delete recipe.lr;
    log(`${source} is a masked-LM recipe: its epochs and learning rate are set as the domain-adaptation stage (Adapt only runs it alone).`);
    showTask('adapt');
  }
  const targets = recipe.lora_targets;
  if (targets !== undefined && (!Array.isArray(targets) || targets.some((x) => !LORA_TARGETS.includes(x)))) {
    failWith('recipe', `${source}: "lora_targets" must be a list of ${LORA_TARGETS.join(', ')} (got ${JSON.stringify(targets)}).`);
  }
  for (const [key, spec] of Object.entries(RECIPE_FIELDS)) if (recipe[key] !== undefined) $(spec.id).value = String(recipe[key]);
  for (const [key, id] of Object.entries(RECIPE_CHOICES)) if (recipe[key] !== undefined) $(id).value = recipe[key];
  for (const [key, id] of Object.entries(RECIPE_FLAGS)) if (recipe[key] !== undefined) $(id).checked = recipe[key];
  if (targets) for (const box of loraTargetBoxes()) box.checked = targets.includes(box.value);
  const weights = recipe.mix_weights;
  if (weights !== undefined) {
    if (!Array.isArray(weights) || weights.some((w) => typeof w !== 'number' || !(w >= 0))) {
      failWith('recipe', `${source}: "mix_weights" must be a list of numbers ≥ 0, one per training file (got ${JSON.stringify(weights)}).`);
    }
    pendingMixWeights = weights.length ? weights : null;
    applyPendingMixWeights();
  }
  showStrategyFields();
  updateMemory().catch((err) => showError(err, 'model'));
  if (recipe.task) $('task').value = recipe.task;
  if (recipe.domain_text_column !== undefined) {
    const select = $('domain-column');
    if ([...select.options].some((o) => o.value === recipe.domain_text_column)) select.value = recipe.domain_text_column;
    else select.dataset.wanted = recipe.domain_text_column; // applied when domain text with that column is chosen
  }
  for (const [key, id] of [['text_column', 'text-column'], ['label_column', 'label-column']]) {
    if (recipe[key] === undefined) continue;
    const select = $(id);
    if ([...select.options].some((o) => o.value === recipe[key])) select.value = recipe[key];
    else if (state.data) showError(new Error(`${source}: the data has no column "${recipe[key]}" (columns: ${state.data.columns.join(', ')}); keeping "${select.value}".`), 'columns');
  }
  log(`Recipe loaded from ${source}.`);
  if (state.data) runChecks().catch((err) => showError(err, 'columns'));
}

$('recipe-download').addEventListener('click', guarded('recipe', () => {
  clearErrors('recipe');
  const recipe = readRecipe();
  const blob = new Blob([JSON.stringify(recipe, null, 2) + '\n'], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = 'recipe.json';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}));
$('recipe-file').addEventListener('change', guarded('recipe', async () => {
  clearErrors('recipe');
  const file = $('recipe-file').files[0];
  if (!file) return;
  try {
    applyRecipeText(await file.text(), file.name);
  } finally {
    $('recipe-file').value = ''; // choosing the same file again fires change again
  }
}));
let memoryTimer = null;
for (const id of ['batch-size', 'max-len', 'strategy', 'top-layers', 'freeze-embeddings', 'lora-rank', 'lora-targets']) {
  $(id).addEventListener(id === 'strategy' || id === 'lora-targets' || id === 'freeze-embeddings' ? 'change' : 'input', () => {
    clearTimeout(memoryTimer);
    memoryTimer = setTimeout(guarded('model', async () => {
      await updateMemory();
      await updateGallery();
      if (id === 'max-len') await runChecks().catch((err) => showError(err, 'columns'));
    }), 300);
  });
}

// ---------------------------------------------------------------- data mixing
let pendingMixWeights = null; // weights from a loaded recipe, applied once its files are added
const mixWeightInputs = () => [...document.querySelectorAll('#mix-table input.mix-weight')];

/** The weights typed in the mixture table (main file first; an empty one counts as 1 once any
 * weight is typed); [] when all are empty. */
function mixWeights() {
  const inputs = mixWeightInputs();
  if (inputs.every((i) => i.value.trim() === '')) return [];
  for (const input of inputs) {
    const raw = input.value.trim();
    if (raw !== '' && (!Number.isFinite(Number(raw)) || Number(raw) < 0)) {
      input.focus();
      failWith('mix', `A mixing weight must be a number ≥ 0 (${input.getAttribute('aria-label')}: "${raw}"); leave all the weights empty to mix by size.`);
    }
  }
  const weights = inputs.map((i) => (i.value.trim() === '' ? 1 : Number(i.value)));
  if (!weights.some((w) => w > 0)) failWith('mix', 'At least one mixing weight must be above 0.');
  return weights;
}

function applyPendingMixWeights() {
  const inputs = mixWeightInputs();
  if (!pendingMixWeights) return;
  if (inputs.length !== pendingMixWeights.length) {
    log(`The recipe gives ${pendingMixWeights.length} mixing weights: they fill in once ${pendingMixWeights.length} training files are chosen (now ${Math.max(1, inputs.length)}).`);
    return;
  }
  inputs.forEach((input, i) => (input.value = String(pendingMixWeights[i])));
  pendingMixWeights = null;
}

/** The mixture table: one row per training file with its weight, share and (while training) what was drawn. */
function renderMixture() {
  const table = $('mix-table');
  if (!state.mixFiles.length || !state.data) {
    table.replaceChildren();
    return;
  }
  const typed = mixWeightInputs().map((i) => i.value);
  const plan = state.mixture ?? [];
  const names = [state.data.name, ...state.mixFiles.map((f) => f.name)];
  const drawnTotal = (state.drawn ?? []).reduce((a, b) => a + b, 0);
  const header = t('mix.header').split('|');
  fillTable(table, header, names.map((name, i) => {
    const p = plan[i];
    return [
      { th: i === 0 ? `${name} ${t('mix.main')}` : name }, p ? p.rows : '—', '', p ? pct(p.probability) : '—',
      p ? fmt(p.per_epoch, 0) : '—', p ? fmt(p.passes, 2) : '—',
      state.drawn ? t('mix.drawn', { n: state.drawn[i], pct: pct(drawnTotal ? state.drawn[i] / drawnTotal : NaN) }) : '—', '',
    ];
  }));
  [...table.tBodies[0].rows].forEach((tr, i) => {
    tr.dataset.file = names[i];
    const weight = document.createElement('input');
    weight.type = 'number';
    weight.className = 'mix-weight';
    weight.min = '0';
    weight.step = 'any';
    weight.value = typed[i] ?? '';
    weight.placeholder = 'auto';
    weight.setAttribute('aria-label', `Mixing weight of ${names[i]}`);
    weight.addEventListener('input', scheduleMixture);
    tr.cells[2].append(weight);
    const p = plan[i];
    if (p) {
      const meter = document.createElement('meter');
      meter.min = 0;
      meter.max = 1;
      meter.value = p.probability;
      meter.setAttribute('aria-label', `Share of ${names[i]}`);
      tr.cells[3].prepend(meter, ' ');
    }
    if (i > 0) {
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = t('mix.remove');
      remove.setAttribute('aria-label', `Remove ${names[i]} from the mixture`);
      remove.addEventListener('click', guarded('mix', () => removeMixFile(i - 1)));
      tr.cells[7].append(remove);
    }
  });
}

/** Asks the engine for the mixture the current files, columns, split and weights give. */
async function refreshMixture() {
  clearErrors('mix');
  if (!state.mixFiles.length || !state.data) {
    state.mixture = null;
    renderMixture();
    return;
  }
  renderMixture(); // rows (and weight inputs) for every file before reading the weights
  applyPendingMixWeights();
  const temperature = Number($('mix-temperature').value);
  const recipe = {
    text_column: $('text-column').value, label_column: $('label-column').value || 'label',
    eval_fraction: Number($('eval-fraction').value), seed: Number($('seed').value),
    mix_weights: mixWeights(), mix_temperature: Number.isFinite(temperature) && temperature > 0 ? temperature : 1,
  };
  try {
    state.mixture = await request(IN.MIXTURE_PLAN, recipe);
  } catch (err) {
    state.mixture = null;
    renderMixture();
    err.concerns = 'mix';
    throw err;
  }
  state.drawn = null;
  renderMixture();
}

let mixTimer = null;
function scheduleMixture() {
  clearTimeout(mixTimer);
  mixTimer = setTimeout(guarded('mix', refreshMixture), 300);
}

async function addMixFiles(files) {
  clearErrors('mix');
  if (!state.data) failWith('mix', 'Choose the main training file first (or use the sample), then add more files to mix with it.');
  for (const file of files) {
    checkExtension(file.name, 'mix');
    if (file.size === 0) failWith('mix', `${file.name}: the file is empty`);
    const data = await fileBytes(file);
    const info = await request(IN.ADD_TRAIN_SOURCE, { bytes: data, fileName: file.name }, [data.buffer]);
    state.mixFiles.push({ name: info.name, row_count: info.row_count, columns: info.columns });
    sourceFiles.extras.push(file);
    log(`Added ${info.name} (${info.row_count} rows) to the training mixture.`);
  }
  await refreshMixture();
}

async function removeMixFile(index) {
  await request(IN.REMOVE_TRAIN_SOURCE, { index });
  const [gone] = state.mixFiles.splice(index, 1);
  sourceFiles.extras.splice(index, 1);
  // Keep the other files' weights.
  const inputs = mixWeightInputs();
  inputs[index + 1]?.closest('tr')?.remove();
  log(`Removed ${gone.name} from the training mixture.`);
  await refreshMixture();
}

$('mix-file').addEventListener('change', guarded('mix', async () => {
  try {
    await addMixFiles([...$('mix-file').files]);
  } finally {
    $('mix-file').value = '';
  }
}));
for (const id of ['mix-temperature', 'eval-fraction', 'seed', 'text-column', 'label-column']) $(id).addEventListener('input', scheduleMixture);
for (const radio of document.querySelectorAll('input[name="eval-mode"]')) radio.addEventListener('change', scheduleMixture);

// ---------------------------------------------------------------- downloads
const json = (value) => new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n');
const zipUrls = new Map(); // one live object URL per download kind

/** Zips exported model files (and extra JSON documents) under `burnish-<model>-<suffix>/` and
 * starts the download; the link is also left in `links` (a list). Returns {name, size, files}. */
async function downloadZip(suffix, files, docs, links, label = '', base = state.model?.source) {
  const folder = `burnish-${(base ?? 'model').split('/').pop().replace(/[^\w.-]+/g, '-')}-${suffix}`;
  const entries = {};
  for (const { name, bytes: data } of files) entries[`${folder}/${name}`] = [new Uint8Array(data), { level: name.endsWith('.safetensors') ? 0 : 6 }];
  for (const [name, doc] of Object.entries(docs)) entries[`${folder}/${name}`] = json(doc);
  const { zipSync } = await fflate();
  const zip = zipSync(entries);
  if (zipUrls.has(suffix)) URL.revokeObjectURL(zipUrls.get(suffix));
  const url = URL.createObjectURL(new Blob([zip], { type: 'application/zip' }));
  zipUrls.set(suffix, url);
  const a = document.createElement('a');
  a.href = url;
  a.download = `${folder}.zip`;
  a.textContent = `${folder}.zip (${bytes(zip.length)})${label}`;
  const li = document.createElement('li');
  li.append(a);
  links.replaceChildren(li);
  a.click();
  return { name: a.download, size: zip.length, files: Object.keys(entries) };
}

// ---------------------------------------------------------------- domain adaptation
/** Loads domain text for the masked-LM stage from a File (or the sample movie text when null). */
async function loadDomain(file) {
  clearErrors('domain');
  let data, name;
  if (file) {
    checkExtension(file.name, 'domain');
    if (file.size === 0) failWith('domain', `${file.name}: the file is empty`);
    data = await fileBytes(file);
    name = file.name;
  } else {
    const res = await fetch(SAMPLE_DOMAIN).catch((err) => failWith('domain', `Could not fetch ${SAMPLE_DOMAIN}: ${err.message}`));
    if (!res.ok) failWith('domain', `Could not fetch ${SAMPLE_DOMAIN}: HTTP ${res.status}. Are the bundled assets installed (python3 scripts/fetch_assets.py)?`);
    data = await readBody(res);
    name = SAMPLE_DOMAIN.split('/').pop();
  }
  await concerning('backend', () => backendReady);
  const info = await request(IN.SET_DOMAIN_DATA, { bytes: data, fileName: name }, [data.buffer]);
  state.domain = info;
  const select = $('domain-column');
  const wanted = select.dataset.wanted;
  const pick = info.columns.indexOf(wanted) >= 0 ? info.columns.indexOf(wanted) : guessColumns(info.columns).text;
  fillSelect(select, info.columns, pick);
  delete select.dataset.wanted;
  $('domain-summary').textContent = `${info.name}: ${info.row_count} ${info.format === 'text' ? 'lines' : 'rows'}` + (info.preview[0] ? ` · “${String(info.preview[0][pick] ?? '').slice(0, 80)}…”` : '');
  // Choosing domain text means adapting on it: one epoch unless a number is set.
  if (Number($('mlm-epochs').value) === 0) $('mlm-epochs').value = '1';
  log(`Domain text for masked-LM adaptation: ${info.name} (${info.row_count} ${info.format === 'text' ? 'lines' : 'rows'}).`);
}

$('domain-file').addEventListener('change', guarded('domain', async () => {
  try {
    await loadDomain($('domain-file').files[0] ?? null);
  } finally {
    $('domain-file').value = '';
  }
}));
$('domain-sample').addEventListener('click', guarded('domain', () => loadDomain(null)));
$('domain-clear').addEventListener('click', guarded('domain', async () => {
  clearErrors('domain');
  await request(IN.CLEAR_DOMAIN_DATA);
  state.domain = null;
  $('domain-summary').textContent = '';
  $('domain-column').replaceChildren();
  $('mlm-epochs').value = '0';
}));

const mlmChart = new MlmChart($('mlm-chart'));

function renderAdaptation() {
  const a = state.adaptation;
  if (!a) return;
  fillTable(
    $('mlm-table'),
    ['held-out domain text', 'step', 'masked-LM loss', 'perplexity', 'masked-token accuracy', 'masked tokens'],
    a.history.map((e, i) => [{ th: i === 0 ? 'before adaptation' : `after epoch ${e.epoch}` }, e.step, fmt(e.loss), fmt(e.perplexity, 1), pct(e.masked_accuracy), e.masked_tokens]),
  );
}

function showAdaptProgress({ reports, history }) {
  const a = state.adaptation;
  if (!a) return;
  for (const r of reports) a.losses.push(r.loss);
  const fresh = history.slice(a.history.length);
  a.history = history;
  mlmChart.add(reports, fresh);
  a.chart = mlmChart.counts();
  renderAdaptation();
  for (const e of fresh) {
    log(e.step === 0
      ? `Before adaptation: held-out masked-LM loss ${fmt(e.loss)}, perplexity ${fmt(e.perplexity, 1)}, masked-token accuracy ${pct(e.masked_accuracy)}.`
      : `Adaptation epoch ${e.epoch}: held-out masked-LM loss ${fmt(e.loss)}, perplexity ${fmt(e.perplexity, 1)}, masked-token accuracy ${pct(e.masked_accuracy)}.`);
  }
  const last = reports[reports.length - 1];
  if (!last) return;
  a.step = last.step;
  a.done = last.done;
  $('mlm-progress-bar').max = last.total_steps;
  $('mlm-progress-bar').value = last.step;
  $('mlm-progress').textContent = `step ${last.step}/${last.total_steps} · epoch ${Math.min(last.epoch + (last.done ? 0 : 1), last.epochs)}/${last.epochs} · masked-LM loss ${fmt(last.loss)} · lr ${sci(last.lr)} · ${fmt(last.tokens_per_s, 0)} tokens/s`;
  if (last.done) {
    $('fill-button').disabled = false;
    log(state.adaptation.only
      ? 'Domain adaptation finished: try the adapted encoder with fill-mask, or download it.'
      : 'Domain adaptation finished: the classifier now starts from the adapted encoder.');
  }
}

$('fill-button').addEventListener('click', guarded('domain', async () => {
  clearErrors('domain');
  const text = $('fill-text').value;
  if (!text.includes('[MASK]')) failWith('domain', 'Write [MASK] where the model should guess a word, e.g. "The film was [MASK]."');
  const masks = await request(IN.FILL_MASK, { text, topK: 5 });
  state.fill = { text, masks };
  fillTable(
    $('fill-result'),
    ['[MASK]', ...[1, 2, 3, 4, 5].map((i) => `guess ${i}`)],
    masks.map((m, i) => [{ th: masks.length > 1 ? `#${i + 1}` : 'guesses' }, ...m.candidates.map((c) => `${c.token} (${pct(c.score)})`)]),
  );
}));
$('fill-text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') $('fill-button').click();
});

$('export-adapted').addEventListener('click', guarded('domain', async () => {
  if (!state.adaptation?.done) failWith('domain', 'The adaptation has not finished yet: there is no adapted encoder to download.');
  $('export-adapted').disabled = true;
  try {
    const files = await request(IN.EXPORT_ADAPTED);
    const doc = { model: state.model?.source, domain_file: state.adaptation.summary.domain_file, held_out: state.adaptation.history, train_losses: state.adaptation.losses, recipe: state.recipe };
    state.adaptedExport = await downloadZip('domain-adapted', files, { 'metrics.json': doc }, $('export-adapted-status'));
  } finally {
    $('export-adapted').disabled = false;
  }
}));

// ---------------------------------------------------------------- training
const charts = new TrainingCharts({ loss: $('loss-chart'), lr: $('lr-chart'), evaluation: $('eval-chart') });
if (!chartsAvailable) {
  $('chart-error').textContent = 'The chart library (vendor/chart.umd.min.js) is missing: run the set-up command (scripts/serve.sh) to install it. Training works without it; the numbers are in the step table below.';
  $('chart-error').hidden = false;
}
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
  charts.restyle?.();
  mlmChart.restyle();
  labelChart.restyle();
  compareCharts.restyle();
  multitaskCharts.restyle();
});

function setTrainingButtons(running) {
  showRunPanel(running ? 'classifier' : null);
  $('run-panel-pause').textContent = t(state.paused ? 'train.resume' : 'train.pause');
  $('start').disabled = running;
  $('evaluate-only').disabled = running;
  $('adapt-only').disabled = running;
  $('pause').disabled = !running;
  $('stop').disabled = !running;
  $('pause').textContent = t(state.paused ? 'train.resume' : 'train.pause');
}

/** Everything Start and Evaluate need: backend, model, data, columns, eval file, recipe. */
async function prepareRun() {
  clearErrors('backend', 'model', 'data', 'columns', 'eval', 'recipe', 'train', 'results');
  const recipe = readRecipe(); // before any loading, so a typo fails fast
  await concerning('backend', () => backendReady);
  await ensureModel();
  if (!state.data) await loadData(null);
  if (!$('label-column').value) failWith('columns', 'Choose the label column: text classification needs a label for every text.');
  if (evalMode() === 'file' && !state.evalData) failWith('eval', 'Choose the evaluation file, or hold out part of the training file instead.');
  recipe.text_column = $('text-column').value;
  recipe.label_column = $('label-column').value;
  return recipe;
}

function resetRun(recipe) {
  $('mlm-panel').hidden = true;
  $('export-adapted').disabled = true;
  $('fill-button').disabled = true;
  $('fill-result').replaceChildren();
  $('export-adapted-status').replaceChildren();
  mlmChart.reset();
  Object.assign(state, { adaptation: null, adaptedExport: null });
  Object.assign(state, { summary: null, losses: [], lrs: [], evals: [], before: null, metrics: null, predictions: [], done: false, paused: false, recipe, exported: null, trainable: null, trainableHistory: [], earlyStop: null, checkpoints: [] });
  $('trainable-details').hidden = true;
  $('loss-log').replaceChildren();
  $('log').replaceChildren();
  $('results').hidden = true;
  charts.reset?.();
  state.charts = charts.counts();
}

/** The layer groups: parameters, learning-rate factor, and from which step each one trains. */
function renderTrainable(summary, trainable) {
  const groups = summary.layer_groups ?? [];
  if (!groups.length || !trainable) return;
  state.trainable = trainable;
  const r = summary.recipe;
  const pctOf = (n) => `${((100 * n) / trainable.total_parameters).toFixed(1)}%`;
  $('trainable').textContent = t('trainable.line', {
    n: trainable.trainable_parameters.toLocaleString('en-US'), total: trainable.total_parameters.toLocaleString('en-US'),
    pct: pctOf(trainable.trainable_parameters), groups: trainable.training.join(', '),
  });
  // What the strategy allows, and when gradual unfreezing reaches each group: the plan the
  // recipe's layer picture showed (views/layers.js), now with the run's step counts.
  const layers = groups.length - 2;
  const lora = r.strategy === 'lora';
  const perEpoch = Math.max(1, Math.round(summary.total_steps / r.epochs));
  const plan = layerPlan({ layers, recipe: r, stepsPerEpoch: perEpoch, totalSteps: summary.total_steps });
  const from = (depth) => startText(plan[depth]);
  fillTable(
    $('layer-table'),
    ['layer group', 'parameters', 'LR factor', 'peak LR', 'trains from', 'training now'],
    groups.map((g, depth) => [
      { th: g.name }, g.parameters.toLocaleString('en-US'), g.lr_factor.toFixed(3), sci(r.lr * g.lr_factor), from(depth),
      trainable.training.includes(g.name) ? 'yes' : lora && depth >= 1 && depth <= layers ? 'adapters' : 'no',
    ]),
  );
  $('trainable-details').hidden = false;
}

function describeStart(summary) {
  const report = summary.load_report ?? { initialized: [], unexpected: [] };
  const head = report.initialized.length ? `new classification head (${report.initialized.join(', ')})` : 'classification head reused from the checkpoint';
  $('train-summary').textContent =
    `${summary.train_count} training rows, ${summary.eval_count} evaluation rows` +
    (summary.skipped_rows ? `, ${summary.skipped_rows} rows skipped` : '') +
    ` · labels: ${summary.labels.join(', ')} · ${summary.total_steps} steps · ${head}` +
    (report.unexpected.length ? ` · unused weights in the file: ${report.unexpected.length}` : '');
  state.trainableHistory = summary.trainable ? [summary.trainable] : [];
  if (summary.mixture?.length > 1) {
    state.mixture = summary.mixture;
    state.drawn = summary.mixture.map(() => 0);
    renderMixture();
  }
  renderTrainable(summary, summary.trainable);
}

/** Steps between checkpoints (0: off). Checkpoints need OPFS. */
function checkpointEvery() {
  const raw = $('checkpoint-every').value.trim();
  const every = Number(raw);
  if (raw === '' || !Number.isInteger(every) || every < 0) failWith('field:checkpoint-every', `Checkpoint interval must be a whole number of steps ≥ 0 (got ${raw}).`);
  if (every === 0 || !opfsAvailable()) return 0;
  return every;
}

/** Stores what a resume needs besides the checkpoint: model source, data files, recipe. */
async function saveRunDescription(recipe, every) {
  const source = radioValue('model-source');
  const files = [];
  const data = { main: sourceFiles.main?.name ?? null, extras: sourceFiles.extras.map((f) => f.name), eval: evalMode() === 'file' ? sourceFiles.eval?.name ?? null : null };
  if (sourceFiles.main) files.push([`data-${sourceFiles.main.name}`, sourceFiles.main]);
  sourceFiles.extras.forEach((f) => files.push([`mix-${f.name}`, f]));
  if (data.eval) files.push([`eval-${sourceFiles.eval.name}`, sourceFiles.eval]);
  const model = { source, bundled: bundledModel, hubId: $('hub-id').value.trim(), name: state.model?.source, files: [] };
  if (source === 'local') {
    for (const f of localFiles) {
      model.files.push(f.name);
      files.push([`model-${f.name}`, f]);
    }
  }
  const meta = { version: 1, model, data, recipe, checkpointEvery: every, started_at: new Date().toISOString() };
  await saveRunStart(meta, files);
}

async function startTraining() {
  $('start').disabled = true;
  try {
    const recipe = await prepareRun();
    resetRun(recipe);
    let every = checkpointEvery();
    if (every > 0) {
      const files = [sourceFiles.main, ...sourceFiles.extras, sourceFiles.eval, ...(radioValue('model-source') === 'local' ? localFiles : [])];
      if (!(await prepareCheckpoints(() => saveRunDescription(recipe, every), files, 'train'))) every = 0;
    }
    if (recipe.mlm_epochs > 0 && !state.domain) {
      failWith('domain', 'Choose the domain text for the adaptation stage (or the sample movie text), or set the adaptation epochs to 0.');
    }
    const answer = await request(IN.TRAIN, { recipe, checkpointEvery: every });
    state.training = true;
    setTrainingButtons(true);
    if (answer.adaptation) adaptationStarted(answer.adaptation, false);
    else classifierStageStarted(answer);
  } catch (err) {
    setTrainingButtons(false);
    throw err;
  }
}

/** Only the masked-LM adaptation (no labelled data needed): the adapted encoder can then be
 *  tried with fill-mask and downloaded, or a later Start fine-tunes a classifier from it. */
async function startAdaptationOnly() {
  $('adapt-only').disabled = true;
  $('start').disabled = true;
  try {
    clearErrors('backend', 'model', 'recipe', 'domain', 'train', 'results');
    const recipe = readRecipe();
    await concerning('backend', () => backendReady);
    await ensureModel();
    if (!state.domain) failWith('domain', 'Choose the domain text to adapt the model on (or the sample movie text).');
    if (!(recipe.mlm_epochs > 0)) failWith('field:mlm-epochs', 'Set the adaptation epochs above 0 to adapt the model.');
    resetRun(recipe);
    const answer = await request(IN.TRAIN, { recipe, adaptOnly: true });
    state.training = true;
    setTrainingButtons(true);
    adaptationStarted(answer.adaptation, true);
  } catch (err) {
    setTrainingButtons(false);
    throw err;
  }
}

function adaptationStarted(a, only) {
  state.adaptation = { summary: a, losses: [], history: [], done: false, step: 0, only };
  $('mlm-panel').hidden = false;
  $('mlm-progress-bar').max = a.total_steps;
  $('mlm-progress-bar').value = 0;
  const head = a.load_report.initialized.some((n) => n.startsWith('cls.')) ? 'new masked-LM head (the checkpoint has none)' : 'masked-LM head from the checkpoint';
  $('mlm-progress').textContent = `${a.train_count} domain texts for training, ${a.eval_count} held out · ${a.total_steps} steps · ${head}`;
  $('progress').textContent = only ? 'domain adaptation only (no classifier stage)' : 'waiting for the domain adaptation';
  log(`${only ? 'Masked-LM adaptation only' : 'Stage 1: masked-LM adaptation'} on ${a.domain_file} (${a.epochs} epoch${a.epochs > 1 ? 's' : ''}, lr ${sci(a.lr)}).`);
}

/** The classifier run started (directly, or after the adaptation stage). */
function classifierStageStarted(summary) {
  state.summary = summary;
  $('progress-bar').max = summary.total_steps;
  $('progress-bar').value = 0;
  $('progress').textContent = `step 0/${summary.total_steps}`;
  if (state.adaptation) {
    $('export-adapted').disabled = false;
    log('Stage 2: fine-tuning the classifier from the adapted encoder.');
  }
  describeStart(summary);
}

// ---------------------------------------------------------------- resuming a saved run
async function offerSavedRun() {
  const saved = await readSavedRun();
  state.savedRun = saved;
  $('resume-banner').hidden = !saved;
  if (!saved) return;
  // The banner lives in the Train step: a page that opened on the task choice shows that task.
  if (!currentTask()) showTask('classify');
  const { meta, progress } = saved;
  const model = meta.model.source === 'hub' ? meta.model.hubId : meta.model.source === 'local' ? meta.model.files.join(', ') : meta.model.bundled;
  const data = [meta.data.main ?? 'the sample dataset', ...meta.data.extras].join(' + ');
  $('resume-text').textContent =
    `An unfinished run was saved at step ${progress.step} of ${progress.total_steps} (${new Date(progress.saved_at).toLocaleString()}): ` +
    `model ${model}, data ${data}${meta.data.eval ? `, evaluation file ${meta.data.eval}` : ''}. Resume it where it stopped, or discard it.`;
}

/** Reloads the saved run's model, data and recipe, then continues from its last checkpoint. */
async function resumeSavedRun() {
  clearErrors('train');
  const saved = await readSavedRun();
  if (!saved) {
    $('resume-banner').hidden = true;
    failWith('train', 'The saved run is no longer in this browser\'s storage.');
  }
  const { meta } = saved;
  $('resume-run').disabled = true;
  try {
    await concerning('backend', () => backendReady);
    if (meta.model.source === 'bundled' && meta.model.bundled !== bundledModel) {
      failWith('train', `The saved run trained the bundled model ${meta.model.bundled}: open the page with ?model=${encodeURIComponent(meta.model.bundled)} to resume it.`);
    }
    document.querySelector(`input[name="model-source"][value="${meta.model.source}"]`).checked = true;
    if (meta.model.source === 'hub') $('hub-id').value = meta.model.hubId;
    if (meta.model.source === 'local') onLocalFiles({ files: await Promise.all(meta.model.files.map((n) => savedFile('model', n))) });
    await loadModel();
    await loadData(meta.data.main ? await savedFile('data', meta.data.main) : null);
    while (state.mixFiles.length) await removeMixFile(0);
    if (meta.data.extras.length) await addMixFiles(await Promise.all(meta.data.extras.map((n) => savedFile('mix', n))));
    if (meta.data.eval) {
      await loadEvalFile(await savedFile('eval', meta.data.eval));
    } else if (evalMode() === 'file') {
      document.querySelector('input[name="eval-mode"][value="split"]').checked = true;
      await request(IN.CLEAR_EVAL_DATA);
      Object.assign(state, { evalData: null });
      sourceFiles.eval = null;
    }
    applyRecipeText(JSON.stringify(meta.recipe), 'the saved run');
    $('checkpoint-every').value = String(meta.checkpointEvery);
    const recipe = readRecipe();
    resetRun(recipe);
    const summary = await request(IN.RESUME_RUN, { checkpointEvery: meta.checkpointEvery });
    state.summary = summary;
    state.resumedFrom = summary.resumed.step;
    state.training = true;
    setTrainingButtons(true);
    describeStart(summary);
    // The curves so far, from the checkpoint.
    const r = summary.resumed;
    showProgress(r.losses.map((loss, i) => ({
      step: i + 1, loss, lr: r.lrs[i], grad_norm: NaN, total_steps: summary.total_steps, epoch: 0, epochs: summary.recipe.epochs,
      examples_per_s: 0, tokens_per_s: 0, elapsed_s: 0, done: false, eval: null,
    })));
    for (const e of r.history) if (e.eval) charts.addEval(e.step, e.eval);
    log(`Resumed the saved run at step ${r.step} of ${summary.total_steps}.`);
    $('resume-banner').hidden = true;
  } finally {
    $('resume-run').disabled = false;
  }
}

$('resume-run').addEventListener('click', guarded('train', resumeSavedRun));
$('discard-run').addEventListener('click', guarded('train', async () => {
  await discardSavedRun();
  await offerSavedRun();
}));
backendReady.then(() => offerSavedRun()).catch(() => {});

/** Which run the panel follows: 'classifier' (Pause and Stop), 'lm' (Stop), or null (hidden). */
let panelRun = null;
function showRunPanel(kind) {
  panelRun = kind;
  $('run-panel').hidden = !kind;
  $('run-panel-pause').hidden = kind === 'lm';
  $('run-panel-pause').disabled = !kind;
  $('run-panel-stop').disabled = !kind;
  $('run-panel-link').href = kind === 'lm' ? '#decoder-section' : '#train-section';
}

/** The run panel's line and sparkline: the loss so far, and the held-out accuracy when there is one. */
function runPanel(last, eta) {
  $('run-panel-bar').max = last.total_steps;
  $('run-panel-bar').value = last.step;
  const acc = state.evals.length ? ` · ${t('runPanel.accuracy')} ${pct(state.evals[state.evals.length - 1].accuracy)}` : '';
  $('run-panel-text').textContent = `${t('runPanel.step')} ${last.step}/${last.total_steps} · loss ${fmt(last.loss, 3)}${acc} · ETA ${duration(eta)}`;
  const points = (values, lo, hi, n) => values.map((v, i) => `${((120 * i) / Math.max(1, n - 1)).toFixed(1)},${(22 - (20 * (v - lo)) / Math.max(1e-9, hi - lo)).toFixed(1)}`).join(' ');
  const losses = thin(state.losses.filter(Number.isFinite), 120);
  $('run-panel-loss').setAttribute('points', points(losses, Math.min(...losses), Math.max(...losses), losses.length));
  // Accuracy on the same width, 0–1 upwards.
  const evals = state.evals.map((e) => e.accuracy).filter(Number.isFinite);
  $('run-panel-eval').setAttribute('points', points(evals.map((a) => 1 - a), 0, 1, evals.length));
}

function showProgress(reports) {
  const items = [];
  for (const r of reports) {
    state.losses.push(r.loss);
    state.lrs.push(r.lr);
    const li = document.createElement('li');
    li.dataset.step = r.step;
    li.dataset.loss = r.loss;
    li.textContent = `step ${r.step}: loss ${fmt(r.loss)} · lr ${sci(r.lr)} · grad norm ${fmt(r.grad_norm, 3)}`;
    items.push(li);
    if (r.unfrozen) {
      const added = r.unfrozen.training.filter((g) => !(state.trainable?.training ?? []).includes(g));
      state.trainableHistory.push(r.unfrozen);
      renderTrainable(state.summary, r.unfrozen);
      log(t('trainable.unfrozen', { step: r.step, group: added.join(', '), n: r.unfrozen.trainable_parameters.toLocaleString('en-US') }));
    }
    if (r.early_stop) {
      const e = r.early_stop;
      state.earlyStop = e;
      const vars = { step: e.stopped_at, best: e.best_step, metric: e.metric.replace('_', '-'), value: fmt(e.best_value, 4), patience: state.recipe?.early_stopping_patience };
      log(t(e.early ? 'train.earlyStop' : 'train.bestKept', vars));
    }
    if (r.drawn) state.drawn = r.drawn;
    if (r.eval) {
      state.evals.push({ step: r.step, accuracy: r.eval.accuracy, macro_f1: r.eval.macro_f1, loss: r.eval.loss });
      charts.addEval(r.step, r.eval);
      log(`step ${r.step}${r.epoch_end ? ` (end of epoch ${r.epoch_end.epoch}, train loss ${fmt(r.epoch_end.train_loss)})` : ''}: eval loss ${fmt(r.eval.loss)} · accuracy ${pct(r.eval.accuracy)} · macro-F1 ${fmt(r.eval.macro_f1, 3)}`);
    }
  }
  $('loss-log').append(...items);
  if (reports.some((r) => r.drawn)) renderMixture();
  charts.add(reports);
  state.charts = charts.counts();
  const last = reports[reports.length - 1];
  if (!last) return;
  $('progress-bar').max = last.total_steps;
  $('progress-bar').value = last.step;
  const batch = (state.recipe?.batch_size ?? 16) * (state.recipe?.grad_accum ?? 1); // examples per step
  const eta = last.examples_per_s > 0 ? ((last.total_steps - last.step) * batch) / last.examples_per_s : NaN;
  runPanel(last, eta);
  $('progress').textContent = t('progress.line', {
    // `epoch` counts finished epochs; show the one in progress.
    step: last.step, total: last.total_steps, epoch: last.epoch_end || last.done ? last.epoch : Math.min(last.epoch + 1, last.epochs), epochs: last.epochs, loss: fmt(last.loss),
    exs: fmt(last.examples_per_s, 1), toks: fmt(last.tokens_per_s, 0), elapsed: duration(last.elapsed_s), eta: duration(eta),
  });
}

function trainingEnded({ ok, stopped, step, adaptOnly }) {
  // A run that ended (finished, or stopped on purpose) is no longer offered for resuming.
  if (ok && !adaptOnly) discardSavedRun().catch(() => {});
  if (ok && !adaptOnly && state.metrics) keepRun(stopped).catch((err) => showError(err, 'runs'));
  if (ok && adaptOnly && !stopped) $('export-adapted').disabled = false;
  state.training = false;
  state.paused = false;
  state.done = true;
  setTrainingButtons(false);
  log(ok ? (stopped ? t('train.stopped', { step }) : t('train.finished')) : t('train.failed', { step }));
}

// ---------------------------------------------------------------- earlier runs
// Finished runs, remembered in IndexedDB (runs.js): listed newest first; any two side by side.
const runsView = { selected: [] };
const scoreOf = (m) => (m ? { accuracy: m.accuracy, macro_f1: m.macro_f1, loss: m.loss, count: m.count } : null);
/** At most `n` evenly spaced points of a curve (a record stays small). */
const thin = (xs, n = 400) => (xs.length <= n ? xs : Array.from({ length: n }, (_, i) => xs[Math.round((i * (xs.length - 1)) / (n - 1))]));

async function keepRun(stopped) {
  if (!runsAvailable()) return;
  await rememberRun({
    date: new Date().toISOString(),
    task: 'text-classification',
    model: state.model?.source ?? bundledModel,
    data: state.data?.name ?? '—',
    backend: state.backend?.kind ?? null,
    recipe: state.recipe,
    steps: state.losses.length,
    total_steps: state.summary?.total_steps ?? state.losses.length,
    stopped: Boolean(stopped),
    before: scoreOf(state.before),
    after: scoreOf(state.metrics),
    losses: thin(state.losses),
  });
  await renderRuns();
}

const when = (iso) => new Date(iso).toLocaleString();
const strategyOf = (r) => `${r.strategy}${r.strategy === 'top' ? ` ${r.top_layers}` : ''}${r.strategy === 'lora' ? ` r${r.lora_rank}` : ''}`;

async function renderRuns() {
  if (!runsAvailable()) return;
  const runs = await listRuns();
  state.runs = runs.map((r) => ({ id: r.id, task: r.task, model: r.model, data: r.data, lr: r.recipe.lr, accuracy: r.after?.accuracy ?? null, perplexity: r.after?.perplexity ?? null }));
  runsView.selected = runsView.selected.filter((id) => runs.some((r) => r.id === id));
  $('runs-empty').hidden = runs.length > 0;
  $('runs-table').hidden = runs.length === 0;
  const button = (label, fn) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.addEventListener('click', guarded('runs', fn));
    return b;
  };
  fillTable($('runs-table'), ['compare', 'date', 'task', 'model', 'data', 'strategy', 'epochs', 'lr', 'score before → after', 'macro-F1', ''], runs.map((r) => {
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = runsView.selected.includes(r.id);
    box.setAttribute('aria-label', `compare the run of ${when(r.date)}`);
    box.dataset.run = String(r.id);
    box.addEventListener('change', () => {
      runsView.selected = runsView.selected.filter((id) => id !== r.id);
      if (box.checked) runsView.selected.push(r.id);
      if (runsView.selected.length > 2) runsView.selected.shift(); // the two ticked last
      renderRuns();
    });
    const actions = document.createElement('span');
    actions.append(button('Re-run', () => rerun(r)), ' ', button('Delete', async () => {
      await forgetRun(r.id);
      await renderRuns();
    }));
    const acc = r.after?.accuracy != null ? `${pct(r.before?.accuracy)} → ${pct(r.after.accuracy)}`
      : r.after?.perplexity != null ? `${t('runPanel.perplexity')} ${fmt(r.before?.perplexity, 2)} → ${fmt(r.after.perplexity, 2)}` : '—';
    return [{ node: box }, when(r.date) + (r.stopped ? ' (stopped)' : ''), r.task ?? 'text-classification', r.model, r.data, strategyOf(r.recipe), String(r.recipe.epochs), sci(r.recipe.lr), acc, fmt(r.after?.macro_f1, 3), { node: actions }];
  }));
  const pair = runsView.selected.map((id) => runs.find((r) => r.id === id)).filter(Boolean);
  $('runs-compare').hidden = pair.length !== 2;
  if (pair.length === 2) compareRuns(pair[0], pair[1]);
}

/** Two runs side by side: what differs in their recipes, their scores, and their loss curves. */
function compareRuns(a, b) {
  const rows = [
    [{ th: 'date' }, when(a.date), when(b.date)],
    [{ th: 'model' }, a.model, b.model],
    [{ th: 'data' }, a.data, b.data],
    [{ th: 'steps' }, `${a.steps}/${a.total_steps}`, `${b.steps}/${b.total_steps}`],
  ];
  const keys = [...new Set([...Object.keys(a.recipe), ...Object.keys(b.recipe)])];
  for (const k of keys) {
    const [x, y] = [JSON.stringify(a.recipe[k]), JSON.stringify(b.recipe[k])];
    if (x !== y) rows.push([{ th: k }, { text: x ?? '—', cls: 'differs' }, { text: y ?? '—', cls: 'differs' }]);
  }
  const metrics = [['accuracy', 'accuracy', pct], ['macro-F1', 'macro_f1', (v) => fmt(v, 3)], ['held-out loss', 'loss', (v) => fmt(v, 4)], ['perplexity', 'perplexity', (v) => fmt(v, 2)]]
    .filter(([, key]) => [a.after, b.after].some((m) => m?.[key] != null));
  for (const [name, key, f] of metrics) {
    rows.push([{ th: name }, `${f(a.before?.[key])} → ${f(a.after?.[key])}`, `${f(b.before?.[key])} → ${f(b.after?.[key])}`]);
  }
  fillTable($('runs-compare-table'), ['', 'A', 'B'], rows);
  // Both loss curves on one scale.
  const svg = $('runs-curves');
  const all = [...a.losses, ...b.losses].filter(Number.isFinite);
  const [lo, hi] = [Math.min(...all), Math.max(...all)];
  const line = (losses, cls) => {
    const el = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    el.setAttribute('class', cls);
    el.setAttribute('fill', 'none');
    el.setAttribute('points', losses.map((v, i) => `${((400 * i) / Math.max(1, losses.length - 1)).toFixed(1)},${(115 - (110 * (v - lo)) / Math.max(1e-9, hi - lo)).toFixed(1)}`).join(' '));
    return el;
  };
  svg.replaceChildren(line(a.losses, 'curve-a'), line(b.losses, 'curve-b'));
}

function rerun(r) {
  const decoder = r.task === 'instruct' || r.task === 'causal-lm';
  showTask(decoder ? (r.task === 'instruct' ? 'chat' : 'continue') : 'classify');
  applyRecipeText(JSON.stringify(r.recipe), `the run of ${when(r.date)}`);
  log(`The recipe of the run of ${when(r.date)} is back in the form: start it when ready (model ${r.model}, data ${r.data}).`);
  $(decoder ? 'lm-recipe-section' : 'recipe-section').scrollIntoView?.({ block: 'start' });
}
renderRuns().catch((err) => showError(err, 'runs'));

$('start').addEventListener('click', guarded('train', startTraining));
$('pause').addEventListener('click', guarded('train', async () => {
  const resume = state.paused;
  await request(resume ? IN.RESUME : IN.PAUSE);
  // The run may have ended while the request was on its way: then the buttons stay as the end
  // of the run left them (Start enabled), rather than "running" for a run that is over.
  if (!state.training) return;
  state.paused = !resume;
  setTrainingButtons(true);
}));
$('stop').addEventListener('click', guarded('train', async () => {
  $('stop').disabled = true;
  $('pause').disabled = true;
  await request(IN.STOP);
}));
$('adapt-only').addEventListener('click', guarded('train', startAdaptationOnly));
$('run-panel-pause').addEventListener('click', () => $('pause').click());
$('run-panel-stop').addEventListener('click', () => $(panelRun === 'lm' ? 'lm-stop' : 'stop').click());
$('evaluate-only').addEventListener('click', guarded('train', async () => {
  $('evaluate-only').disabled = true;
  $('start').disabled = true;
  try {
    const recipe = await prepareRun();
    resetRun(recipe);
    const result = await request(IN.EVALUATE_ONLY, recipe);
    state.summary = result.summary;
    describeStart(result.summary);
    showResults({ ...result, phase: 'after', step: 0 });
    state.done = true;
  } finally {
    setTrainingButtons(false);
  }
}));

// ---------------------------------------------------------------- strategy comparison
const compareCharts = new CompareCharts({ loss: $('compare-loss-chart'), evaluation: $('compare-eval-chart') });

backendReady
  .then(async () => {
    state.presets = await request(IN.PRESETS);
    for (const [id, chosen] of [['compare-a', 'full'], ['compare-b', 'lora']]) {
      const select = $(id);
      select.replaceChildren(...state.presets.map((p) => new Option(p.name, p.name, false, p.name === chosen)));
      select.addEventListener('change', describePresets);
    }
    describePresets();
  })
  .catch((err) => showError(err, 'compare'));

/** What the two chosen presets do, under the selects. */
function describePresets() {
  const about = (id) => state.presets.find((p) => p.name === $(id).value);
  $('compare-help').replaceChildren(...['compare-a', 'compare-b'].map((id, i) => {
    const p = about(id);
    const li = document.createElement('li');
    li.textContent = p ? `${i ? 'B' : 'A'} = ${p.name}: ${p.about} (lr ${sci(p.lr)})` : '';
    return li;
  }));
}

function setCompareButtons(running) {
  $('compare-start').disabled = running;
  $('compare-stop').disabled = !running;
  $('start').disabled = running || state.training;
  $('evaluate-only').disabled = running || state.training;
}

async function startComparison() {
  clearErrors('compare');
  const presets = [$('compare-a').value, $('compare-b').value];
  if (presets[0] === presets[1]) failWith('compare', 'Choose two different strategies to compare.');
  setCompareButtons(true);
  try {
    const recipe = await prepareRun();
    const summary = await request(IN.COMPARE, { recipe, presets });
    state.compare = { summary, losses: summary.runs.map(() => []), evals: summary.runs.map(() => []), results: null, done: false, stopped: false };
    compareCharts.reset(summary.runs.map((r) => r.name));
    $('compare-table').replaceChildren();
    $('compare-about').replaceChildren(...summary.runs.map((r) => {
      const li = document.createElement('li');
      li.textContent = `${r.name}: ${r.trainable.trainable_parameters.toLocaleString('en-US')} of ${r.trainable.total_parameters.toLocaleString('en-US')} parameters train at the start · ${r.total_steps} steps`;
      return li;
    }));
    showCompareProgress(summary.runs.map(() => []));
  } catch (err) {
    setCompareButtons(false);
    throw err;
  }
}

function showCompareProgress(reports) {
  const c = state.compare;
  if (!c) return;
  reports.forEach((list, i) => {
    for (const r of list) {
      c.losses[i].push(r.loss);
      if (r.eval) c.evals[i].push({ step: r.step, accuracy: r.eval.accuracy });
    }
  });
  compareCharts.add(reports);
  c.charts = compareCharts.counts();
  $('compare-progress').textContent = c.summary.runs.map((r, i) => `${r.name}: step ${c.losses[i].length}/${r.total_steps}`).join(' · ');
}

function compareEnded({ ok, stopped, results }) {
  const c = state.compare;
  setCompareButtons(false);
  if (!c) return;
  Object.assign(c, { done: true, stopped, results, ok });
  if (!results) return;
  fillTable(
    $('compare-table'),
    ['strategy', 'lr', 'trainable parameters', 'accuracy', 'macro-F1', 'eval loss', 's/step', 'steps'],
    results.map((r, i) => [
      { th: r.name }, sci(c.summary.runs[i].recipe.lr),
      `${r.trainable.trainable_parameters.toLocaleString('en-US')} (${((100 * r.trainable.trainable_parameters) / r.trainable.total_parameters).toFixed(1)}%)`,
      pct(r.metrics.accuracy), fmt(r.metrics.macro_f1, 3), fmt(r.metrics.loss), fmt(r.seconds_per_step, 3), r.steps,
    ]),
  );
}

$('compare-start').addEventListener('click', guarded('compare', startComparison));
$('compare-stop').addEventListener('click', guarded('compare', async () => {
  $('compare-stop').disabled = true;
  await request(IN.COMPARE_STOP);
}));

// ---------------------------------------------------------------- multi-task
const multitaskCharts = new CompareCharts({ loss: $('multitask-loss-chart'), evaluation: $('multitask-eval-chart') });

function taskColumnSelect(task, i, role) {
  const select = document.createElement('select');
  select.className = `task-${role}`;
  select.setAttribute('aria-label', `${role} column of task ${task.name}`);
  const guess = guessColumns(task.columns);
  fillSelect(select, task.columns, task[role] ?? (role === 'text' ? guess.text : guess.label));
  select.addEventListener('change', () => {
    state.tasks[i][role] = select.selectedIndex;
  });
  return select;
}

/** The task table: the main file (task 1) and every added file, with columns, share and results. */
function renderTasks() {
  const mt = state.multitask;
  const info = (i) => mt?.summary.tasks[i];
  const result = (i) => mt?.metrics?.[i];
  const header = ['task', 'file', 'rows', 'text column', 'label column', 'labels', 'share of steps', 'batches drawn', 'accuracy', 'macro-F1', ''];
  const rows = [];
  const mainName = state.data ? state.data.name.replace(/\.[^.]+$/, '') : '(load the training file above)';
  rows.push([
    { th: info(0)?.name ?? mainName }, state.data?.name ?? '—', state.data?.row_count ?? '—', $('text-column').value || '—', $('label-column').value || '—',
    info(0)?.labels.join(', ') ?? '', info(0) ? pct(info(0).share) : '', mt ? String(mt.drawn[0] ?? 0) : '', result(0) ? pct(result(0).accuracy) : '', result(0) ? fmt(result(0).macro_f1, 3) : '', '(main file)',
  ]);
  state.tasks.forEach((task, i) => {
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = 'remove';
    remove.addEventListener('click', guarded('multitask', async () => {
      await request(IN.REMOVE_TASK, { index: i });
      state.tasks.splice(i, 1);
      renderTasks();
    }));
    const k = i + 1;
    rows.push([
      { th: task.name }, task.file, task.row_count, { node: taskColumnSelect(task, i, 'text') }, { node: taskColumnSelect(task, i, 'label') },
      info(k)?.labels.join(', ') ?? '', info(k) ? pct(info(k).share) : '', mt ? String(mt.drawn[k] ?? 0) : '', result(k) ? pct(result(k).accuracy) : '', result(k) ? fmt(result(k).macro_f1, 3) : '', { node: remove },
    ]);
  });
  fillTable($('task-table'), header, rows);
}

$('task-file').addEventListener('change', guarded('multitask', async () => {
  clearErrors('multitask');
  try {
    for (const file of [...$('task-file').files]) {
      checkExtension(file.name, 'multitask');
      if (file.size === 0) failWith('multitask', `${file.name}: the file is empty`);
      const data = await fileBytes(file);
      await concerning('backend', () => backendReady);
      const info = await request(IN.ADD_TASK, { bytes: data, fileName: file.name }, [data.buffer]);
      const guess = guessColumns(info.columns);
      state.tasks.push({ name: info.task, file: info.name, row_count: info.row_count, columns: info.columns, text: guess.text, label: guess.label });
      log(`Added task ${info.task} (${info.name}, ${info.row_count} rows).`);
    }
  } finally {
    $('task-file').value = '';
    renderTasks();
  }
}));
for (const id of ['text-column', 'label-column']) $(id).addEventListener('change', renderTasks);

function setMultitaskButtons(running) {
  $('multitask-start').disabled = running;
  $('multitask-stop').disabled = !running;
  $('multitask-predict').disabled = running || !state.multitask?.done;
  $('multitask-export').disabled = running || !state.multitask?.done;
}

$('multitask-start').addEventListener('click', guarded('multitask', async () => {
  clearErrors('multitask');
  if (!state.tasks.length) failWith('multitask', 'Add at least one more labelled file: multi-task training needs two or more tasks (the main training file is task 1).');
  setMultitaskButtons(true);
  try {
    const recipe = await prepareRun();
    const columns = state.tasks.map((t) => ({ text_column: t.columns[t.text], label_column: t.columns[t.label] }));
    const summary = await request(IN.MULTITASK, { recipe, columns });
    const n = summary.tasks.length;
    state.multitask = { summary, losses: summary.tasks.map(() => []), evals: summary.tasks.map(() => []), drawn: Array(n).fill(0), metrics: null, done: false, stopped: false, predictions: null, exported: null, sequence: [] };
    multitaskCharts.reset(summary.tasks.map((t) => t.name));
    $('multitask-predictions').replaceChildren();
    $('multitask-links').replaceChildren();
    $('multitask-progress').textContent = `${summary.total_steps} steps over ${n} tasks`;
    renderTasks();
  } catch (err) {
    setMultitaskButtons(false);
    throw err;
  }
}));
$('multitask-stop').addEventListener('click', guarded('multitask', async () => {
  $('multitask-stop').disabled = true;
  await request(IN.MULTITASK_STOP);
}));

function showMultitaskProgress(reports) {
  const mt = state.multitask;
  if (!mt) return;
  const lists = mt.summary.tasks.map(() => []);
  for (const r of reports) {
    lists[r.task].push({ step: r.step, loss: r.loss });
    mt.losses[r.task].push(r.loss);
    mt.sequence.push(r.task);
    mt.drawn = r.drawn;
    if (r.eval) {
      r.eval.forEach((m, i) => {
        mt.evals[i].push({ step: r.step, accuracy: m.accuracy, macro_f1: m.macro_f1 });
        multitaskCharts.addEval(i, r.step, m.accuracy);
      });
      log(`Multi-task epoch ${r.epoch}: ${r.eval.map((m, i) => `${mt.summary.tasks[i].name} accuracy ${pct(m.accuracy)}`).join(' · ')}`);
    }
  }
  multitaskCharts.add(lists);
  mt.charts = multitaskCharts.counts();
  const last = reports[reports.length - 1];
  if (last) {
    $('multitask-progress').textContent = `step ${last.step}/${last.total_steps} · epoch ${Math.min(last.epoch + (last.done ? 0 : 1), last.epochs)}/${last.epochs} · last batch from ${mt.summary.tasks[last.task].name}, loss ${fmt(last.loss)}`;
  }
  renderTasks();
}

function multitaskEnded({ ok, stopped, metrics }) {
  const mt = state.multitask;
  if (mt) Object.assign(mt, { done: true, stopped, ok, metrics });
  setMultitaskButtons(false);
  renderTasks();
  if (ok) log(stopped ? 'Multi-task run stopped; every task was evaluated.' : 'Multi-task run finished; every task was evaluated.');
}

$('multitask-predict').addEventListener('click', guarded('multitask', async () => {
  clearErrors('multitask');
  const text = $('multitask-text').value;
  if (!text.trim()) failWith('multitask', 'Type a text first: every task will label it.');
  const preds = await request(IN.MULTITASK_PREDICT, { text });
  state.multitask.predictions = preds;
  fillTable(
    $('multitask-predictions'),
    ['task', 'label', 'confidence', 'all labels'],
    preds.map((p, i) => {
      const t = state.multitask.summary.tasks[i];
      return [{ th: t.name }, p.label, pct(p.probabilities[p.label_id]), t.labels.map((l, j) => `${l} ${pct(p.probabilities[j])}`).join(' · ')];
    }),
  );
}));
$('multitask-text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') $('multitask-predict').click();
});

$('multitask-export').addEventListener('click', guarded('multitask', async () => {
  const mt = state.multitask;
  if (!mt?.done) failWith('multitask', 'Train the tasks first: there is nothing to export yet.');
  $('multitask-export').disabled = true;
  try {
    const files = await request(IN.MULTITASK_EXPORT);
    const doc = { model: state.model?.source, tasks: mt.summary.tasks, metrics: mt.metrics, drawn: mt.drawn, evaluations: mt.evals, recipe: mt.summary.recipe };
    mt.exported = await downloadZip('multitask', files, { 'metrics.json': doc }, $('multitask-links'), ': one Hugging Face folder per task');
  } finally {
    $('multitask-export').disabled = false;
  }
}));

// ---------------------------------------------------------------- results
function showResults({ metrics, predictions = [], phase = 'after', step = 0 }) {
  if (phase === 'before') {
    state.before = metrics;
    return;
  }
  state.metrics = metrics;
  state.metricsStep = step;
  state.predictions = predictions;
  $('metric-accuracy').textContent = pct(metrics.accuracy);
  $('metric-f1').textContent = fmt(metrics.macro_f1, 3);
  $('metric-loss').textContent = fmt(metrics.loss);
  $('metric-count').textContent = String(metrics.count);
  // Each card: the score now, and what it was before fine-tuning with the change.
  const before = state.before;
  const was = (b, a, format, points) => {
    if (typeof b !== 'number' || !Number.isFinite(b)) return '';
    const d = a - b;
    const change = points ? `${d >= 0 ? '+' : ''}${(100 * d).toFixed(1)} pt` : `${d >= 0 ? '+' : ''}${d.toFixed(3)}`;
    return t('results.was', { value: format(b), change });
  };
  $('metric-accuracy-before').textContent = was(before?.accuracy, metrics.accuracy, pct, true);
  $('metric-f1-before').textContent = was(before?.macro_f1, metrics.macro_f1, (x) => fmt(x, 3), false);
  $('metric-loss-before').textContent = was(before?.loss, metrics.loss, (x) => fmt(x, 4), false);
  for (const [id, better] of [['metric-accuracy', metrics.accuracy > (before?.accuracy ?? Infinity)], ['metric-f1', metrics.macro_f1 > (before?.macro_f1 ?? Infinity)], ['metric-loss', metrics.loss < (before?.loss ?? -Infinity)]]) {
    $(id).closest('.metric-card').classList.toggle('better', better);
  }
  renderMetricsTable();
  renderConfusion(metrics);
  renderPredictions();
  $('results').hidden = false;
}

function renderMetricsTable() {
  const after = state.metrics;
  const before = state.before;
  const rows = [];
  const row = (name, a, b, format) => {
    const delta = typeof a === 'number' && typeof b === 'number' ? b - a : NaN;
    const sign = Number.isFinite(delta) ? (delta > 0 ? '+' : '') : '';
    rows.push([{ th: name }, before ? format(a) : '—', format(b), Number.isFinite(delta) ? `${sign}${format === pct ? `${(100 * delta).toFixed(1)} pt` : delta.toFixed(3)}` : '—']);
  };
  row('accuracy', before?.accuracy, after.accuracy, pct);
  row('macro-F1', before?.macro_f1, after.macro_f1, (x) => fmt(x, 3));
  row('loss', before?.loss, after.loss, (x) => fmt(x, 4));
  for (const c of after.per_class) {
    const b = before?.per_class.find((x) => x.label === c.label);
    row(`${c.label}: precision`, b?.precision, c.precision, (x) => fmt(x, 3));
    row(`${c.label}: recall`, b?.recall, c.recall, (x) => fmt(x, 3));
    row(`${c.label}: F1 (support ${c.support})`, b?.f1, c.f1, (x) => fmt(x, 3));
  }
  const stepName = t('results.after', { step: state.metricsStep ?? 0 });
  fillTable($('metrics-table'), ['metric', t('results.before'), stepName, 'change'], rows);
}

function renderConfusion(metrics) {
  const max = Math.max(1, ...metrics.confusion.flat());
  fillTable(
    $('confusion'),
    ['true \\ predicted', ...metrics.labels],
    metrics.confusion.map((row, gold) => [{ th: metrics.labels[gold] }, ...row.map((n, p) => ({ text: String(n), cls: p === gold ? 'diag' : 'off' }))]),
  );
  for (const td of $('confusion').querySelectorAll('tbody td')) {
    td.style.setProperty('--heat', String(Number(td.textContent) / max)); // CSSOM: allowed by the CSP
  }
}

function renderPredictions() {
  let preds = state.predictions.map((p, i) => ({ ...p, i }));
  if ($('errors-only').checked) preds = preds.filter((p) => p.gold !== p.label);
  const sort = $('sort-predictions').value;
  if (sort === 'conf-asc') preds.sort((a, b) => a.confidence - b.confidence);
  if (sort === 'conf-desc') preds.sort((a, b) => b.confidence - a.confidence);
  const shown = preds.slice(0, 500);
  fillTable($('predictions'), ['#', 'text', 'true', 'predicted', 'confidence'], shown.map((p) => [String(p.i + 1), p.text, p.gold, p.label, pct(p.confidence)]));
  shown.forEach((p, i) => {
    if (p.gold !== p.label) $('predictions').tBodies[0].rows[i].classList.add('wrong');
  });
  $('predictions-count').textContent = t('results.count', { shown: shown.length, total: preds.length });
}
$('errors-only').addEventListener('change', guarded('results', renderPredictions));
$('sort-predictions').addEventListener('change', guarded('results', renderPredictions));

// ---------------------------------------------------------------- try it
$('try-button').addEventListener('click', guarded('try', async () => {
  clearErrors('try');
  const text = $('try-text').value;
  if (!text.trim()) failWith('try', 'Type some text to classify first.');
  if (!state.summary) failWith('try', 'Start training (or "Evaluate without training") first: the try-it box uses the model being trained.');
  const prediction = await request(IN.PREDICT, { text });
  state.prediction = prediction;
  const labels = state.summary?.labels ?? [];
  const title = document.createElement('p');
  title.textContent = t('try.predicted', { label: prediction.label, p: pct(prediction.probabilities[prediction.label_id]) });
  const table = document.createElement('table');
  table.className = 'probs';
  prediction.probabilities.forEach((p, i) => {
    const tr = table.insertRow();
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = labels[i] ?? `class ${i}`;
    const bar = document.createElement('td');
    const fill = document.createElement('div');
    fill.className = 'bar';
    fill.style.setProperty('--p', String(p));
    bar.append(fill);
    const value = document.createElement('td');
    value.textContent = pct(p);
    tr.append(th, bar, value);
  });
  $('try-result').replaceChildren(title, table);
}));

// ---------------------------------------------------------------- export
$('export').addEventListener('click', guarded('export', async () => {
  clearErrors('export');
  if (!state.summary) failWith('export', 'Train a model first (or load one and use "Evaluate without training"): there is nothing to export yet.');
  if (state.training && !state.paused) failWith('export', 'Pause or stop training before exporting, so the archive holds one consistent set of weights.');
  $('export').disabled = true;
  $('export-status').textContent = '…';
  try {
    const files = await request(IN.EXPORT, { baseName: state.model?.source ?? 'base-model' });
    const metricsDoc = {
      model: state.model?.source, labels: state.summary.labels, before: state.before, after: state.metrics,
      evaluations: state.evals, train_losses: state.losses, learning_rates: state.lrs, backend: state.backend,
      train_rows: state.summary.train_count, eval_rows: state.summary.eval_count, recipe: state.recipe,
      domain_adaptation: state.adaptation ? { domain_file: state.adaptation.summary.domain_file, held_out: state.adaptation.history, train_losses: state.adaptation.losses } : null,
    };
    state.exported = await downloadZip('finetuned', files, { 'metrics.json': metricsDoc, 'recipe.json': state.recipe }, $('export-links'));
    $('export-status').textContent = t('export.done', { name: state.exported.name });
  } finally {
    $('export').disabled = false;
  }
}));

// Leaving the page mid-run loses the work: ask first.
window.addEventListener('beforeunload', (e) => {
  if (state.training) e.preventDefault();
});

// ---------------------------------------------------------------- generative models (section 9)
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
  $('lm-export').disabled = true;
  guarded('lm', updateLmMemory)();
}

$('decoder-bundled').addEventListener('click', guarded('decoder', () => loadBundledDecoder()));

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

/** The number in field `id`, or a message next to it naming the allowed range. */
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

function showGeneration(p) {
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
  const bytes = await fileBytes(file);
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
    lmMemoryTimer = setTimeout(guarded('lm', updateLmMemory), 150);
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
  $('lm-export').disabled = true;
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

function showLmProgress({ reports, history }) {
  const lm = state.lm;
  if (!lm) return;
  for (const r of reports) lm.losses.push(r.loss);
  const fresh = history.slice(lm.history.length);
  lm.history = history;
  lmChart.add(reports, fresh);
  const last = reports[reports.length - 1];
  if (last) $('lm-progress').textContent = `step ${last.step}/${last.total_steps} · epoch ${last.epoch}/${last.epochs} · loss ${fmt(last.loss)} · ${fmt(last.tokens_per_s, 0)} tokens/s`;
  if (last && panelRun === 'lm') lmRunPanel(last);
  fillTable($('lm-table'), ['', 'held-out loss', 'perplexity', 'tokens'],
    lm.history.map((e) => [{ th: e.step === 0 ? 'before fine-tuning' : `after epoch ${e.epoch}` }, fmt(e.loss), fmt(e.perplexity, 2), String(e.tokens)]));
}

/** The run panel for a decoder run: step, loss, the last held-out perplexity, the loss curve. */
function lmRunPanel(last) {
  const lm = state.lm;
  $('run-panel-bar').max = last.total_steps;
  $('run-panel-bar').value = last.step;
  const ev = lm.history[lm.history.length - 1];
  $('run-panel-text').textContent = `${t('runPanel.step')} ${last.step}/${last.total_steps} · loss ${fmt(last.loss, 3)}${ev ? ` · ${t('runPanel.perplexity')} ${fmt(ev.perplexity, 2)}` : ''}`;
  const losses = thin(lm.losses.filter(Number.isFinite), 120);
  const [lo, hi] = [Math.min(...losses), Math.max(...losses)];
  $('run-panel-loss').setAttribute('points', losses.map((v, i) => `${((120 * i) / Math.max(1, losses.length - 1)).toFixed(1)},${(22 - (20 * (v - lo)) / Math.max(1e-9, hi - lo)).toFixed(1)}`).join(' '));
  $('run-panel-eval').setAttribute('points', '');
}

async function lmEnded({ ok, stopped }) {
  const lm = state.lm;
  if (panelRun === 'lm') showRunPanel(null);
  // Finished or stopped on purpose: nothing to resume. (After an error the checkpoint stays.)
  if (ok) discardSavedRun(DECODER_RUN).catch(() => {});
  $('lm-stop').disabled = true;
  $('lm-start').disabled = !state.decoder;
  $('gen-start').disabled = !state.decoder;
  if (!lm) return;
  lm.stopped = stopped;
  if (ok && lm.losses.length) {
    $('gen-tuned').disabled = false;
    $('lm-export').disabled = false;
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
  if (!runsAvailable()) return;
  const first = lm.history.find((e) => e.step === 0) ?? null;
  const last = lm.history.length ? lm.history[lm.history.length - 1] : null;
  const score = (e) => (e ? { loss: e.loss, perplexity: e.perplexity } : null);
  await rememberRun({
    date: new Date().toISOString(),
    task: lm.recipe.task,
    model: state.decoder?.source ?? '—',
    data: state.lmFile?.name ?? '—',
    backend: state.backend?.kind ?? null,
    recipe: lm.recipe,
    steps: lm.losses.length,
    total_steps: lm.summary.total_steps,
    stopped: Boolean(stopped),
    before: first && first !== last ? score(first) : null,
    after: score(last),
    losses: thin(lm.losses),
  });
  await renderRuns();
}

$('lm-export').addEventListener('click', guarded('lm', async () => {
  const files = await request(IN.LM_EXPORT, { baseName: state.decoder?.source ?? 'base-model' });
  const lm = state.lm;
  const docs = { 'metrics.json': { history: lm.history, train_losses: lm.losses, before: lm.before, after: lm.after, prompts: lm.summary.eval_prompts, generation_metrics: lm.metrics }, 'recipe.json': lm.recipe };
  lm.exported = await downloadZip(lm.recipe.task, files, docs, $('lm-links'), '', state.decoder?.source);
}));

// ---------------------------------------------------------------- resuming a decoder run
/** Stores what a reload needs to continue the run: the model (the bundled one by name, or the
 * chosen files), the training file and the recipe; the worker adds checkpoints. */
async function saveLmRun(recipe, checkpointEvery) {
  const src = state.decoderSource;
  if (!src || !state.lmFile) return;
  const files = [[`data-${state.lmFile.name}`, state.lmFile]];
  if (src.kind === 'files') for (const f of src.files) files.push([`model-${f.name}`, f]);
  const meta = {
    version: 1, model: src.kind === 'bundled' ? { source: 'bundled' } : { source: 'files', files: src.files.map((f) => f.name) },
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
  const model = meta.model.source === 'bundled' ? 'SmolLM2-135M-Instruct (bundled)' : meta.model.files.join(', ');
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
    $('lm-export').disabled = true;
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

// ---------------------------------------------------------------- task first
// The page opens on the choice of what to do (views/tasks.js); each task shows its steps. A
// choice sets the defaults that fit it; it never touches a run in progress.
// The adapt task has no labelled-data step: its held-out share of the domain text is the same
// recipe field (eval_fraction), shown beside the domain text.
for (const [from, to] of [['domain-eval-fraction', 'eval-fraction'], ['eval-fraction', 'domain-eval-fraction']]) {
  $(from).addEventListener('input', () => {
    $(to).value = $(from).value;
  });
}
let adaptEpochsSet = false; // the adapt task set the adaptation epochs from 0 to 1
function taskChosen(task) {
  state.task = task;
  const decoder = task === 'chat' || task === 'continue';
  if (decoder && !(state.lm && !state.lm.done)) {
    $('lm-task').value = task === 'chat' ? 'instruct' : 'causal-lm';
    $('lm-task').dispatchEvent(new Event('change'));
  }
  if (task === 'adapt') {
    $('domain').open = true;
    $('domain-eval-fraction').value = $('eval-fraction').value;
    if (Number($('mlm-epochs').value) < 1) {
      $('mlm-epochs').value = '1';
      adaptEpochsSet = true;
    }
  } else if (adaptEpochsSet && !state.domain) {
    // Classifying without domain text: the adaptation stage the adapt task switched on goes off.
    $('mlm-epochs').value = '0';
    adaptEpochsSet = false;
  }
}
initTasks(taskChosen);
$('change-task').addEventListener('click', () => {
  showTask(null);
  $('task-picker').scrollIntoView?.({ block: 'start' });
});

// ---------------------------------------------------------------- class demo
// ?demo=sentiment: the classification task on the bundled model and data, for a classroom.
const demo = demoWanted();
if (demo?.error) showError(new Error(demo.error), null);
else if (demo) {
  startDemo(demo.name, {
    state,
    showTask,
    setStrategy: (value) => {
      $('strategy').value = value;
      showStrategyFields();
    },
    loadModel: () => guarded('model', loadModel)(),
    start: () => guarded('train', startTraining)(),
  });
}
backendReady.then(() => updateGallery()).catch((err) => showError(err, 'model'));
