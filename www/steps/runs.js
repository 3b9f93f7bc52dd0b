// Earlier runs: every finished run is remembered in this browser (IndexedDB, runs.js) with its
// recipe, model, data, scores and curve; listed newest first, any two side by side, re-run, delete.

import { t } from '../i18n.js';
import { forgetRun, listRuns, rememberRun, runsAvailable } from '../runs.js';
import { showTask } from '../views/tasks.js';
import { $, fillTable, fmt, log, pct, sci, thin, when } from '../lib/dom.js';
import { guarded, showError } from '../lib/errors.js';
import { bundledModel, state } from '../lib/state.js';
import { applyRecipeText } from './recipe.js';

const runsView = { selected: [] };
const scoreOf = (m) => (m ? { accuracy: m.accuracy, macro_f1: m.macro_f1, loss: m.loss, count: m.count } : null);

/** Remembers a finished run of any task (a record as runs.js keeps it: date, task, model, data,
 * backend, recipe, steps, total_steps, stopped, before, after, losses) and redraws the list.
 * Resolves with the record's id (null where the browser keeps none). */
export async function keep(record) {
  if (!runsAvailable()) return null;
  const id = await rememberRun({ date: new Date().toISOString(), backend: state.backend?.kind ?? null, ...record, losses: thin(record.losses ?? []) });
  await renderRuns();
  return id;
}

/** Ticks two runs for the side-by-side view (the two runs of a strategy comparison). */
export async function compareRemembered(a, b) {
  if (a == null || b == null) return;
  runsView.selected = [a, b];
  await renderRuns();
}

/** A finished classifier run: scores before (step 0) and after. */
export async function keepRun(stopped) {
  await keep({
    task: 'text-classification',
    model: state.model?.source ?? bundledModel,
    data: state.data?.name ?? '—',
    recipe: state.recipe,
    steps: state.losses.length,
    total_steps: state.summary?.total_steps ?? state.losses.length,
    stopped: Boolean(stopped),
    before: scoreOf(state.before),
    after: scoreOf(state.metrics),
    losses: state.losses,
  });
}

/** An "Adapt only" run: its epochs and rate are the recipe's adaptation stage. */
const adapting = (r) => r.task === 'masked-lm' && r.recipe.mlm_epochs !== undefined;
const strategyOf = (r) => `${r.strategy}${r.strategy === 'top' ? ` ${r.top_layers}` : ''}${r.strategy === 'lora' ? ` r${r.lora_rank}` : ''}`;

export async function renderRuns() {
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
    return [{ node: box }, when(r.date) + (r.stopped ? ' (stopped)' : ''), r.task ?? 'text-classification', r.model, r.data, strategyOf(r.recipe), String(adapting(r) ? r.recipe.mlm_epochs : r.recipe.epochs), sci(adapting(r) ? r.recipe.mlm_lr : r.recipe.lr), acc, fmt(r.after?.macro_f1, 3), { node: actions }];
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

/** The page's task for a remembered run's task. */
const TASK_OF = { instruct: 'chat', 'causal-lm': 'continue', 'masked-lm': 'adapt', 'multi-task': 'multitask', 'text-classification': 'classify' };

function rerun(r) {
  const decoder = r.task === 'instruct' || r.task === 'causal-lm';
  showTask(TASK_OF[r.task] ?? 'classify');
  applyRecipeText(JSON.stringify(r.recipe), `the run of ${when(r.date)}`);
  log(`The recipe of the run of ${when(r.date)} is back in the form: start it when ready (model ${r.model}, data ${r.data}).`);
  $(decoder ? 'lm-recipe-section' : 'recipe-section').scrollIntoView?.({ block: 'start' });
}
renderRuns().catch((err) => showError(err, 'runs'));
