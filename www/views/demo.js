// Class demo mode (?demo=sentiment): one link that opens the classification task on the
// bundled model and sample data, with a recipe that shows a rising accuracy within a couple of
// minutes on a laptop's CPU, large type for a projector, the steps of fine-tuning ticked off as
// they happen, and the objectives written out beside the live curves.

import { t } from '../i18n.js';
import { $, params, pct } from '../lib/dom.js';

/** The demos: the recipe fields each one sets (ids of the recipe form). */
export const DEMOS = Object.freeze({
  sentiment: {
    // 384 training reviews, 96 held out; 48 steps of 8 at 48 tokens, scored every 6 steps.
    fields: { epochs: '1', lr: '4e-4', 'batch-size': '8', 'max-len': '48', 'eval-every': '6', 'eval-fraction': '0.2', 'warmup-ratio': '0.1', 'checkpoint-every': '0', seed: '42' },
    strategy: 'full',
  },
});


/** Which demo the address asks for: null (none), a name, or an error message. */
export function demoWanted() {
  const name = params.get('demo');
  if (name === null) return null;
  return DEMOS[name] ? { name } : { error: `There is no demo called "${name}": the demos are ${Object.keys(DEMOS).join(', ')}.` };
}

/**
 * Turns the page into the demo: `page` gives what main.js owns: {state, showTask, onChange,
 * loadModel, start, setStrategy}; `onChange(fn)` calls fn whenever the page's state changes (a
 * file or model loaded, each engine event). Returns once the model is loading.
 */
export function startDemo(name, page) {
  const demo = DEMOS[name];
  document.body.classList.add('demo');
  $('demo-panel').hidden = false;
  page.showTask('classify');
  for (const [id, value] of Object.entries(demo.fields)) $(id).value = value;
  page.setStrategy(demo.strategy);
  $('mlm-epochs').value = '0'; // no domain-adaptation stage in the demo
  const steps = [...document.querySelectorAll('#demo-steps li')];
  const render = () => {
    const s = page.state;
    const done = {
      data: Boolean(s.data && s.checks),
      model: Boolean(s.model),
      objective: s.losses.length > 0,
      train: s.done && !s.training,
      evaluate: Boolean(s.done && s.metrics),
    };
    let current = null;
    for (const li of steps) {
      const isDone = done[li.dataset.step];
      li.classList.toggle('done', isDone);
      li.classList.toggle('current', !isDone && current === null);
      if (!isDone && current === null) current = li.dataset.step;
    }
    const before = s.before?.accuracy;
    const last = s.evals.length ? s.evals[s.evals.length - 1] : null;
    const now = s.done && s.metrics ? s.metrics.accuracy : last?.accuracy;
    $('demo-score').textContent = Number.isFinite(before)
      ? t('demo.score', { before: pct(before, 0), now: pct(now, 0), step: s.done ? s.losses.length : last?.step ?? 0 })
      : '';
    $('demo-start').disabled = s.training || !s.data;
    $('demo-start').textContent = s.done ? t('demo.again') : t('demo.start');
  };
  page.onChange(render);
  render();
  $('demo-start').addEventListener('click', async () => {
    $('demo-start').disabled = true;
    $('train-section').scrollIntoView?.({ block: 'start', behavior: 'smooth' });
    try {
      await page.start();
    } finally {
      render();
    }
  });
  $('demo-exit').addEventListener('click', () => {
    const url = new URL(location.href);
    url.searchParams.delete('demo');
    location.assign(url.href);
  });
  // The model loads right away, so that the first click trains.
  page.loadModel().catch(() => {});
}
