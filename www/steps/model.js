// Step "model": the bundled model, a Hugging Face id or local files; what was loaded, the memory
// the recipe needs, and the gallery of Hub models known to work.

import { IN } from '../protocol.js';
import { t } from '../i18n.js';
import { fetchHubModel, pickModelFiles, readBody } from '../sources.js';
import { renderGallery } from '../views/gallery.js';
import { $, bytes, downloadProgress, log, loraTargetBoxes, millions, radioValue } from '../lib/dom.js';
import { request } from '../lib/engine.js';
import { clearErrors, concerning, failWith, guarded, showError } from '../lib/errors.js';
import { emit } from '../lib/events.js';
import { bundledModel, state } from '../lib/state.js';
import { backendReady } from './backend.js';
import { runChecks } from './data.js';

$('bundled-model-name').textContent = bundledModel;
const fileKey = (files) => [...files].map((f) => `${f.webkitRelativePath || f.name}:${f.size}:${f.lastModified}`).join('|');
let localFiles = []; // the last chosen files or folder
let modelKey = null; // which source the loaded model came from
/** The model files or folder last chosen on this machine. */
export const localModelFiles = () => localFiles;

function currentModelKey() {
  const source = radioValue('model-source');
  if (source === 'bundled') return `bundled:${bundledModel}`;
  if (source === 'hub') return `hub:${$('hub-id').value.trim()}`;
  return `local:${fileKey(localFiles)}`;
}

export function onLocalFiles(input) {
  localFiles = [...input.files];
  document.querySelector('input[name="model-source"][value="local"]').checked = true;
  $('model-files-summary').textContent = localFiles.length ? localFiles.map((f) => f.name).slice(0, 6).join(', ') + (localFiles.length > 6 ? ` … (${localFiles.length})` : '') : '';
}
$('model-files').addEventListener('change', () => onLocalFiles($('model-files')));
$('model-folder').addEventListener('change', () => onLocalFiles($('model-folder')));
$('hub-id').addEventListener('input', () => (document.querySelector('input[name="model-source"][value="hub"]').checked = true));

async function modelBytes() {
  const source = radioValue('model-source');
  const bar = $('model-progress');
  const status = $('model-status');
  const progress = downloadProgress(bar, status);
  if (source === 'hub') return fetchHubModel($('hub-id').value, progress);
  if (source === 'local') return pickModelFiles(localFiles);
  const base = `assets/models/${encodeURIComponent(bundledModel)}/`;
  const get = async (file, optional = false) => {
    const res = await fetch(base + file).catch((err) => failWith('model', `Could not fetch ${base + file}: ${err.message}`));
    if (!res.ok) {
      if (optional && res.status === 404) return undefined;
      failWith('model', `Could not fetch ${base + file}: HTTP ${res.status}. Are the bundled assets installed (python3 scripts/fetch_assets.py)?`);
    }
    return readBody(res, (loaded, total) => progress({ file, loaded, total, cached: false }));
  };
  return {
    config: await get('config.json'),
    tokenizer: await get('tokenizer.json'),
    tokenizerConfig: await get('tokenizer_config.json', true),
    weights: await get('model.safetensors'),
    source: bundledModel,
  };
}

export async function loadModel() {
  clearErrors('model');
  await concerning('backend', () => backendReady);
  const key = currentModelKey();
  const button = $('load-model');
  button.disabled = true;
  try {
    const files = await concerning('model', modelBytes);
    $('model-status').textContent = t('model.loading');
    const payload = { config: files.config, tokenizer: files.tokenizer, weights: files.weights, tokenizerConfig: files.tokenizerConfig };
    const transfer = Object.values(payload).filter(Boolean).map((b) => b.buffer);
    const info = await request(IN.LOAD_MODEL, payload, transfer);
    state.model = { ...info, source: files.source };
    modelKey = key;
    $('model-status').textContent = t('model.loaded');
    renderModelInfo();
    emit('model-loaded', files); // the recipe step redraws its layer picture and applies a recipe.json from the archive
    await updateMemory();
    if (state.data) await runChecks().catch((err) => showError(err, 'columns'));
  } catch (err) {
    $('model-status').textContent = '';
    throw err;
  } finally {
    $('model-progress').hidden = true;
    button.disabled = false;
  }
}

