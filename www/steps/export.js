// Step "export": the fine-tuned classifier as a Hugging Face folder (with the recipe and metrics),
// and the recipe as a Hugging Face Trainer + PEFT training script (engine/script.rs).

import { IN } from '../protocol.js';
import { t } from '../i18n.js';
import { $, bytes as fmtBytes } from '../lib/dom.js';
import { downloadZip } from '../lib/downloads.js';
import { request } from '../lib/engine.js';
import { clearErrors, failCoded, failWith, guarded } from '../lib/errors.js';
import { bundledModel, state } from '../lib/state.js';
import { evalMode } from './data.js';
import { readRecipe } from './recipe.js';

/** An export of the trained weights from `button`: refused before training or while it runs,
 * the button off and the status busy while `fn` works. */
const exporting = (button, fn) => guarded('export', async () => {
  clearErrors('export');
  if (!state.summary) failCoded('export', 'page.export-before-training', {}, 'Train a model first (or load one and use "Evaluate without training"): there is nothing to export yet.');
  if (state.training && !state.paused) failWith('export', 'Pause or stop training before exporting, so the archive holds one consistent set of weights.');
  $(button).disabled = true;
  $('export-status').textContent = '…';
  try {
    await fn();
  } finally {
    $(button).disabled = false;
  }
});

$('export').addEventListener('click', exporting('export', async () => {
  const files = await request(IN.EXPORT, { baseName: state.model?.source ?? 'base-model' });
  const metricsDoc = {
    model: state.model?.source, labels: state.summary.labels, before: state.before, after: state.metrics,
    evaluations: state.evals, train_losses: state.losses, learning_rates: state.lrs, backend: state.backend,
    train_rows: state.summary.train_count, eval_rows: state.summary.eval_count, recipe: state.recipe,
    domain_adaptation: state.adaptation ? { domain_file: state.adaptation.summary.domain_file, held_out: state.adaptation.history, train_losses: state.adaptation.losses } : null,
  };
  state.exported = await downloadZip('finetuned', files, { 'metrics.json': metricsDoc, 'recipe.json': state.recipe }, $('export-links'));
  $('export-status').textContent = t('export.done', { name: state.exported.name });
}));

/** What the script loads as the model: the Hub id it came from, the bundled MiniLM by its Hub id,
 * or a folder `model/` beside the script holding the files chosen from disk. */
function scriptModel() {
  const source = state.model?.source ?? '';
  if (source.startsWith('huggingface.co/')) return source.slice('huggingface.co/'.length);
  if (source === bundledModel && /^all-MiniLM/.test(bundledModel)) return `sentence-transformers/${bundledModel}`;
  return './model';
}

$('export-script').addEventListener('click', guarded('export', async () => {
  clearErrors('export');
  const recipe = readRecipe();
  // A Hub dataset's file by its URL (datasets downloads it); a file from disk by its name, to sit beside the script.
  const trainFiles = [state.dataOrigin.train ?? state.data?.name ?? 'train.csv', ...state.mixFiles.map((f) => f.name)];
  const evalFile = evalMode() === 'file' ? (state.dataOrigin.eval ?? state.evalData?.name) : undefined;
  const text = await request(IN.TRAINING_SCRIPT, { recipe, model: scriptModel(), trainFiles, evalFile });
  const url = URL.createObjectURL(new Blob([text], { type: 'text/x-python' }));
  const a = Object.assign(document.createElement('a'), { href: url, download: 'train.py', textContent: 'train.py' });
  const li = document.createElement('li');
  li.append(a);
  $('export-links').replaceChildren(li);
  a.click();
  state.trainingScript = { name: 'train.py', size: text.length, model: scriptModel(), trainFiles, evalFile: evalFile ?? null };
  $('export-script-status').textContent = t('export.script', { name: 'train.py' });
}));

/** The web app's own files (www/app/) and the single-threaded engine it runs (www/pkg/). */
const APP_FILES = ['app/index.html', 'app/app.css', 'app/app.js', 'app/app-worker.js', 'pkg/burnish.js', 'pkg/burnish_bg.wasm'];

async function appFile(path) {
  const res = await fetch(new URL(`../${path}`, import.meta.url)).catch((err) => failWith('export', `Could not fetch ${path} for the web app (${err.message}).`));
  if (!res.ok) failWith('export', `Could not fetch ${path} for the web app: HTTP ${res.status}. Is the wasm build (www/pkg) in place?`);
  return new Uint8Array(await res.arrayBuffer());
}

$('export-app').addEventListener('click', exporting('export-app', async () => {
  const model = $('app-int8').checked ? (await request(IN.EXPORT_INT8)).files : await request(IN.EXPORT, { baseName: state.model?.source ?? 'base-model' });
  const files = [];
  for (const path of APP_FILES) files.push({ name: path.replace(/^app\//, ''), bytes: await appFile(path) });
  for (const f of model) if (!f.name.startsWith('peft/')) files.push({ name: `model/${f.name}`, bytes: f.bytes });
  const labels = state.summary.labels;
  const app = { title: `Text classifier: ${labels.join(' / ')}`, model: state.model?.source ?? 'a fine-tuned model', labels, max_len: state.recipe?.max_len ?? 128, backend: 'cpu' };
  state.exportedApp = await downloadZip('app', files, { 'app.json': app }, $('export-links'), ' (web app)');
  $('export-status').textContent = t('export.app', { name: state.exportedApp.name });
}));

$('export-int8').addEventListener('click', exporting('export-int8', async () => {
  const { files, report } = await request(IN.EXPORT_INT8);
  state.int8 = report;
  await downloadZip('int8', files, { 'recipe.json': state.recipe }, $('export-links'), ' (int8)');
  const pct = (x) => `${(100 * x).toFixed(1)} %`;
  $('export-status').textContent = t('export.int8', {
    int8: fmtBytes(report.int8_bytes), f32: fmtBytes(report.f32_bytes), share: Math.round((100 * report.int8_bytes) / report.f32_bytes),
    before: pct(report.f32.accuracy), after: pct(report.int8.accuracy), n: report.f32.count,
  });
}));
