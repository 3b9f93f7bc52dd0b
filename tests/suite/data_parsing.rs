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
