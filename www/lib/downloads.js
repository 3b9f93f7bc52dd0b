// Downloads: exported model files zipped into one Hugging Face folder per archive.

import { fflate } from '../sources.js';
import { bytes } from './dom.js';
import { state } from './state.js';

const json = (value) => new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n');
const zipUrls = new Map(); // one live object URL per download kind

/** Zips exported model files (and extra JSON documents) under `burnish-<model>-<suffix>/` and
 * starts the download; the link is also left in `links` (a list). Returns {name, size, files}. */
export async function downloadZip(suffix, files, docs, links, label = '', base = state.model?.source) {
  const folder = `burnish-${(base ?? 'model').split('/').pop().replace(/[^\w.-]+/g, '-')}-${suffix}`;
  const entries = {};
  // Weights are stored as they are (they barely compress); the wasm module fast (level 1).
  for (const { name, bytes: data } of files) entries[`${folder}/${name}`] = [new Uint8Array(data), { level: name.endsWith('.safetensors') ? 0 : name.endsWith('.wasm') ? 1 : 6 }];
  for (const [name, doc] of Object.entries(docs)) entries[`${folder}/${name}`] = json(doc);
  const { zipSync } = await fflate();
  const zip = zipSync(entries);
  if (zipUrls.has(suffix)) URL.revokeObjectURL(zipUrls.get(suffix));
  const url = URL.createObjectURL(new Blob([zip], { type: 'application/zip' }));
  zipUrls.set(suffix, url);
  const a = document.createElement('a');
  a.href = url;
  a.download = `${folder}.zip`;
  a.textContent = `${folder}.zip (${bytes(zip.length)})${label}`;
  const li = document.createElement('li');
  li.append(a);
  links.replaceChildren(li);
  a.click();
  return { name: a.download, size: zip.length, files: Object.keys(entries) };
}
