//! Hostile input, one class at a time (docs/reliability.md lists them): every file is refused
//! with a message naming the file, the field and the value, before anything is allocated from
//! it, and a run whose loss turns non-finite stops before the step is applied. The fuzzing of the
//! same parsers over mutated bytes is in fuzz.rs.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use burnish::backend::read_f32;
use burnish::data::{self, Example};
use burnish::engine::classifier::TrainSession;
use burnish::engine::codec;
use burnish::hf::chat_template::{ChatTemplate, Message};
use burnish::hf::config::HfConfigFile;
use burnish::hf::gguf::Gguf;
use burnish::models::causal::{CausalModel, DecoderConfig, from_gguf};
use burnish::recipe::Recipe;
use burnish::{Checkpoint, Error};

use super::common::*;

fn read(dir: &str, name: &str) -> Vec<u8> {
    std::fs::read(fixture(dir).join(name)).unwrap()
}

/// config.json of `dir` with `key` set to `value` (JSON).
fn config_with(dir: &str, key: &str, value: serde_json::Value) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&read(dir, "config.json")).unwrap();
    v[key] = value;
    serde_json::to_vec(&v).unwrap()
}

fn bert_err(cfg: &[u8]) -> String {
    match HfConfigFile::from_bytes(cfg).and_then(HfConfigFile::into_bert) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

fn decoder_err(cfg: &[u8]) -> String {
    DecoderConfig::from_bytes(cfg).err().expect("refused").to_string()
}

#[test]
fn config_values_out_of_range_are_refused_by_name_for_every_architecture() {
    use serde_json::json;
    let cases: &[(&str, &str, serde_json::Value, &str)] = &[
        ("tiny-bert", "num_hidden_layers", json!(1u64 << 40), "\"num_hidden_layers\" is 1099511627776; it must be between 1 and 256"),
        ("tiny-bert", "num_hidden_layers", json!(0), "\"num_hidden_layers\" is 0"),
        ("tiny-bert", "vocab_size", json!(100_000_000), "\"vocab_size\" is 100000000"),
        ("tiny-bert", "num_attention_heads", json!(0), "not divisible by num_attention_heads 0"),
        ("tiny-bert", "hidden_dropout_prob", json!(1.5), "\"hidden_dropout_prob\" is 1.5; a dropout probability must be in [0, 1)"),
        ("tiny-bert", "attention_probs_dropout_prob", json!(-0.1), "\"attention_probs_dropout_prob\" is -0.1"),
        ("tiny-bert", "layer_norm_eps", json!(0.0), "\"layer_norm_eps\" is 0; it must be a positive finite number"),
        ("tiny-bert", "pad_token_id", json!(1_000_000), "\"pad_token_id\" 1000000 is not below vocab_size"),
        ("tiny-bert", "type_vocab_size", json!(0), "\"type_vocab_size\" is 0"),
    ];
    for (dir, key, value, want) in cases {
        let e = bert_err(&config_with(dir, key, value.clone()));
        assert!(e.contains(want) && e.starts_with("config.json:"), "{key}={value}: {e}");
    }
    let cases: &[(&str, &str, serde_json::Value, &str)] = &[
        ("tiny-gpt2", "n_layer", json!(100_000), "\"n_layer\" is 100000"),
        ("tiny-gpt2", "n_positions", json!(0), "\"n_positions\" is 0"),
        ("tiny-gpt2", "resid_pdrop", json!(1.0), "\"resid_pdrop\" is 1"),
        ("tiny-gpt2", "layer_norm_epsilon", json!(-1.0), "\"layer_norm_epsilon\" is -1"),
        ("tiny-gpt2", "n_head", json!(0), "must be a multiple of n_head (0)"),
        ("tiny-llama", "rope_theta", json!(0.0), "\"rope_theta\" is 0; it must be a positive finite number"),
        ("tiny-llama", "num_hidden_layers", json!(1u64 << 33), "\"num_hidden_layers\" is 8589934592"),
        ("tiny-llama", "attention_dropout", json!(2.0), "\"attention_dropout\" is 2"),
        ("tiny-llama", "rms_norm_eps", json!(0.0), "\"rms_norm_eps\" is 0"),
        ("tiny-llama", "num_key_value_heads", json!(0), "cannot be split into 0 key/value groups"),
        ("tiny-qwen2", "intermediate_size", json!(10_000_000), "\"intermediate_size\" is 10000000"),
        ("tiny-llama", "vocab_size", json!(-5), "not a valid llama config"),
    ];
    for (dir, key, value, want) in cases {
        let e = decoder_err(&config_with(dir, key, value.clone()));
        assert!(e.contains(want), "{dir} {key}={value}: {e}");
    }
}

/// `bytes` (a safetensors file) with tensor `name`'s f32 values changed by `f`.
fn edit_tensor(bytes: &[u8], name: &str, f: impl Fn(&mut [f32])) -> Vec<u8> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    assert!(st.names().contains(&name), "{name} is in the file");
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (n, view) in st.tensors() {
        let mut data = view.data().to_vec();
        if n == name {
            let mut v: Vec<f32> = data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            f(&mut v);
            data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        }
        owned.push((n, view.shape().to_vec(), data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        owned.iter().map(|(n, s, d)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap())).collect();
    safetensors::serialize(views, None).unwrap()
}

#[test]
fn non_finite_weights_are_refused_at_load_with_the_tensor_name() {
    let name = "bert.encoder.layer.1.attention.self.value.weight";
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let w = edit_tensor(&read("tiny-bert", "model.safetensors"), name, |v| v[7] = bad);
        let mut ckpt = Checkpoint::from_bytes(&read("tiny-bert", "config.json"), &read("tiny-bert", "tokenizer.json"), w).unwrap();
        let e = TrainSession::new(&mut ckpt, &reviews(8, 0, false), &reviews(4, 100, false), vec!["negative".into(), "positive".into()], Recipe { max_len: 24, ..Recipe::default() }, &Device::flex())
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains(name) && e.contains("non-finite") && e.contains("element 7"), "{e}");
    }
    // A decoder's too.
    let name = "transformer.h.0.mlp.c_fc.weight";
    let w = edit_tensor(&read("tiny-gpt2", "model.safetensors"), name, |v| v[0] = f32::NAN);
    let cm = CausalModel::from_bytes(&read("tiny-gpt2", "config.json"), &read("tiny-gpt2", "tokenizer.json"), vec![w]).unwrap();
    let e = cm.load(0, &Device::flex()).err().expect("refused").to_string();
    assert!(e.contains(name) && e.contains("NaN"), "{e}");
}

