//! Each embedding table's CRUD paths and record schemas, from its config.

use serde_json::{json, Map, Value};
use shared::config::TableConfig;

use super::{
    answer, body, operation, path_parameter, query_parameter, record_id_schema, reference,
    responses, scalar,
};

/// A table's record as the API shows it, and the body that writes one.
fn record_schemas(table: &TableConfig) -> (Value, Value) {
    let mut shown = Map::new();
    for column in &table.columns {
        if *column == table.embeddings.embedding_column {
            shown.insert(
                column.clone(),
                json!({ "type": ["array", "null"], "items": { "type": "number" } }),
            );
        } else {
            shown.insert(column.clone(), scalar());
        }
    }
    let mut written = Map::new();
    written.insert("id".into(), record_id_schema());
    for column in &table.writable {
        written.insert(column.clone(), scalar());
    }
    (
        json!({ "type": "object", "properties": shown }),
        json!({ "type": "object", "properties": written, "additionalProperties": false }),
    )
}

pub(super) fn table_paths(
    table: &TableConfig,
    paths: &mut Map<String, Value>,
    schemas: &mut Map<String, Value>,
) {
    let name = &table.name;
    let (record, write) = record_schemas(table);
    let record_name = format!("Record_{name}");
    schemas.insert(record_name.clone(), record);
    schemas.insert(format!("Write_{name}"), write);
    let mut update = schemas[&format!("Write_{name}")].clone();
    update["properties"].as_object_mut().map(|p| p.remove("id"));
    update["minProperties"] = json!(1);
    schemas.insert(format!("Update_{name}"), update);
    let written = json!({
        "type": "object",
        "required": ["record", "job"],
        "properties": {
            "record": reference(&record_name),
            "job": { "oneOf": [{ "type": "null" }, reference("StartedJob")] },
        },
    });
    paths.insert(
        format!("/api/v1/{name}"),
        json!({
            "get": {
                "summary": format!("List {name}, in id order"),
                "parameters": [
                    query_parameter("limit", json!({ "type": "integer", "minimum": 1, "maximum": 100 })),
                    query_parameter("cursor", json!({ "type": "string" })),
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
                &format!("Create a record of {name}; embedded when the table embeds on insert"),
                Some(body(reference(&format!("Write_{name}")))),
                &[("201", answer("created", written.clone()))],
            ),
        }),
    );
    let id = path_parameter("id", record_id_schema());
    paths.insert(
        format!("/api/v1/{name}/{{id}}"),
        json!({
            "parameters": [id],
            "get": {
                "summary": format!("One record of {name}"),
                "parameters": [query_parameter("include", json!({ "type": "string", "enum": ["embedding"] }))],
                "responses": responses(&[("200", answer("the record", reference(&record_name)))]),
            },
            "patch": operation(
                &format!("Update a record of {name}; embedded again when a watched field changes"),
                Some(body(reference(&format!("Update_{name}")))),
                &[("200", answer("updated", written))],
            ),
            "delete": operation(
                &format!("Delete a record of {name} and its vectors"),
                None,
                &[("204", json!({ "description": "deleted" }))],
            ),
        }),
    );
}
