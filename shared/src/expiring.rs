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
#[path = "expiring_tests.rs"]
mod tests;
