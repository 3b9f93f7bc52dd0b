// The browser benchmark (`bash bench/run.sh browser`): drives headless Chromium through the real
// page and records, for the wasm CPU backend and for WebGPU (SwiftShader here: a software GPU),
// MiniLM training-step time and forward samples/s (batch 16 × 64), SmolLM2 LoRA step time
// (batch 4 × 64) and generation tokens/s, the default demo's time from page load to its first
// loss point and to the end of its first epoch, and the wasm download size; and, in the same
// run, Transformers.js (ONNX Runtime Web, WASM, same thread count) on the same MiniLM forward
// pass. The CPU is measured on one thread (www/pkg) and on every core (www/pkg-mt, wasm threads;
// the server sends COOP/COEP), Transformers.js likewise. Writes bench/results/browser.json and
// prints a table.
//
//   node bench/browser.mjs [--onnx DIR] [--only cpu|threads|webgpu|tjs|demo]... [--gpu-limit-s N] [--tag NAME]
// (--tag NAME: results go to browser[-ONLY...]-NAME.json, e.g. for a build variant)

import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from './browser/node_modules/playwright-core/index.mjs';
import { startServer } from '../scripts/serve.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const only = args.flatMap((a, i) => (args[i - 1] === '--only' ? [a] : []));
const want = (what) => only.length === 0 || only.includes(what);
const ONNX = opt('--onnx', path.join(process.env.HOME ?? '/root', '.cache', 'burnish', 'bench', 'minilm-onnx'));
const GPU_LIMIT_MS = Number(opt('--gpu-limit-s', '240')) * 1000;
const BASE_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'];
const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

const log = (...m) => console.error('[bench]', ...m);

async function withBrowser(gpu, fn) {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: [...BASE_ARGS, ...(gpu ? WEBGPU_ARGS : [])] });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    return await fn(await context.newPage());
  } finally {
    await browser.close().catch(() => {});
  }
}

const state = (page) => page.evaluate(() => window.burnishState ?? null);

