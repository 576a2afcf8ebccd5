//! What a table's sets become, rule by rule (`shared::sets::table`).

use super::*;

const SMALL: &str = "@cf/baai/bge-small-en-v1.5";
const BASE: &str = "@cf/baai/bge-base-en-v1.5";
const M3: &str = "@cf/baai/bge-large-en-v1.5";
const NOW: i64 = 1_000_000;

fn set(model: &str, location: &str) -> VectorSet {
    VectorSet {
        model: model.into(),
        location: location.into(),
    }
}

fn seen(model: &str, location: &str, role: SetRole, vouched_at: i64) -> SeenSet {
    SeenSet {
        set: set(model, location),
        role,
        vouched_at,
    }
}

fn creates(role: SetRole) -> Plan {
    Plan {
        create: Some(role),
        ..Plan::default()
    }
}

#[test]
fn a_table_without_sets_gets_its_configured_set_as_the_active_one() {
    let plan = plan(&[], &set(SMALL, "d1"), Starter::Worker, NOW);
    assert_eq!(plan, creates(SetRole::Active));
    assert!(!plan.is_empty());
}

#[test]
fn a_table_on_its_configured_set_changes_nothing() {
    let sets = [seen(SMALL, "d1", SetRole::Active, 0)];
    let plan = plan(&sets, &set(SMALL, "d1"), Starter::Command, NOW);
    assert_eq!(plan, Plan::default());
    assert!(plan.is_empty());
}

#[test]
fn another_model_or_place_starts_a_change_beside_the_active_set() {
    let sets = [seen(SMALL, "d1", SetRole::Active, 0)];
    for configured in [set(BASE, "d1"), set(SMALL, "vectorize:VECTORIZE_384")] {
        assert_eq!(
            plan(&sets, &configured, Starter::Worker, NOW),
            creates(SetRole::Building)
        );
    }
}

#[test]
fn the_configured_building_set_is_vouched_for_at_most_every_ten_seconds() {
    let building = |vouched_at| {
        [
            seen(SMALL, "d1", SetRole::Active, 0),
            seen(BASE, "d1", SetRole::Building, vouched_at),
        ]
    };
    let vouches = |vouched_at| {
        plan(
            &building(vouched_at),
            &set(BASE, "d1"),
            Starter::Worker,
            NOW,
        )
    };
    assert_eq!(
        vouches(NOW - VOUCH_EVERY_MS),
        Plan {
            vouch: true,
            ..Plan::default()
        }
    );
    assert!(!vouches(NOW - VOUCH_EVERY_MS).is_empty());
    assert_eq!(vouches(NOW - VOUCH_EVERY_MS + 1), Plan::default());
}

#[test]
fn a_worker_of_the_old_config_leaves_a_change_alone_while_its_workers_vouch_for_it() {
    // A rolling deploy: the new config's workers build bge-base; an old one, configured for
    // the active bge-small, takes a batch.
    let sets = |vouched_at| {
        [
            seen(SMALL, "d1", SetRole::Active, 0),
            seen(BASE, "d1", SetRole::Building, vouched_at),
        ]
    };
    let old = |vouched_at| plan(&sets(vouched_at), &set(SMALL, "d1"), Starter::Worker, NOW);
    assert_eq!(old(NOW - CONFIG_LEASE_MS + 1), Plan::default());
    // Once no worker of the new config has vouched for a lease, every worker follows the old
    // one (a rollback): the change is given up, and the active set is the configured one.
    assert_eq!(
        old(NOW - CONFIG_LEASE_MS),
        Plan {
            give_up: Some(set(BASE, "d1")),
            ..Plan::default()
        }
    );
}

