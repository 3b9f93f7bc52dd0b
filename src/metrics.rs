//! Classification metrics: accuracy, macro-F1, per-class precision/recall/F1, confusion matrix.

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
