// Shared page helpers: element lookup, the address's parameters, number and size formats, tables,
// and the log. Nothing here knows a step of the page.

import { t } from '../i18n.js';

export const $ = (id) => document.getElementById(id);
export const params = new URLSearchParams(location.search);
export const radioValue = (name) => document.querySelector(`input[name="${name}"]:checked`).value;
export const loraTargetBoxes = () => [...document.querySelectorAll('input[name="lora-target"]')];

export function log(message) {
  const li = document.createElement('li');
  li.textContent = message;
  $('log').append(li);
}

export const fmt = (x, digits = 4) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '—');
export const sci = (x, digits = 2) => (typeof x === 'number' && Number.isFinite(x) ? x.toExponential(digits) : '—');
export const pct = (x, digits = 1) => (typeof x === 'number' && Number.isFinite(x) ? `${(100 * x).toFixed(digits)}%` : '—');
export function bytes(n) {
  if (!n) return '0 B';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  const i = Math.min(units.length - 1, Math.floor(Math.log10(n) / 3));
  return `${(n / 1000 ** i).toFixed(i ? 1 : 0)} ${units[i]}`;
}
export const millions = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n));
export function duration(s) {
  if (!Number.isFinite(s)) return '—';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** Fills a <table> from a header row and body rows (cells are text, or {th}, or {text, cls}). */
export function fillTable(table, header, rows) {
  const cell = (tag, value) => {
    const el = document.createElement(value?.th !== undefined ? 'th' : tag);
    if (value?.node) el.append(value.node); // a control inside the cell
    else el.textContent = value?.th ?? value?.text ?? value ?? '';
    if (value?.cls) el.className = value.cls;
    if (value?.th !== undefined) el.scope = 'row';
    return el;
  };
  const thead = document.createElement('thead');
  const headRow = thead.insertRow();
  header.forEach((h) => {
    const th = cell('th', h);
    th.scope = 'col';
    headRow.append(th);
  });
  const tbody = document.createElement('tbody');
  for (const row of rows) {
    const tr = tbody.insertRow();
    row.forEach((v) => tr.append(cell('td', v)));
  }
  table.replaceChildren(thead, tbody);
}

export const ms = (x) => `${x < 10 ? x.toFixed(1) : Math.round(x).toLocaleString('en-US')} ms`;
/** At most `n` evenly spaced points of a curve (a record stays small). */
export const thin = (xs, n = 400) => (xs.length <= n ? xs : Array.from({ length: n }, (_, i) => xs[Math.round((i * (xs.length - 1)) / (n - 1))]));
export const when = (iso) => new Date(iso).toLocaleString();

/** A model download's progress callback ({file, loaded, total, cached}, sources.js) drawing on
 * `bar` (a <progress>) and `status` (its line). */
export const downloadProgress = (bar, status) => ({ file, loaded, total, cached }) => {
  bar.hidden = false;
  bar.max = total || loaded || 1;
  bar.value = loaded;
  status.textContent = cached ? t('model.fromCache', { file }) : t('model.fetching', { file, done: bytes(loaded), total: total ? bytes(total) : '?' });
};

export function fillSelect(select, columns, selected, { allowNone = false } = {}) {
  select.replaceChildren(...columns.map((c, i) => new Option(c, c, false, i === selected)));
  if (allowNone) select.append(new Option('(none)', '', false, selected < 0));
}
