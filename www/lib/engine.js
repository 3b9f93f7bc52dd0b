// The engine: the Web Worker that runs the wasm module (worker.js), the requests to it, and what
// happens when it fails (watchdog, traps, lost GPU, full storage).

import { BurnishClient, CONCERNS, IN, OUT } from '../protocol.js';
import { t } from '../i18n.js';
import { DECODER_RUN, readSavedRun } from '../saved-run.js';
import { $, bytes, log, params } from './dom.js';
import { concerning, failWith, showError } from './errors.js';
import { emit } from './events.js';
import { state } from './state.js';

// ?backend=auto (default: time the loaded model on both and use the faster), cpu or webgpu.
export const backendMode = ['cpu', 'webgpu'].includes(params.get('backend')) ? params.get('backend') : 'auto';

const worker = new Worker(new URL('../worker.js', import.meta.url), { type: 'module' });
const client = new BurnishClient(worker, onWorkerEvent);
export const request = (type, payload, transfer) => {
  if (STOP_REQUESTS.has(type) && !watch.stopAsked) watch.stopAsked = performance.now();
  return concerning(CONCERNS[type], () => client.request(type, payload, transfer));
};
// The browser benchmark (bench/browser.mjs) times the loaded models through the worker.
window.burnishBench = (payload) => client.request(IN.BENCH, payload);
// Fault drills (worker.js): real faults on demand, to try the recovery (tests/browser/reliability.test.mjs).
window.burnishFaultDrill = (kind) => client.request(IN.FAULT_DRILL, { kind });

// ---------------------------------------------------------------- engine faults
// The worker beats every second (OUT.ALIVE). A worker that misses beats for WATCHDOG_S (a trap
// that left it dead, a synchronous call that never returns) or that does not honour Stop within
// STOP_GRACE_S, a wasm trap and a lost or failing GPU all end the same way: the worker is
// terminated, the page says what happened, and a restart (a reload, on the CPU if the GPU
// failed) offers to resume the run from its last checkpoint in OPFS.
const WATCHDOG_S = Number(params.get('watchdog')) > 0 ? Number(params.get('watchdog')) : 180;
const STOP_GRACE_S = Math.min(30, WATCHDOG_S);
const watch = { lastAlive: performance.now(), stopAsked: 0, fault: null };
const STOP_REQUESTS = new Set([IN.STOP, IN.LM_STOP, IN.GENERATE_STOP, IN.COMPARE_STOP, IN.MULTITASK_STOP]);
const RUN_ENDED = new Set([OUT.DONE, OUT.LM_DONE, OUT.COMPARE_DONE, OUT.MT_DONE]);

const FAULT_TEXT = {
  trap: (m) => `The engine crashed (a trap in the WebAssembly module: ${m}).`,
  hang: (m) => `The engine stopped responding (${m}).`,
  stop: (m) => `The engine did not stop (${m}).`,
  'gpu-lost': (m) => `The GPU device was lost (${m}): the GPU was reset, its driver restarted, or the browser took it back.`,
  'gpu-oom': (m) => `The GPU ran out of memory (${m}): a smaller batch size or max length, LoRA, or the CPU backend needs less.`,
  'gpu-error': (m) => `The GPU reported an error (${m}).`,
};
const GPU_FAULTS = new Set(['gpu-lost', 'gpu-oom', 'gpu-error']);

/** Ends the worker after a fault and offers a restart that can resume the saved run. */
async function engineFault({ kind, message }) {
  if (watch.fault) return;
  watch.fault = { kind, message };
  worker.terminate();
  state.training = false;
  const text = (FAULT_TEXT[kind] ?? FAULT_TEXT.trap)(message);
  const saved = (await readSavedRun().catch(() => null)) ?? (await readSavedRun(DECODER_RUN).catch(() => null));
  const after = saved
    ? ` Your run was saved at step ${saved.progress.step} of ${saved.progress.total_steps}: restart the engine to resume it from there.`
    : ' Nothing was saved to resume (checkpoints are off, or none was written yet): restart the engine to start again.';
  $('fault-text').textContent = text + after;
  $('fault-actions').hidden = false;
  $('fault-restart-cpu').hidden = backendMode === 'cpu';
  $('fault-banner').hidden = false;
  $('fault-banner').scrollIntoView?.({ block: 'nearest' });
  (GPU_FAULTS.has(kind) ? $('fault-restart-cpu') : $('fault-restart')).focus();
  document.querySelectorAll('button').forEach((b) => {
    if (!b.closest('#fault-banner')) b.disabled = true;
  });
}

/** A restart is a reload (a fresh worker and wasm instance), with `recover` saying why. */
function restartEngine(cpu) {
  const url = new URL(location.href);
  url.searchParams.set('recover', watch.fault?.kind ?? 'trap');
  if (cpu) url.searchParams.set('backend', 'cpu');
  location.assign(url.href);
}
$('fault-restart').addEventListener('click', () => restartEngine(false));
$('fault-restart-cpu').addEventListener('click', () => restartEngine(true));

