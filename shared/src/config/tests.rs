use super::*;
use crate::classify::Classification;

const PROJECT_CONFIG: &str = include_str!("../../../embeddings.toml");

const MINIMAL: &str = r#"
[[table]]
name = "notes"
columns = ["id", "organization_id", "title", "body", "embedding"]
writable = ["title", "body"]
[table.embeddings]
fields = ["title", "body"]

[[search]]
name = "noteSearch"
table = "notes"
"#;

fn errors_of(text: &str) -> Vec<ConfigError> {
    Config::parse(text).expect_err("config should be refused").0
}

fn assert_refused(text: &str, field: &str, needle: &str) {
    let errors = errors_of(text);
    assert!(
        errors
            .iter()
            .any(|e| e.field == field && e.message.contains(needle)),
        "expected an error at `{field}` containing `{needle}`, got {errors:?}"
    );
}

#[test]
fn the_project_config_is_valid() {
    let config = Config::parse(PROJECT_CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let claims = config.table("claims").expect("claims table");
    assert_eq!(claims.embeddings.fields, vec!["content"]);
    assert_eq!(claims.embeddings.metadata, vec!["story_id"]);
    assert_eq!(claims.model().dimensions, 768);
    let service = config
        .service("claimSimilarity")
        .expect("claimSimilarity service");
    assert_eq!(service.table, "claims");
    assert_eq!(service.thresholds.classify(0.9), Classification::Duplicate);
}

#[test]
fn defaults_fill_what_is_not_said() {
    let config = Config::parse(MINIMAL).unwrap();
    let notes = config.table("notes").unwrap();
    assert_eq!(notes.id_column, "id");
    assert_eq!(notes.organization_column, "organization_id");
    let spec = &notes.embeddings;
    assert_eq!(spec.separator, " ");
    assert_eq!(spec.model, models::DEFAULT_MODEL);
    assert!(spec.on_insert);
    assert_eq!(spec.on_update, OnUpdate::Enabled(true));
    assert_eq!(spec.embedding_column, "embedding");
    assert_eq!(spec.vector_index, VectorIndex::D1);
    let service = config.service("noteSearch").unwrap();
    assert_eq!(service.limit, 10);
    assert_eq!(service.thresholds, Thresholds::default());
    assert_eq!(service.gray_zone, GrayZone::default());
}

#[test]
fn on_update_decides_which_changes_re_embed() {
    let mut table = Config::parse(MINIMAL).unwrap().tables.remove(0);
    assert!(table.watches("title") && table.watches("body"));
    table.embeddings.on_update = OnUpdate::Watched(vec!["body".into()]);
    assert!(!table.watches("title") && table.watches("body"));
    table.embeddings.on_update = OnUpdate::Enabled(false);
    assert!(!table.watches("body"));
}

#[test]
fn a_records_text_joins_its_fields_and_metadata_keeps_configured_fields() {
    let mut table = Config::parse(MINIMAL).unwrap().tables.remove(0);
    table.embeddings.separator = " | ".into();
    table.embeddings.metadata = vec!["title".into()];
    let record =
        serde_json::json!({"id": "n1", "title": "Budget", "body": "Cut by 3%", "other": 1});
    let record = record.as_object().unwrap();
    assert_eq!(table.embedding_text(record), "Budget | Cut by 3%");
    let sparse = serde_json::json!({"id": "n2", "title": null, "body": 42});
    assert_eq!(table.embedding_text(sparse.as_object().unwrap()), "42");
    assert_eq!(table.embedding_columns(), vec!["id", "title", "body"]);
    assert_eq!(
        serde_json::Value::Object(table.metadata_of(record)),
        serde_json::json!({"title": "Budget"})
    );
    assert!(table.metadata_of(sparse.as_object().unwrap()).is_empty());
}

#[test]
fn access_rules_are_checked_and_table_names_must_not_shadow_routes() {
    let text = MINIMAL
        .replace("name = \"notes\"", "name = \"embeddings\"")
        .replace("table = \"notes\"", "table = \"embeddings\"")
        + "[access]\ndelete = []\n";
    let errors = errors_of(&text);
    assert!(
        errors.iter().any(|e| e.field == "table.embeddings.name"),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.field == "access.delete"),
        "{errors:?}"
    );
    let config = Config::parse(&(MINIMAL.to_owned() + "[access]\nread = [\"viewer\"]\n")).unwrap();
    let notes = config.table("notes");
    assert!(config.allows(notes, "viewer", crate::access::Action::Read));
    assert!(!config.allows(notes, "member", crate::access::Action::Read));
}

