//! The fragments read as the rules they name.

use shared::config::Config;

use super::*;

#[test]
fn the_newer_job_wins_by_creation_time_then_job_id() {
    assert_eq!(
        newer_job(&job_order("excluded"), &job_order("embedding_vectors")),
        "(excluded.job_created_at, excluded.job_id) \
         > (embedding_vectors.job_created_at, embedding_vectors.job_id)"
    );
    assert_eq!(
        newer_job(WRITE_ORDER, &job_order("v")),
        "(w.created, w.job) > (v.job_created_at, v.job_id)"
    );
}

#[test]
fn roles_and_statuses_are_named_by_their_enums() {
    assert_eq!(live_roles(), "('active', 'building')");
    assert_eq!(open_statuses(), "('queued', 'processing')");
    assert!(retiring_rows().contains("s.role = 'retiring'"));
    assert!(active_vectors().contains("a.role = 'active'"));
    let follows = column_follows("s", "w.org", "?2", "w.record");
    assert!(follows.starts_with("(s.role = 'building' OR (s.role = 'active' AND NOT EXISTS"));
    assert!(follows.contains("b.role = 'building' AND vb.record_id = w.record"));
    assert!(embedded_count().contains("j.status IN ('queued', 'processing')"));
}

#[test]
fn a_changed_row_takes_the_next_seq_of_its_table() {
    let seq = "(SELECT COALESCE(MAX(seq), 0) FROM embedding_vectors
          WHERE organization_id = ?1 AND table_name = ?2) + 1";
    assert!(tombstone().contains(seq));
    let config = Config::parse(include_str!("../../../embeddings.toml")).unwrap();
    let table = config.table("claims").unwrap();
    assert!(refresh_metadata(table).contains(seq));
}

#[test]
fn a_column_is_written_only_by_the_job_whose_row_its_set_kept_and_as_the_roles_say() {
    let config = Config::parse(include_str!("../../../embeddings.toml")).unwrap();
    let update = column_update(config.table("notes").unwrap());
    // Not the configured set's: the item's own, and only its own job's row in it.
    assert!(!update.contains("?3") && !update.contains("?4"));
    assert!(update.contains("s.model = w.model"));
    assert!(update.contains("s.location = w.location"));
    assert!(update.contains("v.job_id = w.job AND v.vector IS NOT NULL"));
    assert!(update.contains(&column_follows("s", "w.org", "?2", "w.record")));
}
