//! Data loading: every quirk the foundation issue lists (quotes, commas and newlines inside
//! quotes, BOM, CRLF, non-ASCII, integer labels, JSONL) and the specific error messages.

use burnish::data::{self, Format, labeled_examples, label_vocab, parse_table, stratified_split};

fn file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).expect("test data file")
}

#[test]
fn csv_with_bom_crlf_quotes_newlines_and_unicode() {
    let t = parse_table(&file("quirks.csv"), "quirks.csv").unwrap();
    assert_eq!(t.format, Format::Csv);
    assert_eq!(t.columns, vec!["text", "label"]); // BOM stripped from the first header
    assert_eq!(t.rows.len(), 7);
    assert_eq!(t.rows[0][0], "A \"great\", moving film, with heart");
    assert_eq!(t.rows[1][0], "Dull,\nlifeless and far too long");
    assert_eq!(t.rows[2][0], "这部电影非常好看");
    assert_eq!(t.rows[3][0], "Loved it 😍🎬");
    assert_eq!(t.rows[0][1], "positive"); // no stray \r from CRLF
    let d = labeled_examples(&t, "text", "label").unwrap();
    assert_eq!(d.examples.len(), 6);
    assert_eq!(d.skipped_empty_text, 1);
    assert_eq!(label_vocab(&d.examples, "quirks.csv", "label").unwrap(), vec!["negative", "positive"]);
}

#[test]
fn tsv_with_integer_labels_and_custom_columns() {
    let t = parse_table(&file("ints.tsv"), "ints.tsv").unwrap();
    assert_eq!(t.format, Format::Tsv);
    let d = labeled_examples(&t, "sentence", "sentiment").unwrap();
    assert_eq!(d.examples[2].text, "Great cast, great story");
    assert_eq!(label_vocab(&d.examples, "ints.tsv", "sentiment").unwrap(), vec!["0", "1"]);
}

#[test]
fn integer_labels_sort_numerically() {
    let ex: Vec<data::Example> = ["10", "2", "1"].iter().map(|l| data::Example { text: "x".into(), label: l.to_string() }).collect();
    assert_eq!(label_vocab(&ex, "f", "label").unwrap(), vec!["1", "2", "10"]);
}

#[test]
fn jsonl_with_blank_lines_extra_keys_and_number_labels() {
    let t = parse_table(&file("quirks.jsonl"), "quirks.jsonl").unwrap();
    assert_eq!(t.format, Format::Jsonl);
    assert_eq!(t.columns, vec!["text", "label", "extra"]);
    let d = labeled_examples(&t, "text", "label").unwrap();
    assert_eq!(d.examples.len(), 3);
    assert_eq!(d.examples[1].text, "很糟糕的电影");
    assert_eq!(d.examples[2].label, "1");
}

#[test]
fn plain_text_is_one_example_per_line() {
    let t = parse_table(b"first line\r\n\r\nsecond line\n", "notes.txt").unwrap();
    assert_eq!(t.columns, vec!["text"]);
    assert_eq!(t.rows, vec![vec!["first line".to_string()], vec!["second line".to_string()]]);
}

#[test]
fn missing_column_lists_the_columns_found() {
    let t = parse_table(&file("ints.tsv"), "ints.tsv").unwrap();
    let e = labeled_examples(&t, "text", "sentiment").unwrap_err().to_string();
    assert!(e.contains("no text column \"text\""), "{e}");
    assert!(e.contains("\"sentence\", \"sentiment\""), "{e}");
}

#[test]
fn empty_file_is_reported() {
    let e = parse_table(b"", "empty.csv").unwrap_err().to_string();
    assert_eq!(e, "empty.csv: the file is empty");
    let e = parse_table(b"\xEF\xBB\xBF  \r\n", "blank.csv").unwrap_err().to_string();
    assert_eq!(e, "blank.csv: the file is empty");
    let e = parse_table(b"text,label\n", "header.csv").unwrap_err().to_string();
    assert!(e.contains("header but no data rows"), "{e}");
}

#[test]
fn single_class_is_refused() {
    let t = parse_table(&file("one_class.csv"), "one_class.csv").unwrap();
    let d = labeled_examples(&t, "text", "label").unwrap();
    let e = label_vocab(&d.examples, "one_class.csv", "label").unwrap_err().to_string();
    assert!(e.contains("only one class (\"x\")"), "{e}");
}

#[test]
fn invalid_utf8_names_the_line() {
    let e = parse_table(&file("bad_utf8.csv"), "bad_utf8.csv").unwrap_err().to_string();
    assert!(e.contains("invalid UTF-8 on line 3"), "{e}");
}

