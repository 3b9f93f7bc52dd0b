// The message protocol between the page (main.js) and the wasm worker (worker.js):
// message type names, which part of the page each request concerns (for error display),
// and BurnishClient, a promise-per-request wrapper around the worker.

/** Requests the page sends: `{id, type, payload}`; each is answered by one `result` or `error`. */
export const IN = Object.freeze({
  INIT: 'init',
  LOAD_MODEL: 'loadModel',
  INSPECT_DATA: 'inspectData',
  INSPECT_EVAL_DATA: 'inspectEvalData',
  CLEAR_EVAL_DATA: 'clearEvalData',
  ADD_TRAIN_SOURCE: 'addTrainSource',
  REMOVE_TRAIN_SOURCE: 'removeTrainSource',
  MIXTURE_PLAN: 'mixturePlan',
  CHECK_DATA: 'checkData',
  ESTIMATE_MEMORY: 'estimateMemory',
  ESTIMATE_MEMORY_FOR_CONFIG: 'estimateMemoryForConfig',
  TRAIN: 'train',
  EVALUATE_ONLY: 'evaluateOnly',
  PAUSE: 'pause',
  RESUME: 'resume',
  STOP: 'stop',
  EVALUATE: 'evaluate',
  PREDICT: 'predict',
  EXPORT: 'export',
  TRAINING_SCRIPT: 'trainingScript',
  EXPORT_INT8: 'exportInt8',
  RESUME_RUN: 'resumeRun',
  PRESETS: 'presets',
  COMPARE: 'compare',
  COMPARE_STOP: 'compareStop',
  SET_DOMAIN_DATA: 'setDomainData',
  CLEAR_DOMAIN_DATA: 'clearDomainData',
  EXPORT_ADAPTED: 'exportAdapted',
  FILL_MASK: 'fillMask',
  ADD_TASK: 'addTask',
  REMOVE_TASK: 'removeTask',
  MULTITASK: 'multitask',
  MULTITASK_STOP: 'multitaskStop',
  MULTITASK_PREDICT: 'multitaskPredict',
  MULTITASK_EXPORT: 'multitaskExport',
  DECODER_LOAD: 'decoderLoad',
  LM_DATA: 'lmData',
  LM_TRAIN: 'lmTrain',
  LM_STOP: 'lmStop',
  LM_EXPORT: 'lmExport',
  LM_EXPORT_GGUF: 'lmExportGguf',
  LM_MEMORY: 'lmMemory',
  DECODER_MEMORY_FOR_CONFIG: 'decoderMemoryForConfig', // {config, batchSize, maxLen, recipe}: the decoder gallery's estimate
  LM_METRICS: 'lmMetrics',
  LM_RESUME: 'lmResume',
  GENERATE: 'generate',
  GENERATE_STOP: 'generateStop',
  BENCH: 'bench',
  CONTINUE_WITHOUT_CHECKPOINTS: 'continueWithoutCheckpoints',
  FAULT_DRILL: 'faultDrill',
});

/** Messages the worker sends: `result`/`error` carry the request id; the rest are events. */
export const OUT = Object.freeze({
  PROGRESS: 'progress', // {reports: StepReport[]}
  METRICS: 'metrics', // {metrics, predictions, phase: 'before'|'after', step, stopped}
  LOG: 'log', // {message}
  DONE: 'done', // {stopped, step, ok}
  ERROR: 'error', // {message, concerns, step, code?, kind?, args?, detail?} (an engine error's code: src/error.rs)
  RESULT: 'result', // the request's return value
  CHECKPOINT: 'checkpoint', // {step}: a checkpoint of the run was written to OPFS
  COMPARE_PROGRESS: 'compareProgress', // {reports: StepReport[][]} (one list per compared run)
  COMPARE_DONE: 'compareDone', // {ok, stopped, results}
  MLM_PROGRESS: 'mlmProgress', // {reports: MlmReport[], history: MlmEval[]} (domain adaptation)
  STAGE: 'stage', // {summary}: the adaptation ended and the classifier stage started
  MT_PROGRESS: 'mtProgress', // {reports: TaskReport[]} (multi-task run)
  MT_DONE: 'mtDone', // {ok, stopped, metrics: Metrics[] | null}
  LM_PROGRESS: 'lmProgress', // {reports: LmReport[], history: LmEval[]} (decoder fine-tuning)
  LM_DONE: 'lmDone', // {ok, stopped}
  LM_CHECKPOINT: 'lmCheckpoint', // {step, bytes}: a checkpoint of the decoder run was written to OPFS
  GEN_TOKENS: 'genTokens', // {id, text, tokens, done, stopped, tokens_per_s}
  WASM_PROGRESS: 'wasmProgress', // {loaded, total, wire}: bytes of the wasm module downloaded so far
  BACKEND: 'backend', // the backend report after a measurement ({measuring: true} while it runs)
  ALIVE: 'alive', // {busy}, every second: the page's watchdog (main.js)
  FAULT: 'fault', // {kind: 'trap'|'gpu-lost'|'gpu-oom'|'gpu-error', message}: the page restarts the worker
  QUOTA: 'quota', // {needed, free, step, concerns}: a checkpoint did not fit; the run is paused
});

