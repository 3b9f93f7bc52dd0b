// Step "data", from the Hub: a dataset id (with an optional config and split) lists its data
// files (datasets.js); the one picked downloads with progress into the Cache API and is then
// loaded exactly like a file chosen from disk, as the training or the evaluation data.

import { t } from '../i18n.js';
import { fetchHubDatasetFile, listHubDataset } from '../datasets.js';
import { $, bytes } from '../lib/dom.js';
import { clearErrors, guarded } from '../lib/errors.js';
import { state } from '../lib/state.js';
import { loadData, loadEvalFile } from './data.js';

let listing = null; // {id, files, more}

async function listFiles() {
  clearErrors('data');
  const table = $('dataset-files');
  const status = $('dataset-status');
  table.hidden = true;
  const id = $('dataset-id').value;
  status.textContent = t('hubData.listing', { id: id.trim() });
  try {
    listing = await listHubDataset(id, { config: $('dataset-config').value, split: $('dataset-split').value });
  } catch (err) {
    status.textContent = '';
    listing = null;
    state.hubDataset = null;
    throw err;
  }
  state.hubDataset = { id: listing.id, files: listing.files.map((f) => ({ path: f.path, source: f.source, size: f.size })), more: listing.more };
  status.textContent = listing.more ? t('hubData.more', { id: listing.id, n: listing.files.length, more: listing.more }) : t('hubData.listed', { id: listing.id, n: listing.files.length });
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  for (const h of [t('hubData.file'), t('hubData.size'), t('hubData.from'), '']) head.appendChild(Object.assign(document.createElement('th'), { textContent: h, scope: 'col' }));
  const body = table.createTBody();
  listing.files.forEach((file, i) => {
    const row = body.insertRow();
    row.insertCell().textContent = file.path;
    row.insertCell().textContent = file.size ? bytes(file.size) : '—';
    row.insertCell().textContent = file.source === 'parquet' ? t('hubData.converted') : t('hubData.repo');
    const cell = row.insertCell();
    for (const [role, key] of [['train', 'hubData.train'], ['eval', 'hubData.eval']]) {
      const button = Object.assign(document.createElement('button'), { type: 'button', textContent: t(key) });
      button.dataset.file = String(i);
      button.dataset.role = role;
      button.setAttribute('aria-label', `${t(key)}: ${file.path}`);
      cell.append(button, ' ');
    }
  });
  table.hidden = false;
}

/** Downloads listed file `i` (or takes it from the cache) and loads it as `role` data. */
async function useFile(i, role) {
  const file = listing?.files[i];
  if (!file) return;
  clearErrors('data');
  const bar = $('dataset-progress');
  const status = $('dataset-status');
  const name = file.path.split('/').pop() ?? file.path;
  bar.hidden = false;
  let data;
  try {
    data = await fetchHubDatasetFile(listing.id, file, (loaded, total, cached) => {
      bar.max = total || 1;
      bar.value = loaded;
      status.textContent = cached ? t('hubData.cached', { name }) : t('hubData.downloading', { name, done: bytes(loaded), total: total ? bytes(total) : '?' });
    });
  } finally {
    bar.hidden = true;
  }
  const blob = new File([data], name);
  if (role === 'eval') {
    await loadEvalFile(blob);
    state.dataOrigin.eval = file.url;
  } else {
    await loadData(blob);
    state.dataOrigin.train = file.url;
  }
  state.hubDataset = { ...state.hubDataset, used: { path: file.path, role } };
}

$('dataset-list').addEventListener('click', guarded('data', listFiles));
$('dataset-id').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') guarded('data', listFiles)(e);
});
$('dataset-files').addEventListener('click', guarded('data', async (e) => {
  const button = /** @type {HTMLElement} */ (e.target).closest?.('button[data-file]');
  if (button instanceof HTMLButtonElement) await useFile(Number(button.dataset.file), button.dataset.role ?? 'train');
}));
