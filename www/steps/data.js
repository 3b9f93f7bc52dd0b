// Step "data": the training file (or the bundled sample), its preview, columns and checks, and
// the evaluation data (a held-out share or a file of its own).

import { IN } from '../protocol.js';
import { t } from '../i18n.js';
import { LabelChart } from '../charts.js';
import { fileBytes, readBody } from '../sources.js';
import { $, bytes, fillSelect, fillTable } from '../lib/dom.js';
import { request } from '../lib/engine.js';
import { clearErrors, concerning, failWith, guarded, showError } from '../lib/errors.js';
import { emit } from '../lib/events.js';
import { checkExtension, checkNotEmpty, guessColumns, tableBytes } from '../lib/files.js';
import { BUNDLED_DATA, sourceFiles, state } from '../lib/state.js';
import { backendReady } from './backend.js';
import { refreshMixture } from './mixing.js';

let dataGeneration = 0; // only the newest inspection is rendered

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

/** Loads training data from a File (or the bundled sample when `file` is null). */
export async function loadData(file) {
  clearErrors('data', 'columns');
  state.dataOrigin.train = null;
  const generation = ++dataGeneration;
  const status = $('data-status');
  const bar = $('data-progress');
  let data, name;
  if (file) {
    checkExtension(file.name, 'data');
    checkNotEmpty(file, 'data');
    data = await tableBytes(await readWithProgress(file, bar, status), file.name, 'data');
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
  emit('data-loaded');
  await runChecks();
  if (state.mixFiles.length) await refreshMixture().catch((err) => showError(err, 'mix'));
}

export function renderDataSummary() {
  const info = state.data;
  if (info) $('data-summary').textContent = t('data.loaded', { name: info.name, format: info.format.toUpperCase(), rows: info.row_count, columns: info.columns.join(', ') });
}

const labelChart = new LabelChart($('label-chart'));
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => labelChart.restyle());

/** Re-runs the data checks for the chosen columns and max length. */
export async function runChecks() {
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
  emit('checks');
}

export function renderChecks() {
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
export const evalMode = () => document.querySelector('input[name="eval-mode"]:checked').value;
export async function loadEvalFile(file = $('eval-file').files[0]) {
  clearErrors('eval');
  if (!file) return;
  state.dataOrigin.eval = null;
  document.querySelector('input[name="eval-mode"][value="file"]').checked = true;
  checkExtension(file.name, 'eval');
  await concerning('backend', () => backendReady);
  const data = await tableBytes(await fileBytes(file), file.name, 'eval');
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
