//! Everything written in Hugging Face's formats, beside the models whose names it maps: the
//! `model.safetensors` of every architecture under its HF names (BERT classifier and masked LM,
//! GPT-2, Llama/Qwen2), LoRA adapters in PEFT's layout with their `adapter_config.json`, and the
//! classifier's whole folder. Every tensor is read asynchronously (WebGPU-safe).

use burn::nn::Linear;
use burn::tensor::Tensor;
use safetensors::Dtype;

use crate::backend::read_f32;
use crate::error::{Error, Result};
use crate::hf::checkpoint::Checkpoint;
use crate::hf::weights::transpose;
use crate::hf::config::{EncoderArch, Part};
use crate::models::bert::{BertModel, MaskedLm, SequenceClassifier};
use crate::models::causal::CausalLm;
use crate::recipe::{LoraTarget, Recipe};

/// How a parameter is laid out relative to HF.
#[derive(Clone, Copy)]
enum Layout {
    Same,
    /// burn `[in, out]` ↔ HF `[out, in]`
    Transposed,
}

fn linear_entries(out: &mut Vec<(String, Tensor<2>, Layout)>, out1: &mut Vec<(String, Tensor<1>)>, name: &str, l: &Linear) {
    out.push((format!("{name}.weight"), l.weight.val(), Layout::Transposed));
    if let Some(b) = &l.bias {
        out1.push((format!("{name}.bias"), b.val()));
    }
}

fn norm_entries(out1: &mut Vec<(String, Tensor<1>)>, name: &str, ln: &burn::nn::LayerNorm) {
    out1.push((format!("{name}.weight"), ln.gamma.val()));
    if let Some(b) = &ln.beta {
        out1.push((format!("{name}.bias"), b.val()));
    }
}

/// Every encoder parameter under its HF name (`bert.`, `roberta.` or `distilbert.` prefix); BERT's
/// pooler is part of its base model and is included, RoBERTa's and DistilBERT's belong to the
/// classification head (`classifier_entries`).
fn encoder_entries(arch: EncoderArch, bert: &BertModel, m: &mut Vec<(String, Tensor<2>, Layout)>, v: &mut Vec<(String, Tensor<1>)>) {
    let pre = arch.prefix();
    let e = &bert.embeddings;
    m.push((format!("{pre}embeddings.word_embeddings.weight"), e.word_embeddings.weight.val(), Layout::Same));
    m.push((format!("{pre}embeddings.position_embeddings.weight"), e.position_embeddings.weight.val(), Layout::Same));
    if let Some(tt) = &e.token_type_embeddings {
        m.push((format!("{pre}embeddings.token_type_embeddings.weight"), tt.weight.val(), Layout::Same));
    }
    norm_entries(v, &format!("{pre}embeddings.LayerNorm"), &e.layer_norm);
    for (i, layer) in bert.layers.iter().enumerate() {
        let p = format!("{pre}{}", arch.layer(i));
        let name = |part: Part| format!("{p}.{}", arch.module(part));
        linear_entries(m, v, &name(Part::Query), &layer.attention.query);
        linear_entries(m, v, &name(Part::Key), &layer.attention.key);
        linear_entries(m, v, &name(Part::Value), &layer.attention.value);
        linear_entries(m, v, &name(Part::AttentionOutput), &layer.attention_output);
        norm_entries(v, &name(Part::AttentionNorm), &layer.attention_norm);
        linear_entries(m, v, &name(Part::Intermediate), &layer.intermediate);
        linear_entries(m, v, &name(Part::Output), &layer.output);
        norm_entries(v, &name(Part::OutputNorm), &layer.output_norm);
    }
    if arch == EncoderArch::Bert {
        linear_entries(m, v, &format!("{pre}{}", arch.pooler()), &bert.pooler);
    }
}

/// Every parameter of the classifier under its HF `…ForSequenceClassification` name.
fn classifier_entries(arch: EncoderArch, model: &SequenceClassifier) -> (Vec<(String, Tensor<2>, Layout)>, Vec<(String, Tensor<1>)>) {
    let mut m = Vec::new();
    let mut v = Vec::new();
    encoder_entries(arch, &model.bert, &mut m, &mut v);
    if arch != EncoderArch::Bert {
        linear_entries(&mut m, &mut v, arch.pooler(), &model.bert.pooler);
    }
    linear_entries(&mut m, &mut v, arch.classifier(), &model.classifier);
    (m, v)
}