/** The page section an error from each request belongs next to. */
export const CONCERNS = Object.freeze({
  [IN.INIT]: 'backend',
  [IN.LOAD_MODEL]: 'model',
  [IN.DECODER_LOAD]: 'decoder',
  [IN.LM_DATA]: 'lm',
  [IN.LM_TRAIN]: 'lm',
  [IN.LM_STOP]: 'lm',
  [IN.LM_EXPORT]: 'lm',
  [IN.LM_EXPORT_GGUF]: 'lm',
  [IN.LM_MEMORY]: 'lm',
  [IN.DECODER_MEMORY_FOR_CONFIG]: 'decoder',
  [IN.LM_METRICS]: 'lm',
  [IN.LM_RESUME]: 'lm',
  [IN.GENERATE]: 'generate',
  [IN.GENERATE_STOP]: 'generate',
  [IN.INSPECT_DATA]: 'data',
  [IN.INSPECT_EVAL_DATA]: 'data',
  [IN.CLEAR_EVAL_DATA]: 'data',
  [IN.ADD_TRAIN_SOURCE]: 'mix',
  [IN.REMOVE_TRAIN_SOURCE]: 'mix',
  [IN.MIXTURE_PLAN]: 'mix',
  [IN.CHECK_DATA]: 'data',
  [IN.ESTIMATE_MEMORY]: 'model',
  [IN.ESTIMATE_MEMORY_FOR_CONFIG]: 'model',
  [IN.TRAIN]: 'train',
  [IN.EVALUATE_ONLY]: 'train',
  [IN.PAUSE]: 'train',
  [IN.RESUME]: 'train',
  [IN.STOP]: 'train',
  [IN.EVALUATE]: 'results',
  [IN.PREDICT]: 'try',
  [IN.EXPORT]: 'export',
  [IN.TRAINING_SCRIPT]: 'export',
  [IN.EXPORT_INT8]: 'export',
  [IN.RESUME_RUN]: 'train',
  [IN.PRESETS]: 'compare',
  [IN.COMPARE]: 'compare',
  [IN.COMPARE_STOP]: 'compare',
  [IN.SET_DOMAIN_DATA]: 'domain',
  [IN.CLEAR_DOMAIN_DATA]: 'domain',
  [IN.EXPORT_ADAPTED]: 'domain',
  [IN.FILL_MASK]: 'domain',
  [IN.ADD_TASK]: 'multitask',
  [IN.REMOVE_TASK]: 'multitask',
  [IN.MULTITASK]: 'multitask',
  [IN.MULTITASK_STOP]: 'multitask',
  [IN.MULTITASK_PREDICT]: 'multitask',
  [IN.MULTITASK_EXPORT]: 'multitask',
  [IN.BENCH]: 'train',
  [IN.CONTINUE_WITHOUT_CHECKPOINTS]: 'train',
  [IN.FAULT_DRILL]: 'backend',
});

/** An error reported by the worker; `concerns` names the page section, `step` the training step. */
export class BurnishError extends Error {
  constructor({ message, concerns = null, step = null, code = null, kind = null, args = null, detail = null }) {
    super(message);
    this.name = 'BurnishError';
    this.concerns = concerns;
    this.step = step;
    // An engine error's code and the values it names (src/error.rs): the page translates from them.
    this.code = code;
    this.kind = kind;
    this.args = args;
    this.detail = detail;
  }
}

/** Promise-based client: `await client.request(IN.PREDICT, {text})`; events go to `onEvent(msg)`. */
export class BurnishClient {
  #worker;
  #onEvent;
  #nextId = 1;
  #pending = new Map(); // id -> {resolve, reject, type}

  constructor(worker, onEvent) {
    this.#worker = worker;
    this.#onEvent = onEvent;
    worker.addEventListener('message', (event) => this.#receive(event.data));
    // The worker script itself failed (did not load, or threw outside a handler).
    worker.addEventListener('error', (event) => {
      event.preventDefault();
      this.#failAll(`The worker failed: ${event.message || 'its script could not be loaded'}.`);
    });
    worker.addEventListener('messageerror', () => this.#failAll('A worker message could not be decoded.'));
  }

  /** Sends one request; resolves with its result or rejects with a BurnishError. */
  request(type, payload = {}, transfer = []) {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, type });
      try {
        this.#worker.postMessage({ id, type, payload }, transfer);
      } catch (err) {
        this.#pending.delete(id);
        reject(new BurnishError({ message: err.message, concerns: CONCERNS[type] }));
      }
    });
  }

  #receive(msg) {
    const waiting = msg.id != null ? this.#pending.get(msg.id) : undefined;
    if (!waiting) {
      this.#onEvent(msg);
      return;
    }
    this.#pending.delete(msg.id);
    if (msg.type === OUT.ERROR) waiting.reject(new BurnishError(msg.payload));
    else waiting.resolve(msg.payload);
  }

  // Rejects every pending request; with none pending, reports the failure as an event.
  #failAll(message) {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const { reject, type } of pending) reject(new BurnishError({ message, concerns: CONCERNS[type] }));
    if (!pending.length) this.#onEvent({ type: OUT.ERROR, payload: { message, concerns: 'backend', step: null } });
  }
}
