// The model gallery: a short list of small Hub encoders of the architecture Burnish trains (BERT),
// with their languages, size, and the memory the chosen recipe would need, worked out by the
// engine from each model's config.json (estimateMemoryForConfig) before anything is downloaded.
// "Use" fills in the Hugging Face id; the download happens on Load, as for any id.

import { t } from '../i18n.js';
import { $, bytes, millions } from '../lib/dom.js';

const bert = (c) => ({
  model_type: 'bert', architectures: ['BertModel'], hidden_act: 'gelu', hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1,
  initializer_range: 0.02, layer_norm_eps: 1e-12, max_position_embeddings: 512, type_vocab_size: 2, pad_token_id: 0, ...c,
});

/**
 * `config` holds the fields of the model's config.json that size it (as published on the Hub).
 * `checked`: where this model was run through the page (the bundled one here; the others share
 * its architecture and file layout, and this build machine cannot reach the Hub to try them).
 */
export const GALLERY = Object.freeze([
  { id: 'sentence-transformers/all-MiniLM-L6-v2', languages: 'English', note: 'bundled; fast on a CPU', checked: true,
    config: bert({ vocab_size: 30522, hidden_size: 384, num_hidden_layers: 6, num_attention_heads: 12, intermediate_size: 1536 }) },
  { id: 'sentence-transformers/all-MiniLM-L12-v2', languages: 'English', note: 'twice the depth of the bundled model',
    config: bert({ vocab_size: 30522, hidden_size: 384, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 1536 }) },
  { id: 'BAAI/bge-small-zh-v1.5', languages: '中文 (Chinese)', note: 'small Chinese encoder',
    config: bert({ vocab_size: 21128, hidden_size: 512, num_hidden_layers: 4, num_attention_heads: 8, intermediate_size: 2048 }) },
  { id: 'google-bert/bert-base-chinese', languages: '中文 (Chinese)', note: 'the original Chinese BERT',
    config: bert({ vocab_size: 21128, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 }) },
  { id: 'google-bert/bert-base-uncased', languages: 'English', note: 'the original BERT; a GPU helps',
    config: bert({ vocab_size: 30522, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 }) },
  { id: 'google-bert/bert-base-multilingual-cased', languages: '104 languages, 中文 among them', note: 'one model for many languages',
    config: bert({ vocab_size: 119547, hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 }) },
]);

/** Fills the gallery table; `estimate(config, entry)` answers the engine's MemoryEstimate. */
export async function renderGallery({ estimate, use }) {
  const table = $('gallery-table');
  const rows = await Promise.all(GALLERY.map(async (g) => {
    let est = null;
    let problem = null;
    try {
      est = await estimate(JSON.stringify(g.config));
    } catch (err) {
      problem = err.message;
    }
    return { g, est, problem };
  }));
  const head = document.createElement('thead');
  const hr = document.createElement('tr');
  for (const h of [t('gallery.model'), t('gallery.languages'), t('gallery.parameters'), t('gallery.download'), t('gallery.memory'), '']) {
    const th = document.createElement('th');
    th.textContent = h;
    hr.append(th);
  }
  head.append(hr);
  const body = document.createElement('tbody');
  for (const { g, est, problem } of rows) {
    const tr_ = document.createElement('tr');
    tr_.dataset.model = g.id;
    const cells = [
      `${g.id}${g.checked ? ' ✔' : ''}`, g.languages,
      est ? millions(est.parameters) : '—',
      est ? `≈ ${bytes(4 * est.parameters)}` : '—',
      est ? bytes(est.total) + (est.warnings?.length ? ' ⚠' : '') : problem ?? '—',
    ];
    for (const [i, text] of cells.entries()) {
      const td = document.createElement('td');
      td.textContent = text;
      if (i === 0) {
        const small = document.createElement('small');
        small.className = 'block';
        small.textContent = g.note;
        td.append(small);
      }
      if (i === 4 && est?.warnings?.length) td.title = est.warnings.join('; ');
      tr_.append(td);
    }
    const td = document.createElement('td');
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = t('gallery.use');
    button.setAttribute('aria-label', `${t('gallery.use')} ${g.id}`);
    button.addEventListener('click', () => use(g));
    td.append(button);
    tr_.append(td);
    body.append(tr_);
  }
  table.replaceChildren(head, body);
  return rows.map(({ g, est }) => ({ id: g.id, parameters: est?.parameters ?? null, total: est?.total ?? null }));
}
