//! Multi-task fine-tuning: two tasks (their own labels and heads) on one shared encoder. The
//! batches come from each task in the configured proportions (exactly per epoch when
//! proportional, alternating when round-robin), both tasks learn, metrics are per task, and
//! each task exports as a classifier folder that predicts exactly like the multi-task model.

use burnish::data::Example;
use burnish::engine::multitask::{MultiTaskSession, TaskData, TaskSampling, task_name};
use burnish::infer::classify::build_classifier;
use burnish::recipe::{Recipe, Strategy};

use super::common::*;

/// Topic task: the noun tells the label (three labels).
fn topics(n: usize, offset: usize) -> Vec<Example> {
    let kinds = [("film", ["movie", "film", "cinema"]), ("music", ["song", "album", "concert"]), ("sport", ["match", "game", "race"])];
    (offset..offset + n)
        .map(|i| {
            let (label, nouns) = kinds[i % 3];
            let adj = ["long", "new", "short", "late"][(i / 3) % 4];
            Example { text: format!("a {adj} {}", nouns[(i / 12) % 3]), label: label.into() }
        })
        .collect()
}

fn tasks(a: usize, b: usize) -> Vec<TaskData> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        TaskData { name: "sentiment".into(), train: reviews(a, 0, false), eval: reviews(16, 500, false), labels: s(&["negative", "positive"]) },
        TaskData { name: "topic".into(), train: topics(b, 0), eval: topics(18, 600), labels: s(&["film", "music", "sport"]) },
    ]
}

fn recipe(sampling: TaskSampling, epochs: usize, lr: f64) -> Recipe {
    Recipe { epochs, lr, batch_size: 8, max_len: 24, task_sampling: sampling, warmup_ratio: 0.0, ..Recipe::default() }
}

#[test]
fn proportional_sampling_draws_each_task_by_its_size() {
    let mut ckpt = tiny();
    let dev = burnish::backend::cpu().0;
    // 24 and 72 rows: 3 and 9 batches of 8 per epoch.
    let mut s = MultiTaskSession::new(&mut ckpt, &tasks(24, 72), recipe(TaskSampling::Proportional, 6, 1e-4), &dev).unwrap();
    assert_eq!(s.total_steps, 72);
    assert_eq!((s.tasks()[0].share, s.tasks()[1].share), (0.25, 0.75));
    let mut sequence = Vec::new();
    while !s.is_done() {
        let r = pollster::block_on(s.step()).unwrap();
        sequence.push(r.detail.task);
        if r.step % 12 == 0 {
            let epochs = r.step / 12;
            assert_eq!(r.drawn, vec![3 * epochs, 9 * epochs], "every epoch holds each task's batches once");
            let eval = r.eval.expect("per-task metrics at each epoch end");
            assert_eq!(eval.len(), 2);
            assert_eq!((eval[0].labels.len(), eval[1].labels.len()), (2, 3));
        }
    }
    // Within an epoch the tasks are shuffled, not in blocks, and epochs differ.
    let epochs: Vec<&[usize]> = sequence.chunks(12).collect();
    assert!(epochs.windows(2).any(|w| w[0] != w[1]), "every epoch has the same order: {sequence:?}");
    // Over the run the small task has exactly its configured share, 25 %.
    let small = sequence.iter().filter(|&&t| t == 0).count();
    assert_eq!(small * 4, sequence.len());
}

#[test]
fn round_robin_alternates_tasks() {
    let mut ckpt = tiny();
    let dev = burnish::backend::cpu().0;
    let mut s = MultiTaskSession::new(&mut ckpt, &tasks(24, 72), recipe(TaskSampling::RoundRobin, 2, 1e-4), &dev).unwrap();
    assert_eq!((s.tasks()[0].share, s.tasks()[1].share), (0.5, 0.5));
    let mut sequence = Vec::new();
    while !s.is_done() {
        sequence.push(pollster::block_on(s.step()).unwrap().detail.task);
    }
    assert_eq!(sequence.len(), 24);
    assert!(sequence.iter().enumerate().all(|(i, &t)| t == i % 2), "{sequence:?}");
    assert_eq!(s.drawn, vec![12, 12], "the small task repeats its data to keep its turns");
}

