// Domain adaptation: masked-LM training on the user's own unlabelled text, before a classifier
// or alone ("Adapt only"), with its held-out loss, fill-mask and the adapted encoder's download.

import { IN } from '../protocol.js';
import { t } from '../i18n.js';
import { lossText, panelKind, updateRunPanel } from '../views/runpanel.js';
import { MlmChart } from '../charts.js';
import { fileBytes, readBody } from '../sources.js';
import { $, fillSelect, fillTable, fmt, log, pct, sci } from '../lib/dom.js';
import { downloadZip } from '../lib/downloads.js';
import { request } from '../lib/engine.js';
import { clearErrors, concerning, failWith, guarded } from '../lib/errors.js';
import { checkExtension, checkNotEmpty, guessColumns, tableBytes } from '../lib/files.js';
import { SAMPLE_DOMAIN, bundledModel, state } from '../lib/state.js';
import { backendReady } from './backend.js';
import { keep } from './runs.js';

/** Loads domain text for the masked-LM stage from a File (or the sample movie text when null). */
async function loadDomain(file) {
  clearErrors('domain');
  let data, name;
  if (file) {
    checkExtension(file.name, 'domain');
    checkNotEmpty(file, 'domain');
    data = await tableBytes(await fileBytes(file), file.name, 'domain');
    name = file.name;
  } else {
    const res = await fetch(SAMPLE_DOMAIN).catch((err) => failWith('domain', `Could not fetch ${SAMPLE_DOMAIN}: ${err.message}`));
    if (!res.ok) failWith('domain', `Could not fetch ${SAMPLE_DOMAIN}: HTTP ${res.status}. Are the bundled assets installed (python3 scripts/fetch_assets.py)?`);
    data = await readBody(res);
    name = SAMPLE_DOMAIN.split('/').pop();
  }
  await concerning('backend', () => backendReady);
  const info = await request(IN.SET_DOMAIN_DATA, { bytes: data, fileName: name }, [data.buffer]);
  state.domain = info;
  const select = $('domain-column');
  const wanted = select.dataset.wanted;
  const pick = info.columns.indexOf(wanted) >= 0 ? info.columns.indexOf(wanted) : guessColumns(info.columns).text;
  fillSelect(select, info.columns, pick);
  delete select.dataset.wanted;
  $('domain-summary').textContent = `${info.name}: ${info.row_count} ${info.format === 'text' ? 'lines' : 'rows'}` + (info.preview[0] ? ` · “${String(info.preview[0][pick] ?? '').slice(0, 80)}…”` : '');
  // Choosing domain text means adapting on it: one epoch unless a number is set.
  if (Number($('mlm-epochs').value) === 0) $('mlm-epochs').value = '1';
  log(`Domain text for masked-LM adaptation: ${info.name} (${info.row_count} ${info.format === 'text' ? 'lines' : 'rows'}).`);
}

$('domain-file').addEventListener('change', guarded('domain', async () => {
  try {
    await loadDomain($('domain-file').files[0] ?? null);
  } finally {
    $('domain-file').value = '';
  }
}));
$('domain-sample').addEventListener('click', guarded('domain', () => loadDomain(null)));
$('domain-clear').addEventListener('click', guarded('domain', async () => {
  clearErrors('domain');
  await request(IN.CLEAR_DOMAIN_DATA);
  state.domain = null;
  $('domain-summary').textContent = '';
  $('domain-column').replaceChildren();
  $('mlm-epochs').value = '0';
}));

const mlmChart = new MlmChart($('mlm-chart'));
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => mlmChart.restyle());

/** A new run: the adaptation panel, its chart and downloads start empty. */
export function resetAdaptation() {
  $('mlm-panel').hidden = true;
  $('export-adapted').disabled = true;
  $('fill-button').disabled = true;
  $('fill-result').replaceChildren();
  $('export-adapted-status').replaceChildren();
  mlmChart.reset();
  Object.assign(state, { adaptation: null, adaptedExport: null });
}

/** The masked-LM stage started (before a classifier, or alone with `only`). */
export function adaptationStarted(a, only) {
  state.adaptation = { summary: a, losses: [], history: [], done: false, step: 0, only };
  $('mlm-panel').hidden = false;
  $('mlm-progress-bar').max = a.total_steps;
  $('mlm-progress-bar').value = 0;
  const head = a.load_report.initialized.some((n) => n.startsWith('cls.')) ? 'new masked-LM head (the checkpoint has none)' : 'masked-LM head from the checkpoint';
  $('mlm-progress').textContent = `${a.train_count} domain texts for training, ${a.eval_count} held out · ${a.total_steps} steps · ${head}`;
  $('progress').textContent = only ? 'domain adaptation only (no classifier stage)' : 'waiting for the domain adaptation';
  log(`${only ? 'Masked-LM adaptation only' : 'Stage 1: masked-LM adaptation'} on ${a.domain_file} (${a.epochs} epoch${a.epochs > 1 ? 's' : ''}, lr ${sci(a.lr)}).`);
}