async function until(page, predicate, timeout, what) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const s = await state(page);
    if (s?.errors?.length) throw new Error(`${what}: ${JSON.stringify(s.errors)}`);
    if (s && predicate(s)) return s;
    if (Date.now() > deadline) throw new Error(`${what}: timed out after ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `promise`, or {timeout_ms} when it takes longer (the page is closed afterwards anyway). */
const capped = (promise, ms) => Promise.race([promise, new Promise((r) => setTimeout(() => r({ timed_out_after_ms: ms }), ms))]);

/** MiniLM and SmolLM2 through the page's worker on one backend (`threads`: the page's
 * ?threads=, 0 for every core). */
async function burnish(url, kind, threads = 0) {
  const gpu = kind === 'webgpu';
  return withBrowser(gpu, async (page) => {
    const out = { backend: kind };
    const t0 = Date.now();
    await page.goto(`${url}/?backend=${kind}${threads ? `&threads=${threads}` : ''}`);
    let s = await until(page, (s) => s.backend !== null, 120_000, 'backend');
    out.engine_ready_ms = Date.now() - t0;
    out.adapter = s.backend.adapter;
    out.engine = s.backend.engine;
    out.threads = s.backend.threads;
    await page.click('#load-model'); // the bundled all-MiniLM-L6-v2
    await until(page, (s) => s.model !== null, 120_000, 'MiniLM load');
    const limit = gpu ? GPU_LIMIT_MS : 600_000;
    const [steps, warmup] = gpu ? [1, 0] : [3, 1];
    log(kind, 'MiniLM: training steps and forward passes, batch 16 × 64');
    out.minilm = await capped(page.evaluate((p) => window.burnishBench(p), { kind: 'classifier', batch: 16, len: 64, steps, warmup }), limit);
    if (out.minilm.timed_out_after_ms) return out; // the worker is still busy: a fresh page for the decoder would only queue behind it
    log(kind, 'SmolLM2: LoRA steps (batch 4 × 64) and 32 greedy tokens');
    await page.click('#decoder-bundled');
    await until(page, (s) => s.decoder !== null, 180_000, 'SmolLM2 load');
    out.smollm2_lora = await capped(
      page.evaluate((p) => window.burnishBench(p), { kind: 'decoder', strategy: 'lora', batch: 4, len: 64, steps: gpu ? 1 : 2, warmup: gpu ? 0 : 1, genTokens: 32 }),
      limit,
    );
    return out;
  });
}

/** The default demo as a user meets it: open the page (auto backend), press Start. */
async function demo(url, gpu) {
  return withBrowser(gpu, async (page) => {
    const t0 = Date.now();
    await page.goto(`${url}/`);
    await until(page, (s) => s.backend !== null && s.data !== null, 120_000, 'page ready');
    const ready = Date.now();
    await page.click('#start');
    const started = Date.now();
    const s1 = await until(page, (s) => s.losses.length >= 1, 600_000, 'first loss');
    const first = Date.now();
    const perEpoch = Math.ceil(s1.summary.total_steps / s1.summary.recipe.epochs);
    const s2 = await capped(until(page, (s) => s.losses.length >= perEpoch, 900_000, 'first epoch'), 900_000);
    const epoch = Date.now();
    const s = await state(page);
    return {
      webgpu_adapter_present: gpu,
      backend: s.backend.kind,
      engine: s.backend.engine,
      threads: s.backend.threads,
      measurement: s.backend.measurement,
      steps_per_epoch: perEpoch,
      eval_rows: s1.summary.eval_count,
      page_ready_ms: ready - t0,
      first_loss_after_start_ms: first - started,
      first_loss_after_load_ms: first - t0,
      first_epoch_after_start_ms: s2.timed_out_after_ms ? null : epoch - started,
    };
  });
}

/** Transformers.js on the exported ONNX model, same shapes, on `threads` threads (the server
 * sends COOP/COEP, which ONNX Runtime Web's threads need too). */
async function transformersJs(device, threads = 1) {
  const root = path.join(tmpdir(), 'burnish-tjs');
  await rm(root, { recursive: true, force: true });
  await mkdir(path.join(root, 'ort'), { recursive: true });
  const nm = path.join(HERE, 'browser', 'node_modules');
  await cp(path.join(HERE, 'browser', 'tjs.html'), path.join(root, 'index.html'));
  await cp(path.join(HERE, 'browser', 'tjs.mjs'), path.join(root, 'tjs.mjs'));
  await cp(path.join(nm, '@huggingface', 'transformers', 'dist', 'transformers.min.js'), path.join(root, 'transformers.min.js'));
  for (const f of ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm']) {
    await cp(path.join(nm, 'onnxruntime-web', 'dist', f), path.join(root, 'ort', f)).catch(() => {});
  }
  await cp(ONNX, path.join(root, 'models', 'minilm'), { recursive: true });
  const server = await startServer({ root, port: 0 });
  try {
    return await withBrowser(device === 'webgpu', async (page) => {
      await page.goto(`${server.url}/?batch=16&len=64&passes=5&threads=${threads}&device=${device}`);
      const deadline = Date.now() + (device === 'webgpu' ? GPU_LIMIT_MS : 600_000);
      for (;;) {
        const r = await page.evaluate(() => window.benchResult ?? null);
        if (r) return r;
        if (Date.now() > deadline) return { timed_out_after_ms: deadline };
        await new Promise((res) => setTimeout(res, 250));
      }
    });
  } finally {
    await server.close();
  }
}

const server = await startServer({ port: 0 });
const manifest = JSON.parse(await readFile(path.join(REPO, 'www', 'pkg', 'manifest.json'), 'utf8').catch(() => '{}'));
const manifestMt = JSON.parse(await readFile(path.join(REPO, 'www', 'pkg-mt', 'manifest.json'), 'utf8').catch(() => '{}'));
const [chromiumVersion, cores] = await withBrowser(false, async (page) => page.evaluate(() => [navigator.userAgent, navigator.hardwareConcurrency]));
const results = { date: new Date().toISOString(), user_agent: chromiumVersion, hardware_concurrency: cores, wasm: manifest, wasm_threads: manifestMt, burnish: {}, demo: {}, transformers_js: {} };
try {
  if (want('cpu')) results.burnish.cpu = await burnish(server.url, 'cpu', 1);
  if (want('threads')) results.burnish.cpu_threads = await burnish(server.url, 'cpu', 0);
  if (want('tjs')) {
    log('Transformers.js (WASM, 1 thread): forward passes, batch 16 × 64');
    results.transformers_js.wasm = await transformersJs('wasm', 1).catch((e) => ({ error: String(e) }));
    log(`Transformers.js (WASM, ${cores} threads): forward passes, batch 16 × 64`);
    results.transformers_js.wasm_threads = await transformersJs('wasm', cores).catch((e) => ({ error: String(e) }));
  }
  if (want('demo')) {
    log('default demo, no WebGPU adapter');
    results.demo.cpu_only = await demo(server.url, false);
    log('default demo, SwiftShader adapter present (auto mode measures)');
    results.demo.swiftshader_present = await demo(server.url, true);
  }
  if (want('webgpu')) results.burnish.webgpu = await burnish(server.url, 'webgpu');
} finally {
  await server.close();
}
const tag = opt('--tag', '');
const file = path.join(REPO, 'bench', 'results', `${only.length ? `browser-${only.join('-')}` : 'browser'}${tag ? `-${tag}` : ''}.json`);
await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
log('wrote', file);

// A table for BENCHMARKS.md.
const f = (x, d = 2) => (x == null ? '—' : Number(x).toFixed(d));
const lines = [
  `wasm module: ${(manifest.wasm_bytes / 1e6).toFixed(1)} MB, ${(manifest.wasm_gzip_bytes / 1e6).toFixed(2)} MB gzipped (with WebGPU)`,
];
if (manifestMt.wasm_bytes) lines.push(`threaded CPU module: ${(manifestMt.wasm_bytes / 1e6).toFixed(1)} MB, ${(manifestMt.wasm_gzip_bytes / 1e6).toFixed(2)} MB gzipped`);
for (const [cpu, tjs] of [[results.burnish.cpu, results.transformers_js.wasm], [results.burnish.cpu_threads, results.transformers_js.wasm_threads]]) {
  if (cpu?.minilm?.training) {
    lines.push(`CPU (${cpu.threads} thread(s)) MiniLM training step (16 × 64): ${f(cpu.minilm.training.median_step_s)} s · forward ${f(cpu.minilm.forward.samples_per_s)} samples/s`);
  }
  if (tjs?.samples_per_s) lines.push(`Transformers.js WASM forward (16 × 64, ${tjs.threads} thread(s)): ${f(tjs.samples_per_s)} samples/s · Burnish/Transformers.js ${f(cpu?.minilm?.forward?.samples_per_s / tjs.samples_per_s)}x`);
  if (cpu?.smollm2_lora?.training) lines.push(`CPU (${cpu.threads} thread(s)) SmolLM2 LoRA step (4 × 64): ${f(cpu.smollm2_lora.training.median_step_s)} s · generation ${f(cpu.smollm2_lora.generation_tokens_per_s, 1)} tokens/s`);
}
for (const [k, d] of Object.entries(results.demo)) {
  lines.push(`demo (${k}): on ${d.backend} (${d.threads} thread(s)), first loss ${f(d.first_loss_after_start_ms / 1000, 1)} s after Start (${f(d.first_loss_after_load_ms / 1000, 1)} s after load), first epoch (${d.steps_per_epoch} steps) ${f(d.first_epoch_after_start_ms / 1000, 1)} s after Start`);
}
console.log(lines.join('\n'));
