//! Parquet files (the Hugging Face Hub's format for datasets) → a table of string cells, read
//! with the arrow-rs `parquet` crate's row API (pure Rust with Snappy, gzip and LZ4, so it builds
//! for wasm). Numbers and booleans become their text; nested values (a list of chat messages)
//! become JSON, as a JSON Lines file's are; an integer column that the file's `huggingface`
//! metadata declares a `ClassLabel` becomes the label names. The file may be hostile: the
//! decoded text is bounded, and every failure names the file.

use std::collections::BTreeMap;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::error::Result;

/// The most text a Parquet file may decode to (compression can make a small file expand a lot).
pub const MAX_DECODED_BYTES: usize = 512 << 20;

/// Whether `bytes` look like a Parquet file (`PAR1` at both ends).
pub fn is_parquet(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1")
}

/// Column names and rows of cells. The reader can panic on a damaged file: natively the panic is
/// caught and said as an error; in the browser the page reads Parquet in a worker of its own
/// (`www/parquet-worker.js`, through `parquet_to_jsonl`), so that a trap ends only that worker.
pub fn parse_parquet(bytes: &[u8], name: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let out = std::panic::catch_unwind(|| read(bytes, name));
        std::panic::set_hook(quiet);
        out.unwrap_or_else(|p| {
            let why = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            Err(crate::error::coded!(Data, "data.parquet", "{name}: cannot read this Parquet file: {error}", name = name, error = format!("the file is damaged (the reader failed: {why})")))
        })
    }
    #[cfg(target_arch = "wasm32")]
    read(bytes, name)
}

/// The file as JSON Lines, one object of string cells per row (what the page hands the engine
/// after reading a Parquet file in its own worker).
pub fn parquet_to_jsonl(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    let (columns, rows) = parse_parquet(bytes, name)?;
    let mut out = Vec::new();
    for row in rows {
        let obj: serde_json::Map<String, serde_json::Value> = columns.iter().cloned().zip(row.into_iter().map(serde_json::Value::String)).collect();
        serde_json::to_writer(&mut out, &obj).map_err(|e| crate::error::Error::Other(e.to_string()))?;
        out.push(b'\n');
    }
    Ok(out)
}

fn read(bytes: &[u8], name: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    if !is_parquet(bytes) {
        return Err(crate::error::coded!(Data, "data.not-parquet", "{name}: not a Parquet file (it must start and end with PAR1)", name = name));
    }
    let bad = |e: parquet::errors::ParquetError| {
        let text = e.to_string();
        if text.contains("Disabled feature at compile time") || text.contains("not supported") && text.contains("ompression") {
            crate::error::coded!(
                Data,
                "data.parquet-codec",
                "{name}: this Parquet file is compressed with a codec Burnish cannot read in the browser ({error}); save it with Snappy, gzip or LZ4 (pandas and pyarrow use Snappy by default)",
                name = name,
                error = text
            )
        } else {
            crate::error::coded!(Data, "data.parquet", "{name}: cannot read this Parquet file: {error}", name = name, error = text)
        }
    };
    let reader = SerializedFileReader::new(bytes::Bytes::copy_from_slice(bytes)).map_err(bad)?;
    let meta = reader.metadata().file_metadata();
    let columns: Vec<String> = meta.schema_descr().root_schema().get_fields().iter().map(|f| f.name().to_string()).collect();
    if columns.is_empty() {
        return Err(crate::error::coded!(Data, "data.parquet", "{name}: cannot read this Parquet file: {error}", name = name, error = "its schema has no columns"));
    }
    if columns.len() > super::MAX_COLUMNS {
        return Err(crate::error::coded!(Data, "data.too-many-columns", "{name}: the file has {n} columns; the limit is {max}", name = name, n = columns.len(), max = super::MAX_COLUMNS));
    }
    let labels = class_labels(meta.key_value_metadata());
    let names: Vec<Option<&Vec<String>>> = columns.iter().map(|c| labels.get(c)).collect();
    let mut rows = Vec::with_capacity(usize::try_from(meta.num_rows()).unwrap_or(0).min(1 << 20));
    let mut decoded = 0usize;
    for row in reader.get_row_iter(None).map_err(bad)? {
        let row = row.map_err(bad)?;
        let mut cells = vec![String::new(); columns.len()];
        for (i, (_, field)) in row.get_column_iter().enumerate().take(columns.len()) {
            let cell = cell(field, names[i]);
            decoded += cell.len();
            cells[i] = cell;
        }
        if decoded > MAX_DECODED_BYTES {
            return Err(crate::error::coded!(
                Data,
                "data.parquet-too-large",
                "{name}: the file decodes to more than {max} MiB of text by row {row}; split it, or take fewer rows",
                name = name,
                max = MAX_DECODED_BYTES >> 20,
                row = rows.len() + 1
            ));
        }
        rows.push(cells);
    }
    Ok((columns, rows))
}

/// One value as a cell: text as it is, numbers and booleans as text, a `ClassLabel` integer as
/// its name, nested values as JSON, null as empty.
fn cell(field: &Field, label_names: Option<&Vec<String>>) -> String {
    let int = match field {
        Field::Byte(v) => Some(*v as i64),
        Field::Short(v) => Some(*v as i64),
        Field::Int(v) => Some(*v as i64),
        Field::Long(v) => Some(*v),
        Field::UByte(v) => Some(*v as i64),
        Field::UShort(v) => Some(*v as i64),
        Field::UInt(v) => Some(*v as i64),
        _ => None,
    };
    if let (Some(i), Some(names)) = (int, label_names) {
        // -1 is the datasets library's "no label" (e.g. a test split): an empty cell, skipped.
        return usize::try_from(i).ok().and_then(|i| names.get(i)).cloned().unwrap_or_default();
    }
    match field {
        Field::Null => String::new(),
        Field::Str(s) => s.clone(),
        Field::Bytes(b) => match b.as_utf8() {
            Ok(s) => s.to_string(),
            Err(_) => format!("<{} bytes of binary data>", b.len()),
        },
        Field::Bool(b) => b.to_string(),
        Field::Float(f) => f.to_string(),
        Field::Double(f) => f.to_string(),
        Field::Group(_) | Field::ListInternal(_) | Field::MapInternal(_) => field.to_json_value().to_string(),
        other => match int {
            Some(i) => i.to_string(),
            None => other.to_string(),
        },
    }
}

/// The `ClassLabel` names the datasets library keeps in the file's `huggingface` metadata:
/// `{"info": {"features": {"label": {"_type": "ClassLabel", "names": [...]}}}}`.
fn class_labels(kv: Option<&Vec<parquet::file::metadata::KeyValue>>) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Some(json) = kv.into_iter().flatten().find(|k| k.key == "huggingface").and_then(|k| k.value.as_deref()) else { return out };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else { return out };
    let features = v.pointer("/info/features").and_then(|f| f.as_object());
    for (col, f) in features.into_iter().flatten() {
        if f["_type"] == "ClassLabel" {
            if let Some(names) = f["names"].as_array() {
                out.insert(col.clone(), names.iter().map(|n| n.as_str().map(String::from).unwrap_or_else(|| n.to_string())).collect());
            }
        }
    }
    out
}
