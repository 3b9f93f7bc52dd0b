// Data mixing: more training files beside the main one, with a weight (or the size, tempered)
// deciding each file's share of the examples drawn; the table shows the plan and what was drawn.

import { IN } from '../protocol.js';
import { t } from '../i18n.js';
import { fileBytes } from '../sources.js';
import { $, fillTable, fmt, log, pct } from '../lib/dom.js';
import { request } from '../lib/engine.js';
import { clearErrors, failWith, guarded } from '../lib/errors.js';
import { checkExtension, checkNotEmpty, tableBytes } from '../lib/files.js';
import { sourceFiles, state } from '../lib/state.js';

let pendingMixWeights = null; // weights from a loaded recipe, applied once its files are added
const mixWeightInputs = () => [...document.querySelectorAll('#mix-table input.mix-weight')];

/** The weights typed in the mixture table (main file first; an empty one counts as 1 once any
 * weight is typed); [] when all are empty. */
export function mixWeights() {
  const inputs = mixWeightInputs();
  if (inputs.every((i) => i.value.trim() === '')) return [];
  for (const input of inputs) {
    const raw = input.value.trim();
    if (raw !== '' && (!Number.isFinite(Number(raw)) || Number(raw) < 0)) {
      input.focus();
      failWith('mix', `A mixing weight must be a number ≥ 0 (${input.getAttribute('aria-label')}: "${raw}"); leave all the weights empty to mix by size.`);
    }
  }
  const weights = inputs.map((i) => (i.value.trim() === '' ? 1 : Number(i.value)));
  if (!weights.some((w) => w > 0)) failWith('mix', 'At least one mixing weight must be above 0.');
  return weights;
}

/** Weights from a loaded recipe: filled in now, or once as many training files are chosen. */
export function setPendingMixWeights(weights) {
  pendingMixWeights = weights.length ? weights : null;
  applyPendingMixWeights();
}

function applyPendingMixWeights() {
  const inputs = mixWeightInputs();
  if (!pendingMixWeights) return;
  if (inputs.length !== pendingMixWeights.length) {
    log(`The recipe gives ${pendingMixWeights.length} mixing weights: they fill in once ${pendingMixWeights.length} training files are chosen (now ${Math.max(1, inputs.length)}).`);
    return;
  }
  inputs.forEach((input, i) => (input.value = String(pendingMixWeights[i])));
  pendingMixWeights = null;
}

/** The mixture table: one row per training file with its weight, share and (while training) what was drawn. */
export function renderMixture() {
  const table = $('mix-table');
  if (!state.mixFiles.length || !state.data) {
    table.replaceChildren();
    return;
  }
  const typed = mixWeightInputs().map((i) => i.value);
  const plan = state.mixture ?? [];
  const names = [state.data.name, ...state.mixFiles.map((f) => f.name)];
  const drawnTotal = (state.drawn ?? []).reduce((a, b) => a + b, 0);
  const header = t('mix.header').split('|');
  fillTable(table, header, names.map((name, i) => {
    const p = plan[i];
    return [
      { th: i === 0 ? `${name} ${t('mix.main')}` : name }, p ? p.rows : '—', '', p ? pct(p.probability) : '—',
      p ? fmt(p.per_epoch, 0) : '—', p ? fmt(p.passes, 2) : '—',
      state.drawn ? t('mix.drawn', { n: state.drawn[i], pct: pct(drawnTotal ? state.drawn[i] / drawnTotal : NaN) }) : '—', '',
    ];
  }));
  [...table.tBodies[0].rows].forEach((tr, i) => {
    tr.dataset.file = names[i];
    const weight = document.createElement('input');
    weight.type = 'number';
    weight.className = 'mix-weight';
    weight.min = '0';
    weight.step = 'any';
    weight.value = typed[i] ?? '';
    weight.placeholder = 'auto';
    weight.setAttribute('aria-label', `Mixing weight of ${names[i]}`);
    weight.addEventListener('input', scheduleMixture);
    tr.cells[2].append(weight);
    const p = plan[i];
    if (p) {
      const meter = document.createElement('meter');
      meter.min = 0;
      meter.max = 1;
      meter.value = p.probability;
      meter.setAttribute('aria-label', `Share of ${names[i]}`);
      tr.cells[3].prepend(meter, ' ');
    }
    if (i > 0) {
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = t('mix.remove');
      remove.setAttribute('aria-label', `Remove ${names[i]} from the mixture`);
      remove.addEventListener('click', guarded('mix', () => removeMixFile(i - 1)));
      tr.cells[7].append(remove);
    }
  });
}

/** Asks the engine for the mixture the current files, columns, split and weights give. */
export async function refreshMixture() {
  clearErrors('mix');
  if (!state.mixFiles.length || !state.data) {
    state.mixture = null;
    renderMixture();
    return;
  }
  renderMixture(); // rows (and weight inputs) for every file before reading the weights
  applyPendingMixWeights();
  const temperature = Number($('mix-temperature').value);
  const recipe = {
    text_column: $('text-column').value, label_column: $('label-column').value || 'label',
    eval_fraction: Number($('eval-fraction').value), seed: Number($('seed').value),
    mix_weights: mixWeights(), mix_temperature: Number.isFinite(temperature) && temperature > 0 ? temperature : 1,
  };
  try {
    state.mixture = await request(IN.MIXTURE_PLAN, recipe);
  } catch (err) {
    state.mixture = null;
    renderMixture();
    err.concerns = 'mix';
    throw err;
  }
  state.drawn = null;
  renderMixture();
}

let mixTimer = null;
function scheduleMixture() {
  clearTimeout(mixTimer);
  mixTimer = setTimeout(guarded('mix', refreshMixture), 300);
}

export async function addMixFiles(files) {
  clearErrors('mix');
  if (!state.data) failWith('mix', 'Choose the main training file first (or use the sample), then add more files to mix with it.');
  for (const file of files) {
    checkExtension(file.name, 'mix');
    checkNotEmpty(file, 'mix');
    const data = await tableBytes(await fileBytes(file), file.name, 'mix');
    const info = await request(IN.ADD_TRAIN_SOURCE, { bytes: data, fileName: file.name }, [data.buffer]);
    state.mixFiles.push({ name: info.name, row_count: info.row_count, columns: info.columns });
    sourceFiles.extras.push(file);
    log(`Added ${info.name} (${info.row_count} rows) to the training mixture.`);
  }
  await refreshMixture();
}

export async function removeMixFile(index) {
  await request(IN.REMOVE_TRAIN_SOURCE, { index });
  const [gone] = state.mixFiles.splice(index, 1);
  sourceFiles.extras.splice(index, 1);
  // Keep the other files' weights.
  const inputs = mixWeightInputs();
  inputs[index + 1]?.closest('tr')?.remove();
  log(`Removed ${gone.name} from the training mixture.`);
  await refreshMixture();
}

$('mix-file').addEventListener('change', guarded('mix', async () => {
  try {
    await addMixFiles([...$('mix-file').files]);
  } finally {
    $('mix-file').value = '';
  }
}));
for (const id of ['mix-temperature', 'eval-fraction', 'seed', 'text-column', 'label-column']) $(id).addEventListener('input', scheduleMixture);
for (const radio of document.querySelectorAll('input[name="eval-mode"]')) radio.addEventListener('change', scheduleMixture);
