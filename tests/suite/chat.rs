//! Chat data: the model's chat template rendered exactly as transformers' `apply_chat_template`
//! (SmolLM2's, from its GGUF; fixture from tests/fixtures/make_decoders.py --gguf), every
//! assistant turn learnt and nothing else, chat training of the tiny Llama (its
//! chat_template.jinja) and the export carrying the template; bad input refused by name.

use burn::tensor::Device;
use burnish::hf::chat_template::{ChatTemplate, Message};
use burnish::data::chat::{chat_rows, conversations_from_table};
use burnish::infer::generate::{GenerateOptions, Generation};
use burnish::data::parse_table;
use burnish::models::causal::from_gguf;
use burnish::engine::causal_lm::LmSession;
use burnish::data::decoder::{prompt_ids, rows_for_task};
use burnish::recipe::Recipe;

use super::causal::load_causal;
use super::common::*;

fn messages(v: &serde_json::Value) -> Vec<Message> {
    serde_json::from_value(v.clone()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn smollm2_chat_template_renders_like_transformers_and_masks_all_but_the_assistant() {
    let r = read_json(fixture("gguf_reference.json"));
    let bytes = std::fs::read(root().join("www/assets/models/SmolLM2-135M-Instruct.Q4_1.gguf")).expect("run scripts/fetch_assets.py");
    let cm = from_gguf(&bytes).unwrap();
    let t = cm.chat_template.as_ref().expect("the GGUF carries a chat template");
    let tc: serde_json::Value = serde_json::from_slice(cm.tokenizer_config.as_ref().unwrap()).unwrap();
    assert_eq!((tc["bos_token"].as_str(), tc["eos_token"].as_str()), (Some("<|im_start|>"), Some("<|im_end|>")));
    for case in r["smollm2"]["chat"].as_array().unwrap() {
        let m = messages(&case["messages"]);
        assert_eq!(t.render(&m, false).unwrap(), case["text"].as_str().unwrap());
        assert_eq!(t.render(&m, true).unwrap(), case["text_generation_prompt"].as_str().unwrap());
        assert_eq!(cm.tokenizer.encode_plain(case["text"].as_str().unwrap()).unwrap(), ids(&case["ids"]));
    }
    // Rows: the whole rendering's ids; weight 1 exactly on each assistant answer and its <|im_end|>\n.
    let cases = r["smollm2"]["chat"].as_array().unwrap();
    let convs: Vec<Vec<Message>> = cases[..2].iter().map(|c| messages(&c["messages"])).collect();
    let rows = chat_rows(&cm.tokenizer, t, &convs, 512).unwrap();
    for (row, case) in rows.iter().zip(cases) {
        assert_eq!(row.ids, ids(&case["ids"]));
        let learnt: Vec<u32> = row.ids.iter().zip(&row.weights).filter(|(_, w)| **w == 1.0).map(|(i, _)| *i).collect();
        let answers: Vec<u32> = messages(&case["messages"])
            .iter()
            .filter(|m| m.role == "assistant")
            .flat_map(|m| cm.tokenizer.encode_plain(&format!("{}<|im_end|>\n", m.content)).unwrap())
            .collect();
        assert_eq!(learnt, answers);
        assert!(row.weights.iter().all(|&w| w == 0.0 || w == 1.0));
    }
    // Cut to max_len; a conversation whose answer starts past max_len is refused.
    let short = chat_rows(&cm.tokenizer, t, &convs, 40).unwrap();
    assert_eq!(short[0].ids.len(), 40);
    let e = chat_rows(&cm.tokenizer, t, &convs, 10).err().unwrap().to_string();
    assert!(e.contains("row 1: the first assistant turn starts after max_len 10"), "{e}");
}

#[test]
fn chat_tuning_the_tiny_llama_learns_the_answers_and_exports_its_template() {
    let cm = load_causal(fixture("tiny-llama"));
    assert!(cm.chat_template.is_some(), "chat_template.jinja is read");
    let table = parse_table(&std::fs::read(root().join("tests/data/chat.jsonl")).unwrap(), "chat.jsonl").unwrap();
    let r = Recipe { task: "instruct".parse().unwrap(), epochs: 30, lr: 1e-2, batch_size: 4, max_len: 64, warmup_ratio: 0.0, weight_decay: 0.0, seed: 3, ..Recipe::default() };
    let (rows, prompts) = rows_for_task(&cm, &table, &r).unwrap();
    assert_eq!((rows.len(), prompts.len()), (10, 10));
    assert!(prompts.iter().all(|p| p.chat));
    assert_eq!(prompts[3].prompt, "user: Say hello.\nassistant: ");
    assert_eq!(prompts[3].reference.as_deref(), Some("Hello there!"));
    assert_eq!(prompts[5].prompt, "user: What colour is grass?\nassistant: Green.<|endoftext|>\nuser: And snow?\nassistant: ");
    let mut s = LmSession::new(&cm, rows.clone(), rows.clone(), r, &Device::flex()).unwrap();
    let before = pollster::block_on(s.score(&rows)).unwrap();
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
    let after = pollster::block_on(s.score(&rows)).unwrap();
    assert!(after.loss < before.loss * 0.2, "assistant-turn loss {} → {}", before.loss, after.loss);
    let model = s.inference_model().unwrap();
    for p in [&prompts[3], &prompts[5]] {
        let ids = prompt_ids(&cm.tokenizer, &p.prompt, p.chat).unwrap();
        let mut g = Generation::new(&model, ids, GenerateOptions { max_new_tokens: 8, ..Default::default() }, cm.eos.clone(), 128).unwrap();
        while pollster::block_on(g.step(&model, &cm.tokenizer)).unwrap().is_some() {}
        assert_eq!(g.text(&cm.tokenizer).unwrap(), p.reference.clone().unwrap());
    }
    let files = pollster::block_on(s.export(&cm, "tiny-llama")).unwrap();
    let get = |n: &str| files.iter().find(|f| f.0 == n).map(|f| f.1.clone());
    assert_eq!(get("chat_template.jinja"), Some(std::fs::read(fixture("tiny-llama").join("chat_template.jinja")).unwrap()));
    assert!(get("tokenizer_config.json").is_some());
}

#[test]
fn bad_chat_input_is_refused_by_name() {
    let table = |text: &str| parse_table(text.as_bytes(), "c.jsonl").unwrap();
    let err = |t: &str| conversations_from_table(&table(t), "messages").err().unwrap().to_string();
    assert!(err(r#"{"messages": "hi"}"#).contains("row 1: \"messages\" must be a list"));
    assert!(err(r#"{"messages": [{"role": "human", "content": "hi"}]}"#).contains("unknown role \"human\""));
    assert!(err(r#"{"messages": [{"role": "user", "content": "hi"}]}"#).contains("no assistant turn"));
    // A model without a chat template cannot take conversations.
    let gpt2 = load_causal(fixture("tiny-gpt2"));
    let r = Recipe { task: "instruct".parse().unwrap(), ..Recipe::default() };
    let e = rows_for_task(&gpt2, &table(r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}"#), &r).err().unwrap().to_string();
    assert!(e.contains("this model has no chat template"), "{e}");
    assert!(ChatTemplate::new("{% for m in messages %}", "", "").err().unwrap().to_string().contains("does not parse"));
    let raising = ChatTemplate::new("{{ raise_exception('Conversation roles must alternate') }}", "", "").unwrap();
    assert!(raising.render(&[], false).err().unwrap().to_string().contains("Conversation roles must alternate"));
}
