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
