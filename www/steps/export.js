// Step "export": the fine-tuned classifier as a Hugging Face folder (with the recipe and metrics).

import { IN } from '../protocol.js';
import { t } from '../i18n.js';
import { $ } from '../lib/dom.js';
import { downloadZip } from '../lib/downloads.js';
import { request } from '../lib/engine.js';
import { clearErrors, failCoded, failWith, guarded } from '../lib/errors.js';
import { state } from '../lib/state.js';

$('export').addEventListener('click', guarded('export', async () => {
  clearErrors('export');
  if (!state.summary) failCoded('export', 'page.export-before-training', {}, 'Train a model first (or load one and use "Evaluate without training"): there is nothing to export yet.');
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
