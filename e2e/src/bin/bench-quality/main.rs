//! `scripts/bench quality`: how well search finds, on real public test collections, beside
//! independent references computed in the same run (`bench/quality/`).
//!
//! - `bench-quality passages COLLECTIONS`: cuts every document of each collection into the
//!   passages `shared::passages` makes for the model of the table searched (`claims`,
//!   `@cf/baai/bge-base-en-v1.5`: a 512-token window), as `passages.jsonl` beside its
//!   `docs.jsonl`, so that the reference scores the passages the product makes.
//! - `bench-quality run COLLECTIONS RUNS`: starts the real local stack and, per collection, an
//!   organization of its own; writes the documents into its `claims` table as an app's own
//!   writes would, backfills them through the API, waits until every one is embedded, then
//!   searches every query through `POST /api/v1/embeddings/search/claimSimilarity` (100
//!   matches) in each mode, and writes the matches as runs
//!   (`RUNS/<collection>/ours-{semantic,keyword,hybrid}.run.json`, `{query: {document: score}}`,
//!   the score being the one the mode orders by) for `bench/quality/evaluate.py` to score beside
//!   the references.

mod collection;
mod ours;

use std::path::{Path, PathBuf};
use std::process::exit;

use shared::models::{model, DEFAULT_MODEL};
use shared::passages::{split, PassageRules};

use collection::Collection;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["passages", collections] => passages(Path::new(collections)),
        ["run", collections, runs] => ours::run(Path::new(collections), Path::new(runs)),
        _ => Err("usage: bench-quality passages COLLECTIONS | run COLLECTIONS RUNS".into()),
    };
    if let Err(e) = outcome {
        eprintln!("bench quality: {e}");
        exit(1);
    }
}

/// The rules the `claims` table's model cuts with.
fn rules() -> PassageRules {
    let window = model(DEFAULT_MODEL).map_or(512, |spec| spec.max_tokens);
    PassageRules::for_window(window)
}

fn passages(collections: &Path) -> Result<(), String> {
    let rules = rules();
    for dir in Collection::dirs(collections)? {
        let collection = Collection::read(&dir)?;
        let mut out = String::new();
        let mut count = 0;
        let mut cut = 0;
        for doc in &collection.docs {
            let spans: Vec<[u32; 2]> = split(&doc.text, rules)
                .iter()
                .map(|p| [p.start, p.end])
                .collect();
            count += spans.len();
            cut += usize::from(spans.len() > 1);
            out.push_str(&serde_json::json!({ "id": doc.id, "passages": spans }).to_string());
            out.push('\n');
        }
        let file: PathBuf = dir.join("passages.jsonl");
        std::fs::write(&file, out).map_err(|e| format!("{}: {e}", file.display()))?;
        println!(
            "{}: {} documents, {cut} of them in more than one passage, {count} passages (budget {} units, overlap {})",
            collection.name,
            collection.docs.len(),
            rules.budget,
            rules.overlap
        );
    }
    Ok(())
}
