// Step "evaluate": the dashboard (scores before → after, confusion matrix, per-label metrics,
// the predictions with the errors first) and the try-it box.

import { IN } from '../protocol.js';
import { t } from '../i18n.js';
import { $, fillTable, fmt, pct } from '../lib/dom.js';
import { request } from '../lib/engine.js';
import { clearErrors, failCoded, guarded } from '../lib/errors.js';
import { state } from '../lib/state.js';

export function showResults({ metrics, predictions = [], phase = 'after', step = 0 }) {
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
  if (!text.trim()) failCoded('try', 'page.no-text', {}, 'Type some text to classify first.');
  if (!state.summary) failCoded('try', 'page.try-before-training', {}, 'Start training (or "Evaluate without training") first: the try-it box uses the model being trained.');
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
