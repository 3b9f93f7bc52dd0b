// The multi-task task: one shared encoder, a head per labelled file (the main training file is
// task 1), batches drawn from the tasks in turn or by size; every task evaluated and exported.

import { IN } from '../protocol.js';
import { t } from '../i18n.js';
import { lossText, showRunPanel, updateRunPanel } from '../views/runpanel.js';
import { CompareCharts } from '../charts.js';
import { fileBytes } from '../sources.js';
import { $, fillSelect, fillTable, fmt, log, pct } from '../lib/dom.js';
import { downloadZip } from '../lib/downloads.js';
import { request } from '../lib/engine.js';
import { clearErrors, concerning, failWith, guarded, showError } from '../lib/errors.js';
import { on } from '../lib/events.js';
import { checkExtension, checkNotEmpty, guessColumns, tableBytes } from '../lib/files.js';
import { bundledModel, state } from '../lib/state.js';
import { backendReady } from './backend.js';
import { keep } from './runs.js';
import { prepareRun } from './train.js';

const multitaskCharts = new CompareCharts({ loss: $('multitask-loss-chart'), evaluation: $('multitask-eval-chart') });
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => multitaskCharts.restyle());

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
      checkNotEmpty(file, 'multitask');
      const data = await tableBytes(await fileBytes(file), file.name, 'multitask');
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
  showRunPanel(running ? 'multitask' : null);
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
    state.multitask = { summary, losses: summary.tasks.map(() => []), evals: summary.tasks.map(() => []), drawn: Array(n).fill(0), metrics: null, done: false, stopped: false, predictions: null, exported: null, sequence: [], stepLosses: [] };
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

export function showMultitaskProgress(reports) {
  const mt = state.multitask;
  if (!mt) return;
  const lists = mt.summary.tasks.map(() => []);
  for (const r of reports) {
    lists[r.task].push({ step: r.step, loss: r.loss });
    mt.losses[r.task].push(r.loss);
    mt.sequence.push(r.task);
    mt.stepLosses.push(r.loss);
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
    // The panel: every step's loss in order, and the tasks' mean accuracy at each evaluation.
    const scores = (mt.evals[0] ?? []).map((_, k) => mt.evals.reduce((sum, list) => sum + (list[k]?.accuracy ?? NaN), 0) / mt.evals.length);
    updateRunPanel({ step: last.step, total: last.total_steps, text: `${t('runPanel.task')} ${mt.summary.tasks[last.task].name} · ${lossText(last.loss)}`, losses: mt.stepLosses, scores });
  }
  renderTasks();
}

export function multitaskEnded({ ok, stopped, metrics }) {
  const mt = state.multitask;
  if (mt) Object.assign(mt, { done: true, stopped, ok, metrics });
  setMultitaskButtons(false);
  renderTasks();
  if (ok) log(stopped ? 'Multi-task run stopped; every task was evaluated.' : 'Multi-task run finished; every task was evaluated.');
  if (ok && mt && metrics?.length) keepMultitask(mt).catch((err) => showError(err, 'runs'));
}

/** A finished multi-task run, remembered: each task's scores and their mean. */
async function keepMultitask(mt) {
  const mean = (key) => mt.metrics.reduce((sum, m) => sum + m[key], 0) / mt.metrics.length;
  await keep({
    task: 'multi-task',
    model: state.model?.source ?? bundledModel,
    data: [state.data?.name ?? '—', ...state.tasks.map((t) => t.file)].join(' + '),
    recipe: mt.summary.recipe,
    steps: mt.stepLosses.length,
    total_steps: mt.summary.total_steps,
    stopped: Boolean(mt.stopped),
    before: null,
    after: { accuracy: mean('accuracy'), macro_f1: mean('macro_f1'), tasks: mt.metrics.map((m, i) => ({ task: mt.summary.tasks[i].name, accuracy: m.accuracy, macro_f1: m.macro_f1 })) },
    losses: mt.stepLosses,
  });
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

on('data-loaded', renderTasks); // the main training file is task 1
