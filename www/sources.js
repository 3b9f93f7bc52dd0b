// Where model files come from: the Hugging Face Hub (resolve/main URLs, byte progress, kept in
// the Cache API), local files or a folder, or a .zip exported by Burnish (fflate). Every
// function returns plain bytes; the worker validates the model itself.

/** fflate (www/vendor/fflate.js, installed by the set-up command), loaded when first needed. */
export async function fflate() {
  try {
    return await import('./vendor/fflate.js');
  } catch (err) {
    throw new Error(`The zip library (vendor/fflate.js) is missing: run the set-up command (scripts/serve.sh). (${err.message})`);
  }
}

/** The largest file the page reads (a model's weights or a dataset): the engine is 32-bit
 * WebAssembly, whose whole memory is 4 GiB. */
export const MAX_FILE_BYTES = 2 ** 31;
const gib = (n) => `${(n / 2 ** 30).toFixed(2)} GiB`;

/** A chosen File's bytes, refused by name past MAX_FILE_BYTES (reading it would fail or freeze). */
export async function fileBytes(file) {
  if (file.size > MAX_FILE_BYTES) {
    throw Object.assign(new Error(`${file.name} is ${gib(file.size)}; the page reads files of at most ${gib(MAX_FILE_BYTES)} (the engine is 32-bit WebAssembly). Use the CLI for bigger files.`), { limit: true });
  }
  try {
    return new Uint8Array(await file.arrayBuffer());
  } catch (err) {
    throw new Error(`${file.name} could not be read (${err.message}).`);
  }
}

export const HUB = 'https://huggingface.co';
const CACHE_NAME = 'burnish-hub-v1';
export const MODEL_FILES = ['config.json', 'tokenizer.json', 'model.safetensors'];

/** A model-files error; with `code` and `args` the page says it in the user's language too. */
const fail = (message, code = undefined, args = {}) => {
  throw Object.assign(new Error(message), { concerns: 'model' }, code ? { code, kind: 'page', args } : {});
};

/** `owner/name` or `name`: letters, digits, '-', '_', '.'; no '..', no leading or trailing '-'/'.'. */
export function checkHubId(raw) {
  const id = raw.trim();
  if (!id) fail('Type a Hugging Face model id, for example sentence-transformers/all-MiniLM-L6-v2.');
  if (/^https?:\/\//.test(id)) fail(`"${id}" is a URL: type only the model id, the part after huggingface.co/ (for example sentence-transformers/all-MiniLM-L6-v2).`);
  const part = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;
  const parts = id.split('/');
  if (parts.length > 2 || !parts.every((p) => part.test(p) && !p.includes('..'))) {
    fail(`"${id}" is not a valid model id: use owner/name with letters, digits, '-', '_' or '.', for example sentence-transformers/all-MiniLM-L6-v2.`, 'page.bad-hub-id', { id });
  }
  return id;
}

export const hubUrl = (id, file) => `${HUB}/${id}/resolve/main/${file}`;

export async function openCache() {
  try {
    return 'caches' in self ? await caches.open(CACHE_NAME) : null;
  } catch {
    return null; // e.g. storage disabled: download without caching
  }
}

/** Reads a response body with progress callbacks `(loaded, total)`. */
export async function readBody(res, onProgress, name = res.url) {
  const total = Number(res.headers.get('content-length')) || 0;
  const tooBig = (n) => new Error(`${name} is ${gib(n)}; the page reads files of at most ${gib(MAX_FILE_BYTES)} (the engine is 32-bit WebAssembly).`);
  if (total > MAX_FILE_BYTES) throw tooBig(total);
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    if (loaded > MAX_FILE_BYTES) {
      await reader.cancel().catch(() => {});
      throw tooBig(loaded); // a server that sends more than it announced
    }
    onProgress?.(loaded, total);
  }
  const out = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/** `get(file, {optional})`: one file of Hub model `id`, from the cache or downloaded into it. */
async function hubFiles(id, onProgress) {
  const cache = await openCache();
  return async (file, { optional = false } = {}) => {
    const url = hubUrl(id, file);
    const hit = cache ? await cache.match(url) : undefined;
    if (hit) {
      if (hit.headers.get('x-burnish-missing')) return undefined; // an optional file the model lacks
      const bytes = new Uint8Array(await hit.arrayBuffer());
      onProgress?.({ file, loaded: bytes.length, total: bytes.length, cached: true });
      return bytes;
    }
    let res;
    try {
      res = await fetch(url, { mode: 'cors', credentials: 'omit' });
    } catch (err) {
      fail(`Could not reach huggingface.co for ${id}/${file} (${err.message}). Check the connection, or download the files and use local files.`);
    }
    if (!res.ok) {
      if (optional && res.status === 404) {
        // Remember the absence too, so a reload makes no request at all.
        await cache?.put(url, new Response('', { headers: { 'x-burnish-missing': '1' } })).catch(() => {});
        return undefined;
      }
      if (res.status === 401 || res.status === 403) {
        fail(`${id} is private or gated (HTTP ${res.status}): accept its licence on huggingface.co and download the files, then use local files.`);
      }
      if (res.status === 404 && file === 'model.safetensors') {
        fail(`${id} has no model.safetensors (HTTP 404). Burnish reads safetensors only; pick a model that has them (a model id that does not exist also gives this).`);
      }
      if (res.status === 404) fail(`${id} has no ${file} (HTTP 404). Check the id; Burnish needs config.json, tokenizer.json and model.safetensors.`, 'page.hub-missing-file', { id, file });
      fail(`Downloading ${id}/${file} failed: HTTP ${res.status}.`);
    }
    const bytes = await readBody(res, (loaded, total) => onProgress?.({ file, loaded, total, cached: false }), `${id}/${file}`).catch((err) => fail(err.message));
    if (cache) {
      await cache
        .put(url, new Response(bytes, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } }))
        .catch(() => {}); // quota: keep going without the cache
    }
    return bytes;
  };
}

