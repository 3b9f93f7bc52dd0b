// Datasets by their Hugging Face id: the data files of the dataset repository (CSV, TSV, JSON
// Lines, Parquet, text), narrowed to a config and split when given, and the Parquet files the Hub
// converted the dataset to (/api/datasets/<id>/parquet); one file downloads with byte progress
// into the Cache API and then goes through the same reading, column mapping and checks as a
// file chosen from disk. Nothing but the requests to huggingface.co for the id typed leaves the page.

import { DATA_EXTENSIONS } from './lib/state.js';
import { HUB, openCache, readBody } from './sources.js';

/** The most files a listing shows (a dataset with thousands of shards lists its first ones). */
export const MAX_LISTED = 200;

const fail = (message, code = undefined, args = {}) => {
  throw Object.assign(new Error(message), { concerns: 'data' }, code ? { code, kind: 'page', args } : {});
};

/** `owner/name` or `name`, as for models. */
export function checkDatasetId(raw) {
  const id = raw.trim();
  if (!id) fail('Type a Hugging Face dataset id, for example cornell-movie-review-data/rotten_tomatoes.', 'page.no-dataset-id', {});
  const part = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;
  const parts = id.replace(/^https?:\/\/huggingface\.co\/datasets\//, '').split('/');
  if (parts.length > 2 || !parts.every((p) => part.test(p) && !p.includes('..'))) {
    fail(`"${id}" is not a valid dataset id: use owner/name with letters, digits, '-', '_' or '.', for example cornell-movie-review-data/rotten_tomatoes.`, 'page.bad-dataset-id', { id });
  }
  return parts.join('/');
}

const isData = (path) => DATA_EXTENSIONS.some((e) => path.toLowerCase().endsWith(e)) && !/(^|\/)\.|README|\.gitattributes|dataset_info|dataset_infos|config\.json$/i.test(path);

/** Whether `path` belongs to `config` / `split` (as a folder, or a file name starting with the split). */
function matches(path, config, split) {
  const parts = path.split('/');
  const file = parts.pop() ?? '';
  if (config && !parts.includes(config) && !(parts.length === 0 && config === 'default')) return false;
  if (split && !parts.includes(split) && !file.startsWith(`${split}-`) && !file.startsWith(`${split}.`) && !file.startsWith(`${split}_`)) return false;
  return true;
}

async function getJson(url, id, what) {
  let res;
  try {
    res = await fetch(url, { mode: 'cors', credentials: 'omit' });
  } catch (err) {
    fail(`Could not reach huggingface.co for the dataset ${id} (${err.message}). Check the connection, or download the files and choose them from disk.`);
  }
  if (res.status === 401 || res.status === 403) fail(`The dataset ${id} is private or gated (HTTP ${res.status}): accept its terms on huggingface.co and download the files, then choose them from disk.`, 'page.dataset-gated', { id, status: res.status });
  if (res.status === 404) return null;
  if (!res.ok) fail(`Listing the ${what} of ${id} failed: HTTP ${res.status}.`);
  try {
    return await res.json();
  } catch (err) {
    fail(`huggingface.co sent the ${what} of ${id} in a form the page cannot read (${err.message}).`);
  }
}

/**
 * The data files of dataset `id`: [{path, size, url, source}] where source is "repo" (a file of
 * the repository) or "parquet" (the Hub's Parquet conversion, `config/split/n.parquet`).
 */
export async function listHubDataset(rawId, { config = '', split = '' } = {}) {
  const id = checkDatasetId(rawId);
  config = config.trim();
  split = split.trim();
  const tree = await getJson(`${HUB}/api/datasets/${id}/tree/main?recursive=true`, id, 'files');
  if (tree === null) fail(`There is no dataset ${id} on huggingface.co (HTTP 404). Check the id (owner/name).`, 'page.no-such-dataset', { id });
  const files = (Array.isArray(tree) ? tree : [])
    .filter((e) => e?.type === 'file' && typeof e.path === 'string' && isData(e.path) && matches(e.path, config, split))
    .map((e) => ({ path: e.path, size: Number(e.lfs?.size ?? e.size) || 0, url: `${HUB}/datasets/${id}/resolve/main/${e.path.split('/').map(encodeURIComponent).join('/')}`, source: 'repo' }));
  const converted = (await getJson(`${HUB}/api/datasets/${id}/parquet`, id, 'Parquet files')) ?? {};
  for (const [c, splits] of Object.entries(converted && typeof converted === 'object' ? converted : {})) {
    if (config && c !== config) continue;
    for (const [s, urls] of Object.entries(splits && typeof splits === 'object' ? splits : {})) {
      if (split && s !== split) continue;
      for (const url of Array.isArray(urls) ? urls : []) {
        if (typeof url !== 'string' || !url.startsWith(`${HUB}/`)) continue;
        files.push({ path: `${c}/${s}/${url.split('/').pop()}`, size: 0, url, source: 'parquet' });
      }
    }
  }
  if (!files.length) {
    const which = [config && `config "${config}"`, split && `split "${split}"`].filter(Boolean).join(' and ');
    fail(`The dataset ${id} has no data files Burnish reads${which ? ` for ${which}` : ''} (CSV, TSV, JSON Lines, Parquet or text).`, 'page.dataset-no-files', { id, config, split });
  }
  return { id, files: files.slice(0, MAX_LISTED), more: Math.max(0, files.length - MAX_LISTED) };
}

/** One listed file's bytes, from the Cache API or downloaded into it; `onProgress(loaded, total)`. */
export async function fetchHubDatasetFile(id, file, onProgress) {
  const cache = await openCache();
  const hit = cache ? await cache.match(file.url) : undefined;
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    onProgress?.(bytes.length, bytes.length, true);
    return bytes;
  }
  let res;
  try {
    res = await fetch(file.url, { mode: 'cors', credentials: 'omit' });
  } catch (err) {
    fail(`Could not download ${id}/${file.path} (${err.message}). Check the connection.`);
  }
  if (!res.ok) fail(`Downloading ${id}/${file.path} failed: HTTP ${res.status}.`, 'page.dataset-download', { id, path: file.path, status: res.status });
  const bytes = await readBody(res, (loaded, total) => onProgress?.(loaded, total || file.size, false), `${id}/${file.path}`).catch((err) => fail(err.message));
  await cache?.put(file.url, new Response(bytes, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } })).catch(() => {});
  return bytes;
}
