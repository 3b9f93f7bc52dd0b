// The model galleries: short lists of small Hub models of the architectures Burnish trains (BERT,
// DistilBERT, RoBERTa and XLM-RoBERTa encoders for classification and adaptation; Llama, Qwen2, Qwen3 and GPT-2 decoders for the generative
// tasks), with their languages, size, and the memory the chosen recipe would need, worked out by
// the engine from each model's config.json (estimateMemoryForConfig,
// estimateDecoderMemoryForConfig) before anything is downloaded. "Use" fills in the Hugging
// Face id; the download happens on Load, as for any id.

import { t } from '../i18n.js';
import { $, bytes, millions } from '../lib/dom.js';

const bert = (c) => ({
  model_type: 'bert', architectures: ['BertModel'], hidden_act: 'gelu', hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1,
  initializer_range: 0.02, layer_norm_eps: 1e-12, max_position_embeddings: 512, type_vocab_size: 2, pad_token_id: 0, ...c,
});
const roberta = (c) => bert({ model_type: 'roberta', architectures: ['RobertaForMaskedLM'], layer_norm_eps: 1e-5, max_position_embeddings: 514, type_vocab_size: 1, pad_token_id: 1,
  hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072, ...c });
const distilbert = (c) => ({
  model_type: 'distilbert', architectures: ['DistilBertForMaskedLM'], activation: 'gelu', dim: 768, n_layers: 6, n_heads: 12, hidden_dim: 3072,
  dropout: 0.1, attention_dropout: 0.1, seq_classif_dropout: 0.2, initializer_range: 0.02, max_position_embeddings: 512, pad_token_id: 0, sinusoidal_pos_embds: false, ...c,
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
  { id: 'distilbert/distilbert-base-uncased', languages: 'English', note: 'DistilBERT: six layers, close to BERT-base, twice as fast',
    config: distilbert({ vocab_size: 30522 }) },
  { id: 'distilbert/distilbert-base-multilingual-cased', languages: '104 languages, 中文 among them', note: 'DistilBERT for many languages',
    config: distilbert({ vocab_size: 119547 }) },
  { id: 'FacebookAI/roberta-base', languages: 'English', note: 'RoBERTa: byte-level BPE, strong on English text; a GPU helps',
    config: roberta({ vocab_size: 50265 }) },
  { id: 'FacebookAI/xlm-roberta-base', languages: '100 languages, 中文 among them', note: 'XLM-RoBERTa: a SentencePiece vocabulary of 250k pieces (most of its size)',
    config: roberta({ model_type: 'xlm-roberta', architectures: ['XLMRobertaForMaskedLM'], vocab_size: 250002 }) },
]);

const llama = (c) => ({
  model_type: 'llama', architectures: ['LlamaForCausalLM'], hidden_act: 'silu', rms_norm_eps: 1e-5, tie_word_embeddings: true, attention_bias: false, mlp_bias: false, ...c,
});
const gpt2 = (c) => ({
  model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], activation_function: 'gelu_new', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_head: 12, layer_norm_epsilon: 1e-5, ...c,
});

/** Decoders for the chat and continue tasks; `bytesPerParameter` is the dtype of their safetensors. */
export const DECODER_GALLERY = Object.freeze([
  { id: 'HuggingFaceTB/SmolLM2-135M-Instruct', languages: 'English', note: 'the bundled model (here as a 98 MB GGUF); chat template', checked: true, bytesPerParameter: 2,
    config: llama({ vocab_size: 49152, hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, max_position_embeddings: 8192, rope_theta: 100000 }) },
  { id: 'HuggingFaceTB/SmolLM2-360M-Instruct', languages: 'English', note: 'the next size up; chat template', bytesPerParameter: 2,
    config: llama({ vocab_size: 49152, hidden_size: 960, intermediate_size: 2560, num_hidden_layers: 32, num_attention_heads: 15, num_key_value_heads: 5, max_position_embeddings: 8192, rope_theta: 100000 }) },
  { id: 'Qwen/Qwen2.5-0.5B-Instruct', languages: '中文, English and 27 more', note: 'multilingual, Chinese among them; chat template; LoRA fits best', bytesPerParameter: 2,
    config: { ...llama({ vocab_size: 151936, hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, max_position_embeddings: 32768, rope_theta: 1000000, rms_norm_eps: 1e-6 }), model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'], use_sliding_window: false } },
  { id: 'Qwen/Qwen3-0.6B', languages: '中文, English and 117 more', note: 'Qwen3: per-head query/key norms; thinking and chat template; LoRA fits best', bytesPerParameter: 2,
    config: { ...llama({ vocab_size: 151936, hidden_size: 1024, intermediate_size: 3072, num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128, max_position_embeddings: 40960, rope_theta: 1000000, rms_norm_eps: 1e-6 }), model_type: 'qwen3', architectures: ['Qwen3ForCausalLM'], use_sliding_window: false } },
  { id: 'distilbert/distilgpt2', languages: 'English', note: 'six layers of GPT-2: quick to continue text in a style', bytesPerParameter: 4,
    config: gpt2({ n_layer: 6 }) },
  { id: 'openai-community/gpt2', languages: 'English', note: 'the original GPT-2 (124M)', bytesPerParameter: 4,
    config: gpt2({ n_layer: 12 }) },
]);

/**
 * Fills a gallery table (`table`: its element id) from `list` (GALLERY or DECODER_GALLERY);
 * `estimate(config)` answers the engine's MemoryEstimate for the form's recipe; `use(entry)` runs
 * on the row's button. Resolves with [{id, parameters, total}] per row.
 */
export async function renderGallery({ estimate, use, list = GALLERY, table: tableId = 'gallery-table' }) {
  const table = $(tableId);
  const rows = await Promise.all(list.map(async (g) => {
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
      est ? `≈ ${bytes((g.bytesPerParameter ?? 4) * est.parameters)}` : '—',
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
