// The compare task: two strategy presets trained in turns on the same data, side by side.

import { IN } from '../protocol.js';
import { lossText, showRunPanel, updateRunPanel } from '../views/runpanel.js';
import { CompareCharts } from '../charts.js';
import { $, fillTable, fmt, pct, sci } from '../lib/dom.js';
import { request } from '../lib/engine.js';
import { clearErrors, failWith, guarded, showError } from '../lib/errors.js';
import { bundledModel, state } from '../lib/state.js';
import { backendReady } from './backend.js';
import { compareRemembered, keep } from './runs.js';
import { prepareRun } from './train.js';

const compareCharts = new CompareCharts({ loss: $('compare-loss-chart'), evaluation: $('compare-eval-chart') });
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => compareCharts.restyle());

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
  showRunPanel(running ? 'compare' : null);
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

export function showCompareProgress(reports) {
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
  // The panel: both runs' steps together; the curve and scores of the run that trained last.
  const now = Math.max(0, reports.findLastIndex((list) => list.length > 0));
  const last = c.losses[now][c.losses[now].length - 1];
  updateRunPanel({
    step: c.losses.reduce((n, l) => n + l.length, 0), total: c.summary.runs.reduce((n, r) => n + r.total_steps, 0),
    text: `${c.summary.runs[now].name}${last !== undefined ? ` · ${lossText(last)}` : ''}`, losses: c.losses[now], scores: c.evals[now].map((e) => e.accuracy),
  });
}

export function compareEnded({ ok, stopped, results }) {
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
  if (ok) keepComparison(c).catch((err) => showError(err, 'runs'));
}

/** Both runs of a comparison, remembered as two runs and ticked for the side-by-side view. */
async function keepComparison(c) {
  const ids = [];
  for (const [i, r] of c.results.entries()) {
    const m = r.metrics;
    ids.push(await keep({
      task: 'text-classification',
      model: state.model?.source ?? bundledModel,
      data: `${state.data?.name ?? '—'} (compare: ${r.name})`,
      recipe: c.summary.runs[i].recipe,
      steps: c.losses[i].length,
      total_steps: c.summary.runs[i].total_steps,
      stopped: Boolean(c.stopped),
      before: null,
      after: { accuracy: m.accuracy, macro_f1: m.macro_f1, loss: m.loss, count: m.count },
      losses: c.losses[i],
    }));
  }
  await compareRemembered(ids[0], ids[1]);
}

$('compare-start').addEventListener('click', guarded('compare', startComparison));
$('compare-stop').addEventListener('click', guarded('compare', async () => {
  $('compare-stop').disabled = true;
  await request(IN.COMPARE_STOP);
}));
