//! Generation metrics against their reference implementations (tests/fixtures/make_text_metrics.py):
//! exact match with SQuAD's normalisation, ROUGE-L F-measure from `rouge_score`, chrF from
//! sacreBLEU (per sentence and over a corpus).

use burnish::infer::metrics::{chrf_score, chrf_stats, exact_match, generation_metrics, rouge_l};

use super::common::*;

#[test]
fn exact_match_rouge_l_and_chrf_equal_the_reference_packages() {
    let r = read_json(fixture("text_metrics_reference.json"));
    let cases = r["cases"].as_array().unwrap();
    let mut pairs = Vec::new();
    for c in cases {
        let (p, refr) = (c["prediction"].as_str().unwrap(), c["reference"].as_str().unwrap());
        pairs.push((p.to_string(), refr.to_string()));
        let chrf = chrf_score(&chrf_stats(p, refr));
        assert!((chrf - c["chrf"].as_f64().unwrap()).abs() < 1e-9, "chrF of {p:?} vs {refr:?}: {chrf} vs {}", c["chrf"]);
        if let Some(em) = c["exact_match"].as_f64() {
            assert_eq!(exact_match(p, refr), em, "exact match of {p:?} vs {refr:?}");
            let rl = rouge_l(p, refr);
            assert!((rl - c["rouge_l"].as_f64().unwrap()).abs() < 1e-12, "ROUGE-L of {p:?} vs {refr:?}: {rl} vs {}", c["rouge_l"]);
        }
    }
    let m = generation_metrics(&pairs);
    assert!((m.chrf - r["corpus_chrf"].as_f64().unwrap()).abs() < 1e-9, "corpus chrF {} vs {}", m.chrf, r["corpus_chrf"]);
    assert_eq!(m.count, pairs.len());
    assert!(m.exact_match > 0.0 && m.exact_match < 1.0 && m.rouge_l > 0.0 && m.rouge_l < 1.0);
    // Identical texts score 1 / 100; empty predictions 0.
    assert_eq!((exact_match("Blue.", "blue"), rouge_l("a b c", "a b c"), chrf_score(&chrf_stats("abc def", "abc def"))), (1.0, 1.0, 100.0));
    assert_eq!((rouge_l("", "a"), chrf_score(&chrf_stats("", "abc"))), (0.0, 0.0));
}
