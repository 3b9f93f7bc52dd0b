// Which backend trains (WebGPU or the CPU), why, and the engine's download: the first thing the
// page starts. `backendReady` resolves with the engine's init answer (its recipe schema too).

import { IN } from '../protocol.js';
import { $, bytes, ms, params } from '../lib/dom.js';
import { backendMode, request } from '../lib/engine.js';
import { showError } from '../lib/errors.js';
import { state } from '../lib/state.js';

$('backend-choice').value = backendMode;
$('backend-choice').addEventListener('change', () => {
  const url = new URL(location.href);
  const v = $('backend-choice').value;
  if (v === 'auto') url.searchParams.delete('backend');
  else url.searchParams.set('backend', v);
  $('backend-reload').href = url.href;
  $('backend-note').hidden = v === backendMode;
});


/** The backend line: what runs, and why (forced, no adapter, or the measured figures). */
export function showBackend(info) {
  state.backend = info;
  const gpuName = info.gpu ? `WebGPU (${info.gpu.adapter})` : 'WebGPU';
  const m = info.measurement;
  let why;
  if (info.measuring) why = `timing the loaded model on the CPU and on ${gpuName}…`;
  else if (m) {
    const gpu = m.gpu_ms != null ? ms(m.gpu_ms) : `did not finish within ${ms(m.gpu_limit_ms)}`;
    why = `measured faster on the loaded model (${m.what}): CPU ${ms(m.cpu_ms)}, ${gpuName} ${gpu}`; // the backend in use is the faster one
  } else if (info.mode === 'cpu') why = 'chosen in the menu below';
  else if (info.gpu?.software) why = `the WebGPU adapter (${info.gpu.adapter}) is a software emulation of a GPU; the loaded model is timed on both before a run`;
  else if (!info.gpu) why = (info.threads ?? 1) > 1 && info.threadsNote ? info.threadsNote : info.note ? 'no WebGPU adapter in this browser' : info.adapter ?? '';
  // How many threads the CPU trains on (worker.js: the threaded module when the page is
  // cross-origin isolated), and why only one when so.
  const threads = info.threads ?? 1;
  if (info.kind === 'cpu' && threads === 1 && info.threadsNote && why !== info.threadsNote) why = `${why}; ${info.threadsNote}`;
  const text =
    info.kind === 'webgpu'
      ? `Backend: WebGPU — ${info.adapter}${info.mode === 'webgpu' ? ' (chosen in the menu below)' : m ? `, ${why}` : ''}`
      : `Backend: CPU (WebAssembly, ${threads} thread${threads === 1 ? '' : 's'}) — ${why ?? info.adapter ?? ''}`;
  $('backend').textContent = info.measuring && info.kind === 'webgpu' ? `${text} (${why})` : text;
  $('backend').title = info.note ?? info.gpu?.note ?? ''; // the full reason, on hover
  $('backend').dataset.kind = info.kind;
}

/** The wasm module's download (first visit; later ones come from the HTTP cache). */
export function showWasmProgress({ loaded, total, wire }) {
  state.wasmDownload = { loaded, total, wire };
  const bar = $('engine-progress');
  bar.hidden = loaded >= total;
  bar.max = total || 1;
  bar.value = loaded;
  $('engine-status').textContent =
    loaded >= total ? '' : `Downloading the training engine (WebAssembly, ${bytes(wire)} compressed): ${Math.floor((100 * loaded) / (total || 1))} %`;
}

// ?threads=N sets the CPU's thread count (1: the single-threaded module); default: every core.
const threadsWanted = Math.max(0, Math.min(16, Number.parseInt(params.get('threads') ?? '0', 10) || 0));
export const backendReady = request(IN.INIT, { mode: backendMode, threads: threadsWanted }).then((info) => {
  showBackend(info);
  return info;
});
backendReady.catch((err) => {
  $('backend').textContent = 'Backend: not available';
  showError(err, 'backend');
});
