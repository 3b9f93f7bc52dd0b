// The module Web Worker that owns the Burnish wasm instance: a small message switch
// (see protocol.js) plus the training loop, which runs trainSteps() in short slices so
// that pause/resume/stop and other requests are handled between slices.

import { IN, OUT, CONCERNS } from './protocol.js';
import { DECODER_RUN, saveCheckpoint, savedCheckpoint } from './saved-run.js';

const STEP_BUDGET_MS = 60; // time per slice of steps: Pause and Stop take effect between slices

/** The engine's exports, typed by the declarations wasm-bindgen writes for src/web/
 * (pkg/burnish.d.ts): tsc --checkJs (www/tsconfig.json) checks every call below against them.
 * @typedef {typeof import('./pkg/burnish.js')} Engine */
/** @type {Promise<Engine> | null} */
let wasmLoading = null; // Promise of the wasm module namespace, set by `init`
let backend = null; // initBackend's answer, kept so a second `init` does not redo it
/** @type {Promise<unknown>} */
let queue = Promise.resolve(); // wasm calls run strictly one after another
const training = { active: false, paused: false, stopped: false, step: 0, wake: null };

const post = (type, payload, id) => self.postMessage({ id, type, payload });

// The page's watchdog (main.js) hears from this worker every second; a worker stuck in a long
// synchronous call (a wasm step, a template render) misses beats, and past the watchdog's limit
// the page restarts it.
setInterval(() => post(OUT.ALIVE, { busy: [training, lmRun, generating, comparing, multitasking].some((r) => r.active) }), 1000);

/** A fault the page cannot recover from in this worker: it terminates it, says what happened and
 * offers to resume the saved run after a restart (main.js `engineFault`).
 * @param {'trap' | 'gpu-lost' | 'gpu-oom' | 'gpu-error'} kind */
const fault = (kind, message) => post(OUT.FAULT, { kind, message });

// WebGPU faults: every device the engine asks for (wgpu calls navigator.gpu.requestAdapter and
// adapter.requestDevice through these properties) reports its loss (`device.lost`), errors no
// error scope caught (`uncapturederror`), and out-of-memory on each buffer allocation (an error
// scope around createBuffer). `gpu.devices` is also what the fault drill destroys.
const gpu = { devices: /** @type {any[]} */ ([]), drilled: false };
(function watchGpu() {
  const g = /** @type {any} */ (navigator).gpu;
  if (!g?.requestAdapter) return;
  const requestAdapter = g.requestAdapter.bind(g);
  g.requestAdapter = async (/** @type {any} */ options) => {
    const adapter = await requestAdapter(options);
    if (!adapter) return adapter;
    const requestDevice = adapter.requestDevice.bind(adapter);
    adapter.requestDevice = async (/** @type {any} */ descriptor) => {
      const device = await requestDevice(descriptor);
      gpu.devices.push(device);
      device.lost.then((/** @type {any} */ info) => {
        // "destroyed" is a device the engine itself let go of (wgpu destroys a device it
        // drops), unless the fault drill destroyed it; a real loss says "unknown".
        if (info.reason === 'destroyed' && !gpu.drilled) return;
        fault('gpu-lost', `${info.reason || 'unknown reason'}${info.message ? `: ${info.message}` : ''}`);
      });
      device.addEventListener('uncapturederror', (/** @type {any} */ event) => {
        const oom = event.error?.constructor?.name === 'GPUOutOfMemoryError';
        fault(oom ? 'gpu-oom' : 'gpu-error', event.error?.message ?? String(event.error));
      });
      const createBuffer = device.createBuffer.bind(device);
      device.createBuffer = (/** @type {any} */ d) => {
        device.pushErrorScope('out-of-memory');
        const buffer = createBuffer(d);
        device.popErrorScope().then((/** @type {any} */ e) => e && fault('gpu-oom', `allocating ${d.size} bytes: ${e.message}`), () => {});
        return buffer;
      };
      return device;
    };
    return adapter;
  };
})();

/** Runs `fn` after every wasm call queued before it (the wasm state is not re-entrant).
 * @template T
 * @param {() => T | Promise<T>} fn
 * @returns {Promise<T>} */
function exclusive(fn) {
  const result = queue.then(fn);
  queue = result.catch(() => {});
  return result;
}

