//! Each embedding table's CRUD paths and record schemas, from its config.

use serde_json::{json, Map, Value};
use shared::config::TableConfig;
use shared::guard::MAX_TEXT_CHARS;

use super::schemas::record_cursor;
use super::{
    answer, body, links, operation, path_parameter, query_parameter, record_id_schema, reference,
    responses,
};

/// A column's value as a body writes it: a string (of at most [`MAX_TEXT_CHARS`] characters),
/// a number, a boolean, or null where the column allows it.
fn value(nullable: bool) -> Value {
    let mut types = vec!["string", "number", "boolean"];
    if nullable {
        types.push("null");
    }
    json!({ "type": types, "maxLength": MAX_TEXT_CHARS })
}

/// A table's record as the API shows it, the body that creates one and the body that updates one.
fn record_schemas(table: &TableConfig) -> (Value, Value, Value) {
    let mut shown = Map::new();
    for column in &table.columns {
        let schema = if *column == table.embeddings.embedding_column {
            json!({ "type": ["array", "null"], "items": { "type": "number" } })
        } else {
            json!({ "type": ["string", "number", "boolean", "null"] })
        };
        shown.insert(column.clone(), schema);
    }
    let mut written = Map::new();
    for column in &table.writable {
        written.insert(column.clone(), value(table.is_nullable(column)));
    }
    let update = json!({ "type": "object", "properties": written, "additionalProperties": false,
                         "minProperties": 1 });
    written.insert("id".into(), record_id_schema());
    let create = json!({ "type": "object", "properties": written, "additionalProperties": false,
                         "required": table.required });
    (
        json!({ "type": "object", "properties": shown }),
        create,
        update,
    )
}

pub(super) fn table_paths(
    table: &TableConfig,
    paths: &mut Map<String, Value>,
    schemas: &mut Map<String, Value>,
) {
    let name = &table.name;
    let (record, create, update) = record_schemas(table);
    let record_name = format!("Record_{name}");
    schemas.insert(record_name.clone(), record);
    schemas.insert(format!("Write_{name}"), create);
    schemas.insert(format!("Update_{name}"), update);
    let written = json!({
        "type": "object",
        "required": ["record", "job"],
        "properties": {
            "record": reference(&record_name),
            "job": { "oneOf": [{ "type": "null" }, reference("StartedJob")] },
        },
    });
    let (get, patch, delete) = (
        format!("get_{name}"),
        format!("update_{name}"),
        format!("delete_{name}"),
    );
    let mut created = answer("created", written.clone());
    created["links"] = links(&[
        (&get, "id", "/record/id"),
        (&patch, "id", "/record/id"),
        (&delete, "id", "/record/id"),
    ]);
    paths.insert(
        format!("/api/v1/{name}"),
        json!({
            "get": {
                "operationId": format!("list_{name}"),
                "summary": format!("List {name}, in id order"),
                "parameters": [
                    query_parameter("limit", json!({ "type": "integer", "minimum": 1, "maximum": 100 })),
                    query_parameter("cursor", record_cursor()),
                    query_parameter("include", json!({ "type": "string", "enum": ["embedding"] })),
                ],
                "responses": responses(&[("200", answer("a page", json!({
                    "type": "object",
                    "required": ["records", "nextCursor"],
                    "properties": {
                        "records": { "type": "array", "items": reference(&record_name) },
                        "nextCursor": { "type": ["string", "null"] },
                    },
                })))]),
            },
            "post": operation(
                &format!("create_{name}"),
                &format!("Create a record of {name}; embedded when the table embeds on insert"),
                Some(body(reference(&format!("Write_{name}")))),
                &[("201", created)],
            ),
        }),
    );
    let id = path_parameter("id", record_id_schema());
    paths.insert(
        format!("/api/v1/{name}/{{id}}"),
        json!({
            "parameters": [id],
            "get": {
                "operationId": get,
                "summary": format!("One record of {name}"),
                "parameters": [query_parameter("include", json!({ "type": "string", "enum": ["embedding"] }))],
                "responses": responses(&[("200", answer("the record", reference(&record_name)))]),
            },
            "patch": operation(
                &patch,
                &format!("Update a record of {name}; embedded again when a watched field changes"),
                Some(body(reference(&format!("Update_{name}")))),
                &[("200", answer("updated", written))],
            ),
            "delete": operation(
                &delete,
                &format!("Delete a record of {name} and its vectors"),
                None,
                &[("204", json!({ "description": "deleted" }))],
            ),
        }),
    );
}
