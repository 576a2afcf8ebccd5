use super::*;

#[test]
fn an_entry_is_answered_for_its_time_and_not_a_millisecond_more() {
    let mut cache = Expiring::new(5_000, 10);
    cache.put("a", 1, 1_000);
    assert_eq!(cache.get("a", 1_000), Some(1));
    assert_eq!(cache.get("a", 5_999), Some(1));
    assert_eq!(
        cache.get("a", 6_000),
        None,
        "5 s after it was read, it is read again"
    );
    assert_eq!(
        cache.get("a", 999),
        None,
        "a clock that went back reads again"
    );
    assert_eq!(cache.get("b", 1_000), None);
    cache.put("a", 2, 6_000);
    assert_eq!(cache.get("a", 6_001), Some(2), "put again, from then");
    cache.remove("a");
    assert_eq!(cache.get("a", 6_001), None);
}

#[test]
fn when_full_the_expired_then_the_oldest_make_room() {
    let mut cache = Expiring::new(100, 3);
    cache.put("old", 0, 0);
    cache.put("b", 1, 50);
    cache.put("c", 2, 60);
    cache.put("d", 3, 120);
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.get("old", 120), None, "expired, and gone first");
    assert_eq!(cache.get("b", 120), Some(1));
    cache.put("e", 4, 130);
    assert_eq!(cache.len(), 3);
    assert_eq!(cache.get("b", 130), None, "the oldest live entry made room");
    assert_eq!(
        (
            cache.get("c", 130),
            cache.get("d", 130),
            cache.get("e", 130)
        ),
        (Some(2), Some(3), Some(4))
    );
    cache.put("c", 5, 140);
    assert_eq!(cache.len(), 3, "replacing an entry takes no room");
    let mut none: Expiring<u8> = Expiring::new(100, 0);
    none.put("a", 1, 0);
    assert!(none.is_empty(), "a cache of no entries keeps nothing");
}

#[test]
fn replacing_an_entry_in_a_full_cache_drops_no_other() {
    let mut cache = Expiring::new(100, 3);
    cache.put("a", 1, 0);
    cache.put("b", 2, 10);
    cache.put("c", 3, 20);
    cache.put("b", 4, 30);
    assert_eq!(
        (cache.get("a", 30), cache.get("b", 30), cache.get("c", 30)),
        (Some(1), Some(4), Some(3))
    );
}

#[test]
fn every_entry_as_old_as_its_time_makes_room_at_once() {
    let mut cache = Expiring::new(100, 3);
    cache.put("expired", 1, 0);
    cache.put("expired too", 2, 0);
    cache.put("live", 3, 50);
    cache.put("new", 4, 100);
    assert_eq!(
        cache.len(),
        2,
        "both expired entries went, not only the oldest"
    );
    assert_eq!(
        (cache.get("live", 100), cache.get("new", 100)),
        (Some(3), Some(4))
    );
}

#[test]
fn an_entry_put_after_now_counts_as_expired_when_room_is_made() {
    // The clock went back: the entry put "at 500" is not trusted at 100, and is the one to go.
    let mut cache = Expiring::new(1_000, 2);
    cache.put("future", 1, 500);
    cache.put("older", 2, 50);
    cache.put("new", 3, 100);
    assert_eq!(cache.len(), 2);
    assert_eq!(
        (cache.get("older", 100), cache.get("new", 100)),
        (Some(2), Some(3))
    );
}

#[test]
fn a_cache_that_is_not_full_makes_no_room() {
    // An expired entry stays until room is needed (it is not answered meanwhile).
    let mut cache = Expiring::new(100, 3);
    cache.put("expired", 1, 0);
    cache.put("b", 2, 500);
    assert_eq!(cache.len(), 2);
    assert!(!cache.is_empty());
    assert_eq!(cache.get("expired", 500), None);
}
