//! Every error has a code, and a coded message keeps the values it names (src/error.rs): the page
//! says it in Chinese from those (www/i18n.js ZH_ERRORS). These check that the codes and values
//! are what the page's catalogue expects, and that every code the engine makes has a Chinese text.

use std::collections::BTreeSet;
use std::path::Path;

use burnish::Error;
use burnish::data::{self, Example};
use burnish::hf::config::HfConfigFile;
use burnish::recipe::Recipe;

fn args(e: &Error) -> Vec<(String, String)> {
    e.args().into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn arg(e: &Error, name: &str) -> String {
    e.args().into_iter().find(|(k, _)| *k == name).map(|(_, v)| v).unwrap_or_else(|| panic!("{} has no value {name}: {:?}", e.code(), args(e)))
}

#[test]
fn data_file_errors_carry_their_code_and_the_values_they_name() {
    let e = data::parse_table(b"  \n", "empty.csv").unwrap_err();
    assert_eq!((e.code(), e.kind()), ("data.empty-file", "data"));
    assert_eq!(args(&e), vec![("name".to_string(), "empty.csv".to_string())]);
    assert_eq!(e.to_string(), "empty.csv: the file is empty");

    let e = data::parse_table(b"text,label\na,b\nc,d,e\n", "ragged.csv").unwrap_err();
    assert_eq!(e.code(), "data.ragged");
    assert_eq!((arg(&e, "line"), arg(&e, "fields"), arg(&e, "header"), arg(&e, "separator")), ("3".into(), "3".into(), "2".into(), "comma".into()));
    assert!(e.to_string().contains("line 3 has 3 fields but the header has 2 (an unquoted comma inside a field?)"), "{e}");

    let e = data::parse_table(b"text\tlabel\na\tb\tc\n", "ragged.tsv").unwrap_err();
    assert_eq!(arg(&e, "separator"), "tab");

    let e = data::parse_table(b"a,b\n\xff\xfe,x\n", "bad.csv").unwrap_err();
    assert_eq!((e.code(), arg(&e, "line"), arg(&e, "byte")), ("data.utf8", "2".into(), "5".into()));

    let e = data::parse_table(b"text,label,text\na,b,c\n", "dup.csv").unwrap_err();
    assert_eq!((e.code(), arg(&e, "column")), ("data.duplicate-column", "text".into()));

    let e = data::parse_table(b"text,label\n\"open,x\n", "quote.csv").unwrap_err();
    assert_eq!((e.code(), arg(&e, "line")), ("data.unclosed-quote", "2".into()));

    let e = data::parse_table(b"{\"text\": 1}\n[1]\n", "rows.jsonl").unwrap_err();
    assert_eq!((e.code(), arg(&e, "line")), ("data.not-object", "2".into()));
    let e = data::parse_table(b"{\"text\": 1}\n{\"text\": \n", "rows.jsonl").unwrap_err();
    assert_eq!((e.code(), arg(&e, "line")), ("data.bad-json-line", "2".into()));

    let t = data::parse_table(b"phrase,polarity\ngood,pos\nbad,neg\n", "reviews.csv").unwrap();
    let e = data::labeled_examples(&t, "phrase", "phrase").unwrap_err();
    assert_eq!((e.code(), arg(&e, "column")), ("data.same-columns", "phrase".into()));
    let e = data::labeled_examples(&t, "text", "polarity").unwrap_err();
    assert_eq!((e.code(), arg(&e, "role"), arg(&e, "column"), arg(&e, "columns")), ("data.no-column", "text".into(), "text".into(), "\"phrase\", \"polarity\"".into()));

    let one = [Example { text: "a".into(), label: "x".into() }, Example { text: "b".into(), label: "x".into() }];
    let e = data::label_vocab(&one, "one.csv", "label").unwrap_err();
    assert_eq!((e.code(), arg(&e, "label"), arg(&e, "column")), ("data.one-class", "x".into(), "label".into()));
    assert!(e.to_string().contains("has only one class (\"x\")"), "{e}");
}

#[test]
fn model_and_recipe_errors_carry_their_code() {
    let e = HfConfigFile::from_bytes(b"{\"model_type\": \"bert\", ").unwrap_err();
    assert_eq!((e.code(), e.kind()), ("config.not-json", "config"));
    assert!(e.to_string().starts_with("config.json: not valid JSON for a model config"), "{e}");

    let e = Error::UnsupportedModel { found: "t5".into(), supported: "bert".into() };
    assert_eq!((e.code(), arg(&e, "found")), ("config.unsupported-model", "t5".into()));

    let r = Recipe { lr: 5.0, ..Recipe::default() };
    let e = r.validate(512).unwrap_err();
    assert_eq!((e.code(), e.kind(), arg(&e, "field"), arg(&e, "got")), ("recipe.out-of-range", "recipe", "lr".into(), "5.0".into()));
    assert_eq!(e.to_string(), format!("recipe: learning rate must be {} (got 5.0)", arg(&e, "range")));

    let r = Recipe { max_len: 600, ..Recipe::default() };
    let e = r.validate(512).unwrap_err();
    assert_eq!((e.code(), arg(&e, "positions"), arg(&e, "got")), ("recipe.max-len-beyond-model", "512".into(), "600".into()));

    // A plain variant: its kind is its code, and the page shows its detail after its kind's words.
    let e = Error::Weights("tensor x is NaN".into());
    assert_eq!((e.code(), e.kind(), e.detail()), ("weights", "weights", "tensor x is NaN".to_string()));
    assert!(e.args().is_empty());
}

/// The codes made in src/ (`coded!(Kind, "code", …)`), read from the source. (The page's own
/// coded messages, `page.*`, are checked by the page's tests.)
fn engine_codes() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                // coded!(\n    Kind,\n    "code", …: the code is the first string after the macro's name.
                for (i, _) in text.match_indices("coded!(") {
                    if let Some(start) = text[i..].find('"') {
                        let rest = &text[i + start + 1..];
                        let code = &rest[..rest.find('"').unwrap()];
                        if code.contains('.') {
                            out.insert(code.to_string());
                        }
                    }
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.insert("config.unsupported-model".into());
    out
}

#[test]
fn every_engine_error_code_has_a_chinese_text_in_the_page() {
    let codes = engine_codes();
    assert!(codes.len() >= 20, "{codes:?}");
    let i18n = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("www/i18n.js")).unwrap();
    let catalogue = &i18n[i18n.find("const ZH_ERRORS = {").expect("ZH_ERRORS in i18n.js")..];
    let catalogue = &catalogue[..catalogue.find("\n};").unwrap()];
    let translated: BTreeSet<String> = catalogue
        .lines()
        .filter_map(|l| l.trim().strip_prefix('\'').and_then(|l| l.split('\'').next()))
        .filter(|k| !k.starts_with("kind.") && !k.starts_with("page."))
        .map(String::from)
        .collect();
    let missing: Vec<_> = codes.difference(&translated).collect();
    assert!(missing.is_empty(), "codes without a Chinese text in www/i18n.js ZH_ERRORS: {missing:?}");
    let stale: Vec<_> = translated.difference(&codes).collect();
    assert!(stale.is_empty(), "ZH_ERRORS has texts for codes the engine does not make: {stale:?}");
    for kind in ["config", "tokenizer", "weights", "data", "recipe", "backend", "io", "other"] {
        assert!(catalogue.contains(&format!("'kind.{kind}':")), "no Chinese words for errors of kind {kind}");
    }
}
