// The exported classifier's page: the model runs in app-worker.js (the engine, off this thread);
// this file only sends texts and draws the labels' probabilities.

const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL('./app-worker.js', import.meta.url), { type: 'module' });
let next = 0;
const waiting = new Map();
worker.addEventListener('message', ({ data }) => {
  const p = waiting.get(data.id);
  waiting.delete(data.id);
  if (data.error) p?.reject(new Error(data.error));
  else p?.resolve(data.ok);
});
worker.addEventListener('error', (e) => {
  e.preventDefault();
  for (const p of waiting.values()) p.reject(new Error(`the engine did not start (${e.message || 'pkg/burnish.js did not load'})`));
  waiting.clear();
});
const ask = (type, payload = {}) => new Promise((resolve, reject) => {
  const id = ++next;
  waiting.set(id, { resolve, reject });
  worker.postMessage({ id, type, ...payload });
});

function showError(err) {
  $('error').textContent = err.message;
  $('error').hidden = false;
  $('status').textContent = '';
}

/** State for tests and for anyone embedding the page: {ready, labels, prediction, error}. */
window.appState = { ready: false, labels: [], prediction: null, error: null };

async function start() {
  const { labels, app, backend } = await ask('load');
  document.title = app.title;
  $('title').textContent = app.title;
  $('about').textContent = `Labels: ${labels.join(', ')}. Model: ${app.model}.`;
  $('status').textContent = `Ready (${backend}).`;
  $('classify').disabled = false;
  Object.assign(window.appState, { ready: true, labels });
}

$('classify').addEventListener('click', async () => {
  $('error').hidden = true;
  const text = $('text').value;
  if (!text.trim()) return showError(new Error('Type a text first.'));
  $('classify').disabled = true;
  try {
    const [p] = await ask('classify', { texts: [text] });
    window.appState.prediction = p;
    const rows = p.probabilities.map((prob, i) => {
      const row = document.createElement('div');
      row.className = 'bar';
      const bar = document.createElement('span');
      bar.style.width = `${(100 * prob).toFixed(1)}%`;
      row.append(Object.assign(document.createElement('span'), { textContent: window.appState.labels[i] }), bar,
        Object.assign(document.createElement('span'), { textContent: `${(100 * prob).toFixed(1)}%` }));
      return row;
    });
    $('result').replaceChildren(Object.assign(document.createElement('p'), { textContent: `Predicted: ${p.label}` }), ...rows);
  } catch (err) {
    window.appState.error = err.message;
    showError(err);
  } finally {
    $('classify').disabled = false;
  }
});

start().catch((err) => {
  window.appState.error = err.message;
  showError(err);
});
