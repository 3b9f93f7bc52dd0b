// Live charts with Chart.js (www/vendor/chart.umd.min.js, copied there by scripts/setup.sh):
// training loss per step (raw and smoothed), learning rate, evaluation metrics per evaluation,
// and the label distribution. Colours follow the page's CSS variables (light/dark theme).

const Chart = globalThis.Chart;
export const chartsAvailable = typeof Chart === 'function';

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

function palette() {
  return {
    text: css('--fg') || '#222',
    grid: css('--grid') || '#ddd',
    a: css('--series-1') || '#2563eb',
    b: css('--series-2') || '#f59e0b',
    c: css('--series-3') || '#16a34a',
    d: css('--series-4') || '#9333ea',
  };
}

function baseOptions(p, { xTitle = 'step', yTitle = '', yMin, yMax, log = false } = {}) {
  return {
    animation: false,
    parsing: false,
    normalized: true,
    responsive: true,
    maintainAspectRatio: false,
    interaction: { mode: 'nearest', intersect: false },
    plugins: { legend: { labels: { color: p.text, boxWidth: 12 } }, tooltip: { enabled: true } },
    scales: {
      x: { type: 'linear', title: { display: true, text: xTitle, color: p.text }, ticks: { color: p.text }, grid: { color: p.grid } },
      y: {
        type: log ? 'logarithmic' : 'linear',
        min: yMin,
        max: yMax,
        title: { display: Boolean(yTitle), text: yTitle, color: p.text },
        ticks: { color: p.text },
        grid: { color: p.grid },
      },
    },
  };
}

const line = (label, color, extra = {}) => ({ label, data: [], borderColor: color, backgroundColor: color, pointRadius: 0, borderWidth: 1.5, ...extra });

/** The three training charts. `add(reports)` appends step reports; `addEval(step, metrics)`. */
export class TrainingCharts {
  #charts = [];
  #smooth = null; // debiased EMA state
  #n = 0;
  #pending = false;

  constructor({ loss, lr, evaluation }) {
    if (!chartsAvailable) return;
    const p = palette();
    this.loss = new Chart(loss, {
      type: 'line',
      data: { datasets: [line('loss', p.a, { borderWidth: 1, borderColor: `${p.a}66` }), line('smoothed', p.b, { borderWidth: 2 })] },
      options: baseOptions(p, { yTitle: 'loss' }),
    });
    this.lr = new Chart(lr, { type: 'line', data: { datasets: [line('learning rate', p.c)] }, options: baseOptions(p, { yTitle: 'lr' }) });
    const evalOptions = baseOptions(p, { yTitle: 'accuracy / F1', yMin: 0, yMax: 1 });
    evalOptions.scales.y2 = { position: 'right', title: { display: true, text: 'loss', color: p.text }, ticks: { color: p.text }, grid: { drawOnChartArea: false } };
    this.evaluation = new Chart(evaluation, {
      type: 'line',
      data: {
        datasets: [
          line('accuracy', p.a, { pointRadius: 3 }),
          line('macro-F1', p.c, { pointRadius: 3 }),
          line('eval loss', p.d, { pointRadius: 3, yAxisID: 'y2', borderDash: [4, 3] }),
        ],
      },
      options: evalOptions,
    });
    this.#charts = [this.loss, this.lr, this.evaluation];
  }

  reset() {
    this.#smooth = null;
    this.#n = 0;
    for (const c of this.#charts) {
      for (const d of c.data.datasets) d.data = [];
      c.update('none');
    }
  }

