// Times Transformers.js forward passes of BertForSequenceClassification (MiniLM) on a fixed
// [batch, len] batch of seeded random token ids, like `ForwardProbe` in src/bench.rs: one
// warm-up pass, then `passes` timed ones, logits read back each time. Parameters come from the
// query string: batch, len, passes, threads, device (wasm | webgpu).
import { AutoModelForSequenceClassification, Tensor, env } from './transformers.min.js';

const q = new URLSearchParams(location.search);
const batch = Number(q.get('batch') ?? 16);
const len = Number(q.get('len') ?? 64);
const passes = Number(q.get('passes') ?? 5);
const threads = Number(q.get('threads') ?? 1);
const device = q.get('device') ?? 'wasm';

env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = new URL('./models/', location.href).href;
env.backends.onnx.wasm.wasmPaths = new URL('./ort/', location.href).href;
env.backends.onnx.wasm.numThreads = threads;

function rows(vocab) {
  // The same generator shape as random_rows in src/bench.rs (ids from 1000 up), seeded.
  let s = 12345;
  const next = () => ((s = (s * 1103515245 + 12345) % 2147483648), s);
  const ids = new BigInt64Array(batch * len);
  for (let i = 0; i < ids.length; i++) ids[i] = BigInt(1000 + (next() % (vocab - 1000)));
  return ids;
}

try {
  const t0 = performance.now();
  const model = await AutoModelForSequenceClassification.from_pretrained('minilm', { dtype: 'fp32', device });
  const loadMs = performance.now() - t0;
  const ids = rows(model.config.vocab_size);
  const feeds = () => ({
    input_ids: new Tensor('int64', ids, [batch, len]),
    attention_mask: new Tensor('int64', new BigInt64Array(batch * len).fill(1n), [batch, len]),
    token_type_ids: new Tensor('int64', new BigInt64Array(batch * len), [batch, len]),
  });
  const times = [];
  for (let i = 0; i < passes + 1; i++) {
    const t = performance.now();
    const out = await model(feeds());
    out.logits.data; // on the host
    if (i > 0) times.push((performance.now() - t) / 1000);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  window.benchResult = {
    framework: 'transformers.js', version: env.version, device, threads, batch_size: batch, max_len: len,
    load_ms: loadMs, median_pass_s: median, samples_per_s: batch / median, pass_seconds: times,
    cross_origin_isolated: self.crossOriginIsolated,
  };
} catch (err) {
  window.benchResult = { error: String(err?.stack ?? err) };
}
document.getElementById('status').textContent = JSON.stringify(window.benchResult);
