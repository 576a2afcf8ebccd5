//! A small map whose entries are trusted for a fixed time after they were read from their
//! source, then read again: how long a change at the source (a sign-out, a removal from an
//! organization) may go unseen is that time, and no more.

use std::collections::HashMap;

/// At most `capacity` entries, each answered for `ttl_ms` after it was put.
#[derive(Debug)]
pub struct Expiring<V> {
    entries: HashMap<String, (V, i64)>,
    ttl_ms: i64,
    capacity: usize,
}

impl<V: Clone> Expiring<V> {
    pub fn new(ttl_ms: i64, capacity: usize) -> Self {
        Expiring {
            entries: HashMap::new(),
            ttl_ms,
            capacity,
        }
    }

    /// The value put under `key` less than `ttl_ms` ago. A clock that went back counts as
    /// expired: the value is read again.
    pub fn get(&self, key: &str, now_ms: i64) -> Option<V> {
        let (value, put_at) = self.entries.get(key)?;
        (now_ms >= *put_at && now_ms - put_at < self.ttl_ms).then(|| value.clone())
    }

    /// Keeps `value` under `key` from `now_ms`. When full, the expired entries go first, then
    /// the oldest.
    pub fn put(&mut self, key: &str, value: V, now_ms: i64) {
        if self.capacity == 0 {
            return;
        }
        if !self.entries.contains_key(key) && self.entries.len() >= self.capacity {
            let ttl = self.ttl_ms;
            self.entries
                .retain(|_, (_, put_at)| now_ms >= *put_at && now_ms - *put_at < ttl);
            if self.entries.len() >= self.capacity {
                if let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, put_at))| *put_at)
                    .map(|(k, _)| k.clone())
                {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(key.to_owned(), (value, now_ms));
    }

    /// Forgets `key`, so that its next use reads the source.
    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
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
}