  add(reports) {
    if (!this.#charts.length) return;
    for (const r of reports) {
      // TensorBoard-style smoothing: EMA with weight 0.9 from 0, debiased for the first steps.
      this.#n += 1;
      this.#smooth = 0.9 * (this.#smooth ?? 0) + 0.1 * r.loss;
      const smoothed = this.#smooth / (1 - 0.9 ** this.#n);
      this.loss.data.datasets[0].data.push({ x: r.step, y: r.loss });
      this.loss.data.datasets[1].data.push({ x: r.step, y: smoothed });
      this.lr.data.datasets[0].data.push({ x: r.step, y: r.lr });
    }
    this.#schedule();
  }

  addEval(step, m) {
    if (!this.#charts.length) return;
    const [acc, f1, loss] = this.evaluation.data.datasets;
    acc.data.push({ x: step, y: m.accuracy });
    f1.data.push({ x: step, y: m.macro_f1 });
    loss.data.push({ x: step, y: m.loss });
    this.#schedule();
  }

  /** Points drawn so far, per chart (for tests and the page state). */
  counts() {
    if (!this.#charts.length) return null;
    return {
      loss: this.loss.data.datasets[0].data.length,
      smoothed: this.loss.data.datasets[1].data.length,
      lr: this.lr.data.datasets[0].data.length,
      eval: this.evaluation.data.datasets[0].data.length,
    };
  }

  // Redraw at most once per animation frame, however many reports arrive.
  #schedule() {
    if (this.#pending) return;
    this.#pending = true;
    requestAnimationFrame(() => {
      this.#pending = false;
      for (const c of this.#charts) c.update('none');
    });
  }

  restyle() {
    const p = palette();
    for (const c of this.#charts) applyColors(c, p);
  }
}

function applyColors(chart, p) {
  chart.options.plugins.legend.labels.color = p.text;
  for (const scale of Object.values(chart.options.scales)) {
    if (scale.ticks) scale.ticks.color = p.text;
    if (scale.title) scale.title.color = p.text;
    if (scale.grid && scale.grid.drawOnChartArea !== false) scale.grid.color = p.grid;
  }
  chart.update('none');
}

/** A loss per step (raw and smoothed) and on held-out data: masked-LM domain adaptation, and
 *  decoder fine-tuning. */
export class MlmChart {
  #smooth = { value: 0, n: 0 };
  #pending = false;

  constructor(canvas, { label = 'masked-LM loss' } = {}) {
    if (!chartsAvailable) return;
    const p = palette();
    this.chart = new Chart(canvas, {
      type: 'line',
      data: {
        datasets: [
          line(label, p.a, { borderWidth: 1, borderColor: `${p.a}66` }),
          line('smoothed', p.b, { borderWidth: 2 }),
          line('held-out loss', p.d, { pointRadius: 4, borderDash: [4, 3] }),
        ],
      },
      options: baseOptions(p, { yTitle: label }),
    });
  }

  reset() {
    this.#smooth = { value: 0, n: 0 };
    if (!this.chart) return;
    for (const d of this.chart.data.datasets) d.data = [];
    this.chart.update('none');
  }

  /** New step reports and new held-out evaluations ({step, loss}). */
  add(reports, evals) {
    if (!this.chart) return;
    const [raw, smooth, held] = this.chart.data.datasets;
    for (const r of reports) {
      const s = this.#smooth;
      s.n += 1;
      s.value = 0.9 * s.value + 0.1 * r.loss;
      raw.data.push({ x: r.step, y: r.loss });
      smooth.data.push({ x: r.step, y: s.value / (1 - 0.9 ** s.n) });
    }
    for (const e of evals) held.data.push({ x: e.step, y: e.loss });
    if (this.#pending) return;
    this.#pending = true;
    requestAnimationFrame(() => {
      this.#pending = false;
      this.chart.update('none');
    });
  }

  counts() {
    if (!this.chart) return null;
    const [raw, , held] = this.chart.data.datasets;
    return { loss: raw.data.length, heldOut: held.data.length };
  }

  restyle() {
    if (this.chart) applyColors(this.chart, palette());
  }
}

/** Bar chart of label counts (train, and eval when given). */
export class LabelChart {
  constructor(canvas) {
    if (!chartsAvailable) return;
    const p = palette();
    const options = baseOptions(p, { xTitle: '', yTitle: 'examples' });
    options.parsing = true;
    options.scales.x = { type: 'category', ticks: { color: p.text }, grid: { display: false } };
    this.chart = new Chart(canvas, { type: 'bar', data: { labels: [], datasets: [] }, options });
  }

  show(train, evalCounts) {
    if (!this.chart) return;
    const p = palette();
    const labels = train.map((c) => c.label);
    for (const c of evalCounts ?? []) if (!labels.includes(c.label)) labels.push(c.label);
    const pick = (counts) => labels.map((l) => counts.find((c) => c.label === l)?.count ?? 0);
    this.chart.data.labels = labels;
    this.chart.data.datasets = [{ label: 'train', data: pick(train), backgroundColor: p.a }];
    if (evalCounts) this.chart.data.datasets.push({ label: 'eval', data: pick(evalCounts), backgroundColor: p.b });
    this.chart.update('none');
  }

  restyle() {
    if (this.chart) applyColors(this.chart, palette());
  }
}

/** The comparison view: smoothed training loss and evaluation accuracy of two runs. */
export class CompareCharts {
  #smooth = [];
  #pending = false;

  constructor({ loss, evaluation }) {
    if (!chartsAvailable) return;
    const p = palette();
    this.loss = new Chart(loss, { type: 'line', data: { datasets: [] }, options: baseOptions(p, { yTitle: 'training loss (smoothed)' }) });
    this.evaluation = new Chart(evaluation, { type: 'line', data: { datasets: [] }, options: baseOptions(p, { yTitle: 'eval accuracy', yMin: 0, yMax: 1 }) });
  }

  /** One dataset per run, named after its strategy. */
  reset(names) {
    if (!this.loss) return;
    const p = palette();
    const colors = [p.a, p.b, p.c, p.d];
    this.#smooth = names.map(() => ({ value: 0, n: 0 }));
    this.loss.data.datasets = names.map((n, i) => line(n, colors[i % 4], { borderWidth: 2 }));
    this.evaluation.data.datasets = names.map((n, i) => line(n, colors[i % 4], { pointRadius: 3 }));
    this.loss.update('none');
    this.evaluation.update('none');
  }

  /** `reports[i]`: the new step reports of run i. */
  add(reports) {
    if (!this.loss) return;
    reports.forEach((list, i) => {
      const s = this.#smooth[i];
      for (const r of list) {
        s.n += 1;
        s.value = 0.9 * s.value + 0.1 * r.loss;
        this.loss.data.datasets[i].data.push({ x: r.step, y: s.value / (1 - 0.9 ** s.n) });
        if (r.eval) this.evaluation.data.datasets[i].data.push({ x: r.step, y: r.eval.accuracy });
      }
    });
    if (this.#pending) return;
    this.#pending = true;
    requestAnimationFrame(() => {
      this.#pending = false;
      this.loss.update('none');
      this.evaluation.update('none');
    });
  }

  /** An evaluation point of run (or task) `i`, for callers that report losses separately. */
  addEval(i, step, accuracy) {
    if (!this.loss) return;
    this.evaluation.data.datasets[i].data.push({ x: step, y: accuracy });
    this.evaluation.update('none');
  }

  counts() {
    if (!this.loss) return null;
    return { loss: this.loss.data.datasets.map((d) => d.data.length), eval: this.evaluation.data.datasets.map((d) => d.data.length) };
  }

  restyle() {
    const p = palette();
    if (this.loss) for (const c of [this.loss, this.evaluation]) applyColors(c, p);
  }
}