#[test]
fn unknown_model_is_named() {
    let text = MINIMAL.replace(
        "fields = [\"title\", \"body\"]\n",
        "fields = [\"title\", \"body\"]\nmodel = \"@cf/baai/bge-huge\"\n",
    );
    assert_refused(
        &text,
        "table.notes.embeddings.model",
        "unknown model `@cf/baai/bge-huge`",
    );
}

#[test]
fn watched_field_must_be_embedded() {
    let text = MINIMAL.replace(
        "fields = [\"title\", \"body\"]\n",
        "fields = [\"body\"]\non_update = [\"title\"]\n",
    );
    assert_refused(
        &text,
        "table.notes.embeddings.on_update",
        "watched field `title` is not in fields",
    );
}

#[test]
fn metadata_field_must_be_a_column() {
    let text = MINIMAL.replace(
        "fields = [\"title\", \"body\"]\n",
        "fields = [\"body\"]\nmetadata = [\"author\"]\n",
    );
    assert_refused(
        &text,
        "table.notes.embeddings.metadata",
        "metadata field `author` is not a column",
    );
}

#[test]
fn a_metadata_bound_names_a_metadata_field_and_the_bounds_fit_vectorize() {
    let with = |extra: &str| {
        MINIMAL.replace(
            "fields = [\"title\", \"body\"]\n",
            &format!("fields = [\"body\"]\nmetadata = [\"title\"]\n{extra}"),
        )
    };
    assert!(Config::parse(&with("metadata_max_bytes = { title = 4096 }\n")).is_ok());
    assert_refused(
        &with("metadata_max_bytes = { body = 64 }\n"),
        "table.notes.embeddings.metadata_max_bytes.body",
        "`body` is not a metadata field",
    );
    assert_refused(
        &with("metadata_max_bytes = { title = 4 }\n"),
        "table.notes.embeddings.metadata_max_bytes.title",
        "a bound under 8 bytes leaves no room for a value",
    );
    assert_refused(
        &with("metadata_max_bytes = { title = 9300 }\n"),
        "table.notes.embeddings.metadata_max_bytes",
        "the metadata fields' bounds add up to 10333 bytes with what every vector carries, \
         over Vectorize's 10240 per vector: lower them",
    );
}

#[test]
fn duplicate_service_name_is_refused() {
    let text = format!("{MINIMAL}\n[[search]]\nname = \"noteSearch\"\ntable = \"notes\"\n");
    assert_refused(&text, "search.noteSearch", "duplicate search service name");
}

#[test]
fn thresholds_out_of_order_are_refused() {
    let text =
        format!("{MINIMAL}thresholds = {{ duplicate = 0.7, confirms = 0.8, related = 0.6 }}\n");
    assert_refused(&text, "search.noteSearch.thresholds", "out of order");
    let text = format!("{MINIMAL}gray_zone = {{ min = 0.9, max = 0.8 }}\n");
    assert_refused(
        &text,
        "search.noteSearch.gray_zone",
        "min must be below max",
    );
}

#[test]
fn service_must_name_an_embedding_table() {
    let text = MINIMAL.replace("table = \"notes\"", "table = \"stories\"");
    assert_refused(
        &text,
        "search.noteSearch.table",
        "`stories` is not an embedding table",
    );
}

#[test]
fn names_that_would_reach_sql_must_be_identifiers() {
    let text = MINIMAL.replace(
        "\"title\", \"body\", \"embedding\"]",
        "\"title\", \"body; DROP\", \"embedding\"]",
    );
    assert_refused(
        &text,
        "table.notes.columns",
        "`body; DROP` is not a plain identifier",
    );
    let text = MINIMAL.replace(
        "writable = [\"title\", \"body\"]",
        "writable = [\"organization_id\"]",
    );
    assert_refused(&text, "table.notes.writable", "set by the product");
    for key in ["required", "not_null"] {
        let text = MINIMAL.replace(
            "writable = [\"title\", \"body\"]",
            &format!("writable = [\"title\", \"body\"]\n{key} = [\"title\", \"embedding\"]"),
        );
        assert_refused(
            &text,
            &format!("table.notes.{key}"),
            "`embedding` is not in writable",
        );
    }
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let text = MINIMAL.replace(
        "fields = [\"title\", \"body\"]",
        "fields = [\"title\"]\nfeilds = []",
    );
    let errors = errors_of(&text);
    assert!(errors[0].message.contains("feilds"), "{errors:?}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = MINIMAL.replace(
        "fields = [\"title\", \"body\"]\n",
        "fields = [\"title\", \"summary\"]\nmodel = \"nope\"\n",
    );
    assert_eq!(errors_of(&text).len(), 2);
    let shown = Config::parse(&text).unwrap_err().to_string();
    assert!(
        shown.contains("table.notes.embeddings.fields: `summary` is not in columns"),
        "{shown}"
    );
}