#[test]
fn a_tokenizer_whose_ids_pass_the_embedding_rows_is_refused() {
    // One token moved to id 5000: as many tokens as before, but ids past the embedding rows.
    let mut tok: serde_json::Value = serde_json::from_slice(&read("tiny-bert", "tokenizer.json")).unwrap();
    let vocab = tok["model"]["vocab"].as_object_mut().unwrap();
    let (k, _) = vocab.iter().last().map(|(k, v)| (k.clone(), v.clone())).unwrap();
    vocab.insert(k, serde_json::json!(5000));
    let e = Checkpoint::from_bytes(&read("tiny-bert", "config.json"), &serde_json::to_vec(&tok).unwrap(), read("tiny-bert", "model.safetensors"))
        .err()
        .expect("refused")
        .to_string();
    assert!(e.contains("ids go up to 5000") && e.contains("vocab_size"), "{e}");
}

/// A GGUF header: version 3, `n_tensors`, then the given metadata and tensor table bytes.
fn gguf(n_tensors: u64, kv: &[(&str, u32, Vec<u8>)], table: &[u8]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(n_tensors.to_le_bytes());
    b.extend((kv.len() as u64).to_le_bytes());
    for (k, ty, v) in kv {
        b.extend((k.len() as u64).to_le_bytes());
        b.extend(k.as_bytes());
        b.extend(ty.to_le_bytes());
        b.extend(v);
    }
    b.extend(table);
    b.resize(b.len() + 4096, 0);
    b
}

fn tensor_entry(name: &str, dims: &[u64], ty: u32, offset: u64) -> Vec<u8> {
    let mut b = (name.len() as u64).to_le_bytes().to_vec();
    b.extend(name.as_bytes());
    b.extend((dims.len() as u32).to_le_bytes());
    for d in dims {
        b.extend(d.to_le_bytes());
    }
    b.extend(ty.to_le_bytes());
    b.extend(offset.to_le_bytes());
    b
}

fn gguf_err(bytes: &[u8]) -> String {
    Gguf::parse(bytes).err().expect("refused").to_string()
}

