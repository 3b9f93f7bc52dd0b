//! Reading the files a command names and writing what it produces.

use std::path::Path;
use burnish::hf::checkpoint::Checkpoint;
use burnish::data::{self, Example};
use burnish::error::{Error, Result};
use burnish::infer::classify::{self, Classifier};



/// The largest file the CLI reads (a 7B-parameter f16 model is 14 GB; nothing Burnish trains
/// comes near it).
pub const MAX_FILE_BYTES: u64 = 16 << 30;

/// A file's bytes. Symbolic links are followed (the Hugging Face cache links snapshot files to
/// blobs), but what they reach must be a regular file of at most `MAX_FILE_BYTES`: a FIFO or
/// a device such as /dev/zero would block or never end.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let fail = |e: std::io::Error| Error::Io(format!("cannot read {}: {e}", path.display()));
    let meta = std::fs::metadata(path).map_err(fail)?;
    if !meta.is_file() {
        return Err(Error::Io(format!("{} is not a regular file (a folder, device or pipe cannot be read as a model or data file)", path.display())));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Error::Io(format!("{} is {} bytes; the limit is {MAX_FILE_BYTES} bytes (16 GiB)", path.display(), meta.len())));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take`: a file that grows while it is read stops at the limit too.
    std::fs::File::open(path).map_err(fail)?.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes).map_err(fail)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::Io(format!("{} grew past the limit of {MAX_FILE_BYTES} bytes while it was read", path.display())));
    }
    Ok(bytes)
}

pub fn load_checkpoint(dir: &Path) -> Result<Checkpoint> {
    if !dir.is_dir() {
        return Err(Error::Io(format!("--model {}: not a folder (expected config.json, tokenizer.json, model.safetensors)", dir.display())));
    }
    let need = |name: &str| -> Result<Vec<u8>> {
        let p = dir.join(name);
        if !p.exists() {
            return Err(Error::Io(format!("{} has no {name} (a model folder needs config.json, tokenizer.json, model.safetensors)", dir.display())));
        }
        read(&p)
    };
    let mut ckpt = Checkpoint::from_bytes(&need("config.json")?, &need("tokenizer.json")?, need("model.safetensors")?)?;
    let tc = dir.join("tokenizer_config.json");
    if tc.exists() {
        ckpt.tokenizer_config = Some(read(&tc)?);
    }
    Ok(ckpt)
}

/// A causal LM folder: config.json, tokenizer.json, and model.safetensors or the shards its
/// model.safetensors.index.json names.

pub fn load_causal(dir: &Path) -> Result<burnish::models::causal::CausalModel> {
    if dir.is_file() && dir.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) {
        return burnish::models::causal::from_gguf(&read(dir)?).map_err(|e| Error::Other(format!("{}: {e}", dir.display())));
    }
    if !dir.is_dir() {
        return Err(Error::Io(format!("--model {}: not a folder (expected config.json, tokenizer.json, model.safetensors)", dir.display())));
    }
    let need = |name: &str| -> Result<Vec<u8>> {
        let p = dir.join(name);
        if !p.exists() {
            return Err(Error::Io(format!("{} has no {name} (a model folder needs config.json, tokenizer.json, model.safetensors or its shards)", dir.display())));
        }
        read(&p)
    };
    let index = dir.join("model.safetensors.index.json");
    let weights = if index.exists() {
        burnish::models::causal::shard_files(&read(&index)?)?.iter().map(|f| need(f)).collect::<Result<Vec<_>>>()?
    } else {
        vec![need("model.safetensors")?]
    };
    let cm = burnish::models::causal::CausalModel::from_bytes(&need("config.json")?, &need("tokenizer.json")?, weights)?;
    // Optional: tokenizer_config.json and chat_template.jinja carry the chat template.
    let optional = |name: &str| -> Result<Option<Vec<u8>>> { if dir.join(name).exists() { read(&dir.join(name)).map(Some) } else { Ok(None) } };
    let jinja = optional("chat_template.jinja")?.map(|b| String::from_utf8_lossy(&b).into_owned());
    cm.with_tokenizer_config(optional("tokenizer_config.json")?, jinja)
}

/// A .gguf file, or a folder whose config.json names a GPT-2, Llama or Qwen2 model.
pub fn is_decoder(path: &Path) -> bool {
    if path.is_file() {
        return path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    }
    read(&path.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["model_type"].as_str().map(String::from))
        .is_some_and(|t| matches!(t.as_str(), "gpt2" | "llama" | "qwen2" | "qwen3"))
}

pub fn load_table(path: &Path) -> Result<data::Table> {
    let bytes = read(path)?;
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    data::parse_table(&bytes, &name)
}

pub fn load_examples(path: &Path, text_col: &str, label_col: &str) -> Result<(Vec<Example>, usize)> {
    let table = load_table(path)?;
    let d = data::labeled_examples(&table, text_col, label_col)?;
    if d.skipped_empty_text + d.skipped_empty_label > 0 {
        eprintln!("{}: skipped {} rows with empty text and {} with an empty label", table.name, d.skipped_empty_text, d.skipped_empty_label);
    }
    Ok((d.examples, d.skipped_empty_text + d.skipped_empty_label))
}

pub fn classifier_from(ckpt: &Checkpoint, dev: &burn::tensor::Device) -> Result<Classifier> {
    if ckpt.config.labels.len() < 2 {
        return Err(Error::Config("this model has no classification head (no id2label); fine-tune it with `burnish train` first".into()));
    }
    let (model, report) = classify::build_classifier(ckpt, &ckpt.config.labels, 0, dev)?;
    if !report.initialized.is_empty() {
        return Err(Error::Weights(format!("the folder lacks trained tensors: {}", report.initialized.join(", "))));
    }
    Ok(Classifier { model, labels: ckpt.config.labels.clone(), pad_id: ckpt.tokenizer.pad_id })
}

/// Linux: the process's resident-memory high-water mark (VmHWM) in bytes.
/// Writes HF folder files under `out` (creating folders as needed).

pub fn write_files(out: &Path, files: Vec<(String, Vec<u8>)>) -> Result<()> {
    for (name, bytes) in files {
        let path = out.join(&name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
        }
        std::fs::write(&path, bytes).map_err(|e| Error::Io(format!("cannot write {}: {e}", path.display())))?;
    }
    Ok(())
}

pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))
}

pub fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}