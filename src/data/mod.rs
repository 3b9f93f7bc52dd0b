//! Task data from bytes: CSV, TSV, JSON Lines, Parquet or plain text → a table of string cells →
//! labelled examples (text column + label column chosen by name) → label vocabulary and a
//! seeded stratified train/eval split. Every failure names the file, line or column concerned.


pub mod chat;
pub mod decoder;
pub mod parquet;
pub mod text;

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Tsv,
    Jsonl,
    Parquet,
    Text,
}

impl Format {
    /// From the file extension; `.json` counts as JSON Lines, anything unknown as CSV.
    pub fn from_name(name: &str) -> Format {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".tsv") || lower.ends_with(".tab") {
            Format::Tsv
        } else if lower.ends_with(".jsonl") || lower.ends_with(".json") || lower.ends_with(".ndjson") {
            Format::Jsonl
        } else if lower.ends_with(".parquet") || lower.ends_with(".pq") {
            Format::Parquet
        } else if lower.ends_with(".txt") || lower.ends_with(".text") {
            Format::Text
        } else {
            Format::Csv
        }
    }
}

/// A parsed file: column names and rows of string cells (every row as long as `columns`).
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub name: String,
    pub format: Format,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Decodes UTF-8 (dropping a BOM); invalid bytes are reported with their line number.
pub fn decode_utf8<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let upto = e.valid_up_to();
        let line = bytes[..upto].iter().filter(|&&b| b == b'\n').count() + 1;
        crate::error::coded!(Data, "data.utf8", "{name}: invalid UTF-8 on line {line} (byte {byte}); save the file as UTF-8", name = name, line = line, byte = upto + 1)
    })
}

/// The most classes a label column may have: the page shows a k×k confusion matrix, and a
/// column with more distinct values is almost always the text column chosen by mistake.
pub const MAX_CLASSES: usize = crate::hf::config::limits::LABELS;
/// The longest cell (bytes) a table may hold; longer texts are cut to `max_len` tokens anyway.
pub const MAX_CELL_BYTES: usize = 1 << 20;
/// The most columns a table may have (JSON Lines with a new key on every line would otherwise
/// make a table of lines × keys cells).
pub const MAX_COLUMNS: usize = 1024;

/// The line on which a quoted field opens that never closes, following the csv crate's rules
/// (a quote opens a field only at its start; `""` inside is a quote), or `None`.
fn unclosed_quote(text: &str, delim: u8) -> Option<usize> {
    #[derive(PartialEq)]
    enum S {
        Start,
        Plain,
        Quoted,
        QuoteInQuoted,
    }
    let (mut state, mut line, mut opened) = (S::Start, 1usize, 1usize);
    for &b in text.as_bytes() {
        state = match (state, b) {
            (S::Start, b'"') => {
                opened = line;
                S::Quoted
            }
            (S::Quoted, b'"') => S::QuoteInQuoted,
            (S::QuoteInQuoted, b'"') => S::Quoted,
            (S::Quoted, _) => S::Quoted,
            (_, c) if c == delim || c == b'\n' => S::Start,
            _ => S::Plain,
        };
        if b == b'\n' {
            line += 1;
        }
    }
    (state == S::Quoted).then_some(opened)
}

pub fn parse_table(bytes: &[u8], name: &str) -> Result<Table> {
    parse_table_as(bytes, name, Format::from_name(name))
}

pub fn parse_table_as(bytes: &[u8], name: &str, format: Format) -> Result<Table> {
    if bytes.is_empty() {
        return Err(crate::error::coded!(Data, "data.empty-file", "{name}: the file is empty", name = name));
    }
    // A Parquet file is binary: it is recognised by its magic bytes whatever its name says. A
    // `.parquet` name on JSON Lines is the page's reading of a Parquet file (parquet_to_jsonl).
    let format = if parquet::is_parquet(bytes) {
        Format::Parquet
    } else if format == Format::Parquet && bytes.first() == Some(&b'{') {
        Format::Jsonl
    } else {
        format
    };
    let (columns, rows) = if format == Format::Parquet {
        parquet::parse_parquet(bytes, name)?
    } else {
        parse_text_table(bytes, name, format)?
    };
    checked_table(name, format, columns, rows)
}

