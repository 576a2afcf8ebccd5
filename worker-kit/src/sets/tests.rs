//! The decisions of `shared::sets::plan` as the rows D1's statements read.

use serde_json::json;
use shared::config::Config;
use shared::sets::{Starter, CONFIG_LEASE_MS};

use super::decide::{decide_rows, SeenRow};

const SMALL: &str = "@cf/baai/bge-small-en-v1.5";
const BASE: &str = "@cf/baai/bge-base-en-v1.5";
const NOW: i64 = 5_000_000;

fn row(model: &str, role: &str, vouched_at: i64) -> SeenRow {
    SeenRow {
        organization_id: "org_a".into(),
        table_name: "notes".into(),
        model: model.into(),
        location: "d1".into(),
        role: role.into(),
        vouched_at,
    }
}

fn config() -> Config {
    Config::parse(include_str!("../../../embeddings.toml")).unwrap()
}

#[test]
fn a_creation_carries_the_sets_it_expects_as_sqlites_json_group_array_writes_them() {
    let config = config();
    let notes = config.table("notes").unwrap();
    let configured = shared::sets::VectorSet::configured(notes);
    // Another model is building, unvouched for a lease; the command gives it up and starts
    // the configured set's change.
    let other = if configured.model == BASE {
        SMALL
    } else {
        BASE
    };
    let rows = [
        row(&configured.model, "retiring", 0),
        row(other, "building", NOW - CONFIG_LEASE_MS),
    ];
    let rows = [
        SeenRow {
            location: "vectorize:SOMEWHERE".into(),
            ..rows[0].clone()
        },
        rows[1].clone(),
        row("@cf/baai/bge-large-en-v1.5", "active", 0),
    ];
    let decided = decide_rows(&rows, &[("org_a", notes)], Starter::Worker, NOW);
    assert_eq!(
        decided.give_up,
        [
            json!({ "org": "org_a", "table": "notes", "model": other, "location": "d1",
                 "vouchedAt": NOW - CONFIG_LEASE_MS })
        ]
    );
    let [create] = decided.create.as_slice() else {
        panic!("one set made: {decided:?}")
    };
    let mut expected = vec![
        [configured.model.as_str(), "vectorize:SOMEWHERE", "retiring"],
        [other, "d1", "retiring"],
        ["@cf/baai/bge-large-en-v1.5", "d1", "active"],
    ];
    expected.sort_unstable();
    assert_eq!(create["seen"], serde_json::to_string(&expected).unwrap());
    assert!(!create["seen"].as_str().unwrap().contains(' '));
    assert_eq!(create["role"], "building");
    assert!(create["migrationId"]
        .as_str()
        .is_some_and(|id| id.len() == 36));
    assert_eq!(create["model"], configured.model.as_str());
    assert!(decided.vouch.is_empty());
    assert!(!decided.is_empty());
}

#[test]
fn a_first_set_is_active_without_a_migration_and_a_building_one_is_vouched_for() {
    let config = config();
    let notes = config.table("notes").unwrap();
    let configured = shared::sets::VectorSet::configured(notes);
    let first = decide_rows(&[], &[("org_b", notes)], Starter::Worker, NOW);
    assert_eq!(first.create[0]["role"], "active");
    assert_eq!(first.create[0]["migrationId"], serde_json::Value::Null);
    assert_eq!(first.create[0]["seen"], "[]");
    assert_eq!(first.create[0]["org"], "org_b");

    let rows = [
        row("@cf/baai/bge-large-en-v1.5", "active", 0),
        row(&configured.model, "building", 0),
    ];
    let building = decide_rows(&rows, &[("org_a", notes)], Starter::Worker, NOW);
    assert!(building.give_up.is_empty() && building.create.is_empty());
    assert_eq!(
        building.vouch,
        [
            json!({ "org": "org_a", "table": "notes", "model": configured.model,
                 "location": configured.location })
        ]
    );
    // Another organization's sets are not this table's.
    let theirs = decide_rows(&rows, &[("org_c", notes)], Starter::Worker, NOW);
    assert_eq!(theirs.create.len(), 1);
    assert!(theirs.vouch.is_empty());
    // Nothing to write.
    let settled = [row(&configured.model, "active", 0)];
    let nothing = decide_rows(&settled, &[("org_a", notes)], Starter::Worker, NOW);
    assert!(nothing.is_empty());
}
