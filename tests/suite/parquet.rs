//! Parquet, the Hub's dataset format: files written by `datasets` and pyarrow
//! (tests/fixtures/make_parquet.py) read as the same tables the reference reader gives
//! (ClassLabel ints as their names, nested chat messages as JSON), feed the same checks and
//! training data as a CSV, and a codec or file Burnish cannot read gets a specific message.

use burnish::data::{self, Format};

use super::common::*;

fn data_file(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/data").join(name)).unwrap()
}

#[test]
fn parquet_files_read_as_the_reference_tables() {
    let r = read_json(fixture("parquet_reference.json"));
    for (name, want) in r.as_object().unwrap() {
        let t = data::parse_table(&data_file(name), name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.format, Format::Parquet);
        let cols: Vec<String> = want["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect();
        assert_eq!(t.columns, cols, "{name}");
        let rows: Vec<Vec<String>> = want["rows"].as_array().unwrap().iter().map(|r| r.as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_string()).collect()).collect();
        assert_eq!(t.rows, rows, "{name}");
    }
    // By its bytes, whatever the name says.
    let t = data::parse_table(&data_file("chat.parquet"), "download").unwrap();
    assert_eq!(t.format, Format::Parquet);
}

#[test]
fn a_parquet_split_trains_like_the_csv_it_came_from() {
    let pq = data::parse_table(&data_file("hub/test-org/reviews/data/train-00000-of-00001.parquet"), "train.parquet").unwrap();
    let csv = data::parse_table(&data_file("studio-train.csv"), "studio-train.csv").unwrap();
    let a = data::training_data(&[&pq], None, "text", "label", 0.25, 42).unwrap();
    let b = data::training_data(&[&csv], None, "phrase", "polarity", 0.25, 42).unwrap();
    assert_eq!(a.labels, b.labels);
    let pairs = |d: &data::TrainingData| d.sources[0].examples.iter().chain(&d.eval).map(|e| (e.text.clone(), e.label.clone())).collect::<Vec<_>>();
    assert_eq!(pairs(&a), pairs(&b));
    // Chat messages stored as a list of structs become conversations, as from JSON Lines.
    let chat_pq = data::parse_table(&data_file("chat.parquet"), "chat.parquet").unwrap();
    let chat_jsonl = data::parse_table(&data_file("chat.jsonl"), "chat.jsonl").unwrap();
    assert_eq!(
        format!("{:?}", data::chat::conversations_from_table(&chat_pq, "messages").unwrap()),
        format!("{:?}", data::chat::conversations_from_table(&chat_jsonl, "messages").unwrap())
    );
}

#[test]
fn unreadable_parquet_gets_specific_messages() {
    let e = data::parse_table(&data_file("reviews-zstd.parquet"), "reviews-zstd.parquet").unwrap_err();
    assert_eq!(e.code(), "data.parquet-codec", "{e}");
    assert!(e.to_string().contains("Snappy, gzip or LZ4"), "{e}");
    let e = data::parse_table(b"text,label\na,b\n", "fake.parquet").unwrap_err();
    assert_eq!(e.code(), "data.not-parquet");
    let mut cut = data_file("chat.parquet");
    let n = cut.len();
    cut.drain(n / 3..n - 8);
    let e = data::parse_table(&cut, "cut.parquet").unwrap_err();
    assert_eq!(e.code(), "data.parquet", "{e}");
    assert!(e.to_string().starts_with("cut.parquet: cannot read this Parquet file"), "{e}");
}
