//! The generated file: the config as `as const` objects that the client reads at run time (the
//! access table among them, written by [`crate::access`]), the constants its embedding jobs are
//! held to, and the types derived from both.

use std::fmt::{self, Write as _};

use shared::classify::{GrayZone, Thresholds};
use shared::config::{SearchService, TableConfig};
use shared::{guard, message, models, Config};

use crate::access;
use crate::names::{key, shorthands, string, OPTION_NAMES};

/// The generated file's first lines.
const HEADER: &str = "\
// Generated from embeddings.toml by `cargo run -p client-types`: do not edit it by hand.
// `cargo run -p client-types -- --check` (and `cargo test`) fail when it is out of date.

import type { FieldFilter } from \"./filter.ts\";
";

/// The TypeScript the client is typed by, for `config`.
pub fn render(config: &Config) -> String {
    let mut out = String::new();
    write(&mut out, config).expect("writing to a String cannot fail");
    out
}

fn write(out: &mut String, config: &Config) -> fmt::Result {
    out.push_str(HEADER);
    write_models(out)?;
    write_tables(out, config)?;
    write_services(out, config)?;
    access::write(out, config)?;
    write_job_rules(out)?;
    write_types(out, config)
}

fn write_models(out: &mut String) -> fmt::Result {
    writeln!(
        out,
        "\n/** Every model the product accepts, by Workers AI name, with the length of its vectors. */"
    )?;
    writeln!(out, "export const models = {{")?;
    for model in models::MODELS {
        writeln!(
            out,
            "  {}: {{ dimensions: {} }},",
            key(model.name),
            model.dimensions
        )?;
    }
    writeln!(out, "}} as const;")?;
    writeln!(
        out,
        "\n/** The model of a job that names neither a model nor a table. */"
    )?;
    writeln!(
        out,
        "export const defaultModel = {};",
        string(models::DEFAULT_MODEL)
    )
}

fn write_tables(out: &mut String, config: &Config) -> fmt::Result {
    writeln!(
        out,
        "\n/** The embedding tables: each one's model, its vectors' length and its metadata fields. */"
    )?;
    writeln!(out, "export const tables = {{")?;
    for table in &config.tables {
        let spec = table.model();
        writeln!(
            out,
            "  {}: {{ model: {}, dimensions: {}, metadata: {} }},",
            key(&table.name),
            string(spec.name),
            spec.dimensions,
            list(&table.embeddings.metadata)
        )?;
    }
    writeln!(out, "}} as const;")
}

fn write_services(out: &mut String, config: &Config) -> fmt::Result {
    writeln!(
        out,
        "\n/**
 * The search services: each one's table, the table's metadata fields, its model and its vectors'
 * length, and `shorthands`: by alias, the field each camelCase alias stands for as an equality
 * filter (`storyId` for `story_id`). A field has no shorthand when its alias is another field's
 * too, or an option's name: `{}`.
 */",
        OPTION_NAMES.join("`, `")
    )?;
    writeln!(out, "export const services = {{")?;
    for service in &config.services {
        let table = config
            .table(&service.table)
            .expect("validated config: a service's table exists");
        write_service(out, service, table)?;
    }
    writeln!(out, "}} as const;")
}

fn write_service(out: &mut String, service: &SearchService, table: &TableConfig) -> fmt::Result {
    let spec = table.model();
    let shorthands: Vec<String> = shorthands(&table.embeddings.metadata)
        .into_iter()
        .map(|(alias, field)| format!("{}: {}", key(&alias), string(field)))
        .collect();
    let shorthands = if shorthands.is_empty() {
        "{}".to_owned()
    } else {
        format!("{{ {} }}", shorthands.join(", "))
    };
    let Thresholds {
        duplicate,
        confirms,
        related,
    } = service.thresholds;
    let GrayZone { min, max } = service.gray_zone;
    writeln!(
        out,
        "  /**\n   * Searches `{}`: {} matches unless asked; DUPLICATE from {duplicate}, CONFIRMS from \
         {confirms},\n   * RELATED from {related}; gray zone {min} to {max}.\n   */",
        table.name, service.limit
    )?;
    writeln!(out, "  {}: {{", key(&service.name))?;
    writeln!(out, "    table: {},", string(&table.name))?;
    writeln!(out, "    metadata: {},", list(&table.embeddings.metadata))?;
    writeln!(out, "    shorthands: {shorthands},")?;
    writeln!(out, "    model: {},", string(spec.name))?;
    writeln!(out, "    dimensions: {},", spec.dimensions)?;
    writeln!(out, "  }},")
}

