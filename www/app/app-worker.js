// The exported classifier's engine: Burnish's WebAssembly module (pkg/), the fine-tuned model
// (model/) and app.json, loaded once; then labels and probabilities for the texts the page sends.

import init, { classifyTexts, initBackend, loadModel } from './pkg/burnish.js';

let ready = null;

async function fetchBytes(name, optional = false) {
  const res = await fetch(new URL(`./model/${name}`, import.meta.url));
  if (!res.ok) {
    if (optional) return undefined;
    throw new Error(`model/${name} could not be loaded (HTTP ${res.status}): serve the whole exported folder.`);
  }
  return new Uint8Array(await res.arrayBuffer());
}

async function boot() {
  await init({ module_or_path: new URL('./pkg/burnish_bg.wasm', import.meta.url) });
  const app = await (await fetch(new URL('./app.json', import.meta.url))).json();
  const backend = await initBackend(app.backend ?? 'cpu');
  const info = loadModel(await fetchBytes('config.json'), await fetchBytes('tokenizer.json'), await fetchBytes('model.safetensors'), await fetchBytes('tokenizer_config.json', true));
  return { app, labels: info.labels, backend: `${backend.kind}: ${backend.adapter}` };
}

self.addEventListener('message', async ({ data: { id, type, texts } }) => {
  try {
    ready ??= boot();
    const { app, labels, backend } = await ready;
    if (type === 'load') {
      self.postMessage({ id, ok: { app, labels, backend } });
    } else {
      self.postMessage({ id, ok: await classifyTexts(texts, app.max_len) });
    }
  } catch (err) {
    self.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
