//! `client-types [--check]`: renders what the TypeScript client (`clients/typescript`) knows of
//! the project's `embeddings.toml` into `clients/typescript/src/embeddings.generated.ts`: the
//! search services with their tables, metadata fields, shorthand options, models and
//! dimensions; a filter type per table; the model catalogue; the access table (who may do what,
//! per table and project-wide); and the constants an embedding job is held to. With `--check`
//! it writes nothing and fails when the file is not what the config renders, so a config change
//! cannot leave the client typed by the old one.
//!
//! - [`access`]: the roles each action allows, resolved by `shared`'s rule.
//! - [`names`]: a metadata field's camelCase shorthand, and names as TypeScript keys.
//! - [`render`]: the file itself, a pure function of the config.

mod access;
mod names;
mod render;

use std::process::ExitCode;

use shared::Config;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../embeddings.toml");
const OUTPUT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../clients/typescript/src/embeddings.generated.ts"
);
/// The output as the workspace names it, for messages.
const OUTPUT_NAME: &str = "clients/typescript/src/embeddings.generated.ts";

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
    let rendered = match std::fs::read_to_string(CONFIG) {
        Ok(text) => match Config::parse(&text) {
            Ok(config) => render::render(&config),
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
    // A missing file differs from any rendering.
    let committed = std::fs::read_to_string(OUTPUT).unwrap_or_default();
    let difference = first_difference(&committed, &rendered);
    match (difference, check) {
        (None, _) => {
            println!("client-types: {OUTPUT_NAME} is up to date");
            ExitCode::SUCCESS
        }
        (Some(line), true) => {
            eprintln!(
                "client-types: {OUTPUT_NAME} is out of date: from line {line} it differs from what \
                 embeddings.toml renders; run `cargo run -p client-types` and commit the result"
            );
            ExitCode::FAILURE
        }
        (Some(_), false) => match std::fs::write(OUTPUT, rendered) {
            Ok(()) => {
                println!("client-types: wrote {OUTPUT_NAME}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("client-types: cannot write {OUTPUT_NAME}: {e}");
                ExitCode::FAILURE
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
    fn the_committed_file_is_what_the_projects_config_renders() {
        let config = Config::parse(&std::fs::read_to_string(CONFIG).unwrap()).unwrap();
        let committed = std::fs::read_to_string(OUTPUT).unwrap_or_default();
        if let Some(line) = first_difference(&committed, &render::render(&config)) {
            panic!(
                "{OUTPUT_NAME} is out of date from line {line}: run `cargo run -p client-types`"
            );
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
