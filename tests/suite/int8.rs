//! The int8 classifier export: a quarter-size `model.safetensors` (I8 rows with an F32 scale per
//! row) that Burnish reads back dequantized, predicting within the quantization error of the f32
//! model, with a report whose int8 scores are the reloaded model's own; a damaged int8 file is
//! refused by name.

use burn::tensor::Device;
use burnish::backend::read_f32;
use burnish::engine::classifier::TrainSession;
use burnish::models::bert::BertInput;
use burnish::recipe::Recipe;

use super::common::*;

#[test]
fn int8_classifier_reloads_close_to_f32_with_an_honest_report() {
    let dev = Device::flex();
    let mut ckpt = tiny();
    let labels = vec!["negative".to_string(), "positive".to_string()];
    let r = Recipe { epochs: 1, lr: 1e-2, batch_size: 8, max_len: 24, warmup_ratio: 0.0, seed: 9, ..Recipe::default() };
    let mut s = TrainSession::new(&mut ckpt, &reviews(32, 0, false), &reviews(16, 40, false), labels.clone(), r, &dev).unwrap();
    for _ in 0..4 {
        pollster::block_on(s.step()).unwrap();
    }
    let (files, report) = pollster::block_on(s.export_int8(&ckpt)).unwrap();
    let files: std::collections::HashMap<String, Vec<u8>> = files.into_iter().collect();
    let weights = &files["model.safetensors"];
    assert_eq!(report.int8_bytes, weights.len());
    assert!(report.int8_bytes * 100 < report.f32_bytes * 40, "int8 {} vs f32 {} bytes", report.int8_bytes, report.f32_bytes);
    let st = safetensors::SafeTensors::deserialize(weights).unwrap();
    assert_eq!(st.tensor("bert.encoder.layer.0.attention.self.query.weight").unwrap().dtype(), safetensors::Dtype::I8);
    assert_eq!(st.tensor("bert.encoder.layer.0.attention.self.query.weight_scale").unwrap().shape(), &[32]);

    // Read back as any folder is: the weights dequantized, nothing initialised, nothing left over.
    let back = burnish::Checkpoint::from_bytes(&files["config.json"], &files["tokenizer.json"], weights.clone()).unwrap();
    let (q, load) = burnish::infer::classify::build_classifier(&back, &labels, 0, &dev).unwrap();
    assert!(load.initialized.is_empty() && load.unexpected.is_empty(), "{load:?}");
    let rows: Vec<Vec<u32>> = reviews(16, 40, false).iter().map(|e| ckpt.tokenizer.encode(&e.text, 24).unwrap()).collect();
    let input = BertInput::from_rows(&rows, ckpt.tokenizer.pad_id, &dev);
    let a = pollster::block_on(read_f32(q.forward(&input))).unwrap();
    let b = pollster::block_on(read_f32(s.classifier().unwrap().model.forward(&input))).unwrap();
    let d = max_abs_diff(&a, &b);
    assert!(d > 0.0 && d < 0.05, "int8 logits differ from f32 by {d}");
    // The report's int8 scores are the reloaded model's.
    let clf = burnish::infer::classify::Classifier { model: q, labels: labels.clone(), pad_id: ckpt.tokenizer.pad_id };
    let enc = burnish::infer::classify::encode_examples(&mut ckpt, &reviews(16, 40, false), &labels, 24, "eval").unwrap();
    let (m, _) = pollster::block_on(clf.evaluate(&enc, 32, &dev)).unwrap();
    assert_eq!(m.accuracy, report.int8.accuracy);
    assert!((report.accuracy_change - (report.int8.accuracy - report.f32.accuracy)).abs() < 1e-12);

    // An int8 matrix without its scales is refused by name.
    let mut named: Vec<(String, safetensors::tensor::TensorView<'_>)> = Vec::new();
    for (n, v) in st.tensors() {
        if n != "bert.encoder.layer.0.attention.self.query.weight_scale" {
            named.push((n, v));
        }
    }
    let broken = safetensors::serialize(named, None).unwrap();
    let e = burnish::hf::weights::ParamSource::from_safetensors(&broken, 0.02, 0).err().expect("refused").to_string();
    assert!(e.contains("query.weight is int8 but the file has no bert.encoder.layer.0.attention.self.query.weight_scale"), "{e}");
}