#[test]
fn gguf_sizes_and_offsets_are_checked_arithmetic() {
    // Dimensions whose product overflows 64 bits (and so 32-bit wasm).
    // (each dimension must be shorter than the file, so the file is 70 kB).
    let t = tensor_entry("blk.0.attn_q.weight", &[65536, 65536, 65536, 65536], 0, 0);
    let mut f = gguf(1, &[], &t);
    f.resize(70_000, 0);
    assert!(gguf_err(&f).contains("multiply past what this machine can address"));
    // A data offset far past the end.
    let t = tensor_entry("token_embd.weight", &[32], 0, u64::MAX - 3);
    assert!(gguf_err(&gguf(1, &[], &t)).contains("data offset 18446744073709551612 lies past the end"));
    // An offset plus size that wraps.
    let t = tensor_entry("token_embd.weight", &[65536, 65536, 4096], 0, 64);
    let mut f = gguf(1, &[], &t);
    f.resize(70_000, 0);
    let e = gguf_err(&f);
    assert!(e.contains("token_embd.weight") && (e.contains("runs past the end") || e.contains("address")), "{e}");
    // Alignment of 0, not a power of two, or huge.
    for a in [0u32, 24, 1 << 30] {
        let e = gguf_err(&gguf(0, &[("general.alignment", 4, a.to_le_bytes().to_vec())], &[]));
        assert!(e.contains("general.alignment") && e.contains("power of two"), "{a}: {e}");
    }
    // A tensor count no file could hold, and one above the limit that a file could claim.
    assert!(gguf_err(&gguf(u64::MAX, &[], &[])).contains("longer than the file"));
    let mut big = gguf(70_000, &[], &[]);
    big.resize(200_000, 0);
    assert!(gguf_err(&big).contains("lists 70000 tensors"));
    // Metadata arrays beyond the item budget.
    let mut arr = 0u32.to_le_bytes().to_vec(); // of u8
    arr.extend(((1u64 << 23) + 1).to_le_bytes());
    let mut file = gguf(0, &[("tokenizer.ggml.tokens", 9, arr)], &[]);
    file.resize(file.len() + (1 << 23) + 8, 0);
    assert!(gguf_err(&file).contains("more than 8388608 array items"));
}

