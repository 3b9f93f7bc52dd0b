// Resuming a saved classifier run: an unfinished run found in OPFS (model source, data files,
// recipe, last checkpoint) is offered at load and continues where it stopped.

import { IN } from '../protocol.js';
import { discardSavedRun, readSavedRun, savedFile } from '../saved-run.js';
import { currentTask, showTask } from '../views/tasks.js';
import { $, log } from '../lib/dom.js';
import { request } from '../lib/engine.js';
import { clearErrors, concerning, failWith, guarded } from '../lib/errors.js';
import { bundledModel, sourceFiles, state } from '../lib/state.js';
import { backendReady } from './backend.js';
import { evalMode, loadData, loadEvalFile } from './data.js';
import { addMixFiles, removeMixFile } from './mixing.js';
import { loadModel, onLocalFiles } from './model.js';
import { applyRecipeText, readRecipe } from './recipe.js';
import { charts, describeStart, resetRun, setTrainingButtons, showProgress } from './train.js';

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
