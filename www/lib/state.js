// What the page shows, in one object: `window.burnishState` mirrors it for the browser tests.
// Each step (steps/*.js) writes its own fields; main.js wires the steps together.

import { params } from './dom.js';

export const bundledModel = params.get('model') || 'all-MiniLM-L6-v2';
export const BUNDLED_DATA = 'assets/data/sentiment-demo.csv';
export const SAMPLE_DOMAIN = 'assets/data/movie-domain.txt';
export const DATA_EXTENSIONS = ['.csv', '.tsv', '.tab', '.jsonl', '.ndjson', '.json', '.parquet', '.txt', '.text'];

export const state = (window.burnishState = {
  backend: null, // {kind, adapter, note, mode, gpu, measurement} (src/web/backend.rs BackendReport)
  wasmDownload: null, // {loaded, total, wire}: the wasm module's download
  model: null, // loadModel's summary + {source}
  task: null, // the chosen task (views/tasks.js): classify, adapt, chat, continue, compare, multitask
  layerPicture: null, // the recipe's layer picture: [{name, state, lrFactor, start}] top first
  gallery: null, // the model gallery's rows: [{id, parameters, total}] (memory for the form's recipe)
  runs: [], // the remembered runs (runs.js), newest first: {id, model, data, lr, accuracy}
  memory: null, // estimateMemory's answer
  data: null, // inspectData's summary
  evalData: null, // inspectEvalData's summary
  checks: null, // checkData's answer
  summary: null, // startTraining's summary
  recipe: null, // the recipe of the current run
  losses: [], // one number per step, in order
  lrs: [],
  evals: [], // {step, accuracy, macro_f1, loss} from periodic/epoch evaluations
  before: null, // metrics at step 0
  metrics: null, // latest final metrics
  predictions: [],
  prediction: null,
  charts: null, // points drawn per chart
  training: false,
  paused: false,
  done: false,
  exported: null, // {name, files, size}
  errors: [], // {message, concerns, step}
  mixFiles: [], // training files added for data mixing: {name, row_count, columns}
  mixture: null, // mixturePlan's answer (or the run's): [{name, rows, probability, per_epoch, passes}]
  drawn: null, // examples drawn from each training file so far (during a mixed run)
  compare: null, // {summary, losses: number[][], evals: {step, accuracy}[][], results, done, stopped}
  presets: [], // strategyPresets()
  savedRun: null, // {meta, progress} of an unfinished run found in OPFS at load
  checkpoints: [], // steps at which this run's checkpoints were written
  domain: null, // setDomainData's summary of the domain text (masked-LM adaptation)
  adaptation: null, // {summary, losses, history, done, step} of the run's adaptation stage
  adaptedExport: null, // {name, size, files} of the downloaded adapted encoder
  tasks: [], // multi-task: added task files {name, file, row_count, columns}
  multitask: null, // {summary, losses[][], evals[][], drawn, metrics, done, stopped, predictions, exported}
  decoder: null, // the loaded causal LM's summary (+ source)
  lmData: null, // {name, columns, rows} of the decoder's training file
  lmCheckpoints: [], // steps of the decoder run whose checkpoint was written to OPFS
  lmSavedRun: null, // {meta, progress} of an unfinished decoder run found in OPFS at load
  decoderSource: null, // what was loaded: {kind: 'bundled'} or {kind: 'files', files: File[]}
  lmFile: null, // the decoder's training File
  dataOrigin: { train: null, eval: null }, // the Hub URL the training / evaluation file came from (else null: a file from disk)
  trainingScript: null,
  int8: null, // the last int8 export's report {f32_bytes, int8_bytes, f32, int8, accuracy_change}
  exportedApp: null, // {name, size, files}: the last web app exported // {name, size, model, trainFiles, evalFile}: the last training script exported
  hubDataset: null, // {id, files: [{path, source, size}], more, used?: {path, role}}: the Hub dataset listed in the data step
  lmMemory: null, // estimateDecoderMemory's answer {total, trainable, largest_tensor, warnings, …}
  lm: null, // {summary, losses, history, done, stopped, before: {prompt: text}, after: {prompt: text}, exported}
  generation: null, // {id, prompt, text, tokens, done, stopped, tokens_per_s, tuned}
});
// The data files as chosen (null: the bundled sample), kept to store them with a saved run.
export const sourceFiles = { main: null, extras: [], eval: null };
