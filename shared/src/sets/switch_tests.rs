//! What a switch step does next (`shared::sets::switch`).

use super::*;

const NOW: i64 = 1_000_000;

fn d1() -> VectorSet {
    VectorSet {
        model: "@cf/baai/bge-base-en-v1.5".into(),
        location: "d1".into(),
    }
}

fn vectorize() -> VectorSet {
    VectorSet {
        location: "vectorize:VECTORIZE_768".into(),
        ..d1()
    }
}

fn look(attempt: u32, covered_at: Option<i64>, delay_seconds: u32) -> SwitchNext {
    SwitchNext::Send {
        step: Step::Switch {
            attempt,
            covered_at,
        },
        delay_seconds,
    }
}

#[test]
fn the_switch_looks_again_soon_then_at_most_once_a_minute() {
    let delays: Vec<u32> = (0..20).map(switch_delay_seconds).collect();
    assert_eq!(&delays[..8], &[1, 1, 2, 2, 4, 4, 8, 8]);
    assert!(delays.iter().all(|&d| (1..=60).contains(&d)));
    assert_eq!(delays[19], 60);
}

#[test]
fn an_incomplete_set_is_looked_at_again_then_backfilled_again_from_its_first_page() {
    for attempt in 0..RESTART_AFTER - 1 {
        assert_eq!(
            switch_next(&d1(), true, attempt, Some(NOW - 1), (9, 10), NOW),
            look(attempt + 1, None, switch_delay_seconds(attempt)),
            "attempt {attempt}"
        );
    }
    assert_eq!(
        switch_next(&d1(), true, RESTART_AFTER - 1, None, (9, 10), NOW),
        SwitchNext::Send {
            step: Step::Backfill { after: None },
            delay_seconds: 0,
        }
    );
}

#[test]
fn a_covered_d1_set_is_switched_to_at_once() {
    assert_eq!(
        switch_next(&d1(), true, 0, None, (10, 10), NOW),
        SwitchNext::Switch
    );
    assert_eq!(
        switch_next(&d1(), true, 3, None, (0, 0), NOW),
        SwitchNext::Switch
    );
}

#[test]
fn a_covered_vectorize_set_waits_ten_seconds_from_when_coverage_was_first_seen() {
    // First seen now: wait the whole settle, remembering when.
    assert_eq!(
        switch_next(&vectorize(), true, 2, None, (10, 10), NOW),
        look(3, Some(NOW), 10)
    );
    // Seen 2.5 s ago: 7.5 s left, rounded up.
    assert_eq!(
        switch_next(&vectorize(), true, 3, Some(NOW - 2_500), (10, 10), NOW),
        look(4, Some(NOW - 2_500), 8)
    );
    // 1 ms left is a second's wait; none left is the switch.
    assert_eq!(
        switch_next(
            &vectorize(),
            true,
            4,
            Some(NOW - VECTORIZE_SETTLE_MS + 1),
            (10, 10),
            NOW
        ),
        look(5, Some(NOW - VECTORIZE_SETTLE_MS + 1), 1)
    );
    assert_eq!(
        switch_next(
            &vectorize(),
            true,
            4,
            Some(NOW - VECTORIZE_SETTLE_MS),
            (10, 10),
            NOW
        ),
        SwitchNext::Switch
    );
}

#[test]
fn a_switch_a_write_raced_looks_again_soon() {
    assert_eq!(SwitchNext::raced(5), look(6, None, 1));
}

#[test]
fn a_worker_of_another_config_never_switches_and_looks_again_later() {
    // Covered, settled: its own config's worker would switch now.
    for set in [d1(), vectorize()] {
        assert_eq!(
            switch_next(
                &set,
                false,
                3,
                Some(NOW - VECTORIZE_SETTLE_MS),
                (10, 10),
                NOW
            ),
            look(4, Some(NOW - VECTORIZE_SETTLE_MS), switch_delay_seconds(3))
        );
    }
    // Incomplete, it looks and restarts as any worker would.
    assert_eq!(
        switch_next(&d1(), false, 0, None, (9, 10), NOW),
        look(1, None, switch_delay_seconds(0))
    );
}
