//! A test collection as `bench/quality/make_collections.py` writes it: `docs.jsonl` and
//! `queries.jsonl` (`{"id", "text"}` a line) in a folder named for it.

use std::fs;
use std::path::{Path, PathBuf};

/// A document or a query.
#[derive(Debug, Clone)]
pub(crate) struct Text {
    pub(crate) id: String,
    pub(crate) text: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Collection {
    pub(crate) name: String,
    pub(crate) docs: Vec<Text>,
    pub(crate) queries: Vec<Text>,
}

impl Collection {
    /// The folders of `collections` that hold a collection, by name.
    pub(crate) fn dirs(collections: &Path) -> Result<Vec<PathBuf>, String> {
        let entries =
            fs::read_dir(collections).map_err(|e| format!("{}: {e}", collections.display()))?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|dir| dir.join("docs.jsonl").is_file() && dir.join("queries.jsonl").is_file())
            .collect();
        dirs.sort();
        if dirs.is_empty() {
            return Err(format!(
                "{} holds no collection (run bench/quality/make_collections.py)",
                collections.display()
            ));
        }
        Ok(dirs)
    }

    pub(crate) fn read(dir: &Path) -> Result<Collection, String> {
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: no name", dir.display()))?
            .to_owned();
        Ok(Collection {
            name,
            docs: texts(&dir.join("docs.jsonl"))?,
            queries: texts(&dir.join("queries.jsonl"))?,
        })
    }
}

fn texts(file: &Path) -> Result<Vec<Text>, String> {
    let body = fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    body.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let value: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| format!("{} line {}: {e}", file.display(), i + 1))?;
            match (value["id"].as_str(), value["text"].as_str()) {
                (Some(id), Some(text)) => Ok(Text {
                    id: id.to_owned(),
                    text: text.to_owned(),
                }),
                _ => Err(format!(
                    "{} line {}: no `id` and `text`",
                    file.display(),
                    i + 1
                )),
            }
        })
        .collect()
}