fn parse_text_table(bytes: &[u8], name: &str, format: Format) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let text = decode_utf8(bytes, name)?;
    if text.trim().is_empty() {
        return Err(crate::error::coded!(Data, "data.empty-file", "{name}: the file is empty", name = name));
    }
    Ok(match format {
        Format::Csv => parse_delimited(text, name, b',')?,
        Format::Tsv => parse_delimited(text, name, b'\t')?,
        Format::Jsonl => parse_jsonl(text, name)?,
        Format::Text => {
            let rows: Vec<Vec<String>> = text
                .lines()
                .map(|l| l.trim_end_matches('\r'))
                .filter(|l| !l.trim().is_empty())
                .map(|l| vec![l.to_string()])
                .collect();
            (vec!["text".to_string()], rows)
        }
        Format::Parquet => parquet::parse_parquet(bytes, name)?,
    })
}

fn checked_table(name: &str, format: Format, columns: Vec<String>, rows: Vec<Vec<String>>) -> Result<Table> {
    if rows.is_empty() {
        return Err(crate::error::coded!(Data, "data.no-rows", "{name}: the file has a header but no data rows", name = name));
    }
    if columns.len() > MAX_COLUMNS {
        return Err(crate::error::coded!(Data, "data.too-many-columns", "{name}: the file has {n} columns; the limit is {max}", name = name, n = columns.len(), max = MAX_COLUMNS));
    }
    for (r, row) in rows.iter().enumerate() {
        if let Some((c, cell)) = row.iter().enumerate().find(|(_, cell)| cell.len() > MAX_CELL_BYTES) {
            return Err(crate::error::coded!(
                Data,
                "data.cell-too-long",
                "{name}: row {row}, column \"{column}\": the cell is {bytes} bytes long; the limit is {max} bytes (1 MiB)",
                name = name,
                row = r + 1,
                column = columns.get(c).map(String::as_str).unwrap_or("?"),
                bytes = cell.len(),
                max = MAX_CELL_BYTES
            ));
        }
    }
    Ok(Table { name: name.to_string(), format, columns, rows })
}

fn parse_delimited(text: &str, name: &str, delim: u8) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let kind = if delim == b'\t' { "TSV" } else { "CSV" };
    if let Some(line) = unclosed_quote(text, delim) {
        return Err(crate::error::coded!(
            Data,
            "data.unclosed-quote",
            "{name}: the quote that opens a field on line {line} is never closed, so the rest of the file would be read as one cell; close it or remove it",
            name = name,
            line = line
        ));
    }
    let mut reader = csv::ReaderBuilder::new().delimiter(delim).flexible(false).has_headers(true).from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| Error::data(format!("{name}: cannot read the {kind} header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect::<Vec<_>>();
    if headers.iter().all(|h| h.is_empty()) {
        return Err(crate::error::coded!(Data, "data.no-header", "{name}: the first line must be a header with column names", name = name));
    }
    let mut seen = BTreeSet::new();
    for h in &headers {
        if !h.is_empty() && !seen.insert(h.clone()) {
            return Err(crate::error::coded!(Data, "data.duplicate-column", "{name}: column \"{column}\" appears twice in the header", name = name, column = h));
        }
    }
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            match e.kind() {
                csv::ErrorKind::UnequalLengths { expected_len, len, .. } => crate::error::coded!(
                    Data,
                    "data.ragged",
                    "{name}: line {line} has {fields} fields but the header has {header} (an unquoted {separator} inside a field?)",
                    name = name,
                    line = line,
                    fields = len,
                    header = expected_len,
                    separator = if delim == b'\t' { "tab" } else { "comma" }
                ),
                _ => Error::data(format!("{name}: {kind} error on line {line}: {e}")),
            }
        })?;
        rows.push(rec.iter().map(|s| s.to_string()).collect());
    }
    Ok((headers, rows))
}

