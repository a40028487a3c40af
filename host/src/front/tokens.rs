//! What the front keeps under a random token — Streamable HTTP sessions,
//! legacy SSE sessions, 2026-07-28 requests parked on `input_required` —
//! in one kind of table, swept by one reaper ([`super::reap_every`]).
//! Entries that expire are taken out under the lock and dropped outside
//! it, since dropping one may close a session (which locks again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// An entry that can go stale.
pub trait Expiring {
    /// True when the entry has outlived `ttl` and may be dropped.
    fn expired(&self, ttl: Duration) -> bool;
}

/// Entries by token, each dropped by the reaper once [`Expiring::expired`].
pub struct TokenTable<V> {
    map: Mutex<HashMap<String, V>>,
    ttl: Duration,
}

impl<V> TokenTable<V> {
    /// An empty table whose entries live `ttl` (as each entry judges it).
    pub fn new(ttl: Duration) -> Self {
        TokenTable { map: Mutex::new(HashMap::new()), ttl }
    }

    /// Keeps `value` under `token`.
    pub fn insert(&self, token: String, value: V) {
        if let Ok(mut map) = self.map.lock() {
            map.insert(token, value);
        }
    }

    /// Takes the entry under `token` out.
    pub fn remove(&self, token: &str) -> Option<V> {
        self.map.lock().ok()?.remove(token)
    }

    /// Takes the entry under `token` out if `wanted` says so.
    pub fn take_if(&self, token: &str, wanted: impl FnOnce(&V) -> bool) -> Option<V> {
        let mut map = self.map.lock().ok()?;
        if map.get(token).is_some_and(wanted) { map.remove(token) } else { None }
    }

    /// A clone of the entry under `token`.
    pub fn get(&self, token: &str) -> Option<V>
    where
        V: Clone,
    {
        self.map.lock().ok()?.get(token).cloned()
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<V: Expiring> TokenTable<V> {
    /// Takes every expired entry out; the caller drops (closes) them
    /// outside the table's lock.
    pub fn take_expired(&self) -> Vec<(String, V)> {
        let Ok(mut map) = self.map.lock() else { return Vec::new() };
        let stale: Vec<String> = map.iter().filter(|(_, v)| v.expired(self.ttl)).map(|(k, _)| k.clone()).collect();
        stale.into_iter().filter_map(|k| map.remove(&k).map(|v| (k, v))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Entry(Arc<AtomicBool>);

    impl Expiring for Entry {
        fn expired(&self, ttl: Duration) -> bool {
            ttl < Duration::from_secs(1) || self.0.load(Ordering::Relaxed)
        }
    }

    #[test]
    fn only_expired_entries_are_taken_out_and_the_rest_stay_reachable() {
        let table = TokenTable::new(Duration::from_secs(60));
        let stale = Arc::new(AtomicBool::new(false));
        table.insert("a".into(), Entry(stale.clone()));
        table.insert("b".into(), Entry(Arc::new(AtomicBool::new(false))));
        assert!(table.take_expired().is_empty());
        stale.store(true, Ordering::Relaxed);
        let taken: Vec<String> = table.take_expired().into_iter().map(|(k, _)| k).collect();
        assert_eq!(taken, ["a"]);
        assert_eq!(table.len(), 1);
        assert!(table.take_if("b", |_| false).is_none(), "refused by the predicate, kept");
        assert!(table.take_if("b", |_| true).is_some());
        assert!(table.is_empty());
    }

    #[test]
    fn the_tables_ttl_is_what_entries_judge_by() {
        let table = TokenTable::new(Duration::from_millis(10));
        table.insert("x".into(), Entry(Arc::new(AtomicBool::new(false))));
        assert_eq!(table.take_expired().len(), 1);
    }
}