function renderModelInfo() {
  const m = state.model;
  const rows = [
    ['source', m.source],
    ['architecture', `${m.architecture} (${m.model_type})`],
    ['parameters', `${millions(m.parameters)} (${m.parameters.toLocaleString('en-US')})`],
    ['layers', m.layers],
    ['hidden size', `${m.hidden_size} · ${m.heads} attention heads · feed-forward ${m.intermediate_size}`],
    ['vocabulary', m.vocab_size.toLocaleString('en-US')],
    ['max positions', m.max_position_embeddings],
    ['weights file', bytes(m.weights_bytes)],
    ['classification head', m.labels?.length ? `labels ${m.labels.join(', ')} (reused when the data has exactly these labels)` : 'none (a new head is initialised for your labels)'],
  ];
  const dl = $('model-info');
  dl.replaceChildren(...rows.flatMap(([k, v]) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = String(v);
    dd.dataset.field = k;
    return [dt, dd];
  }));
  dl.hidden = false;
  $('max-len').max = String(m.max_position_embeddings);
}

/** What the memory estimates need from the form: batch × length and what the strategy trains. */
function memoryInputs() {
  const batch = Math.round(Number($('batch-size').value));
  const len = Math.round(Number($('max-len').value));
  if (!(batch >= 1 && len >= 1)) return null;
  // What the chosen strategy trains decides the gradients' and AdamW's share.
  const num = (id, fallback) => (Number.isFinite(Number($(id).value)) && $(id).value !== '' ? Number($(id).value) : fallback);
  const recipe = {
    strategy: $('strategy').value, top_layers: Math.max(0, Math.round(num('top-layers', 2))), freeze_embeddings: $('freeze-embeddings').checked,
    lora_rank: Math.max(1, Math.round(num('lora-rank', 8))), lora_targets: loraTargetBoxes().filter((b) => b.checked).map((b) => b.value),
  };
  return { batch, len, recipe, numLabels: state.checks?.label_counts?.length ?? 2 };
}

export async function updateMemory() {
  if (!state.model) return;
  const inputs = memoryInputs();
  if (!inputs) return;
  const { batch, len, recipe, numLabels } = inputs;
  state.memory = await request(IN.ESTIMATE_MEMORY, { batchSize: batch, maxLen: len, recipe, numLabels });
  Object.assign(state.memory, { batch, len, recipe });
  renderMemory();
}

// The model gallery
// Suggested Hub models (views/gallery.js) with the memory this recipe needs on each.
export async function updateGallery() {
  const inputs = memoryInputs();
  if (!inputs) return;
  const { batch, len, recipe, numLabels } = inputs;
  state.gallery = await renderGallery({
    estimate: (config) => request(IN.ESTIMATE_MEMORY_FOR_CONFIG, { config, batchSize: batch, maxLen: len, recipe, numLabels }),
    use: (g) => {
      const bundled = g.checked && g.id.endsWith(`/${bundledModel}`);
      document.querySelector(`input[name="model-source"][value="${bundled ? 'bundled' : 'hub'}"]`).checked = true;
      if (!bundled) $('hub-id').value = g.id;
      $('load-model').focus();
      log(`${g.id} chosen: press Load model${bundled ? '' : ' to download it from huggingface.co'}.`);
    },
  });
}

export function renderMemory() {
  const m = state.memory;
  if (!m) return;
  $('memory-estimate').textContent = t('model.memory', {
    batch: m.batch, len: m.len, total: bytes(m.total), weights: bytes(m.weights), gradients: bytes(m.gradients),
    optimizer: bytes(m.optimizer), activations: bytes(m.activations),
    trainable: m.trainable.toLocaleString('en-US'), parameters: m.parameters.toLocaleString('en-US'),
  }) + m.warnings.map((w) => ` Warning: ${w}.`).join('');
}

export const ensureModel = () => (modelKey === currentModelKey() && state.model ? null : loadModel());
$('load-model').addEventListener('click', guarded('model', loadModel));