#[test]
fn a_config_changed_again_gives_up_the_change_once_its_lease_lapsed_and_starts_its_own() {
    let sets = |vouched_at| {
        [
            seen(SMALL, "d1", SetRole::Active, 0),
            seen(BASE, "d1", SetRole::Building, vouched_at),
        ]
    };
    let third = set(M3, "d1");
    assert_eq!(
        plan(&sets(NOW - 1), &third, Starter::Worker, NOW),
        Plan::default()
    );
    assert_eq!(
        plan(&sets(NOW - CONFIG_LEASE_MS), &third, Starter::Worker, NOW),
        Plan {
            give_up: Some(set(BASE, "d1")),
            create: Some(SetRole::Building),
            vouch: false,
        }
    );
}

#[test]
fn the_command_gives_up_another_configs_change_at_once() {
    let sets = [
        seen(SMALL, "d1", SetRole::Active, 0),
        seen(BASE, "d1", SetRole::Building, NOW),
    ];
    assert_eq!(
        plan(&sets, &set(M3, "d1"), Starter::Command, NOW),
        Plan {
            give_up: Some(set(BASE, "d1")),
            create: Some(SetRole::Building),
            vouch: false,
        }
    );
}

#[test]
fn no_change_starts_into_the_active_sets_vectorize_index() {
    let sets = [seen(BASE, "vectorize:VECTORIZE_768", SetRole::Active, 0)];
    let configured = set(SMALL, "vectorize:VECTORIZE_768");
    assert_eq!(
        plan(&sets, &configured, Starter::Command, NOW),
        Plan::default()
    );
}

#[test]
fn no_set_is_made_where_a_retiring_one_is_still_being_removed() {
    let active = seen(SMALL, "d1", SetRole::Active, 0);
    // The same set, named again while its rows go.
    let same = [active.clone(), seen(BASE, "d1", SetRole::Retiring, 0)];
    assert_eq!(
        plan(&same, &set(BASE, "d1"), Starter::Worker, NOW),
        Plan::default()
    );
    // A Vectorize index whose ids a retiring set of another model still holds.
    let shared_ids = [
        active.clone(),
        seen(M3, "vectorize:VECTORIZE_384", SetRole::Retiring, 0),
    ];
    assert_eq!(
        plan(
            &shared_ids,
            &set(BASE, "vectorize:VECTORIZE_384"),
            Starter::Worker,
            NOW
        ),
        Plan::default()
    );
    // In D1 each model's rows are its own: another model's clean-up is in nobody's way.
    let elsewhere = [active, seen(M3, "d1", SetRole::Retiring, 0)];
    assert_eq!(
        plan(&elsewhere, &set(BASE, "d1"), Starter::Worker, NOW),
        creates(SetRole::Building)
    );
}

#[test]
fn a_change_given_up_is_in_the_way_of_a_set_it_shares_an_index_with() {
    let sets = [
        seen(SMALL, "d1", SetRole::Active, 0),
        seen(BASE, "vectorize:VECTORIZE_768", SetRole::Building, 0),
    ];
    let plan = plan(
        &sets,
        &set(M3, "vectorize:VECTORIZE_768"),
        Starter::Command,
        NOW,
    );
    assert_eq!(
        plan,
        Plan {
            give_up: Some(set(BASE, "vectorize:VECTORIZE_768")),
            ..Plan::default()
        }
    );
}

#[test]
fn a_creation_expects_the_sets_it_saw_with_the_one_given_up_retiring_in_set_order() {
    let sets = [
        seen(SMALL, "d1", SetRole::Active, 0),
        seen(BASE, "d1", SetRole::Building, 0),
    ];
    let decided = plan(&sets, &set(M3, "d1"), Starter::Command, NOW);
    assert_eq!(
        decided.applied(&sets),
        vec![
            seen(BASE, "d1", SetRole::Retiring, 0),
            seen(SMALL, "d1", SetRole::Active, 0),
        ]
    );
    assert_eq!(
        Plan::default().applied(&sets),
        vec![
            seen(BASE, "d1", SetRole::Building, 0),
            seen(SMALL, "d1", SetRole::Active, 0),
        ]
    );
}
