// What every step that takes a data file shares: the file types it accepts and a guess at its
// text and label columns.

import { DATA_EXTENSIONS } from './state.js';
import { failCoded } from './errors.js';

/** Picks the likely text and label columns: exact names first, then look-alikes, then first/last. */
export function guessColumns(columns) {
  const lower = columns.map((c) => c.toLowerCase());
  const find = (names) => {
    for (const n of names) if (lower.includes(n)) return lower.indexOf(n);
    for (const n of names) {
      const i = lower.findIndex((c) => c.includes(n));
      if (i >= 0) return i;
    }
    return -1;
  };
  let text = find(['text', 'sentence', 'review', 'content', 'document', 'comment', 'body', 'message']);
  let label = find(['label', 'category', 'class', 'sentiment', 'target', 'topic', 'tag']);
  if (text < 0) text = 0;
  if (label < 0 || label === text) {
    label = -1;
    for (let i = columns.length - 1; i >= 0; i--) {
      if (i !== text) {
        label = i;
        break;
      }
    }
  }
  return { text, label };
}

/** Refuses an empty file by name, next to the step it concerns. */
export function checkNotEmpty(file, concerns) {
  if (file.size === 0) failCoded(concerns, 'data.empty-file', { name: file.name }, `${file.name}: the file is empty`);
}

export function checkExtension(name, concerns) {
  const lower = name.toLowerCase();
  if (!DATA_EXTENSIONS.some((e) => lower.endsWith(e))) {
    failCoded(concerns, 'page.unsupported-file', { name }, `${name}: unsupported file type. Use CSV (.csv), TSV (.tsv), JSON Lines (.jsonl) or plain text (.txt).`);
  }
}