/// HF `…ForMaskedLM` `model.safetensors` bytes: the encoder (BERT's with its pooler, which
/// transformers' masked-LM class ignores but a later classifier reuses) and the masked-LM head
/// (`cls.predictions.*`, `lm_head.*`, `vocab_*`). The decoder is tied to the word embeddings, so
/// like transformers only its bias is written.
pub async fn export_mlm_safetensors(arch: EncoderArch, model: &MaskedLm) -> Result<Vec<u8>> {
    let mut m = Vec::new();
    let mut v = Vec::new();
    encoder_entries(arch, &model.bert, &mut m, &mut v);
    let [dense, norm, bias] = arch.mlm_head();
    linear_entries(&mut m, &mut v, dense, &model.transform);
    norm_entries(&mut v, norm, &model.transform_norm);
    v.push((bias.into(), model.decoder_bias.val()));
    serialize_entries(m, v).await
}

/// Serialises the classifier to HF `model.safetensors` bytes, reading each parameter
/// asynchronously (safe on WebGPU in the browser). LoRA adapters are merged (`W + s·A·B`).
pub async fn export_classifier_safetensors(arch: EncoderArch, model: &SequenceClassifier) -> Result<Vec<u8>> {
    let (mats, vecs) = classifier_entries(arch, model);
    serialize_entries(mats, vecs).await
}

/// The modules a LoRA classifier trains whole (PEFT's `modules_to_save`): the head, and BERT's
/// pooler (RoBERTa's `classifier` module holds its dense layer).
pub fn modules_to_save(arch: EncoderArch) -> &'static [&'static str] {
    match arch {
        EncoderArch::Bert => &["classifier", "pooler"],
        EncoderArch::Roberta | EncoderArch::XlmRoberta => &["classifier"],
        EncoderArch::DistilBert => &["pre_classifier", "classifier"],
    }
}

/// A PEFT `adapter_model.safetensors`: every LoRA factor under PEFT's name
/// (`base_model.model.bert.encoder.layer.N.<module>.lora_A.weight` `[rank, in]`, `lora_B`
/// `[out, rank]`; burn keeps `A [in, rank]`, `B [rank, out]`, the transposes) and the trained head
/// as `modules_to_save` (`base_model.model.classifier.*`, `base_model.model.bert.pooler.dense.*`).
pub async fn export_peft_safetensors(arch: EncoderArch, model: &SequenceClassifier, targets: &[LoraTarget]) -> Result<Vec<u8>> {
    let mut m = Vec::new();
    let mut v = Vec::new();
    for (i, layer) in model.bert.layers.iter().enumerate() {
        for t in targets {
            let name = format!("base_model.model.{}{}.{}", arch.prefix(), arch.layer(i), arch.module(t.part()));
            let ad = layer
                .linear(*t)
                .weight
                .adapter()
                .ok_or_else(|| Error::Other(format!("{name} has no LoRA adapter: was the model trained with LoRA?")))?;
            m.push((format!("{name}.lora_A.weight"), ad.a.val(), Layout::Transposed));
            m.push((format!("{name}.lora_B.weight"), ad.b.val(), Layout::Transposed));
        }
    }
    let pooler = if arch == EncoderArch::Bert { format!("{}{}", arch.prefix(), arch.pooler()) } else { arch.pooler().to_string() };
    linear_entries(&mut m, &mut v, &format!("base_model.model.{pooler}"), &model.bert.pooler);
    linear_entries(&mut m, &mut v, &format!("base_model.model.{}", arch.classifier()), &model.classifier);
    serialize_entries(m, v).await
}

/// PEFT's `adapter_model.safetensors` for LoRA-adapted linears named by their HF module names:
/// `base_model.model.<name>.lora_A.weight` `[rank, in]` and `lora_B.weight` `[out, rank]`.
pub async fn export_lora_adapters(linears: &[(String, &Linear)]) -> Result<Vec<u8>> {
    let mut m = Vec::new();
    for (name, l) in linears {
        let ad = l.weight.adapter().ok_or_else(|| Error::Other(format!("{name} has no LoRA adapter: was the model trained with LoRA?")))?;
        m.push((format!("base_model.model.{name}.lora_A.weight"), ad.a.val(), Layout::Transposed));
        m.push((format!("base_model.model.{name}.lora_B.weight"), ad.b.val(), Layout::Transposed));
    }
    serialize_entries(m, Vec::new()).await
}