#[test]
fn a_gguf_with_zero_heads_or_nan_weights_is_refused_by_name() {
    let bytes = std::fs::read(fixture("tiny-spm.gguf")).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    // Rewrite the u32 value of "llama.attention.head_count" in place.
    let key = b"llama.attention.head_count";
    let at = bytes.windows(key.len() + 4).position(|w| &w[..key.len()] == key && w[key.len()..] == 4u32.to_le_bytes()).expect("the key, typed u32");
    let mut zero = bytes.clone();
    zero[at + key.len() + 4..at + key.len() + 8].copy_from_slice(&0u32.to_le_bytes());
    let e = from_gguf(&zero).err().expect("refused").to_string();
    assert!(e.contains("head_count 0"), "{e}");
    // A NaN in an F32 tensor.
    let t = g.tensors.iter().find(|t| t.ty == burnish::hf::gguf::GgmlType::F32).expect("an F32 tensor");
    let values = g.dequantize(t).unwrap();
    let needle: Vec<u8> = values[..4].iter().flat_map(|x| x.to_le_bytes()).collect();
    let pos = bytes.windows(16).position(|w| w == needle.as_slice()).expect("the tensor's bytes");
    let mut nan = bytes.clone();
    nan[pos..pos + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let e = from_gguf(&nan).err().expect("refused").to_string();
    assert!(e.contains(&t.name) && e.contains("non-finite"), "{e}");
}

fn table_err(text: &str, name: &str) -> String {
    data::parse_table(text.as_bytes(), name).err().expect("refused").to_string()
}

#[test]
fn an_unclosed_quote_is_an_error_with_its_line_number() {
    let e = table_err("text,label\n\"fine\",a\nok,b\n\"this never ends,c\nmore,d\nand more,e\n", "reviews.csv");
    assert!(e.contains("reviews.csv") && e.contains("line 4") && e.contains("never closed"), "{e}");
    let e = table_err("text\tlabel\nok\ta\n\"open\tb\n", "t.tsv");
    assert!(e.contains("line 3"), "{e}");
    // Quotes that do close, escaped quotes, quotes inside an unquoted field and quoted newlines
    // are all fine.
    let t = data::parse_table(b"text,label\n\"say \"\"hi\"\"\",a\nit's 5\" tall,b\n\"two\nlines\",c\n", "ok.csv").unwrap();
    assert_eq!(t.rows, vec![vec!["say \"hi\"".to_string(), "a".into()], vec!["it's 5\" tall".into(), "b".into()], vec!["two\nlines".into(), "c".into()]]);
}

#[test]
fn cells_columns_and_classes_have_limits_that_the_message_states() {
    let long = "x".repeat(data::MAX_CELL_BYTES + 1);
    let e = table_err(&format!("text,label\nshort,a\n{long},b\n"), "big.csv");
    assert!(e.contains("row 2, column \"text\"") && e.contains(&format!("{} bytes long; the limit is {}", long.len(), data::MAX_CELL_BYTES)), "{e}");
    let e = table_err(&format!("{long}\n"), "big.txt");
    assert!(e.contains("row 1"), "{e}");
    // JSON Lines with a new key on every line.
    let lines: String = (0..2000).map(|i| format!("{{\"k{i}\": 1}}\n")).collect();
    let e = table_err(&lines, "keys.jsonl");
    assert!(e.contains("more than 1024 different keys") && e.contains("line 1025"), "{e}");
    // A label column with a class per row.
    let rows: Vec<Example> = (0..1500).map(|i| Example { text: format!("t{i}"), label: format!("l{i}") }).collect();
    let e = data::label_vocab(&rows, "many.csv", "text").err().unwrap().to_string();
    assert!(e.contains("1500 different values; the limit is 1000 classes"), "{e}");
}

#[test]
fn a_chat_template_that_never_ends_runs_out_of_fuel_quickly() {
    let conv = vec![Message { role: "user".into(), content: "hi".into() }];
    let t0 = std::time::Instant::now();
    let endless = ChatTemplate::new("{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}", "", "").unwrap();
    let e = endless.render(&conv, true).err().unwrap().to_string();
    assert!(e.contains("did not finish") && e.contains("budget"), "{e}");
    // Recursion through a macro.
    let deep = ChatTemplate::new("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "", "").unwrap();
    let e = deep.render(&conv, true).err().unwrap().to_string();
    assert!(e.contains("failed") || e.contains("did not finish"), "{e}");
    // Memory: a string doubled until it is huge.
    let big = ChatTemplate::new("{% set s = namespace(v='x') %}{% for i in range(64) %}{% set s.v = s.v ~ s.v %}{% endfor %}{{ s.v | length }}", "", "").unwrap();
    assert!(big.render(&conv, true).is_err());
    assert!(t0.elapsed().as_secs() < 60, "bounded: {:?}", t0.elapsed());
    // A real template still renders.
    let jinja = String::from_utf8(read("tiny-llama", "chat_template.jinja")).unwrap();
    assert!(ChatTemplate::new(&jinja, "<s>", "</s>").unwrap().render(&conv, true).unwrap().contains("hi"));
}

fn labels() -> Vec<String> {
    vec!["negative".into(), "positive".into()]
}

#[test]
fn checkpoint_indices_and_counts_are_validated_before_use() {
    let (train, eval) = (reviews(16, 0, false), reviews(6, 100, false));
    let r = Recipe { batch_size: 4, max_len: 24, ..Recipe::default() };
    let mut s = TrainSession::new(&mut tiny(), &train, &eval, labels(), r, &Device::flex()).unwrap();
    pollster::block_on(s.step()).unwrap();
    let bytes = pollster::block_on(s.checkpoint()).unwrap();
    let parts: Vec<Vec<u8>> = codec::unpack(&bytes).unwrap().into_iter().map(<[u8]>::to_vec).collect();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| -> String {
        let mut state: serde_json::Value = serde_json::from_slice(&parts[0]).unwrap();
        f(&mut state);
        let st = serde_json::to_vec(&state).unwrap();
        let packed = codec::pack(&[&st, &parts[1], &parts[2], &parts[3]]);
        match TrainSession::resume(&mut tiny(), &train, &eval, &packed, &Device::flex()) {
            Ok(_) => "accepted".into(),
            Err(e) => e.to_string(),
        }
    };
    assert_eq!(edit(&|_| {}), "accepted");
    assert!(edit(&|s| s["order"][0][0] = serde_json::json!(1_000_000)).contains("damaged"));
    assert!(edit(&|s| s["cursor"] = serde_json::json!(99)).contains("damaged"));
    assert!(edit(&|s| s["draws"] = serde_json::json!(1u64 << 40)).contains("damaged"));
    assert!(edit(&|s| s["epoch"] = serde_json::json!(500)).contains("damaged"));
    assert!(edit(&|s| s["best"] = serde_json::json!([0, 1])).contains("damaged"));
    assert!(edit(&|s| s["recipe"]["batch_size"] = serde_json::json!(0)).contains("recipe is not valid"));
    assert!(edit(&|s| s["state"]["trainable_groups"] = serde_json::json!(400)).contains("do not fit"));
    // A part length past 4 GiB is refused, not wrapped.
    let mut long = bytes[..8].to_vec();
    long.extend(((1u64 << 32) + 4).to_le_bytes());
    long.extend([0u8; 16]);
    let e = TrainSession::resume(&mut tiny(), &train, &eval, &long, &Device::flex()).err().unwrap().to_string();
    assert!(e.contains("cut short"), "{e}");
}

/// Every float parameter's values.
fn weights<M: Module>(m: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.push(p.val().flatten(0, D - 1));
        }
    }
    let mut c = Collect(Vec::new());
    m.visit(&mut c);
    c.0.into_iter().map(|t| pollster::block_on(read_f32(t)).unwrap()).collect()
}

