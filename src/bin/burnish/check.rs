//! `burnish check`: Data checks (the page's): empty rows, duplicates, label counts, rare labels, token lengths

use std::path::PathBuf;
use burnish::data::{self};
use burnish::error::{Error, Result};
use burnish::recipe::Recipe;
use clap::Args;

use super::flags::*;
use super::io::*;

#[derive(Args)]
pub struct CheckArgs {
    #[arg(long)]
    pub train: PathBuf,
    #[arg(long)]
    pub eval: Option<PathBuf>,
    #[command(flatten)]
    pub columns: Columns,
    /// A model folder: adds token-length checks with its tokenizer
    #[arg(long)]
    pub model: Option<PathBuf>,
    #[arg(long, default_value_t = 128)]
    pub max_len: usize,
}

pub fn run(args: CheckArgs) -> Result<()> {
    let CheckArgs { train, eval, columns, model, max_len } = args;

    let d = Recipe::default();
    let text_col = columns.text_column.unwrap_or(d.text_column);
    let label_col = columns.label_column.unwrap_or(d.label_column);
    let table = data::parse_table(&read(&train)?, &train.display().to_string())?;
    let eval_table = match &eval {
        Some(p) => Some(data::parse_table(&read(p)?, &p.display().to_string())?),
        None => None,
    };
    let mut counter = match &model {
        Some(m) => Some(load_checkpoint(m)?.tokenizer.counter()?),
        None => None,
    };
    let count = counter.as_mut().map(|c| c as &mut dyn FnMut(&str) -> Result<usize>);
    let checks = data::check_data(&table, &text_col, &label_col, eval_table.as_ref(), max_len, count)?;
    print_json(&serde_json::to_value(&checks).map_err(|e| Error::Other(e.to_string()))?);
    Ok(())
}
