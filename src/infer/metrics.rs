//! Classification metrics: accuracy, macro-F1, per-class precision/recall/F1, confusion matrix.
//! Generation metrics against references: exact match (SQuAD's normalisation), ROUGE-L
//! (`rouge_score`'s F-measure) and chrF (sacreBLEU's defaults), checked against those packages
//! by tests/fixtures/make_text_metrics.py.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Metrics {
    pub loss: f64,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[gold][predicted]`
    pub confusion: Vec<Vec<usize>>,
    pub labels: Vec<String>,
    pub count: usize,
}

impl Metrics {
    /// The value of `metric` (what early stopping watches).
    pub fn watched(&self, metric: crate::recipe::EvalMetric) -> f64 {
        use crate::recipe::EvalMetric;
        match metric {
            EvalMetric::Accuracy => self.accuracy,
            EvalMetric::MacroF1 => self.macro_f1,
            EvalMetric::Loss => self.loss,
        }
    }
}

/// `gold` and `pred` are label ids; `loss` is the mean cross-entropy already computed.
pub fn classification_metrics(gold: &[usize], pred: &[usize], labels: &[String], loss: f64) -> Metrics {
    let k = labels.len();
    let mut confusion = vec![vec![0usize; k]; k];
    for (&g, &p) in gold.iter().zip(pred) {
        if g < k && p < k {
            confusion[g][p] += 1;
        }
    }
    let n = gold.len();
    let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
    let per_class: Vec<ClassMetrics> = (0..k)
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let predicted: usize = (0..k).map(|g| confusion[g][c]).sum();
            let support: usize = confusion[c].iter().sum();
            let precision = if predicted > 0 { tp / predicted as f64 } else { 0.0 };
            let recall = if support > 0 { tp / support as f64 } else { 0.0 };
            let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
            ClassMetrics { label: labels[c].clone(), precision, recall, f1, support }
        })
        .collect();
    let macro_f1 = if k > 0 { per_class.iter().map(|c| c.f1).sum::<f64>() / k as f64 } else { 0.0 };
    Metrics {
        loss,
        accuracy: if n > 0 { correct as f64 / n as f64 } else { 0.0 },
        macro_f1,
        per_class,
        confusion,
        labels: labels.to_vec(),
        count: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_confusion() {
        let labels = vec!["a".to_string(), "b".to_string()];
        // gold a,a,b,b,b ; pred a,b,b,b,a
        let m = classification_metrics(&[0, 0, 1, 1, 1], &[0, 1, 1, 1, 0], &labels, 0.5);
        assert_eq!(m.confusion, vec![vec![1, 1], vec![1, 2]]);
        assert!((m.accuracy - 0.6).abs() < 1e-12);
        // a: p=1/2 r=1/2 f1=.5 ; b: p=2/3 r=2/3 f1=2/3
        assert!((m.macro_f1 - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
    }
}

/// SQuAD's answer normalisation: lower case, punctuation and the articles a/an/the removed,
/// whitespace collapsed.
pub fn normalize_answer(s: &str) -> String {
    let lower: String = s.to_lowercase().chars().filter(|c| !c.is_ascii_punctuation()).collect();
    lower.split_whitespace().filter(|w| !matches!(*w, "a" | "an" | "the")).collect::<Vec<_>>().join(" ")
}

/// 1.0 when the normalised prediction equals the normalised reference.
pub fn exact_match(prediction: &str, reference: &str) -> f64 {
    f64::from(u8::from(normalize_answer(prediction) == normalize_answer(reference)))
}

/// `rouge_score`'s default tokenizer: lower case, runs of anything but letters and digits are
/// separators (letters and digits of every script count, where `rouge_score` keeps only a–z, 0–9).
fn rouge_tokens(s: &str) -> Vec<String> {
    s.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty()).map(String::from).collect()
}

/// ROUGE-L F-measure: the longest common subsequence of tokens, F1 of its precision
/// (over the prediction) and recall (over the reference).
pub fn rouge_l(prediction: &str, reference: &str) -> f64 {
    let (p, r) = (rouge_tokens(prediction), rouge_tokens(reference));
    if p.is_empty() || r.is_empty() {
        return 0.0;
    }
    let mut prev = vec![0usize; r.len() + 1];
    for a in &p {
        let mut row = vec![0usize; r.len() + 1];
        for (j, b) in r.iter().enumerate() {
            row[j + 1] = if a == b { prev[j] + 1 } else { row[j].max(prev[j + 1]) };
        }
        prev = row;
    }
    let lcs = prev[r.len()] as f64;
    let (precision, recall) = (lcs / p.len() as f64, lcs / r.len() as f64);
    if lcs == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) }
}

/// chrF's character n-gram orders (sacreBLEU's default: 1 to 6, β = 2, whitespace removed).
pub const CHRF_ORDER: usize = 6;

/// chrF statistics of one prediction: per order, [prediction n-grams, reference n-grams,
/// matched n-grams]. Sum them over a corpus and score the sum with `chrf_score`.
pub fn chrf_stats(prediction: &str, reference: &str) -> [u64; 3 * CHRF_ORDER] {
    let chars = |s: &str| -> Vec<char> { s.chars().filter(|c| !c.is_whitespace()).collect() };
    let (h, r) = (chars(prediction), chars(reference));
    let mut out = [0u64; 3 * CHRF_ORDER];
    for n in 1..=CHRF_ORDER {
        let grams = |v: &[char]| -> std::collections::HashMap<Vec<char>, u64> {
            let mut m = std::collections::HashMap::new();
            for g in v.windows(n) {
                *m.entry(g.to_vec()).or_insert(0) += 1;
            }
            m
        };
        let (gh, gr) = (grams(&h), grams(&r));
        let matched: u64 = gh.iter().map(|(g, &c)| c.min(gr.get(g).copied().unwrap_or(0))).sum();
        // Like sacreBLEU, an order the reference has no n-gram of counts no prediction n-grams.
        out[3 * (n - 1)] = if gr.is_empty() { 0 } else { gh.values().sum() };
        out[3 * (n - 1) + 1] = gr.values().sum();
        out[3 * (n - 1) + 2] = matched;
    }
    out
}

/// chrF (0–100) from summed statistics: precision and recall averaged over the orders both
/// sides have n-grams of, then their F-score with β = 2 (recall weighs more), as sacreBLEU.
pub fn chrf_score(stats: &[u64; 3 * CHRF_ORDER]) -> f64 {
    let (mut precision, mut recall, mut orders) = (0.0, 0.0, 0usize);
    for n in 0..CHRF_ORDER {
        let (hyp, refs, matched) = (stats[3 * n], stats[3 * n + 1], stats[3 * n + 2]);
        if hyp > 0 && refs > 0 {
            precision += matched as f64 / hyp as f64;
            recall += matched as f64 / refs as f64;
            orders += 1;
        }
    }
    if orders == 0 {
        return 0.0;
    }
    let (p, r) = (precision / orders as f64, recall / orders as f64);
    if p + r == 0.0 { 0.0 } else { 100.0 * 5.0 * p * r / (4.0 * p + r) }
}

/// Generation quality over (prediction, reference) pairs: mean exact match and ROUGE-L (0–1)
/// and corpus chrF (0–100).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenerationMetrics {
    pub exact_match: f64,
    pub rouge_l: f64,
    pub chrf: f64,
    pub count: usize,
}

pub fn generation_metrics(pairs: &[(String, String)]) -> GenerationMetrics {
    let n = pairs.len().max(1) as f64;
    let mut stats = [0u64; 3 * CHRF_ORDER];
    for (p, r) in pairs {
        for (s, x) in stats.iter_mut().zip(chrf_stats(p, r)) {
            *s += x;
        }
    }
    GenerationMetrics {
        exact_match: pairs.iter().map(|(p, r)| exact_match(p, r)).sum::<f64>() / n,
        rouge_l: pairs.iter().map(|(p, r)| rouge_l(p, r)).sum::<f64>() / n,
        chrf: chrf_score(&stats),
        count: pairs.len(),
    }
}