/// A causal LM's `model.safetensors` bytes under its HF names (GPT-2's Conv1D weights stay
/// `[in, out]`; Llama's linears go back to `[out, in]`). A tied LM head is not stored, as
/// transformers does not store it.
pub async fn export_causal_safetensors(model: &CausalLm) -> Result<Vec<u8>> {
    let mut m = Vec::new();
    let mut v = Vec::new();
    match model {
        CausalLm::Gpt2(g) => {
            let conv = |m: &mut Vec<(String, Tensor<2>, Layout)>, v: &mut Vec<(String, Tensor<1>)>, name: String, l: &Linear| {
                m.push((format!("{name}.weight"), l.weight.val(), Layout::Same));
                if let Some(b) = &l.bias {
                    v.push((format!("{name}.bias"), b.val()));
                }
            };
            m.push(("transformer.wte.weight".into(), g.wte.weight.val(), Layout::Same));
            m.push(("transformer.wpe.weight".into(), g.wpe.weight.val(), Layout::Same));
            for (i, b) in g.blocks.iter().enumerate() {
                let p = format!("transformer.h.{i}");
                norm_entries(&mut v, &format!("{p}.ln_1"), &b.ln_1);
                conv(&mut m, &mut v, format!("{p}.attn.c_attn"), &b.c_attn);
                conv(&mut m, &mut v, format!("{p}.attn.c_proj"), &b.attn_proj);
                norm_entries(&mut v, &format!("{p}.ln_2"), &b.ln_2);
                conv(&mut m, &mut v, format!("{p}.mlp.c_fc"), &b.c_fc);
                conv(&mut m, &mut v, format!("{p}.mlp.c_proj"), &b.mlp_proj);
            }
            norm_entries(&mut v, "transformer.ln_f", &g.ln_f);
        }
        CausalLm::Llama(l) => {
            m.push(("model.embed_tokens.weight".into(), l.embed_tokens.weight.val(), Layout::Same));
            for (i, layer) in l.layers.iter().enumerate() {
                let p = format!("model.layers.{i}");
                v.push((format!("{p}.input_layernorm.weight"), layer.input_layernorm.gamma.val()));
                let a = &layer.self_attn;
                linear_entries(&mut m, &mut v, &format!("{p}.self_attn.q_proj"), &a.q_proj);
                linear_entries(&mut m, &mut v, &format!("{p}.self_attn.k_proj"), &a.k_proj);
                linear_entries(&mut m, &mut v, &format!("{p}.self_attn.v_proj"), &a.v_proj);
                linear_entries(&mut m, &mut v, &format!("{p}.self_attn.o_proj"), &a.o_proj);
                for (name, n) in [("q_norm", &a.q_norm), ("k_norm", &a.k_norm)] {
                    if let Some(n) = n {
                        v.push((format!("{p}.self_attn.{name}.weight"), n.gamma.val()));
                    }
                }
                v.push((format!("{p}.post_attention_layernorm.weight"), layer.post_attention_layernorm.gamma.val()));
                linear_entries(&mut m, &mut v, &format!("{p}.mlp.gate_proj"), &layer.gate_proj);
                linear_entries(&mut m, &mut v, &format!("{p}.mlp.up_proj"), &layer.up_proj);
                linear_entries(&mut m, &mut v, &format!("{p}.mlp.down_proj"), &layer.down_proj);
            }
            v.push(("model.norm.weight".into(), l.norm.gamma.val()));
            if let Some(head) = &l.lm_head {
                linear_entries(&mut m, &mut v, "lm_head", head);
            }
        }
    }
    serialize_entries(m, v).await
}

async fn serialize_entries(mats: Vec<(String, Tensor<2>, Layout)>, vecs: Vec<(String, Tensor<1>)>) -> Result<Vec<u8>> {
    let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::with_capacity(mats.len() + vecs.len());
    for (name, t, layout) in mats {
        let [r, c] = t.dims();
        let data = read_f32(t).await?;
        let (shape, data) = match layout {
            Layout::Same => (vec![r, c], data),
            Layout::Transposed => (vec![c, r], transpose(&data, r, c)),
        };
        named.push((name, shape, f32_bytes(&data)));
    }
    for (name, t) in vecs {
        let [n] = t.dims();
        let data = read_f32(t).await?;
        named.push((name, vec![n], f32_bytes(&data)));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = named
        .iter()
        .map(|(n, s, d)| {
            safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), d)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Other(format!("safetensors view {n}: {e}")))
        })
        .collect::<Result<_>>()?;
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::Other(format!("safetensors: {e}")))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}


pub async fn export_classifier(model: &SequenceClassifier, ckpt: &Checkpoint, labels: &[String]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = vec![("config.json".to_string(), ckpt.classifier_config(labels)?)];
    files.extend(ckpt.tokenizer_files());
    files.push(("model.safetensors".to_string(), export_classifier_safetensors(ckpt.config.arch, model).await?));
    Ok(files)
}

