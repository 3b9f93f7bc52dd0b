// Task first: the page opens on a short choice of what to do, and each choice shows the same
// steps (data → model → recipe → train → evaluate → export) with the sections that fit it.
// Everything a task does not use is folded away with the `off-task` class (display: none), so a
// section's own `hidden` (results before a run, say) keeps its meaning. The choice lives in the
// address (?task=…) so that a reload, a bookmark or a shared link opens on it.

import { t } from '../i18n.js';
import { $, params } from '../lib/dom.js';

/** Each task's steps in order: [step key, section id]. Sections without `data-tasks` (the
 * earlier runs) show for every task. */
export const TASKS = Object.freeze({
  classify: [['data', 'data-section'], ['model', 'model-section'], ['recipe', 'recipe-section'], ['train', 'train-section'], ['evaluate', 'results'], ['export', 'export-section']],
  adapt: [['model', 'model-section'], ['data', 'domain-section'], ['recipe', 'recipe-section'], ['train', 'train-section']],
  chat: [['model', 'decoder-model-section'], ['data', 'lm-data-section'], ['recipe', 'lm-recipe-section'], ['train', 'lm-train-section'], ['evaluate', 'lm-results-section'], ['export', 'lm-export-section']],
  continue: [['model', 'decoder-model-section'], ['data', 'lm-data-section'], ['recipe', 'lm-recipe-section'], ['train', 'lm-train-section'], ['evaluate', 'lm-results-section'], ['export', 'lm-export-section']],
  compare: [['data', 'data-section'], ['model', 'model-section'], ['recipe', 'recipe-section'], ['train', 'compare-section']],
  multitask: [['data', 'data-section'], ['model', 'model-section'], ['recipe', 'recipe-section'], ['train', 'multitask-section']],
});

let current = null;
let onChange = () => {};

export const currentTask = () => current;

/** Shows `task`'s sections and steps (null: only the choice). `remember` writes it to the address. */
export function showTask(task, { remember = true } = {}) {
  current = TASKS[task] ? task : null;
  document.body.dataset.task = current ?? '';
  for (const el of document.querySelectorAll('[data-tasks]')) {
    el.classList.toggle('off-task', !current || !el.dataset.tasks.split(' ').includes(current));
  }
  for (const card of document.querySelectorAll('#task-picker [data-task]')) {
    card.setAttribute('aria-pressed', String(card.dataset.task === current));
  }
  renderSteps();
  if (remember) {
    const url = new URL(location.href);
    if (current) url.searchParams.set('task', current);
    else url.searchParams.delete('task');
    history.replaceState(history.state, '', url);
  }
  onChange(current);
}

/** The step list and the section numbers follow the task's order. */
export function renderSteps() {
  const steps = current ? TASKS[current] : [];
  const list = $('steps-list');
  list.replaceChildren(...steps.map(([key, id]) => {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = `#${id}`;
    a.id = `step-${key}`;
    a.textContent = t(`step.${key}`);
    li.append(a);
    return li;
  }));
  $('steps').hidden = !current;
  let n = 0;
  const numbered = new Set(steps.map(([, id]) => id));
  for (const h of document.querySelectorAll('.card h2 .num')) {
    const section = h.closest('.card');
    h.textContent = numbered.has(section.id) ? String(++n) : '';
    h.hidden = !numbered.has(section.id);
  }
}

/** Wires the picker; `changed(task)` runs after every choice (the page sets task defaults). */
export function initTasks(changed) {
  onChange = changed;
  for (const card of document.querySelectorAll('#task-picker [data-task]')) {
    card.addEventListener('click', () => {
      showTask(card.dataset.task);
      const [, first] = TASKS[card.dataset.task][0];
      $(first).scrollIntoView({ block: 'start', behavior: 'smooth' });
    });
  }
  const wanted = params.get('task');
  showTask(TASKS[wanted] ? wanted : null, { remember: false });
}