#[test]
fn both_tasks_learn_and_each_exports_as_its_own_classifier() {
    let mut ckpt = tiny();
    let dev = burnish::backend::cpu().0;
    let mut s = MultiTaskSession::new(&mut ckpt, &tasks(48, 48), recipe(TaskSampling::Proportional, 15, 3e-3), &dev).unwrap();
    let before = pollster::block_on(s.evaluate()).unwrap();
    while !s.is_done() {
        pollster::block_on(s.step()).unwrap();
    }
    let after = pollster::block_on(s.evaluate()).unwrap();
    for (t, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(a.accuracy >= 0.9, "task {t}: accuracy {} (before {})", a.accuracy, b.accuracy);
        assert!(a.loss < b.loss, "task {t}: eval loss {} → {}", b.loss, a.loss);
    }
    // Each task's folder is a plain classifier with that task's labels and the shared encoder.
    let files = pollster::block_on(s.export(&ckpt)).unwrap();
    let file = |name: &str| files.iter().find(|f| f.0 == name).unwrap_or_else(|| panic!("{name} missing")).1.clone();
    let mut topic = burnish::Checkpoint::from_bytes(&file("topic/config.json"), &file("topic/tokenizer.json"), file("topic/model.safetensors")).unwrap();
    assert_eq!(topic.config.labels, vec!["film", "music", "sport"]);
    let (model, report) = build_classifier(&topic, &topic.config.labels.clone(), 0, &dev).unwrap();
    assert!(report.initialized.is_empty(), "{:?}", report.initialized);
    let clf = burnish::infer::classify::Classifier { model, labels: topic.config.labels.clone(), pad_id: topic.tokenizer.pad_id };
    let texts = ["a new song", "a late race", "a short movie"];
    let rows: Vec<Vec<u32>> = texts.iter().map(|t| topic.tokenizer.encode(t, 24).unwrap()).collect();
    let exported = pollster::block_on(clf.logits(&rows, 8, &dev)).unwrap();
    let own = pollster::block_on(s.classifier(1).unwrap().logits(&rows, 8, &dev)).unwrap();
    for (e, o) in exported.iter().zip(&own) {
        assert!(max_abs_diff(e, o) < 1e-5, "exported {e:?} vs session {o:?}");
    }
    let preds = pollster::block_on(s.predict(&mut ckpt, "a new song")).unwrap();
    assert_eq!(preds.len(), 2);
    assert_eq!(preds[1].label, "music");
    assert!(files.iter().any(|f| f.0 == "sentiment/model.safetensors"));
}

#[test]
fn bad_multitask_setups_get_specific_messages() {
    let mut ckpt = tiny();
    let dev = burnish::backend::cpu().0;
    let one = tasks(8, 8)[..1].to_vec();
    let err = |r: burnish::Result<MultiTaskSession>| r.err().map(|e| e.to_string()).unwrap_or_default();
    let r = recipe(TaskSampling::Proportional, 1, 1e-4);
    assert!(err(MultiTaskSession::new(&mut ckpt, &one, r.clone(), &dev)).contains("at least two tasks"));
    let mut same = tasks(8, 9);
    same[1].name = "sentiment".into();
    assert!(err(MultiTaskSession::new(&mut ckpt, &same, r.clone(), &dev)).contains("both called \"sentiment\""));
    let lora = Recipe { strategy: Strategy::Lora, ..r };
    assert!(err(MultiTaskSession::new(&mut ckpt, &tasks(8, 9), lora, &dev)).contains("full strategy"));
    assert_eq!(task_name("data/My reviews (v2).csv"), "My-reviews--v2-");
    assert_eq!(task_name("spam.tsv"), "spam");
}
