// The run always in view: a fixed panel with progress, the loss and held-out sparklines, ETA,
// Pause and Stop while any run trains (a classifier, a domain adaptation, a decoder, a strategy
// comparison or a multi-task run), wherever the page is scrolled.

import { t } from '../i18n.js';
import { $, duration, fmt, thin } from '../lib/dom.js';

/** Per kind of run: its Stop button, its section, and whether it can pause. */
const RUNS = {
  classifier: { stop: 'stop', section: '#train-section', pause: true },
  lm: { stop: 'lm-stop', section: '#lm-train-section', pause: false },
  compare: { stop: 'compare-stop', section: '#compare-section', pause: false },
  multitask: { stop: 'multitask-stop', section: '#multitask-section', pause: false },
};

let panelRun = null;

/** Shows the panel for a run of `kind` (a key of RUNS), or hides it (null). */
export function showRunPanel(kind) {
  panelRun = kind;
  const run = RUNS[kind];
  $('run-panel').hidden = !run;
  $('run-panel-pause').hidden = !run?.pause;
  $('run-panel-pause').disabled = !run;
  $('run-panel-stop').disabled = !run;
  if (run) $('run-panel-link').href = run.section;
}

/** Which run the panel follows now. */
export const panelKind = () => panelRun;

const points = (values, lo, hi) => values.map((v, i) => `${((120 * i) / Math.max(1, values.length - 1)).toFixed(1)},${(22 - (20 * (v - lo)) / Math.max(1e-9, hi - lo)).toFixed(1)}`).join(' ');

/**
 * The panel's bar, line and sparklines: `step` of `total`, what to say after the step (`text`),
 * the loss so far, an ETA in seconds (NaN: none), and held-out scores in [0, 1] where higher is
 * better (accuracy; none for runs scored by perplexity).
 */
export function updateRunPanel({ step, total, text = '', losses = [], eta = NaN, scores = [] }) {
  $('run-panel-bar').max = total;
  $('run-panel-bar').value = step;
  $('run-panel-text').textContent = `${t('runPanel.step')} ${step}/${total}${text ? ` · ${text}` : ''}${Number.isFinite(eta) ? ` · ETA ${duration(eta)}` : ''}`;
  const curve = thin(losses.filter(Number.isFinite), 120);
  $('run-panel-loss').setAttribute('points', points(curve, Math.min(...curve), Math.max(...curve)));
  // Scores on the same width, 0–1 upwards.
  $('run-panel-eval').setAttribute('points', points(scores.filter(Number.isFinite).map((a) => 1 - a), 0, 1));
}

/** "loss 0.123", the panel's usual words for the last loss. */
export const lossText = (loss) => `loss ${fmt(loss, 3)}`;

$('run-panel-pause').addEventListener('click', () => $('pause').click());
$('run-panel-stop').addEventListener('click', () => $(RUNS[panelRun]?.stop ?? 'stop').click());