fn parse_jsonl(text: &str, name: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut columns: Vec<String> = Vec::new();
    let mut objects: Vec<serde_json::Map<String, serde_json::Value>> = Vec::new();
    let trimmed = text.trim_start();
    // A whole-file JSON array of objects is accepted too.
    let items: Vec<(usize, serde_json::Value)> = if trimmed.starts_with('[') {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::data(format!("{name}: invalid JSON: {e}")))?;
        match v {
            serde_json::Value::Array(a) => a.into_iter().enumerate().map(|(i, v)| (i + 1, v)).collect(),
            _ => unreachable!("starts with ["),
        }
    } else {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| crate::error::coded!(Data, "data.bad-json-line", "{name}: line {line} is not valid JSON: {error}", name = name, line = i + 1, error = e))?;
            out.push((i + 1, v));
        }
        out
    };
    for (line, v) in items {
        let serde_json::Value::Object(obj) = v else {
            return Err(crate::error::coded!(Data, "data.not-object", "{name}: line {line} is not a JSON object like {{\"text\": ..., \"label\": ...}}", name = name, line = line));
        };
        for k in obj.keys() {
            if !columns.contains(k) {
                columns.push(k.clone());
                if columns.len() > MAX_COLUMNS {
                    return Err(Error::data(format!("{name}: the objects up to line {line} use more than {MAX_COLUMNS} different keys; the limit is {MAX_COLUMNS}")));
                }
            }
        }
        objects.push(obj);
    }
    let rows = objects
        .into_iter()
        .map(|o| {
            columns
                .iter()
                .map(|c| match o.get(c) {
                    None | Some(serde_json::Value::Null) => String::new(),
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                })
                .collect()
        })
        .collect();
    Ok((columns, rows))
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Example {
    pub text: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabeledData {
    pub examples: Vec<Example>,
    /// Rows skipped because their text was empty.
    pub skipped_empty_text: usize,
    /// Rows skipped because their label was empty.
    pub skipped_empty_label: usize,
}

fn column_index(table: &Table, col: &str, role: &str) -> Result<usize> {
    table.columns.iter().position(|c| c == col).ok_or_else(|| {
        crate::error::coded!(
            Data,
            "data.no-column",
            "{name}: no {role} column \"{column}\"; columns found: {columns}",
            name = &table.name,
            role = role,
            column = col,
            columns = table.columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
        )
    })
}

/// Picks the text and label columns. Empty texts or labels are skipped and counted.
pub fn labeled_examples(table: &Table, text_col: &str, label_col: &str) -> Result<LabeledData> {
    let (usable, empty_text, empty_label) = pairs(table, text_col, label_col)?;
    if usable.is_empty() {
        return Err(crate::error::coded!(Data, "data.no-labelled-rows", "{name}: no row has both a text and a label", name = &table.name));
    }
    let examples = usable.into_iter().map(|(t, l)| Example { text: t.to_string(), label: l.to_string() }).collect();
    Ok(LabeledData { examples, skipped_empty_text: empty_text, skipped_empty_label: empty_label })
}

/// Sorted label vocabulary: numerically when every label is an integer, else alphabetically.
pub fn label_vocab(examples: &[Example], name: &str, label_col: &str) -> Result<Vec<String>> {
    let set: BTreeSet<&str> = examples.iter().map(|e| e.label.as_str()).collect();
    let mut labels: Vec<String> = set.into_iter().map(String::from).collect();
    if labels.len() < 2 {
        return Err(crate::error::coded!(
            Data,
            "data.one-class",
            "{name}: the label column \"{column}\" has only one class (\"{label}\"); classification needs at least two",
            name = name,
            column = label_col,
            label = labels.first().map(String::as_str).unwrap_or_default()
        ));
    }
    if labels.len() > MAX_CLASSES {
        return Err(crate::error::coded!(
            Data,
            "data.too-many-classes",
            "{name}: the label column \"{column}\" has {n} different values; the limit is {max} classes (is it a text column?)",
            name = name,
            column = label_col,
            n = labels.len(),
            max = MAX_CLASSES
        ));
    }
    if labels.iter().all(|l| l.parse::<i64>().is_ok()) {
        labels.sort_by_key(|l| l.parse::<i64>().unwrap_or(0));
    }
    Ok(labels)
}

/// Seeded stratified split: each class keeps the same share in both parts; every class with at
/// least two examples contributes at least one to each side.
pub fn stratified_split(examples: &[Example], eval_fraction: f64, seed: u64) -> (Vec<Example>, Vec<Example>) {
    let mut by_label: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, e) in examples.iter().enumerate() {
        by_label.entry(e.label.as_str()).or_default().push(i);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train_idx, mut eval_idx) = (Vec::new(), Vec::new());
    for (_, mut idx) in by_label {
        idx.shuffle(&mut rng);
        let n = idx.len();
        let mut k = (n as f64 * eval_fraction).round() as usize;
        if n >= 2 {
            k = k.clamp(1, n - 1);
        } else {
            k = 0;
        }
        eval_idx.extend_from_slice(&idx[..k]);
        train_idx.extend_from_slice(&idx[k..]);
    }
    train_idx.sort_unstable();
    eval_idx.sort_unstable();
    (
        train_idx.into_iter().map(|i| examples[i].clone()).collect(),
        eval_idx.into_iter().map(|i| examples[i].clone()).collect(),
    )
}

/// How many examples of one label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelCount {
    pub label: String,
    pub count: usize,
}