/**
 * Downloads the model files of `id` (or takes them from the cache). `onProgress({file, loaded,
 * total, cached})`. Resolves with {config, tokenizer, weights, tokenizerConfig}.
 */
export async function fetchHubModel(rawId, onProgress) {
  const id = checkHubId(rawId);
  const get = await hubFiles(id, onProgress);
  const config = await get('config.json');
  const tokenizer = await get('tokenizer.json');
  const tokenizerConfig = await get('tokenizer_config.json', { optional: true });
  const weights = await get('model.safetensors');
  return { config, tokenizer, weights, tokenizerConfig, source: `huggingface.co/${id}` };
}

/**
 * Downloads a decoder from the Hub: config.json, tokenizer.json, model.safetensors or its shards
 * (named by model.safetensors.index.json), and, where the model has them, tokenizer_config.json
 * and chat_template.jinja (the chat template). Resolves with the decoder load's payload
 * {config, tokenizer, weights: [shard bytes], tokenizerConfig, chatTemplate} and the source.
 */
export async function fetchHubDecoder(rawId, onProgress) {
  const id = checkHubId(rawId);
  const get = await hubFiles(id, onProgress);
  const config = await get('config.json');
  const tokenizer = await get('tokenizer.json');
  const tokenizerConfig = await get('tokenizer_config.json', { optional: true });
  const template = await get('chat_template.jinja', { optional: true });
  const index = await get('model.safetensors.index.json', { optional: true });
  let weights;
  if (index) {
    let names;
    try {
      names = Object.values(JSON.parse(new TextDecoder().decode(index)).weight_map ?? {});
    } catch (err) {
      fail(`${id}/model.safetensors.index.json is not valid JSON (${err.message}).`);
    }
    const shards = [...new Set(names)].filter((n) => typeof n === 'string').sort();
    if (!shards.length || shards.some((n) => !/^[\w.-]+\.safetensors$/.test(n))) fail(`${id}/model.safetensors.index.json names no usable shards (${shards.slice(0, 3).join(', ') || 'none'}).`);
    weights = [];
    for (const shard of shards) weights.push(await get(shard));
  } else {
    weights = [await get('model.safetensors')];
  }
  const chatTemplate = template ? new TextDecoder().decode(template) : undefined;
  return { config, tokenizer, weights, tokenizerConfig, chatTemplate, source: `huggingface.co/${id}` };
}