#[test]
fn a_non_finite_loss_stops_the_run_before_the_step_is_applied() {
    // Query and key weights of 1e38 (finite, so loading accepts them) make attention scores of
    // inf, which softmax turns into NaN: the first loss is NaN.
    let w = edit_tensor(&read("tiny-bert", "model.safetensors"), "bert.encoder.layer.0.attention.self.query.weight", |v| v.iter_mut().for_each(|x| *x = 1e38));
    let w = edit_tensor(&w, "bert.encoder.layer.0.attention.self.key.weight", |v| v.iter_mut().for_each(|x| *x = 1e38));
    let mut ckpt = Checkpoint::from_bytes(&read("tiny-bert", "config.json"), &read("tiny-bert", "tokenizer.json"), w).unwrap();
    let (train, eval) = (reviews(16, 0, false), reviews(6, 100, false));
    let r = Recipe { batch_size: 4, max_len: 24, ..Recipe::default() };
    let mut s = TrainSession::new(&mut ckpt, &train, &eval, labels(), r, &Device::flex()).unwrap();
    let before = weights(&s.classifier().unwrap().model);
    let e = pollster::block_on(s.step()).err().expect("a NaN loss stops the run");
    let msg = e.to_string();
    assert!(matches!(e, Error::Other(_)) && msg.contains("became NaN at step 1") && msg.contains("the step was not applied"), "{msg}");
    assert_eq!(s.step, 0, "no step counted");
    let after = weights(&s.classifier().unwrap().model);
    let bits = |w: &Vec<Vec<f32>>| w.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&before), bits(&after), "the weights are those before the refused step");
    // The run can still be checkpointed with the good weights.
    assert!(pollster::block_on(s.checkpoint()).is_ok());
}

#[test]
fn the_cli_refuses_devices_pipes_and_folders_as_files() {
    let model = fixture("tiny-bert");
    let run = |train: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_burnish"))
            .args(["train", "--model", model.to_str().unwrap(), "--train", train, "--out", "/tmp/burnish-never-written"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    // /dev/zero never ends: read whole, it would exhaust memory.
    let e = run("/dev/zero");
    assert!(e.contains("/dev/zero is not a regular file"), "{e}");
    // A named pipe with no writer would block for ever.
    let fifo = std::env::temp_dir().join(format!("burnish-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let e = run(fifo.to_str().unwrap());
    assert!(e.contains("is not a regular file"), "{e}");
    std::fs::remove_file(&fifo).unwrap();
    // A symbolic link to a real file is followed (the Hugging Face cache is made of them).
    let link = std::env::temp_dir().join(format!("burnish-link-{}.csv", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let e = run(link.to_str().unwrap());
    assert!(e.contains("is not a regular file"), "a link to a device is refused too: {e}");
    std::fs::remove_file(&link).unwrap();
}