// After a restart: say why it happened (the resume banners offer the saved run).
if (params.get('recover')) {
  const kind = params.get('recover');
  $('fault-text').textContent = `The engine was restarted after a fault (${kind}${params.get('backend') === 'cpu' ? '; it now runs on the CPU' : ''}). If a run was saved, resume it from its last checkpoint below.`;
  $('fault-actions').hidden = true;
  $('fault-banner').hidden = false;
  const url = new URL(location.href);
  url.searchParams.delete('recover');
  history.replaceState(null, '', url.href);
}

setInterval(() => {
  if (watch.fault) return;
  const now = performance.now();
  const silent = (now - watch.lastAlive) / 1000;
  if (silent > WATCHDOG_S) engineFault({ kind: 'hang', message: `no answer for ${Math.round(silent)} s` });
  else if (watch.stopAsked && (now - watch.stopAsked) / 1000 > STOP_GRACE_S) engineFault({ kind: 'stop', message: `Stop was not honoured within ${STOP_GRACE_S} s` });
}, 1000);

/** Storage ran out (a checkpoint at `step`, or the run's files at the start when `step` is
 * null): says what was needed and what is left, and resolves true when the user chooses to train
 * on without checkpoints, false when they choose to stop. */
let quotaAnswer = null;
function askAboutStorage({ needed, free, step }) {
  const mb = (n) => (n == null ? 'an unknown amount' : bytes(n));
  const what = step == null ? 'Keeping this run\'s files for checkpoints' : `The checkpoint at step ${step}`;
  $('quota-text').textContent =
    `${what} needs ${mb(needed)}, and the browser refused to store it: its storage for this page is full (it estimates ${mb(free)} left). ` +
    'Free some space (or allow this site more storage) and start again, or train on without checkpoints: a crash would then lose the run. ' +
    (step == null ? 'Training starts when you choose.' : 'The run is paused until you choose.');
  $('quota-banner').hidden = false;
  $('quota-continue').focus();
  return new Promise((resolve) => (quotaAnswer = resolve));
}
for (const [id, go] of [['quota-continue', true], ['quota-stop', false]]) {
  $(id).addEventListener('click', () => {
    $('quota-banner').hidden = true;
    const answer = quotaAnswer;
    quotaAnswer = null;
    answer?.(go);
  });
}

/** What the browser still grants this origin, in bytes (null when it does not say). */
async function storageFree() {
  const e = await navigator.storage?.estimate?.().catch(() => null);
  return e?.quota != null ? Math.max(0, e.quota - (e.usage ?? 0)) : null;
}

/** Stores a run's description and files for checkpoints (`save`); `true` when it did. When
 * storage is full, asks first: false means train without checkpoints, and the user's "stop"
 * ends the start with a message. */
export async function prepareCheckpoints(save, files, concerns) {
  try {
    await save();
    return true;
  } catch (err) {
    if (err?.name !== 'QuotaExceededError') {
      log(`Could not prepare checkpoints in this browser's storage (${err.message}); training without them.`);
      return false;
    }
    const needed = files.reduce((n, f) => n + (f?.size ?? 0), 0);
    if (!(await askAboutStorage({ needed, free: await storageFree(), step: null }))) {
      failWith(concerns, 'Training was not started: this browser\'s storage for the page is full.');
    }
    log('Training without checkpoints (storage is full).');
    return false;
  }
}

/** A checkpoint did not fit (worker): the run is paused until the user chooses. */
async function storageFull(payload) {
  const go = await askAboutStorage(payload);
  if (!go) await request(payload.concerns === 'lm' ? IN.LM_STOP : IN.STOP);
  await request(IN.CONTINUE_WITHOUT_CHECKPOINTS); // wakes the paused run: it trains on, or sees Stop
  if (go) log('Training goes on without checkpoints.');
}

// Each worker event is shown by the step that owns it: main.js wires them (onEngineEvent). Faults,
// storage questions, log lines and errors are handled here.
const eventHandlers = new Map(); // OUT type -> fn(payload)

/** Shows the worker's `type` events with `fn(payload)`. */
export function onEngineEvent(type, fn) {
  eventHandlers.set(type, fn);
}

function onWorkerEvent({ type, payload }) {
  if (type === OUT.ALIVE) {
    watch.lastAlive = performance.now();
    if (!payload?.busy) watch.stopAsked = 0; // nothing runs: Stop has nothing left to stop
    return;
  }
  if (RUN_ENDED.has(type) || (type === OUT.GEN_TOKENS && payload?.done)) watch.stopAsked = 0;
  try {
    if (type === OUT.FAULT) engineFault(payload);
    else if (type === OUT.QUOTA) storageFull(payload);
    else if (type === OUT.LOG) log(payload.key ? t(payload.key) : payload.message);
    else if (type === OUT.ERROR) showError(payload);
    else eventHandlers.get(type)?.(payload);
    emit('engine-event', type);
  } catch (err) {
    showError(new Error(`Could not show the worker's ${type} message: ${err.message}`), type === OUT.METRICS ? 'results' : 'train');
  }
}