#[test]
fn ragged_rows_name_the_line() {
    let e = parse_table(&file("ragged.csv"), "ragged.csv").unwrap_err().to_string();
    assert!(e.contains("line 3 has 4 fields but the header has 2"), "{e}");
}

#[test]
fn bad_jsonl_line_is_reported() {
    let e = parse_table(b"{\"text\": \"a\", \"label\": 1}\n{oops\n", "d.jsonl").unwrap_err().to_string();
    assert!(e.contains("line 2 is not valid JSON"), "{e}");
}

#[test]
fn stratified_split_is_seeded_and_keeps_class_shares() {
    let ex: Vec<data::Example> = (0..100)
        .map(|i| data::Example { text: format!("t{i}"), label: if i % 4 == 0 { "a".into() } else { "b".into() } })
        .collect();
    let (tr, ev) = stratified_split(&ex, 0.2, 7);
    assert_eq!(tr.len() + ev.len(), 100);
    assert_eq!(ev.iter().filter(|e| e.label == "a").count(), 5);
    assert_eq!(ev.iter().filter(|e| e.label == "b").count(), 15);
    let (tr2, ev2) = stratified_split(&ex, 0.2, 7);
    assert_eq!((tr, ev.clone()), (tr2, ev2));
    let (_, ev3) = stratified_split(&ex, 0.2, 8);
    assert_ne!(ev, ev3);
}

#[test]
fn data_checks_count_what_they_say() {
    let t = parse_table(&file("checks.csv"), "checks.csv").unwrap();
    let e = parse_table(&file("checks_eval.csv"), "checks_eval.csv").unwrap();
    // A whitespace counter (+2 for the special tokens) makes the expected numbers plain to see.
    let mut words = |s: &str| Ok::<_, burnish::error::Error>(s.split_whitespace().count() + 2);
    let c = data::check_data(&t, "text", "label", Some(&e), 8, Some(&mut words)).unwrap();
    assert_eq!((c.rows, c.usable, c.empty_text, c.empty_label), (9, 7, 1, 1));
    assert_eq!((c.duplicates, c.conflicting_duplicates), (2, 1));
    let counts: Vec<(&str, usize)> = c.label_counts.iter().map(|l| (l.label.as_str(), l.count)).collect();
    assert_eq!(counts, vec![("neg", 3), ("pos", 3), ("meh", 1)]);
    assert_eq!(c.rare_labels.len(), 3); // all under 10 examples
    let tok = c.tokens.unwrap();
    assert_eq!((tok.counted, tok.of, tok.max_len), (7, 7, 8));
    assert_eq!(tok.truncated, 1); // the 16-word review
    assert_eq!(tok.short, 5); // "good movie" ×3, "ok", "rare one": under 3 words
    assert_eq!(tok.max, 17);
    let ev = c.eval.unwrap();
    assert_eq!((ev.rows, ev.usable, ev.in_train), (3, 3, 1));
    assert_eq!(ev.unseen_labels.iter().map(|l| l.label.as_str()).collect::<Vec<_>>(), vec!["other"]);
    // No tokenizer: no token statistics, the rest is unchanged.
    assert!(data::check_data(&t, "text", "label", None, 8, None).unwrap().tokens.is_none());
    // Wrong column names are named.
    let err = data::check_data(&t, "review", "label", None, 8, None).unwrap_err().to_string();
    assert!(err.contains("no text column \"review\""), "{err}");
    let err = data::check_data(&t, "text", "label", Some(&parse_table(&file("ints.tsv"), "ints.tsv").unwrap()), 8, None).unwrap_err().to_string();
    assert!(err.contains("ints.tsv: no text column \"text\""), "{err}");
}

#[test]
fn data_checks_with_the_real_tokenizer_match_its_counts() {
    let mut ckpt = super::common::tiny();
    let t = parse_table(&file("checks.csv"), "checks.csv").unwrap();
    let mut counter = ckpt.tokenizer.counter().unwrap();
    let c = data::check_data(&t, "text", "label", None, 12, Some(&mut counter)).unwrap();
    let d = labeled_examples(&t, "text", "label").unwrap();
    let lens: Vec<usize> = d.examples.iter().map(|e| ckpt.tokenizer.encode(&e.text, 1 << 20).unwrap().len()).collect();
    let tok = c.tokens.unwrap();
    assert_eq!(tok.truncated, lens.iter().filter(|&&n| n > 12).count());
    assert!(tok.truncated >= 1);
    assert_eq!(tok.max, *lens.iter().max().unwrap());
}
