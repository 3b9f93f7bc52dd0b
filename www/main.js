// The studio page's shell: it loads the steps (steps/*.js, one module per step or task view, on
// the shared lib/ modules), wires the engine's events to the step that shows each, and holds
// what spans the steps: the language, the intro, the task choice and the class demo.
// `window.burnishState` (lib/state.js) mirrors what the page shows, for the browser tests.

import { OUT } from './protocol.js';
import { applyLanguage, initialLanguage, saveLanguage } from './i18n.js';
import { initTasks, renderSteps, showTask } from './views/tasks.js';
import { demoWanted, startDemo } from './views/demo.js';
import { $ } from './lib/dom.js';
import { onEngineEvent } from './lib/engine.js';
import { guarded, retranslateErrors, showError } from './lib/errors.js';
import { on } from './lib/events.js';
import { state } from './lib/state.js';
import { backendReady, showBackend, showWasmProgress } from './steps/backend.js';
import { renderChecks, renderDataSummary } from './steps/data.js';
import './steps/hubdata.js';
import { loadModel, renderMemory, updateGallery } from './steps/model.js';
import { showStrategyFields, updateLayerPicture } from './steps/recipe.js';
import { showAdaptProgress } from './steps/domain.js';
import { classifierStageStarted, setTrainingButtons, showProgress, startTraining, trainingEnded } from './steps/train.js';
import './steps/resume.js';
import { showResults } from './steps/results.js';
import './steps/export.js';
import { compareEnded, showCompareProgress } from './steps/compare.js';
import { multitaskEnded, showMultitaskProgress } from './steps/multitask.js';
import { lmEnded, showGeneration, showLmProgress } from './steps/decoder.js';

// ---------------------------------------------------------------- the engine's events
for (const [type, show] of [
  [OUT.PROGRESS, (p) => showProgress(p.reports)],
  [OUT.METRICS, showResults],
  [OUT.DONE, trainingEnded],
  [OUT.CHECKPOINT, (p) => state.checkpoints.push(p.step)],
  [OUT.COMPARE_PROGRESS, (p) => showCompareProgress(p.reports)],
  [OUT.COMPARE_DONE, compareEnded],
  [OUT.MLM_PROGRESS, showAdaptProgress],
  [OUT.STAGE, (p) => classifierStageStarted(p.summary)],
  [OUT.MT_PROGRESS, (p) => showMultitaskProgress(p.reports)],
  [OUT.MT_DONE, multitaskEnded],
  [OUT.LM_PROGRESS, showLmProgress],
  [OUT.LM_DONE, lmEnded],
  [OUT.LM_CHECKPOINT, (p) => state.lmCheckpoints.push(p.step)],
  [OUT.GEN_TOKENS, showGeneration],
  [OUT.WASM_PROGRESS, showWasmProgress],
  [OUT.BACKEND, showBackend],
]) onEngineEvent(type, show);

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
  retranslateErrors();
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

// Leaving the page mid-run loses the work: ask first.
window.addEventListener('beforeunload', (e) => {
  if (state.training) e.preventDefault();
});


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
    onChange: (fn) => ['engine-event', 'data-loaded', 'checks', 'model-loaded'].forEach((name) => on(name, fn)),
    loadModel: () => guarded('model', loadModel)(),
    start: () => guarded('train', startTraining)(),
  });
}
backendReady.then(() => updateGallery()).catch((err) => showError(err, 'model'));
