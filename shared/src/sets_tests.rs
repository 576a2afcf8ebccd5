//! The rules of `shared::sets`, each as a specification.
use super::*;

fn step(step: Step) -> MigrationStep {
    MigrationStep::new(Migration {
        organization_id: "org_a".into(),
        table: "notes".into(),
        model: "@cf/baai/bge-base-en-v1.5".into(),
        location: "d1".into(),
        migration_id: Uuid::nil(),
        seq: 0,
        step,
    })
}

#[test]
fn a_step_round_trips_as_the_documented_json() {
    let page = step(Step::Backfill {
        after: Some("note_0420".into()),
    });
    let json = serde_json::to_value(&page).unwrap();
    assert_eq!(json["migration"]["step"]["kind"], "backfill");
    assert_eq!(json["migration"]["step"]["after"], "note_0420");
    assert_eq!(json["migration"]["organizationId"], "org_a");
    assert!(MigrationStep::is_step(&json));
    assert_eq!(MigrationStep::decode(json).unwrap(), page);
    let switch = step(Step::Switch {
        attempt: 3,
        covered_at: Some(7),
    });
    let back = MigrationStep::decode(serde_json::to_value(&switch).unwrap()).unwrap();
    assert_eq!(back, switch);
    let cleanup = serde_json::to_value(step(Step::Cleanup)).unwrap();
    assert_eq!(cleanup["migration"]["step"]["kind"], "cleanup");
}

#[test]
fn a_job_is_not_a_step_and_an_unknown_version_is_refused() {
    assert!(!MigrationStep::is_step(
        &serde_json::json!({"version": 1, "jobId": "x"})
    ));
    let mut json = serde_json::to_value(step(Step::Cleanup)).unwrap();
    json["version"] = 2.into();
    assert!(MigrationStep::decode(json)
        .unwrap_err()
        .contains("version 2"));
}

#[test]
fn a_step_carries_its_seq_and_one_sent_before_the_fence_reads_as_zero() {
    let page = step(Step::Backfill { after: None }).then(7, Step::Cleanup);
    let json = serde_json::to_value(&page).unwrap();
    assert_eq!(json["migration"]["seq"], 7);
    assert_eq!(MigrationStep::decode(json.clone()).unwrap(), page);
    // Already on the queue when this consumer was deployed: no `seq`, and
    // `deny_unknown_fields` still lets it through.
    let mut old = json;
    old["migration"].as_object_mut().unwrap().remove("seq");
    assert_eq!(MigrationStep::decode(old).unwrap().migration.seq, 0);
}

#[test]
fn the_command_resumes_only_a_set_it_made_or_a_chain_that_stopped() {
    let now = 10 * COMMAND_RESUMES_AFTER_MS;
    assert!(command_resumes(true, now, now));
    assert!(!command_resumes(false, now - 1_000, now), "a moving chain");
    assert!(!command_resumes(
        false,
        now - COMMAND_RESUMES_AFTER_MS + 1,
        now
    ));
    assert!(command_resumes(false, now - COMMAND_RESUMES_AFTER_MS, now));
    assert!(command_resumes(false, 0, now), "a set no step ever moved");
    // Two minutes: twice the longest wait between two steps of a moving chain.
    assert_eq!(COMMAND_RESUMES_AFTER_MS, 120_000);
    assert_eq!(
        COMMAND_RESUMES_AFTER_MS,
        2 * 1_000 * i64::from(switch_delay_seconds(u32::MAX))
    );
}

#[test]
fn the_next_step_is_the_same_change_at_another_step_for_the_seq_claimed() {
    let page = step(Step::Backfill { after: None });
    let next = page.then(
        4,
        Step::Switch {
            attempt: 0,
            covered_at: None,
        },
    );
    assert_eq!(next.migration.seq, 4);
    assert_eq!(
        next.migration.step,
        Step::Switch {
            attempt: 0,
            covered_at: None,
        }
    );
    assert_eq!(
        (
            next.migration.organization_id.as_str(),
            next.migration.table.as_str()
        ),
        ("org_a", "notes")
    );
    assert_eq!(next.set(), page.set());
    assert_eq!(next.version, MESSAGE_VERSION);
}

#[test]
fn only_the_claim_that_moved_the_counter_from_the_steps_seq_runs() {
    assert_eq!(Claim::of(4, Some(5)), Claim::Run { seq: 5 });
    // The guard matched no row: another step claimed 4 first, or the role changed.
    assert_eq!(Claim::of(4, None), Claim::Drop);
    // A value the guard cannot have moved to from 4 is no claim of this step's.
    assert_eq!(Claim::of(4, Some(4)), Claim::Drop);
    assert_eq!(Claim::of(4, Some(9)), Claim::Drop);
    assert_eq!(Claim::of(u32::MAX, Some(0)), Claim::Drop);
}