/// The PEFT adapter folder (`peft/adapter_config.json`, `peft/adapter_model.safetensors`) that
/// `peft.PeftModel.from_pretrained` loads on top of the base model
/// (`AutoModelForSequenceClassification` with the same labels).
pub async fn export_peft(arch: EncoderArch, model: &SequenceClassifier, r: &Recipe, base_name: &str) -> Result<Vec<(String, Vec<u8>)>> {
    // A regex (PEFT full-matches it against module names) so that "output.dense" does not also
    // catch "attention.output.dense".
    let names: Vec<String> = r.lora_targets.iter().map(|t| arch.module(t.part()).replace('.', "\\.")).collect();
    let target = format!(".*\\.layer\\.\\d+\\.({})", names.join("|"));
    let config = peft_adapter_config(r, "SEQ_CLS", base_name, &target, serde_json::json!(modules_to_save(arch)), false);
    Ok(vec![
        ("peft/adapter_config.json".to_string(), serde_json::to_vec_pretty(&config).map_err(|e| Error::Other(e.to_string()))?),
        ("peft/adapter_model.safetensors".to_string(), export_peft_safetensors(arch, model, &r.lora_targets).await?),
    ])
}

/// PEFT's `adapter_config.json` for a LoRA run of the recipe: `task_type` ("SEQ_CLS",
/// "CAUSAL_LM"), the regex of adapted module names, the modules saved whole, and whether the
/// base layers store their weights [in, out] (GPT-2's Conv1D).
pub fn peft_adapter_config(r: &Recipe, task_type: &str, base_name: &str, target_modules: &str, modules_to_save: serde_json::Value, fan_in_fan_out: bool) -> serde_json::Value {
    serde_json::json!({
        "peft_type": "LORA",
        "task_type": task_type,
        "base_model_name_or_path": base_name,
        "r": r.lora_rank,
        "lora_alpha": r.lora_alpha,
        "lora_dropout": r.lora_dropout,
        "target_modules": target_modules,
        "modules_to_save": modules_to_save,
        "bias": "none",
        "fan_in_fan_out": fan_in_fan_out,
        "inference_mode": true,
        "init_lora_weights": true,
        "use_rslora": false,
        "use_dora": false,
        "layers_to_transform": null,
        "layers_pattern": null,
        "rank_pattern": {},
        "alpha_pattern": {},
        "revision": null,
    })
}



/// An int8 classifier's `model.safetensors`: every matrix (embedding tables, encoder linears, the
/// head) as `I8` rows in HF's layout with one `F32` scale per row (`{name}_scale`, symmetric
/// absmax / 127), norms and biases as `F32`. About a quarter of the f32 file; Burnish reads it back
/// (`hf::weights` dequantizes on load), in the page, the CLI and an exported web app.
pub async fn export_classifier_int8_safetensors(arch: EncoderArch, model: &SequenceClassifier) -> Result<Vec<u8>> {
    let (mats, vecs) = classifier_entries(arch, model);
    let mut named: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(2 * mats.len() + vecs.len());
    for (name, t, layout) in mats {
        let [r, c] = t.dims();
        let data = read_f32(t).await?;
        let (rows, cols, data) = match layout {
            Layout::Same => (r, c, data),
            Layout::Transposed => (c, r, transpose(&data, r, c)),
        };
        let (q, scales) = quantize_rows_i8(&data, rows, cols);
        named.push((name.clone(), Dtype::I8, vec![rows, cols], q.into_iter().map(|x| x as u8).collect()));
        named.push((format!("{name}_scale"), Dtype::F32, vec![rows], f32_bytes(&scales)));
    }
    for (name, t) in vecs {
        let [n] = t.dims();
        named.push((name, Dtype::F32, vec![n], f32_bytes(&read_f32(t).await?)));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = named
        .iter()
        .map(|(n, d, s, b)| safetensors::tensor::TensorView::new(*d, s.clone(), b).map(|v| (n.clone(), v)).map_err(|e| Error::Other(format!("safetensors view {n}: {e}"))))
        .collect::<Result<_>>()?;
    let mut meta = std::collections::HashMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    meta.insert("burnish_quantization".to_string(), "int8 per-row absmax; weight = int8 * weight_scale[row]".to_string());
    safetensors::serialize(views, Some(meta)).map_err(|e| Error::Other(format!("safetensors: {e}")))
}

/// Symmetric per-row int8: `scale[r] = max|w[r]| / 127`, `q = round(w / scale)`.
pub fn quantize_rows_i8(data: &[f32], rows: usize, cols: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::with_capacity(data.len());
    let mut scales = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &data[r * cols..(r + 1) * cols];
        let amax = row.iter().fold(0f32, |m, x| m.max(x.abs()));
        let s = amax / 127.0;
        let inv = if s > 0.0 { 1.0 / s } else { 0.0 };
        q.extend(row.iter().map(|x| (x * inv).round().clamp(-127.0, 127.0) as i8));
        scales.push(s);
    }
    (q, scales)
}
