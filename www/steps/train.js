// Step "train": Start, Pause, Stop, "Adapt only" and "Evaluate without training"; the live
// curves, step log and layer groups; checkpoints for a resume.

import { IN } from '../protocol.js';
import { t } from '../i18n.js';
import { TrainingCharts, chartsAvailable } from '../charts.js';
import { discardSavedRun, opfsAvailable, saveRunStart } from '../saved-run.js';
import { layerPlan, startText } from '../views/layers.js';
import { lossText, showRunPanel, updateRunPanel } from '../views/runpanel.js';
import { $, duration, fillTable, fmt, log, pct, radioValue, sci } from '../lib/dom.js';
import { prepareCheckpoints, request } from '../lib/engine.js';
import { clearErrors, concerning, failCoded, failWith, guarded, showError } from '../lib/errors.js';
import { bundledModel, sourceFiles, state } from '../lib/state.js';
import { backendReady } from './backend.js';
import { evalMode, loadData } from './data.js';
import { adaptationStarted, keepAdaptation, resetAdaptation } from './domain.js';
import { renderMixture } from './mixing.js';
import { ensureModel, localModelFiles } from './model.js';
import { readRecipe } from './recipe.js';
import { showResults } from './results.js';
import { keepRun } from './runs.js';

export const charts = new TrainingCharts({ loss: $('loss-chart'), lr: $('lr-chart'), evaluation: $('eval-chart') });
if (!chartsAvailable) {
  $('chart-error').textContent = 'The chart library (vendor/chart.umd.min.js) is missing: run the set-up command (scripts/serve.sh) to install it. Training works without it; the numbers are in the step table below.';
  $('chart-error').hidden = false;
}
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => charts.restyle?.());

export function setTrainingButtons(running) {
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
export async function prepareRun() {
  clearErrors('backend', 'model', 'data', 'columns', 'eval', 'recipe', 'train', 'results');
  const recipe = readRecipe(); // before any loading, so a typo fails fast
  await concerning('backend', () => backendReady);
  await ensureModel();
  if (!state.data) await loadData(null);
  if (!$('label-column').value) failCoded('columns', 'page.no-label-column', {}, 'Choose the label column: text classification needs a label for every text.');
  if (evalMode() === 'file' && !state.evalData) failWith('eval', 'Choose the evaluation file, or hold out part of the training file instead.');
  recipe.text_column = $('text-column').value;
  recipe.label_column = $('label-column').value;
  return recipe;
}

export function resetRun(recipe) {
  resetAdaptation();
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

export function describeStart(summary) {
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
    for (const f of localModelFiles()) {
      model.files.push(f.name);
      files.push([`model-${f.name}`, f]);
    }
  }
  const meta = { version: 1, model, data, recipe, checkpointEvery: every, started_at: new Date().toISOString() };
  await saveRunStart(meta, files);
}

export async function startTraining() {
  $('start').disabled = true;
  try {
    const recipe = await prepareRun();
    resetRun(recipe);
    let every = checkpointEvery();
    if (every > 0) {
      const files = [sourceFiles.main, ...sourceFiles.extras, sourceFiles.eval, ...(radioValue('model-source') === 'local' ? localModelFiles() : [])];
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

/** The classifier run started (directly, or after the adaptation stage). */
export function classifierStageStarted(summary) {
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

export function showProgress(reports) {
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
  const acc = state.evals.length ? ` · ${t('runPanel.accuracy')} ${pct(state.evals[state.evals.length - 1].accuracy)}` : '';
  updateRunPanel({ step: last.step, total: last.total_steps, text: lossText(last.loss) + acc, losses: state.losses, eta, scores: state.evals.map((e) => e.accuracy) });
  $('progress').textContent = t('progress.line', {
    // `epoch` counts finished epochs; show the one in progress.
    step: last.step, total: last.total_steps, epoch: last.epoch_end || last.done ? last.epoch : Math.min(last.epoch + 1, last.epochs), epochs: last.epochs, loss: fmt(last.loss),
    exs: fmt(last.examples_per_s, 1), toks: fmt(last.tokens_per_s, 0), elapsed: duration(last.elapsed_s), eta: duration(eta),
  });
}

export function trainingEnded({ ok, stopped, step, adaptOnly }) {
  // A run that ended (finished, or stopped on purpose) is no longer offered for resuming.
  if (ok && !adaptOnly) discardSavedRun().catch(() => {});
  if (ok && !adaptOnly && state.metrics) keepRun(stopped).catch((err) => showError(err, 'runs'));
  if (ok && adaptOnly && !stopped) $('export-adapted').disabled = false;
  if (ok && adaptOnly) keepAdaptation(stopped).catch((err) => showError(err, 'runs'));
  state.training = false;
  state.paused = false;
  state.done = true;
  setTrainingButtons(false);
  log(ok ? (stopped ? t('train.stopped', { step }) : t('train.finished')) : t('train.failed', { step }));
}

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