/// What consumer-worker holds a job to, for `embeddingJob` to hold it to the same.
fn write_job_rules(out: &mut String) -> fmt::Result {
    writeln!(
        out,
        "\n/** The queue message version consumer-worker reads (`shared::message::MESSAGE_VERSION`). */"
    )?;
    writeln!(
        out,
        "export const messageVersion = {};",
        message::MESSAGE_VERSION
    )?;
    writeln!(
        out,
        "\n/** Most characters (code points) of content a job carries (`shared::models::MAX_INPUT_CHARS`). */"
    )?;
    writeln!(
        out,
        "export const maxInputChars = {};",
        models::MAX_INPUT_CHARS
    )?;
    writeln!(
        out,
        "\n/** One whitespace character, as Rust's `char::is_whitespace` takes it (`shared::guard::WHITESPACE`). */"
    )?;
    let mut class = String::new();
    for &(first, last) in guard::WHITESPACE {
        write!(class, "\\u{:04x}", u32::from(first))?;
        if first != last {
            write!(class, "-\\u{:04x}", u32::from(last))?;
        }
    }
    writeln!(out, "export const whitespace = /[{class}]/u;")?;
    writeln!(
        out,
        "\n/** Most characters (code points) of text a request may carry (`shared::guard::MAX_TEXT_CHARS`). */"
    )?;
    writeln!(
        out,
        "export const maxTextChars = {};",
        guard::MAX_TEXT_CHARS
    )?;
    writeln!(
        out,
        "\n/** Longest record id, in bytes (`shared::guard::MAX_RECORD_ID_BYTES`). */"
    )?;
    writeln!(
        out,
        "export const maxRecordIdBytes = {};",
        guard::MAX_RECORD_ID_BYTES
    )
}

fn write_types(out: &mut String, config: &Config) -> fmt::Result {
    writeln!(out, "\n/** A model's Workers AI name. */")?;
    writeln!(out, "export type ModelName = keyof typeof models;")?;
    writeln!(out, "/** An embedding table's name. */")?;
    writeln!(out, "export type TableName = keyof typeof tables;")?;
    writeln!(out, "/** A search service's name. */")?;
    writeln!(out, "export type ServiceName = keyof typeof services;")?;
    writeln!(out, "/** Something a role may be allowed to do. */")?;
    writeln!(out, "export type Action = (typeof actions)[number];")?;
    writeln!(
        out,
        "/** An organization role embeddings.toml names, or one of better-auth's own. */"
    )?;
    writeln!(out, "export type RoleName = (typeof roles)[number];")?;
    for table in &config.tables {
        let fields = &table.embeddings.metadata;
        if fields.is_empty() {
            writeln!(
                out,
                "\n/** A filter on `{}`, which has no metadata fields: it names none. */",
                table.name
            )?;
            writeln!(
                out,
                "export type Filter_{} = FieldFilter<never>;",
                table.name
            )?;
        } else {
            let names: Vec<String> = fields.iter().map(|f| format!("`{f}`")).collect();
            let union: Vec<String> = fields.iter().map(|f| string(f)).collect();
            writeln!(
                out,
                "\n/** A filter on `{}`: on {} (api-worker's `Filter_{}`). */",
                table.name,
                names.join(", "),
                table.name
            )?;
            writeln!(
                out,
                "export type Filter_{} = FieldFilter<{}>;",
                table.name,
                union.join(" | ")
            )?;
        }
    }
    writeln!(out, "\n/** Each table's filter, by table. */")?;
    writeln!(out, "export interface TableFilters {{")?;
    for table in &config.tables {
        writeln!(out, "  {}: Filter_{};", key(&table.name), table.name)?;
    }
    writeln!(out, "}}")
}