#[test]
fn backfill_and_switch_work_on_the_building_set_and_clean_up_on_a_retiring_one() {
    assert_eq!(Step::Backfill { after: None }.works_on(), SetRole::Building);
    let switch = Step::Switch {
        attempt: 2,
        covered_at: None,
    };
    assert_eq!(switch.works_on(), SetRole::Building);
    assert_eq!(Step::Cleanup.works_on(), SetRole::Retiring);
}

#[test]
fn a_chain_resumes_from_its_first_page_or_its_clean_up_and_the_active_set_has_none() {
    assert_eq!(
        Step::resuming(SetRole::Building),
        Some(Step::Backfill { after: None })
    );
    assert_eq!(Step::resuming(SetRole::Retiring), Some(Step::Cleanup));
    assert_eq!(Step::resuming(SetRole::Active), None);
    // What resumes a chain works on the set it resumes.
    for role in [SetRole::Building, SetRole::Retiring] {
        assert_eq!(Step::resuming(role).unwrap().works_on(), role);
    }
}

#[test]
fn a_full_page_is_followed_by_the_next_and_a_short_one_by_the_switch() {
    let full = BACKFILL_PAGE as usize;
    assert_eq!(
        Step::after_page(full, Some("note_0500")),
        Step::Backfill {
            after: Some("note_0500".into())
        }
    );
    let switch = Step::Switch {
        attempt: 0,
        covered_at: None,
    };
    assert_eq!(Step::after_page(full - 1, Some("note_0499")), switch);
    assert_eq!(Step::after_page(0, None), switch);
}

#[test]
fn a_page_enqueues_only_records_the_set_lacks_that_no_open_job_of_the_change_brings() {
    let model = "@cf/baai/bge-base-en-v1.5";
    let current = content_hash(model, "the text");
    // Not covered, nothing on its way: a job.
    assert!(needs_job(model, Some("the text"), false, None, false));
    // Covered with the current content: none.
    assert!(!needs_job(
        model,
        Some("the text"),
        true,
        Some(current.as_str()),
        false
    ));
    // Covered, but with content the record no longer has: a job.
    assert!(needs_job(model, Some("the text"), true, Some("old"), false));
    // A job of the change is open for it (a restarted pass): none.
    assert!(!needs_job(model, Some("the text"), false, None, true));
    assert!(!needs_job(model, Some("the text"), true, Some("old"), true));
    // Nothing to embed.
    assert!(!needs_job(model, None, false, None, false));
}

#[test]
fn the_sweep_takes_each_organizations_oldest_before_any_organizations_second() {
    // org_a has many stalled sets, all older than org_b's and org_c's one each.
    let mut stalled: Vec<(&str, i64)> = (0..5).map(|i| ("org_a", i)).collect();
    stalled.extend([("org_c", 60), ("org_b", 50), ("org_b", 70)]);
    let order = fair_order(stalled, |&(org, at)| (org, at));
    assert_eq!(
        order,
        [
            ("org_a", 0),
            ("org_b", 50),
            ("org_c", 60),
            ("org_a", 1),
            ("org_b", 70),
            ("org_a", 2),
            ("org_a", 3),
            ("org_a", 4),
        ]
    );
    // With room for three, every organization gets one.
    let orgs: Vec<&str> = order.iter().take(3).map(|&(org, _)| org).collect();
    assert_eq!(orgs, ["org_a", "org_b", "org_c"]);
}

#[test]
fn two_models_cannot_share_one_vectorize_index() {
    let set = |model: &str, location: &str| VectorSet {
        model: model.into(),
        location: location.into(),
    };
    let base = "@cf/baai/bge-base-en-v1.5";
    let small = "@cf/baai/bge-small-en-v1.5";
    assert!(blocked(&set(base, "vectorize:V"), &set(small, "vectorize:V")).is_some());
    // Another index, D1, or the same model elsewhere: all fine.
    assert!(blocked(&set(base, "vectorize:V"), &set(small, "vectorize:W")).is_none());
    assert!(blocked(&set(base, "d1"), &set(small, "d1")).is_none());
    assert!(blocked(&set(base, "vectorize:V"), &set(base, "d1")).is_none());
}

#[test]
fn a_role_reads_back_from_its_name_as_embedding_sets_stores_it() {
    for (role, name) in [
        (SetRole::Active, "active"),
        (SetRole::Building, "building"),
        (SetRole::Retiring, "retiring"),
    ] {
        assert_eq!(role.as_str(), name);
        assert_eq!(SetRole::parse(name), Some(role));
        assert_eq!(serde_json::to_value(role).unwrap(), serde_json::json!(name));
    }
    assert_eq!(SetRole::parse("Active"), None);
    assert_eq!(SetRole::parse(""), None);
}