/** Turns anything thrown (Error, wasm trap, string) into a user-facing message. */
function describe(err) {
  if (err instanceof WebAssembly.RuntimeError) {
    // The instance is not safe to call again: the page restarts this worker.
    fault('trap', err.message);
    return `The WebAssembly module crashed (${err.message}).`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** An engine error's code, kind, values and detail (src/web/mod.rs js_err), for the page's translation. */
function codeOf(/** @type {any} */ err) {
  if (!err || typeof err !== 'object' || typeof err.code !== 'string') return {};
  return { code: err.code, kind: err.kind ?? null, args: { ...(err.args ?? {}) }, detail: err.detail ?? null };
}

// Two builds of the engine (scripts/build_wasm.sh): pkg/ (WebGPU + the CPU on one thread) and
// pkg-mt/ (the CPU only, on a pool of Web Workers: wasm threads). Threads need shared memory,
// which browsers allow only on a cross-origin isolated page (COOP/COEP headers: serve.mjs sends
// them; on a static host that cannot, coi-serviceworker.js adds them after one reload).
let engine = { dir: 'pkg', threads: 1, threadsNote: null };

/** The software rasterisers Chrome and others offer as a WebGPU adapter (backend.rs has the
 * same list for what wgpu reports). */
function softwareAdapter(adapter) {
  const info = adapter.info ?? {};
  const name = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`.toLowerCase();
  return Boolean(info.isFallbackAdapter || adapter.isFallbackAdapter) || ['swiftshader', 'llvmpipe', 'lavapipe', 'software', 'warp'].some((s) => name.includes(s));
}

/** Which module to load for `mode` (`threads`: the page's ?threads=, 0 meaning the default).
 * The threaded one when the CPU will train anyway: the CPU was chosen, or (auto) there is no
 * WebGPU adapter or only a software one, which the CPU outruns by far (BENCHMARKS.md). With a
 * hardware adapter in auto mode, pkg/ times the model on both (src/web/backend.rs). */
async function chooseEngine(mode, threads) {
  const cores = Math.max(1, navigator.hardwareConcurrency || 1);
  const wanted = threads > 0 ? Math.min(threads, 16) : Math.min(cores, 8);
  const single = (note) => ({ dir: 'pkg', threads: 1, threadsNote: note });
  if (mode === 'webgpu') return single(null);
  if (wanted < 2) return single(threads === 1 ? 'one thread (asked for in the address: threads=1)' : 'this device has one core');
  if (!self.crossOriginIsolated || typeof SharedArrayBuffer === 'undefined') {
    return single('one thread: this page is not cross-origin isolated (served without COOP/COEP headers, and no service worker adds them), which WebAssembly threads need');
  }
  const manifest = await fetch(new URL('./pkg-mt/manifest.json', import.meta.url)).then((r) => (r.ok ? r.json() : null)).catch(() => null);
  if (!manifest) return single('one thread: the threaded module (pkg-mt) was not built');
  const mt = { dir: 'pkg-mt', threads: wanted, threadsNote: null };
  if (mode === 'cpu') return mt;
  let adapter = null;
  try {
    adapter = (await /** @type {any} */ (navigator).gpu?.requestAdapter()) ?? null; // WebGPU's types are not in TypeScript's lib
  } catch {
    adapter = null;
  }
  if (!adapter) return { ...mt, threadsNote: 'no WebGPU adapter in this browser' };
  if (softwareAdapter(adapter)) {
    const info = adapter.info ?? {};
    const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'a fallback adapter';
    return { ...mt, threadsNote: `the WebGPU adapter (${name}) is a software emulation of a GPU, far slower than the CPU; choose WebGPU in the menu to use it anyway` };
  }
  return single('one thread: a hardware WebGPU adapter is present, so the module with WebGPU is loaded (choose CPU in the menu to train on every core)');
}

/** @returns {Promise<Engine>} */
async function importWasm(mode, threads) {
  engine = await chooseEngine(mode, threads);
  /** @type {Engine} */
  let mod;
  try {
    mod = await import(`./${engine.dir}/burnish.js`);
  } catch (err) {
    throw new Error(
      `Could not load the WebAssembly build (${engine.dir}/burnish.js): ${describe(err)}. ` +
        'Build it first (see the README), then reload.',
    );
  }
  await mod.default({ module_or_path: await wasmResponse(engine.dir) }); // compiles while it downloads
  // pkg-mt's extra export (wasm-bindgen-rayon), absent from pkg's declarations.
  if (engine.threads > 1) await /** @type {{ initThreadPool(n: number): Promise<void> }} */ (/** @type {unknown} */ (mod)).initThreadPool(engine.threads);
  return mod;
}

/** <dir>/burnish_bg.wasm as a streaming Response whose bytes are counted into WASM_PROGRESS
 * events. The decoded size comes from <dir>/manifest.json (build_wasm.sh): with gzip on the
 * wire, Content-Length counts compressed bytes. */
async function wasmResponse(dir) {
  const url = new URL(`./${dir}/burnish_bg.wasm`, import.meta.url);
  const manifest = await fetch(new URL(`./${dir}/manifest.json`, import.meta.url)).then((r) => (r.ok ? r.json() : null)).catch(() => null);
  const res = await fetch(url);
  if (!res.ok || !res.body) throw new Error(`Could not download the WebAssembly module (${url.pathname}: HTTP ${res.status}).`);
  const total = manifest?.wasm_bytes ?? Number(res.headers.get('Content-Length') ?? 0);
  const wire = manifest?.wasm_gzip_bytes ?? total;
  let loaded = 0;
  let last = 0;
  const counted = res.body.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      loaded += chunk.byteLength;
      const now = performance.now();
      if (now - last > 100 || loaded >= total) {
        last = now;
        post(OUT.WASM_PROGRESS, { loaded, total, wire });
      }
      controller.enqueue(chunk);
    },
  }));
  return new Response(counted, { headers: { 'Content-Type': 'application/wasm' } });
}

/** After a model is loaded in auto mode with a GPU adapter present: time its forward pass on
 * both backends (src/web/backend.rs) and tell the page which one runs (BACKEND event). Queued like
 * every wasm call, so a Start right after the load waits for the choice. */
function measureBackends(call) {
  if (backend?.mode !== 'auto' || !backend?.gpu) return;
  post(OUT.BACKEND, { ...backend, measuring: true });
  exclusive(call)
    .then((report) => {
      backend = { ...report, engine: engine.dir, threadsNote: engine.threadsNote };
      post(OUT.BACKEND, backend);
    })
    .catch((err) => {
      post(OUT.BACKEND, backend);
      post(OUT.LOG, { message: `The backend measurement failed (${describe(err)}); staying on ${backend.kind}.` });
    });
}

/** @returns {Promise<Engine>} */
async function wasm() {
  if (!wasmLoading) throw new Error('The WebAssembly module is not initialised yet.');
  return wasmLoading;
}

const comparing = { active: false, stopped: false };
const lmRun = { active: false, stopped: false };
const generating = { active: false, stopped: false, id: 0 };

/** Fine-tunes the decoder to the end (or Stop), reporting every slice; every `ckpt.every`
 * steps the run's checkpoint goes to OPFS (saved-run.js, DECODER_RUN). */
async function lmLoop(ckpt = { every: 0, lastSaved: 0 }) {
  let ok = false;
  try {
    const m = await wasm();
    await runSlices(lmRun, {
      slice: () => m.lmSteps(STEP_BUDGET_MS),
      reportsOf: (r) => r.reports,
      post: (r) => post(OUT.LM_PROGRESS, r),
      checkpoint: { ...ckpt, concerns: 'lm', save: () => m.saveLmCheckpoint(), store: DECODER_RUN, event: OUT.LM_CHECKPOINT },
    });
    ok = true;
  } catch (err) {
    post(OUT.ERROR, { message: describe(err), concerns: 'lm', step: null, ...codeOf(err) });
  } finally {
    lmRun.active = false;
    post(OUT.LM_DONE, { ok, stopped: lmRun.stopped });
  }
}

/** Streams a generation: the text so far after every slice, until it ends or Stop. */
async function generateLoop(id) {
  try {
    const m = await wasm();
    for (;;) {
      if (generating.stopped) {
        await exclusive(() => m.stopGeneration());
        post(OUT.GEN_TOKENS, { id, done: true, stopped: 'user', text: null });
        return;
      }
      const r = await exclusive(() => m.generateSteps(STEP_BUDGET_MS));
      post(OUT.GEN_TOKENS, { id, ...r });
      if (r.done) return;
      await nextTask();
    }
  } catch (err) {
    post(OUT.ERROR, { message: describe(err), concerns: 'generate', step: null, ...codeOf(err) });
    post(OUT.GEN_TOKENS, { id, done: true, stopped: 'error', text: null });
  } finally {
    generating.active = false;
  }
}
const multitasking = { active: false, stopped: false };

function refuseWhileTraining(what) {
  if (training.active) throw new Error(`Stop training before ${what}.`);
  if (comparing.active) throw new Error(`Stop the strategy comparison before ${what}.`);
  if (multitasking.active) throw new Error(`Stop the multi-task run before ${what}.`);
}

/** Trains the multi-task run to the end (or Stop), then scores every task. */
async function multitaskLoop() {
  let ok = false;
  let metrics = null;
  try {
    const m = await wasm();
    await runSlices(multitasking, {
      slice: () => m.multitaskSteps(STEP_BUDGET_MS),
      reportsOf: (reports) => reports,
      post: (reports) => post(OUT.MT_PROGRESS, { reports }),
    });
    metrics = await exclusive(() => m.multitaskEvaluate());
    ok = true;
  } catch (err) {
    post(OUT.ERROR, { message: describe(err), concerns: 'multitask', step: null, ...codeOf(err) });
  } finally {
    multitasking.active = false;
    post(OUT.MT_DONE, { ok, stopped: multitasking.stopped, metrics });
  }
}

/** Trains the compared runs in turns until all are done (or Stop), then scores them. */
async function compareLoop(summary) {
  let ok = false;
  let results = null;
  try {
    const m = await wasm();
    const done = summary.runs.map(() => false);
    await runSlices(comparing, {
      slice: () => m.compareSteps(STEP_BUDGET_MS),
      // Each run's reports; the comparison is done when every run is.
      isDone: (reports) => {
        reports.forEach((list, i) => {
          if (list.length && list[list.length - 1].done) done[i] = true;
        });
        return done.every(Boolean);
      },
      post: (reports) => post(OUT.COMPARE_PROGRESS, { reports }),
    });
    if (summary.eval_count > 0) results = await exclusive(() => m.compareEvaluate());
    ok = true;
  } catch (err) {
    post(OUT.ERROR, { message: describe(err), concerns: 'compare', step: null, ...codeOf(err) });
  } finally {
    comparing.active = false;
    post(OUT.COMPARE_DONE, { ok, stopped: comparing.stopped, results });
  }
}

// Pause/stop arrive as messages, and messages are only delivered between macrotasks.
// trainSteps may settle without ever leaving the microtask queue (CPU backend), so the
// loop yields a macrotask between slices.
const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * The one run loop, for every kind of run (classifier, domain adaptation, decoder, multi-task,
 * comparison): one wasm call per slice (`slice`, steps for STEP_BUDGET_MS), its result posted,
 * until the last report says done (`isDone` for results of another shape) or Stop; while
 * `run.paused` it waits for `run.wake`. With `checkpoint` ({every, lastSaved, save, store, event,
 * concerns}) the run's checkpoint goes to OPFS every `every` steps (saved-run.js); a failed save is
 * said once and the run goes on without. `between` runs after each slice. A macrotask is yielded
 * between slices: Pause and Stop arrive as messages, delivered only between macrotasks, and a
 * slice on the CPU may settle without leaving the microtask queue.
 */
/** @typedef {import('./pkg/burnish.js').StepReport} StepReport */
/**
 * @template R
 * @param {{ stopped: boolean, paused?: boolean, wake?: (() => void) | null, step?: number }} run
 * @param {{ slice: () => Promise<R>, reportsOf?: (r: R) => StepReport[], isDone?: ((r: R) => boolean) | null, post: (r: R) => void,
 *   checkpoint?: { every: number, lastSaved: number, save: () => Promise<Uint8Array>, store?: string, event: string, concerns: string, size?: number } | null,
 *   between?: (() => Promise<void>) | null }} how
 */
async function runSlices(run, { slice, reportsOf = (r) => /** @type {StepReport[]} */ (/** @type {unknown} */ (r)), isDone = null, post: postResult, checkpoint = null, between = null }) {
  let done = false;
  while (!done && !run.stopped) {
    if (run.paused) {
      await new Promise((resolve) => (run.wake = () => resolve(undefined)));
      continue;
    }
    const result = await exclusive(slice);
    const reports = isDone ? [] : reportsOf(result);
    const last = reports[reports.length - 1];
    if (last) {
      run.step = last.step;
      done = Boolean(last.done);
    }
    if (isDone) done = isDone(result);
    postResult(result);
    if (checkpoint && last && !done && checkpoint.every > 0 && last.step - checkpoint.lastSaved >= checkpoint.every) {
      try {
        const bytes = await exclusive(checkpoint.save);
        checkpoint.size = bytes.length;
        await saveCheckpoint(bytes, { step: last.step, total_steps: last.total_steps, saved_at: new Date().toISOString() }, checkpoint.store);
        checkpoint.lastSaved = last.step;
        post(checkpoint.event, { step: last.step, bytes: bytes.length });
      } catch (err) {
        checkpoint.every = 0; // report once, then train on without checkpoints
        if (err?.name === 'QuotaExceededError') {
          // Storage is full: say how much was needed and how much is left, and wait (paused)
          // until the user agrees to go on without checkpoints, or stops.
          const estimate = await navigator.storage?.estimate?.().catch(() => null);
          const free = estimate?.quota != null ? Math.max(0, estimate.quota - (estimate.usage ?? 0)) : null;
          run.paused = true;
          quotaPaused = run;
          post(OUT.QUOTA, { needed: checkpoint.size ?? null, free, step: last.step, concerns: checkpoint.concerns });
          continue;
        }
        post(OUT.ERROR, { message: `Could not save a checkpoint (training goes on without them): ${describe(err)}`, concerns: checkpoint.concerns, step: last.step });
      }
    }
    if (between) await between();
    await nextTask();
  }
}

async function trainLoop(summary, ckpt = { every: 0, lastSaved: 0 }) {
  let ok = false;
  try {
    const m = await wasm();
    // The model before fine-tuning (step 0), for the before/after comparison: a snapshot of
    // the starting weights scored a slice at a time between training slices, so the first
    // loss shows at once rather than after the whole evaluation set.
    let baseline = summary.eval_count > 0 && !summary.resumed;
    const scoreBaseline = async () => {
      const before = await exclusive(() => m.baselineSteps(STEP_BUDGET_MS));
      if (before) {
        baseline = false;
        post(OUT.METRICS, { ...before, phase: 'before', step: 0, stopped: false });
      }
    };
    if (baseline) {
      post(OUT.LOG, { key: 'train.before' });
      await exclusive(() => m.startBaseline());
    }
    await runSlices(training, {
      slice: () => m.trainSteps(STEP_BUDGET_MS),
      post: (reports) => post(OUT.PROGRESS, { reports }),
      checkpoint: { ...ckpt, concerns: 'train', save: () => m.saveCheckpoint(), store: undefined, event: OUT.CHECKPOINT },
      between: async () => {
        if (baseline) await scoreBaseline();
      },
    });
    while (baseline) await scoreBaseline();
    if (summary.eval_count > 0) {
      post(OUT.LOG, { message: `Evaluating on ${summary.eval_count} held-out rows…` });
      const result = await exclusive(() => m.evaluate());
      post(OUT.METRICS, { ...result, phase: 'after', step: training.step, stopped: training.stopped });
    } else {
      post(OUT.LOG, { message: 'No evaluation rows (eval fraction 0 and no eval file): skipping evaluation.' });
    }
    ok = true;
  } catch (err) {
    post(OUT.ERROR, { message: describe(err), concerns: 'train', step: training.step, ...codeOf(err) });
  } finally {
    training.active = false;
    post(OUT.DONE, { ok, stopped: training.stopped, step: training.step });
  }
}

/** Two-stage recipe: stage 1, masked-LM adaptation on the domain text; then, unless
 * `adaptOnly`, the classifier from the adapted encoder (trainLoop). Pause and Stop work in both. */
async function adaptThenTrain(recipe, ckpt, adaptOnly) {
  let handedOver = false;
  let failed = false;
  try {
    const m = await wasm();
    await runSlices(training, {
      slice: () => m.adaptSteps(STEP_BUDGET_MS),
      reportsOf: (r) => r.reports,
      post: (r) => post(OUT.MLM_PROGRESS, r),
    });
    training.step = 0; // the classifier stage counts its own steps
    if (training.stopped) {
      post(OUT.LOG, { message: 'Stopped during the domain adaptation: the classifier stage did not start.' });
    } else {
      await exclusive(() => m.finishAdaptation());
      if (adaptOnly) return;
      const summary = await exclusive(() => m.startTraining(recipe));
      post(OUT.STAGE, { summary });
      handedOver = true;
      await trainLoop(summary, ckpt);
    }
  } catch (err) {
    failed = true;
    post(OUT.ERROR, { message: describe(err), concerns: 'train', step: null, ...codeOf(err) });
  } finally {
    if (!handedOver) {
      training.active = false;
      post(OUT.DONE, { ok: !failed, stopped: training.stopped, step: 0, stage: 'mlm', adaptOnly });
    }
  }
}

/** The run paused because a checkpoint did not fit in storage (runSlices), if any. */
let quotaPaused = null;

function wakeTrainLoop() {
  training.wake?.();
  training.wake = null;
}

const handlers = {
  // The user agreed to train on without checkpoints after storage ran out.
  async [IN.CONTINUE_WITHOUT_CHECKPOINTS]() {
    const run = quotaPaused;
    quotaPaused = null;
    if (!run) return false;
    run.paused = false;
    run.wake?.();
    return true;
  },

  // Fault drills: real faults, on demand, so that recovery can be tried (tests/browser/
  // reliability.test.mjs; also `window.burnishFaultDrill(kind)` in the page): a panic in the
  // wasm module ('trap'), this worker's thread stuck for good ('hang'), the WebGPU device
  // destroyed ('gpu-lost').
  async [IN.FAULT_DRILL]({ kind }) {
    if (kind === 'trap') {
      const m = await wasm();
      return exclusive(() => m.faultDrill('trap'));
    }
    if (kind === 'hang') {
      setTimeout(() => {
        for (;;);
      }, 0);
      return true;
    }
    if (kind === 'gpu-lost') {
      if (!gpu.devices.length) throw new Error('No WebGPU device is in use (the engine runs on the CPU).');
      gpu.drilled = true;
      for (const d of gpu.devices) d.destroy();
      return true;
    }
    throw new Error(`Unknown fault drill: ${kind}`);
  },
  async [IN.INIT]({ mode = 'auto', threads = 0 }) {
    wasmLoading ??= importWasm(String(mode), Number(threads) || 0);
    const m = await wasmLoading;
    backend ??= { ...(await exclusive(() => m.initBackend(String(mode)))), engine: engine.dir, threadsNote: engine.threadsNote };
    // The recipe's fields, limits and help, from the engine itself (recipe.rs).
    return { ...backend, recipe_schema: m.recipeSchema() };
  },

  async [IN.LOAD_MODEL]({ config, tokenizer, weights, tokenizerConfig }) {
    refuseWhileTraining('loading another model');
    const m = await wasm();
    const summary = await exclusive(() => m.loadModel(config, tokenizer, weights, tokenizerConfig ?? undefined));
    measureBackends(() => m.measureBackends(4, 64));
    return summary;
  },

  // The browser benchmark (bench/browser.mjs): the same timings `burnish bench` makes natively.
  async [IN.BENCH]({ kind, batch, len, steps, warmup, strategy = 'lora', genTokens = 32 }) {
    refuseWhileTraining('benchmarking');
    const m = await wasm();
    if (kind === 'decoder') return exclusive(() => m.benchDecoder(strategy, batch, len, steps, warmup, genTokens));
    return exclusive(() => m.benchClassifier(batch, len, steps, warmup));
  },

  async [IN.INSPECT_DATA]({ bytes, fileName }) {
    refuseWhileTraining('changing the training data');
    const m = await wasm();
    return exclusive(() => m.inspectData(bytes, fileName));
  },

  async [IN.INSPECT_EVAL_DATA]({ bytes, fileName }) {
    refuseWhileTraining('changing the evaluation data');
    const m = await wasm();
    return exclusive(() => m.inspectEvalData(bytes, fileName));
  },

  async [IN.CLEAR_EVAL_DATA]() {
    refuseWhileTraining('changing the evaluation data');
    const m = await wasm();
    await exclusive(() => m.clearEvalData());
    return {};
  },

  async [IN.ADD_TRAIN_SOURCE]({ bytes, fileName }) {
    refuseWhileTraining('changing the training data');
    const m = await wasm();
    return exclusive(() => m.addTrainSource(bytes, fileName));
  },

  async [IN.REMOVE_TRAIN_SOURCE]({ index }) {
    refuseWhileTraining('changing the training data');
    const m = await wasm();
    await exclusive(() => m.removeTrainSource(index));
    return {};
  },

  async [IN.MIXTURE_PLAN](recipe) {
    const m = await wasm();
    return exclusive(() => m.mixturePlan(recipe));
  },

  async [IN.CHECK_DATA]({ textColumn, labelColumn, maxLen }) {
    const m = await wasm();
    return exclusive(() => m.checkData(textColumn, labelColumn ?? '', maxLen));
  },

  async [IN.ESTIMATE_MEMORY]({ batchSize, maxLen, recipe, numLabels }) {
    const m = await wasm();
    return exclusive(() => m.estimateMemory(batchSize, maxLen, recipe, numLabels));
  },

  async [IN.ESTIMATE_MEMORY_FOR_CONFIG]({ config, batchSize, maxLen, recipe, numLabels }) {
    const m = await wasm();
    return exclusive(() => m.estimateMemoryForConfig(config, batchSize, maxLen, recipe, numLabels));
  },

  async [IN.EVALUATE_ONLY](recipe) {
    refuseWhileTraining('evaluating');
    const m = await wasm();
    const summary = await exclusive(() => m.startTraining(recipe));
    if (summary.eval_count === 0) throw new Error('There are no evaluation rows: choose an evaluation file or a larger held-out share.');
    const result = await exclusive(() => m.evaluate());
    return { summary, ...result };
  },

  async [IN.TRAIN]({ recipe, checkpointEvery = 0, adaptOnly = false }) {
    refuseWhileTraining('starting again');
    const m = await wasm();
    if (adaptOnly || recipe.mlm_epochs > 0) {
      const adaptation = await exclusive(() => m.startAdaptation(recipe, adaptOnly));
      Object.assign(training, { active: true, paused: false, stopped: false, step: 0, wake: null });
      adaptThenTrain(recipe, { every: checkpointEvery, lastSaved: 0 }, adaptOnly);
      return { adaptation };
    }
    const summary = await exclusive(() => m.startTraining(recipe));
    Object.assign(training, { active: true, paused: false, stopped: false, step: 0, wake: null });
    trainLoop(summary, { every: checkpointEvery, lastSaved: 0 }); // runs on; reports through progress/metrics/done/error events
    return summary;
  },

  // Continues the run checkpointed in OPFS (model and data must be loaded as they were).
  async [IN.RESUME_RUN]({ checkpointEvery = 0 }) {
    refuseWhileTraining('resuming a saved run');
    const m = await wasm();
    let bytes;
    try {
      bytes = await savedCheckpoint();
    } catch {
      throw new Error('The saved checkpoint is gone from this browser\'s storage.');
    }
    const summary = await exclusive(() => m.resumeTraining(bytes));
    const step = summary.resumed.step;
    Object.assign(training, { active: true, paused: false, stopped: false, step, wake: null });
    trainLoop(summary, { every: checkpointEvery, lastSaved: step });
    return summary;
  },

  async [IN.PAUSE]() {
    if (training.active) training.paused = true;
    return { active: training.active, paused: training.paused };
  },

  async [IN.RESUME]() {
    training.paused = false;
    wakeTrainLoop();
    return { active: training.active, paused: false };
  },

  async [IN.STOP]() {
    if (training.active) {
      training.stopped = true;
      training.paused = false;
      wakeTrainLoop();
    }
    return { active: training.active };
  },

  async [IN.EVALUATE]() {
    const m = await wasm();
    return exclusive(() => m.evaluate());
  },

  async [IN.PREDICT]({ text }) {
    const m = await wasm();
    return exclusive(() => m.predict(text));
  },

  async [IN.PRESETS]() {
    const m = await wasm();
    return exclusive(() => m.strategyPresets());
  },

  async [IN.COMPARE]({ recipe, presets }) {
    refuseWhileTraining('comparing strategies');
    const m = await wasm();
    const summary = await exclusive(() => m.startComparison(recipe, presets));
    Object.assign(comparing, { active: true, stopped: false });
    compareLoop(summary);
    return summary;
  },

  async [IN.COMPARE_STOP]() {
    if (comparing.active) comparing.stopped = true;
    return { active: comparing.active };
  },

  async [IN.SET_DOMAIN_DATA]({ bytes, fileName }) {
    refuseWhileTraining('changing the domain text');
    const m = await wasm();
    return exclusive(() => m.setDomainData(bytes, fileName));
  },

  async [IN.CLEAR_DOMAIN_DATA]() {
    refuseWhileTraining('changing the domain text');
    const m = await wasm();
    await exclusive(() => m.clearDomainData());
    return {};
  },

  async [IN.ADD_TASK]({ bytes, fileName }) {
    refuseWhileTraining('changing the tasks');
    const m = await wasm();
    return exclusive(() => m.addTask(bytes, fileName));
  },

  async [IN.REMOVE_TASK]({ index }) {
    refuseWhileTraining('changing the tasks');
    const m = await wasm();
    await exclusive(() => m.removeTask(index));
    return {};
  },

  async [IN.MULTITASK]({ recipe, columns }) {
    refuseWhileTraining('starting a multi-task run');
    const m = await wasm();
    const summary = await exclusive(() => m.startMultitask(recipe, columns));
    Object.assign(multitasking, { active: true, stopped: false });
    multitaskLoop();
    return summary;
  },

  async [IN.MULTITASK_STOP]() {
    if (multitasking.active) multitasking.stopped = true;
    return { active: multitasking.active };
  },

  async [IN.MULTITASK_PREDICT]({ text }) {
    const m = await wasm();
    return exclusive(() => m.multitaskPredict(text));
  },

  async [IN.MULTITASK_EXPORT]() {
    if (multitasking.active) throw new Error('Stop the multi-task run (or let it finish) before exporting.');
    const m = await wasm();
    return exclusive(() => m.multitaskExport());
  },

  async [IN.FILL_MASK]({ text, topK = 5 }) {
    const m = await wasm();
    return exclusive(() => m.fillMask(text, topK));
  },

  async [IN.EXPORT_ADAPTED]() {
    const m = await wasm();
    return exclusive(() => m.exportAdapted());
  },

  async [IN.DECODER_LOAD]({ gguf, config, tokenizer, weights, tokenizerConfig, chatTemplate }) {
    if (lmRun.active || generating.active) throw new Error('Stop the fine-tuning run and the generation before loading another model.');
    const m = await wasm();
    const summary = await exclusive(() => (gguf ? m.loadDecoderGguf(gguf) : m.loadDecoderFiles(config, tokenizer, weights, tokenizerConfig, chatTemplate)));
    measureBackends(() => m.measureDecoderBackends(32));
    return summary;
  },

  async [IN.LM_DATA]({ bytes, name }) {
    if (lmRun.active) throw new Error('Stop the fine-tuning run before choosing other data.');
    const m = await wasm();
    return exclusive(() => m.setLmData(bytes, name));
  },

  async [IN.LM_TRAIN]({ recipe, checkpointEvery = 0 }) {
    if (lmRun.active) throw new Error('A fine-tuning run is already going.');
    if (generating.active) throw new Error('Stop the generation before fine-tuning.');
    const m = await wasm();
    const summary = await exclusive(() => m.startLm(recipe));
    Object.assign(lmRun, { active: true, stopped: false });
    lmLoop({ every: checkpointEvery, lastSaved: 0 });
    return summary;
  },

  // Continues the decoder run checkpointed in OPFS (model and data loaded as they were).
  async [IN.LM_RESUME]({ recipe, checkpointEvery = 0 }) {
    if (lmRun.active) throw new Error('A fine-tuning run is already going.');
    if (generating.active) throw new Error('Stop the generation before resuming.');
    const m = await wasm();
    let bytes;
    try {
      bytes = await savedCheckpoint(DECODER_RUN);
    } catch {
      throw new Error('The saved checkpoint is gone from this browser\'s storage.');
    }
    const summary = await exclusive(() => m.resumeLm(recipe, bytes));
    Object.assign(lmRun, { active: true, stopped: false });
    lmLoop({ every: checkpointEvery, lastSaved: summary.step });
    return summary;
  },

  async [IN.LM_STOP]() {
    if (lmRun.active) lmRun.stopped = true;
    return { active: lmRun.active };
  },

  async [IN.LM_EXPORT]({ baseName }) {
    if (lmRun.active) throw new Error('Wait for the fine-tuning run to end (or stop it) before exporting.');
    const m = await wasm();
    return exclusive(() => m.exportDecoder(baseName));
  },

  async [IN.LM_EXPORT_GGUF]({ type, name }) {
    if (lmRun.active) throw new Error('Wait for the fine-tuning run to end (or stop it) before exporting.');
    const m = await wasm();
    return exclusive(() => m.exportDecoderGguf(String(type), String(name)));
  },

  async [IN.LM_METRICS]({ pairs }) {
    const m = await wasm();
    return exclusive(() => m.generationMetrics(pairs));
  },

  async [IN.LM_MEMORY]({ batchSize, maxLen, recipe }) {
    const m = await wasm();
    return exclusive(() => m.estimateDecoderMemory(batchSize, maxLen, recipe));
  },

  async [IN.DECODER_MEMORY_FOR_CONFIG]({ config, batchSize, maxLen, recipe }) {
    const m = await wasm();
    return exclusive(() => m.estimateDecoderMemoryForConfig(config, batchSize, maxLen, recipe));
  },

  async [IN.GENERATE]({ prompt, options, tuned = false, chat = false, templated = false }) {
    if (generating.active) throw new Error('A generation is already running: stop it first.');
    if (lmRun.active) throw new Error('Wait for the fine-tuning run to end (or stop it) before generating.');
    const m = await wasm();
    const started = await exclusive(() => m.startGeneration({ prompt, options, tuned, chat, templated }));
    generating.id += 1;
    Object.assign(generating, { active: true, stopped: false });
    generateLoop(generating.id);
    return { ...started, id: generating.id };
  },

  async [IN.GENERATE_STOP]() {
    if (generating.active) generating.stopped = true;
    return { active: generating.active };
  },

  async [IN.EXPORT]({ baseName = undefined } = {}) {
    const m = await wasm();
    return exclusive(() => m.exportModel(baseName ?? 'base-model'));
  },
  async [IN.EXPORT_INT8]() {
    const m = await wasm();
    return exclusive(() => m.exportInt8());
  },
  async [IN.TRAINING_SCRIPT]({ recipe, model, trainFiles, evalFile = undefined }) {
    const m = await wasm();
    return exclusive(() => m.trainingScript(recipe, String(model), trainFiles.map(String), evalFile ? String(evalFile) : undefined));
  },
};

self.addEventListener('message', async (/** @type {MessageEvent} */ { data: { id, type, payload } }) => {
  try {
    const handler = handlers[type];
    if (!handler) throw new Error(`Unknown request type: ${type}`);
    post(OUT.RESULT, await handler(payload ?? {}), id);
  } catch (err) {
    const step = training.active ? training.step : null;
    post(OUT.ERROR, { message: describe(err), concerns: CONCERNS[type] ?? null, step, ...codeOf(err) }, id);
  }
});

// Last line of defence: nothing reaches the console unhandled.
self.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  post(OUT.ERROR, { message: describe(event.reason), concerns: null, step: null, ...codeOf(event.reason) });
});
self.addEventListener('error', (event) => {
  event.preventDefault();
  post(OUT.ERROR, { message: event.message || 'Unexpected worker error', concerns: null, step: null });
});