/// `items` as an array literal of strings.
fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|item| string(item)).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_toml(text: &str) -> String {
        render(&Config::parse(text).unwrap())
    }

    const TWO_TABLES: &str = r#"
[[table]]
name = "claims"
columns = ["id", "organization_id", "story_id", "limit", "content", "embedding"]
[table.embeddings]
fields = ["content"]
metadata = ["story_id", "limit"]

[[table]]
name = "notes"
columns = ["id", "organization_id", "body", "embedding"]
[table.embeddings]
fields = ["body"]
model = "@cf/baai/bge-small-en-v1.5"

[[search]]
name = "claim-similarity"
table = "claims"

[[search]]
name = "__proto__"
table = "notes"
limit = 3
"#;

    #[test]
    fn a_metadata_field_has_its_camel_case_shorthand_unless_it_is_an_option() {
        let out = render_toml(TWO_TABLES);
        assert!(
            out.contains("    shorthands: { storyId: \"story_id\" },\n"),
            "{out}"
        );
        assert!(out.contains("    metadata: [\"story_id\", \"limit\"],\n"));
        assert!(out.contains("export type Filter_claims = FieldFilter<\"story_id\" | \"limit\">;"));
    }

    #[test]
    fn a_table_without_metadata_fields_has_a_filter_naming_none() {
        let out = render_toml(TWO_TABLES);
        assert!(out.contains(
            "  notes: { model: \"@cf/baai/bge-small-en-v1.5\", dimensions: 384, metadata: [] },\n"
        ));
        assert!(out.contains("export type Filter_notes = FieldFilter<never>;"));
        assert!(out.contains("    metadata: [],\n    shorthands: {},\n"));
        assert!(out.contains("  notes: Filter_notes;\n"));
    }

    #[test]
    fn names_that_are_not_identifiers_are_quoted() {
        let out = render_toml(TWO_TABLES);
        assert!(out.contains("  \"claim-similarity\": {\n    table: \"claims\",\n"));
        // A plain `__proto__:` key would set the object's prototype, not add a service.
        assert!(out.contains("  [\"__proto__\"]: {\n    table: \"notes\",\n"));
        assert!(out.contains("  \"@cf/baai/bge-base-en-v1.5\": { dimensions: 768 },\n"));
        assert!(out.contains("Searches `notes`: 3 matches unless asked"));
    }

    #[test]
    fn an_empty_config_renders_empty_maps() {
        let out = render_toml("");
        assert!(out.contains("export const tables = {\n} as const;"));
        assert!(out.contains("export const services = {\n} as const;"));
        assert!(out.contains("export interface TableFilters {\n}"));
        assert!(out.starts_with("// Generated from embeddings.toml by `cargo run -p client-types`"));
    }

    #[test]
    fn the_job_rules_are_the_consumers() {
        let out = render_toml("");
        assert!(out.contains("export const messageVersion = 1;"));
        assert!(out.contains("export const maxInputChars = 2048;"));
        assert!(out.contains("export const maxTextChars = 65536;"));
        assert!(out.contains("export const maxRecordIdBytes = 64;"));
        assert!(out.contains("export const defaultModel = \"@cf/baai/bge-base-en-v1.5\";"));
        assert!(out.contains(
            "export const whitespace = /[\\u0009-\\u000d\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028-\\u2029\\u202f\\u205f\\u3000]/u;"
        ));
    }

    /// The client cuts and trims content with `whitespace`: it must be exactly what Rust's
    /// `truncate` and `trim` take, or a job's hash would differ from the one the consumer checks.
    #[test]
    fn the_whitespace_class_is_rusts() {
        let listed = |c: char| {
            guard::WHITESPACE
                .iter()
                .any(|&(first, last)| (first..=last).contains(&c))
        };
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            assert_eq!(listed(c), c.is_whitespace(), "U+{:04X}", u32::from(c));
        }
    }
}