/// Token-length statistics from the real tokenizer (special tokens included).
#[derive(Debug, Clone, Serialize)]
pub struct TokenStats {
    /// Texts tokenized: all of them, or an evenly spaced sample of large files.
    pub counted: usize,
    pub of: usize,
    pub max_len: usize,
    /// Counted texts longer than `max_len` tokens (they will be cut).
    pub truncated: usize,
    /// Counted texts with fewer than `SHORT_TOKENS` tokens besides the special ones.
    pub short: usize,
    pub mean: f64,
    pub p95: usize,
    pub max: usize,
}

/// Texts with fewer content tokens than this are flagged as very short.
pub const SHORT_TOKENS: usize = 3;
/// Labels with fewer training examples than this are flagged as rare.
pub const RARE_COUNT: usize = 10;
/// Tokenizing more texts than this for the checks is sampled (the page stays quick on big files).
pub const TOKEN_SAMPLE: usize = 20_000;

#[derive(Debug, Clone, Serialize)]
pub struct EvalChecks {
    pub name: String,
    pub rows: usize,
    pub usable: usize,
    pub empty_text: usize,
    pub empty_label: usize,
    pub label_counts: Vec<LabelCount>,
    /// Eval labels that never occur in the training data (training would refuse them).
    pub unseen_labels: Vec<LabelCount>,
    /// Eval texts that also occur in the training data (leakage).
    pub in_train: usize,
}

/// What the page's data checks show, computed on the chosen text/label columns.
#[derive(Debug, Clone, Serialize)]
pub struct DataChecks {
    pub name: String,
    pub rows: usize,
    /// Rows with both a text and a label.
    pub usable: usize,
    pub empty_text: usize,
    pub empty_label: usize,
    /// Usable rows whose text repeats an earlier row's text.
    pub duplicates: usize,
    /// Of those, rows whose label differs from the earlier row's (contradictory examples).
    pub conflicting_duplicates: usize,
    /// Training label distribution, most frequent first.
    pub label_counts: Vec<LabelCount>,
    /// Labels with fewer than `RARE_COUNT` examples.
    pub rare_labels: Vec<LabelCount>,
    pub rare_threshold: usize,
    /// None when no tokenizer is loaded yet.
    pub tokens: Option<TokenStats>,
    pub eval: Option<EvalChecks>,
}

fn label_counts<'a>(labels: impl Iterator<Item = &'a str>) -> Vec<LabelCount> {
    let mut map: BTreeMap<&str, usize> = BTreeMap::new();
    for l in labels {
        *map.entry(l).or_default() += 1;
    }
    let mut out: Vec<LabelCount> = map.into_iter().map(|(label, count)| LabelCount { label: label.to_string(), count }).collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
    out
}

/// Usable (text, label) pairs and the empty-cell counts of a table's chosen columns.
fn pairs<'a>(table: &'a Table, text_col: &str, label_col: &str) -> Result<(Vec<(&'a str, &'a str)>, usize, usize)> {
    let ti = column_index(table, text_col, "text")?;
    let li = column_index(table, label_col, "label")?;
    if ti == li {
        return Err(crate::error::coded!(Data, "data.same-columns", "{name}: the text and label columns must differ (both are \"{column}\")", name = &table.name, column = text_col));
    }
    let (mut empty_text, mut empty_label) = (0, 0);
    let mut out = Vec::with_capacity(table.rows.len());
    for row in &table.rows {
        let (t, l) = (row[ti].trim(), row[li].trim());
        if t.is_empty() {
            empty_text += 1;
        } else if l.is_empty() {
            empty_label += 1;
        } else {
            out.push((t, l));
        }
    }
    Ok((out, empty_text, empty_label))
}