#[test]
fn a_services_rrf_k_defaults_to_60_and_is_1_to_10000() {
    let config = Config::parse(MINIMAL).unwrap();
    assert_eq!(config.services[0].rrf_k, 60);
    for (k, ok) in [("1", true), ("10000", true), ("0", false), ("10001", false)] {
        let text = format!("{MINIMAL}rrf_k = {k}\n");
        match Config::parse(&text) {
            Ok(config) => assert!(ok && config.services[0].rrf_k.to_string() == k, "{k}"),
            Err(errors) => assert!(
                !ok && errors
                    .to_string()
                    .contains("search.noteSearch.rrf_k: must be 1 to 10000"),
                "{k}: {errors}"
            ),
        }
    }
}

#[test]
fn fts5s_own_column_names_cannot_be_embedded() {
    for name in ["rank", "RowId"] {
        let text = MINIMAL
            .replace(
                "\"title\", \"body\", \"embedding\"",
                &format!("\"title\", \"{name}\", \"embedding\""),
            )
            .replace(
                "fields = [\"title\", \"body\"]",
                &format!("fields = [\"title\", \"{name}\"]"),
            );
        let shown = Config::parse(&text).unwrap_err().to_string();
        assert!(
            shown.contains(&format!(
                "`{name}` cannot be embedded: the keyword index reserves"
            )),
            "{shown}"
        );
    }
}

#[test]
fn metadata_sql_names_each_field_of_the_row() {
    let config = Config::parse(include_str!("../../../embeddings.toml")).unwrap();
    assert_eq!(
        config.table("claims").unwrap().metadata_sql("r"),
        r#"json_patch('{}', json_object('story_id', CASE WHEN length(CAST(json_quote(r."story_id") AS BLOB)) <= 1024 THEN r."story_id" END))"#
    );
    let mut bare = config.table("claims").unwrap().clone();
    bare.embeddings.metadata.clear();
    assert_eq!(bare.metadata_sql("r"), "json_patch('{}', json_object())");
}

#[test]
fn locations_bindings_watched_fields_and_embedded_text_are_as_configured() {
    let config = Config::parse(include_str!("../../../embeddings.toml")).unwrap();
    let (claims, notes, evidence) = (
        config.table("claims").unwrap(),
        config.table("notes").unwrap(),
        config.table("evidence").unwrap(),
    );
    assert_eq!(claims.embeddings.vector_index.location(), "d1");
    assert_eq!(claims.embeddings.vector_index.vectorize_binding(), None);
    assert_eq!(
        evidence.embeddings.vector_index.location(),
        "vectorize:VECTORIZE_768"
    );
    assert_eq!(
        evidence.embeddings.vector_index.vectorize_binding(),
        Some("VECTORIZE_768")
    );
    // `on_update = true` watches exactly the embedded fields.
    assert!(notes.watches("title") && notes.watches("body"));
    assert!(!notes.watches("topic"));
    let record = |v: serde_json::Value| v.as_object().unwrap().clone();
    assert_eq!(
        notes.embedding_text(&record(serde_json::json!({"title": "", "body": "b"}))),
        "b",
        "an empty field adds no separator"
    );
    assert_eq!(
        notes.embedding_text(&record(serde_json::json!({"title": 7, "body": true}))),
        "7\ntrue"
    );
}

#[test]
fn identifiers_and_services_are_held_to_their_rules() {
    use super::validate::is_identifier;
    assert!(is_identifier("_notes") && is_identifier("notes_2"));
    for bad in ["", "2notes", "-notes", "no-tes", &"x".repeat(65)] {
        assert!(!is_identifier(bad), "{bad:?}");
    }
    let with = |extra: &str| {
        MINIMAL.replace(
            "name = \"noteSearch\"\ntable = \"notes\"",
            &format!("name = \"noteSearch\"\ntable = \"notes\"\n{extra}"),
        )
    };
    for name in ["", "note search", "note.search"] {
        let text = MINIMAL.replace("name = \"noteSearch\"", &format!("name = \"{name}\""));
        assert_refused(&text, &format!("search.{name}.name"), "letters, digits");
    }
    let text = MINIMAL.replace("name = \"noteSearch\"", "name = \"note_search-2\"");
    assert!(Config::parse(&text).is_ok(), "`_` and `-` are allowed");
    for limit in ["0", "101"] {
        assert_refused(
            &with(&format!("limit = {limit}")),
            "search.noteSearch.limit",
            "1 to 100",
        );
    }
    assert!(Config::parse(&with("limit = 100")).is_ok());
    for zone in ["{ min = -2.0, max = 0.5 }", "{ min = 0.5, max = 2.0 }"] {
        assert_refused(
            &with(&format!("gray_zone = {zone}")),
            "search.noteSearch.gray_zone",
            "within -1..1",
        );
    }
}

