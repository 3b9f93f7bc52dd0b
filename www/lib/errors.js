// Errors, shown next to the step they concern (`concerns`), in the page's language (an engine
// error by its code: i18n.js errorText). Nothing a handler throws reaches the console.

import { errorText, t } from '../i18n.js';
import { $ } from './dom.js';
import { state } from './state.js';

const SECTION_ERROR = {
  backend: 'backend-error', model: 'model-error', data: 'data-error', columns: 'columns-error', eval: 'eval-error',
  decoder: 'decoder-error', generate: 'generate-error', lm: 'lm-error', runs: 'runs-error',
  recipe: 'recipe-error', mix: 'mix-error', domain: 'domain-error', multitask: 'multitask-error', compare: 'compare-error', train: 'train-error', results: 'results-error', try: 'try-error', export: 'export-error',
};

const shownErrors = new Map(); // element -> the error it shows (said again when the language changes)

export function showError(err, concerns = err?.concerns) {
  const message = errorText(err);
  const step = err?.step ?? null;
  state.errors.push({ message, concerns: concerns ?? null, step, code: err?.code ?? null });
  const near = $(SECTION_ERROR[concerns]) ?? (concerns?.startsWith?.('field:') ? fieldError(concerns.slice(6)) : null);
  const el = near ?? $('error');
  el.textContent = message;
  el.hidden = false;
  shownErrors.set(el, err);
  if (near) {
    $('error').hidden = true;
    near.scrollIntoView?.({ block: 'nearest' });
  }
}

/** Says the errors on show again in the language just chosen. */
export function retranslateErrors() {
  for (const [el, err] of shownErrors) {
    if (el.hidden || !el.isConnected) shownErrors.delete(el);
    else el.textContent = errorText(err);
  }
}

export function clearErrors(...concerns) {
  for (const c of concerns) {
    const el = $(SECTION_ERROR[c]);
    if (el) el.hidden = true;
  }
  $('error').hidden = true;
}

export const failWith = (concerns, message) => {
  throw Object.assign(new Error(message), { concerns });
};

/** Like failWith, for a message the page says in the user's language from `code` and the values
 * it names (i18n.js ZH_ERRORS, as for the engine's coded errors); `message` is the English text. */
export const failCoded = (concerns, code, args, message) => {
  throw Object.assign(new Error(message), { concerns, code, kind: code.split('.')[0], args });
};

/** Like failWith, with the message from the catalogue (`t(key, vars)`), said again in the other
 * language when the user switches. */
export const failSaying = (concerns, key, vars) => {
  throw Object.assign(new Error(t(key, vars)), { concerns, say: () => t(key, vars) });
};

/** Wraps an event handler so that nothing it throws escapes to the console. */
export const guarded = (concerns, fn) => async (event) => {
  try {
    await fn(event);
  } catch (err) {
    showError(err, err?.concerns ?? concerns);
  }
};

/** Runs `fn`, tagging any error it throws with the section it concerns. */
export async function concerning(concerns, fn) {
  try {
    return await fn();
  } catch (err) {
    if (err && typeof err === 'object' && !err.concerns) err.concerns = concerns;
    throw err;
  }
}

window.addEventListener('unhandledrejection', (event) => {
  event.preventDefault();
  showError(event.reason);
});

/** The message element under a form field (made on first use). */
export function fieldError(id) {
  let el = $(`err-${id}`);
  if (!el) {
    el = document.createElement('p');
    el.id = `err-${id}`;
    el.className = 'error field-error';
    el.setAttribute('role', 'alert');
    const help = $(`help-${id}`) ?? $(id);
    help.after(el);
  }
  return el;
}