/// Data checks for the chosen columns. `count_tokens` (the model's tokenizer, special tokens
/// included) adds length statistics; files with more than `TOKEN_SAMPLE` usable rows are
/// measured on an evenly spaced sample, and `TokenStats` says how many were counted.
pub fn check_data(
    train: &Table,
    text_col: &str,
    label_col: &str,
    eval: Option<&Table>,
    max_len: usize,
    count_tokens: Option<&mut dyn FnMut(&str) -> Result<usize>>,
) -> Result<DataChecks> {
    let (usable, empty_text, empty_label) = pairs(train, text_col, label_col)?;
    let mut first_label: std::collections::HashMap<&str, &str> = std::collections::HashMap::with_capacity(usable.len());
    let (mut duplicates, mut conflicting) = (0, 0);
    for &(t, l) in &usable {
        match first_label.get(t) {
            Some(&prev) => {
                duplicates += 1;
                if prev != l {
                    conflicting += 1;
                }
            }
            None => {
                first_label.insert(t, l);
            }
        }
    }
    let counts = label_counts(usable.iter().map(|p| p.1));
    let rare: Vec<LabelCount> = counts.iter().filter(|c| c.count < RARE_COUNT).cloned().collect();

    let tokens = match count_tokens {
        None => None,
        Some(count) if !usable.is_empty() => {
            let stride = usable.len().div_ceil(TOKEN_SAMPLE).max(1);
            let specials = count("")?;
            let mut lens = Vec::with_capacity(usable.len() / stride + 1);
            for &(t, _) in usable.iter().step_by(stride) {
                lens.push(count(t)?);
            }
            let truncated = lens.iter().filter(|&&n| n > max_len).count();
            let short = lens.iter().filter(|&&n| n.saturating_sub(specials) < SHORT_TOKENS).count();
            let mean = lens.iter().sum::<usize>() as f64 / lens.len() as f64;
            let mut sorted = lens.clone();
            sorted.sort_unstable();
            let p95 = sorted[((sorted.len() as f64 * 0.95).ceil() as usize).clamp(1, sorted.len()) - 1];
            Some(TokenStats { counted: lens.len(), of: usable.len(), max_len, truncated, short, mean, p95, max: *sorted.last().unwrap_or(&0) })
        }
        Some(_) => None,
    };

    let eval = match eval {
        None => None,
        Some(table) => {
            let (ev, e_text, e_label) = pairs(table, text_col, label_col)?;
            let e_counts = label_counts(ev.iter().map(|p| p.1));
            let unseen = e_counts.iter().filter(|c| !counts.iter().any(|t| t.label == c.label)).cloned().collect();
            let in_train = ev.iter().filter(|(t, _)| first_label.contains_key(t)).count();
            Some(EvalChecks {
                name: table.name.clone(),
                rows: table.rows.len(),
                usable: ev.len(),
                empty_text: e_text,
                empty_label: e_label,
                label_counts: e_counts,
                unseen_labels: unseen,
                in_train,
            })
        }
    };
    Ok(DataChecks {
        name: train.name.clone(),
        rows: train.rows.len(),
        usable: usable.len(),
        empty_text,
        empty_label,
        duplicates,
        conflicting_duplicates: conflicting,
        label_counts: counts,
        rare_labels: rare,
        rare_threshold: RARE_COUNT,
        tokens,
        eval,
    })
}

/// One training file of a data mixture.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub examples: Vec<Example>,
}

/// Training sources, the eval set and the label vocabulary of a run.
#[derive(Debug, Clone)]
pub struct TrainingData {
    pub sources: Vec<Source>,
    pub eval: Vec<Example>,
    pub labels: Vec<String>,
    /// Rows skipped (empty text or label) over every training file.
    pub skipped: usize,
}

impl TrainingData {
    pub fn train_count(&self) -> usize {
        self.sources.iter().map(|s| s.examples.len()).sum()
    }
}

/// Picks the columns of every training table (they must all have them), builds one label
/// vocabulary over all of them and the eval set: the eval table when given, else a seeded
/// stratified share of each training file.
pub fn training_data(train: &[&Table], eval: Option<&Table>, text_col: &str, label_col: &str, eval_fraction: f64, seed: u64) -> Result<TrainingData> {
    if train.is_empty() {
        return Err(crate::error::coded!(Data, "data.no-training-file", "choose a training file first"));
    }
    let mut labeled = Vec::with_capacity(train.len());
    let mut skipped = 0;
    for t in train {
        let d = labeled_examples(t, text_col, label_col)?;
        skipped += d.skipped_empty_text + d.skipped_empty_label;
        labeled.push((t.name.clone(), d.examples));
    }
    let all: Vec<Example> = labeled.iter().flat_map(|(_, e)| e.iter().cloned()).collect();
    let name = if train.len() == 1 { train[0].name.clone() } else { "the training files".to_string() };
    let labels = label_vocab(&all, &name, label_col)?;
    let (sources, eval) = match eval {
        Some(t) => {
            let eval = labeled_examples(t, text_col, label_col)?.examples;
            (labeled.into_iter().map(|(name, examples)| Source { name, examples }).collect(), eval)
        }
        None => {
            let mut eval = Vec::new();
            let mut sources = Vec::new();
            for (name, examples) in labeled {
                let (tr, ev) = stratified_split(&examples, eval_fraction, seed);
                eval.extend(ev);
                sources.push(Source { name, examples: tr });
            }
            (sources, eval)
        }
    };
    Ok(TrainingData { sources, eval, labels, skipped })
}