#[test]
fn a_kept_vectorize_index_names_a_known_model_of_its_tables_dimension() {
    let base = r#"
[[table]]
name = "evidence"
columns = ["id", "organization_id", "content", "embedding"]
[table.embeddings]
fields = ["content"]
model = "@cf/baai/bge-small-en-v1.5"
vector_index = { backend = "vectorize", binding = "VECTORIZE_384" }
"#;
    let kept = |binding: &str, model: &str| {
        format!("{base}\n[[vectorize]]\nbinding = \"{binding}\"\nmodel = \"{model}\"\n")
    };
    let config = Config::parse(&kept("VECTORIZE_768", "@cf/baai/bge-base-en-v1.5")).unwrap();
    assert_eq!(config.kept_indexes[0].binding, "VECTORIZE_768");
    let wrong = Config::parse(&kept("VECTORIZE_384", "@cf/baai/bge-base-en-v1.5"))
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("vectorize[0].model"), "{wrong}");
    let unknown = Config::parse(&kept("VECTORIZE_768", "@cf/nope"))
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("unknown model"), "{unknown}");
}

#[test]
fn a_record_has_text_when_some_embedded_field_is_more_than_white_space() {
    use serde_json::{json, Value};
    let config = Config::parse(PROJECT_CONFIG).unwrap();
    let notes = config.table("notes").unwrap();
    let record = |title: serde_json::Value, body: serde_json::Value| {
        let serde_json::Value::Object(map) = serde_json::json!({
            "title": title, "body": body, "topic": "not embedded",
        }) else {
            unreachable!()
        };
        map
    };

    assert!(notes.has_text(&record(json!("A title"), Value::Null)));
    assert!(notes.has_text(&record(json!(" \t"), json!("body"))));
    assert!(
        notes.has_text(&record(json!(0), Value::Null)),
        "a number is text"
    );
    assert!(!notes.has_text(&record(Value::Null, Value::Null)));
    assert!(!notes.has_text(&record(json!(""), json!(" \n\u{a0}\u{3000}"))));
    let sql = notes.has_text_sql("r");
    assert!(sql.starts_with("(TRIM(CAST(r.\"title\" AS TEXT), char(9, 10,"));
    assert!(sql.contains(" OR TRIM(CAST(r.\"body\" AS TEXT), "));
    assert!(
        !sql.contains(">= 2"),
        "notes' separator is white space: {sql}"
    );
    // Two blank fields joined by a separator that is not blank are text.
    let mut piped = notes.clone();
    piped.embeddings.separator = " | ".into();
    assert!(piped.has_text(&record(json!(" "), json!("\t"))));
    assert!(!piped.has_text(&record(json!(" "), Value::Null)));
    assert!(!piped.has_text(&record(json!(" "), json!(""))));
    let sql = piped.has_text_sql("r");
    assert!(
        sql.ends_with(
            " OR (COALESCE(CAST(r.\"title\" AS TEXT), '') != '') \
             + (COALESCE(CAST(r.\"body\" AS TEXT), '') != '') >= 2)"
        ),
        "{sql}"
    );
    // Every character `str::trim` removes, and no other, is in the SQL's list.
    let listed: Vec<u32> = sql
        .split("char(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let white: Vec<u32> = (0..=u32::from(char::MAX))
        .filter_map(char::from_u32)
        .filter(|c| c.is_whitespace())
        .map(u32::from)
        .collect();
    assert_eq!(listed, white);
}

#[test]
fn the_roles_are_better_auths_then_each_other_role_the_rules_name_once_in_order() {
    assert_eq!(
        Config::parse(PROJECT_CONFIG).unwrap().roles(),
        ["owner", "admin", "member", "viewer"]
    );
    let text = PROJECT_CONFIG.replacen(
        "required = [\"content\"]\n",
        "required = [\"content\"]\n[table.access]\nembed = [\"editor\", \"viewer\", \"bot\"]\n",
        1,
    );
    assert_eq!(
        Config::parse(&text).unwrap().roles(),
        ["owner", "admin", "member", "viewer", "editor", "bot"]
    );
}

#[test]
fn a_single_field_is_never_joined_to_another() {
    let mut table = Config::parse(MINIMAL).unwrap().tables.remove(0);
    table.embeddings.fields.truncate(1);
    table.embeddings.separator = " | ".into();
    assert!(!table.has_text_sql("r").contains(">= 2"));
}