function renderAdaptation() {
  const a = state.adaptation;
  if (!a) return;
  fillTable(
    $('mlm-table'),
    ['held-out domain text', 'step', 'masked-LM loss', 'perplexity', 'masked-token accuracy', 'masked tokens'],
    a.history.map((e, i) => [{ th: i === 0 ? 'before adaptation' : `after epoch ${e.epoch}` }, e.step, fmt(e.loss), fmt(e.perplexity, 1), pct(e.masked_accuracy), e.masked_tokens]),
  );
}

/** A finished "Adapt only" run, remembered: held-out masked-LM loss and perplexity before and after. */
export async function keepAdaptation(stopped) {
  const a = state.adaptation;
  if (!a?.history.length) return;
  const first = a.history.find((e) => e.step === 0) ?? null;
  const last = a.history[a.history.length - 1];
  const score = (e) => (e ? { loss: e.loss, perplexity: e.perplexity, masked_accuracy: e.masked_accuracy } : null);
  await keep({
    task: 'masked-lm',
    model: state.model?.source ?? bundledModel,
    data: a.summary.domain_file,
    recipe: state.recipe,
    steps: a.losses.length,
    total_steps: a.summary.total_steps,
    stopped: Boolean(stopped),
    before: first && first !== last ? score(first) : null,
    after: score(last),
    losses: a.losses,
  });
}

export function showAdaptProgress({ reports, history }) {
  const a = state.adaptation;
  if (!a) return;
  for (const r of reports) a.losses.push(r.loss);
  const fresh = history.slice(a.history.length);
  a.history = history;
  mlmChart.add(reports, fresh);
  a.chart = mlmChart.counts();
  renderAdaptation();
  for (const e of fresh) {
    log(e.step === 0
      ? `Before adaptation: held-out masked-LM loss ${fmt(e.loss)}, perplexity ${fmt(e.perplexity, 1)}, masked-token accuracy ${pct(e.masked_accuracy)}.`
      : `Adaptation epoch ${e.epoch}: held-out masked-LM loss ${fmt(e.loss)}, perplexity ${fmt(e.perplexity, 1)}, masked-token accuracy ${pct(e.masked_accuracy)}.`);
  }
  const last = reports[reports.length - 1];
  if (!last) return;
  a.step = last.step;
  a.done = last.done;
  $('mlm-progress-bar').max = last.total_steps;
  $('mlm-progress-bar').value = last.step;
  if (panelKind() === 'classifier') {
    // The run panel follows the adaptation stage until the classifier starts.
    const ev = a.history[a.history.length - 1];
    const ppl = ev ? ` · ${t('runPanel.perplexity')} ${fmt(ev.perplexity, 2)}` : '';
    updateRunPanel({ step: last.step, total: last.total_steps, text: `${t('runPanel.adapting')} · ${lossText(last.loss)}${ppl}`, losses: a.losses });
  }
  $('mlm-progress').textContent = `step ${last.step}/${last.total_steps} · epoch ${Math.min(last.epoch + (last.done ? 0 : 1), last.epochs)}/${last.epochs} · masked-LM loss ${fmt(last.loss)} · lr ${sci(last.lr)} · ${fmt(last.tokens_per_s, 0)} tokens/s`;
  if (last.done) {
    $('fill-button').disabled = false;
    log(state.adaptation.only
      ? 'Domain adaptation finished: try the adapted encoder with fill-mask, or download it.'
      : 'Domain adaptation finished: the classifier now starts from the adapted encoder.');
  }
}

$('fill-button').addEventListener('click', guarded('domain', async () => {
  clearErrors('domain');
  const text = $('fill-text').value;
  if (!text.includes('[MASK]')) failWith('domain', 'Write [MASK] where the model should guess a word, e.g. "The film was [MASK]."');
  const masks = await request(IN.FILL_MASK, { text, topK: 5 });
  state.fill = { text, masks };
  fillTable(
    $('fill-result'),
    ['[MASK]', ...[1, 2, 3, 4, 5].map((i) => `guess ${i}`)],
    masks.map((m, i) => [{ th: masks.length > 1 ? `#${i + 1}` : 'guesses' }, ...m.candidates.map((c) => `${c.token} (${pct(c.score)})`)]),
  );
}));
$('fill-text').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') $('fill-button').click();
});

$('export-adapted').addEventListener('click', guarded('domain', async () => {
  if (!state.adaptation?.done) failWith('domain', 'The adaptation has not finished yet: there is no adapted encoder to download.');
  $('export-adapted').disabled = true;
  try {
    const files = await request(IN.EXPORT_ADAPTED);
    const doc = { model: state.model?.source, domain_file: state.adaptation.summary.domain_file, held_out: state.adaptation.history, train_losses: state.adaptation.losses, recipe: state.recipe };
    state.adaptedExport = await downloadZip('domain-adapted', files, { 'metrics.json': doc }, $('export-adapted-status'));
  } finally {
    $('export-adapted').disabled = false;
  }
}));
