//! `client-types [--check]`: renders what the TypeScript client (`clients/typescript`) knows of
//! the project's `embeddings.toml` into `clients/typescript/src/embeddings.generated.ts`: the
//! search services with their tables, metadata fields, shorthand options, models and
//! dimensions; a filter type per table; the model catalogue; the access table (who may do what,
//! per table and project-wide); and the constants an embedding job is held to. Beside it,
//! `clients/typescript/test/enqueue.golden.json`: the enqueue rule's outcomes, which the
//! client's tests expect of its own check. And the migration that makes each embedding
//! table's keyword index (`shared::keywords`). With `--check` it writes nothing and fails when a
//! file is not what the config renders, so a config or rule change cannot leave the client
//! behind.
//!
//! - [`access`]: the roles each action allows, resolved by `shared`'s rule.
//! - [`golden`]: the enqueue rule's golden cases, resolved by `shared::enqueue`.
//! - [`names`]: a metadata field's camelCase shorthand, and names as TypeScript keys.
//! - [`render`]: the generated file itself, a pure function of the config.

mod access;
mod golden;
mod names;
mod render;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use shared::Config;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../embeddings.toml");

/// The files written, as the workspace names them, each with what `config` renders into it.
fn outputs(config: &Config) -> [(String, String); 3] {
    [
        (
            "clients/typescript/src/embeddings.generated.ts".into(),
            render::render(config),
        ),
        (
            "clients/typescript/test/enqueue.golden.json".into(),
            golden::render(config),
        ),
        keyword_migration(config),
    ]
}

const MIGRATIONS: &str = "wrangler/migrations";

/// The keyword indexes' migration (`shared::keywords`): the newest `NNNN_keyword_indexes.sql`
/// when it renders the config, else a new one numbered after every migration there is. A
/// migration once applied is never edited: a config that changes the embedding tables gets a
/// migration of its own, which makes every index anew.
fn keyword_migration(config: &Config) -> (String, String) {
    let rendered = shared::keywords::migration(config);
    let mut names: Vec<String> = std::fs::read_dir(path(MIGRATIONS))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| {
                    Path::new(name)
                        .extension()
                        .is_some_and(|ext| ext.eq_ignore_ascii_case("sql"))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let newest_keywords = names
        .iter()
        .rev()
        .find(|name| name.ends_with("_keyword_indexes.sql"));
    let file = match newest_keywords {
        Some(name)
            if std::fs::read_to_string(path(&format!("{MIGRATIONS}/{name}"))).ok()
                == Some(rendered.clone()) =>
        {
            name.clone()
        }
        _ => {
            let last = names
                .last()
                .and_then(|name| name.split('_').next()?.parse::<u32>().ok())
                .unwrap_or(0);
            format!("{:04}_keyword_indexes.sql", last + 1)
        }
    };
    (format!("{MIGRATIONS}/{file}"), rendered)
}

/// Where the workspace's `name` is on disk.
fn path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = match args.as_slice() {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => {
            eprintln!("usage: cargo run -p client-types [-- --check]");
            return ExitCode::from(2);
        }
    };
    let config = match std::fs::read_to_string(CONFIG) {
        Ok(text) => match Config::parse(&text) {
            Ok(config) => config,
            Err(errors) => {
                eprintln!("{errors}");
                return ExitCode::FAILURE;
            }
        },
        Err(e) => {
            eprintln!("client-types: cannot read embeddings.toml: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut code = ExitCode::SUCCESS;
    for (name, rendered) in outputs(&config) {
        if !update(&name, &rendered, check) {
            code = ExitCode::FAILURE;
        }
    }
    code
}

/// Compares the file `name` with `rendered`, and writes it when it differs unless `check`;
/// whether the file is (now) what was rendered.
fn update(name: &str, rendered: &str, check: bool) -> bool {
    // A missing file differs from any rendering.
    let committed = std::fs::read_to_string(path(name)).unwrap_or_default();
    match (first_difference(&committed, rendered), check) {
        (None, _) => {
            println!("client-types: {name} is up to date");
            true
        }
        (Some(line), true) => {
            eprintln!(
                "client-types: {name} is out of date: from line {line} it differs from what \
                 embeddings.toml renders; run `cargo run -p client-types` and commit the result"
            );
            false
        }
        (Some(_), false) => match std::fs::write(path(name), rendered) {
            Ok(()) => {
                println!("client-types: wrote {name}");
                true
            }
            Err(e) => {
                eprintln!("client-types: cannot write {name}: {e}");
                false
            }
        },
    }
}

/// The first line (from 1) at which `a` and `b` differ, if they do.
fn first_difference(a: &str, b: &str) -> Option<usize> {
    if a == b {
        return None;
    }
    let same = a
        .split_inclusive('\n')
        .zip(b.split_inclusive('\n'))
        .take_while(|(x, y)| x == y)
        .count();
    Some(same + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_files_are_what_the_projects_config_renders() {
        let config = Config::parse(&std::fs::read_to_string(CONFIG).unwrap()).unwrap();
        for (name, rendered) in outputs(&config) {
            let committed = std::fs::read_to_string(path(&name)).unwrap_or_default();
            if let Some(line) = first_difference(&committed, &rendered) {
                panic!("{name} is out of date from line {line}: run `cargo run -p client-types`");
            }
        }
    }

    #[test]
    fn differences_are_found_by_line() {
        assert_eq!(first_difference("a\nb\n", "a\nb\n"), None);
        assert_eq!(first_difference("a\nb\n", "a\nc\n"), Some(2));
        assert_eq!(first_difference("a\n", "a\nb\n"), Some(2));
        assert_eq!(first_difference("", "a"), Some(1));
    }
}