const base = (p) => p.split('/').pop();

/** How long unpacking one archive may take before the page gives up on it. */
export const UNZIP_TIMEOUT_MS = 120_000;

/** Unpacks `file` (a .zip) in its own worker (unzip-worker.js), within the archive limits of
 * unzip.js and `timeoutMs`; the page's thread never inflates anything. */
export function unzipInWorker(file, timeoutMs = UNZIP_TIMEOUT_MS) {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./unzip-worker.js', import.meta.url), { type: 'module' });
    const done = (fn, value) => {
      clearTimeout(timer);
      worker.terminate();
      fn(value);
    };
    const timer = setTimeout(() => done(reject, new Error(`${file.name}: unpacking took longer than ${Math.round(timeoutMs / 1000)} s and was stopped.`)), timeoutMs);
    worker.addEventListener('message', ({ data }) => (data.error ? done(reject, Object.assign(new Error(data.error), data.code ? { code: data.code, args: data.args } : {})) : done(resolve, data.files)));
    worker.addEventListener('error', (e) => {
      e.preventDefault();
      done(reject, new Error(`${file.name}: the unpacking worker failed (${e.message || 'its script did not load'}).`));
    });
    file.arrayBuffer().then(
      (buf) => worker.postMessage({ bytes: buf, name: file.name }, [buf]),
      (err) => done(reject, new Error(`${file.name} could not be read (${err.message}).`)),
    );
  });
}

/**
 * Picks the model files from a file list (chosen files or a folder); a .zip (Burnish export)
 * is unpacked. Also returns recipe.json / metrics.json when present (an exported archive).
 */
export async function pickModelFiles(fileList) {
  const files = [...fileList];
  if (!files.length) fail('Choose the model files (config.json, tokenizer.json, model.safetensors), a folder, or a .zip exported by Burnish.');
  const found = new Map(); // basename -> Uint8Array
  const names = [];
  for (const file of files) {
    const name = base(file.webkitRelativePath || file.name);
    names.push(name);
    if (name.toLowerCase().endsWith('.zip')) {
      let entries;
      try {
        entries = await unzipInWorker(file);
      } catch (err) {
        fail(err.message, err.code, err.args);
      }
      for (const [path, bytes] of Object.entries(entries)) {
        if (!path.endsWith('/') && !found.has(base(path))) found.set(base(path), bytes);
        names.push(base(path));
      }
    } else if (!found.has(name)) {
      found.set(name, file);
    }
  }
  const missing = MODEL_FILES.filter((f) => !found.has(f));
  if (missing.length) {
    const hint = names.includes('pytorch_model.bin') && missing.includes('model.safetensors')
      ? ' This model only has pytorch_model.bin, which Burnish cannot read: convert it to safetensors, or pick a model that has them.'
      : '';
    const chosen = [...new Set(names)].slice(0, 8).join(', ') || 'none';
    fail(`Missing ${missing.join(', ')} among the chosen files (${chosen}). Choose config.json, tokenizer.json and model.safetensors together, their folder, or a Burnish .zip.${hint}`, 'page.missing-model-files', { missing: missing.join(', '), chosen, hint });
  }
  const bytes = async (v) => (v instanceof Uint8Array ? v : fileBytes(v).catch((err) => fail(err.message)));
  const optional = async (n) => (found.has(n) ? bytes(found.get(n)) : undefined);
  return {
    config: await bytes(found.get('config.json')),
    tokenizer: await bytes(found.get('tokenizer.json')),
    weights: await bytes(found.get('model.safetensors')),
    tokenizerConfig: await optional('tokenizer_config.json'),
    recipe: await optional('recipe.json'),
    source: files.length === 1 ? files[0].name : `${files.length} local files`,
  };
}
