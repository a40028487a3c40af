//! Counts kept per principal (starts under way, open sessions) against a
//! limit; each place taken is a [`Slot`] that gives it back when dropped,
//! so that no path that ends a start or a session can forget to.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A count per principal name.
#[derive(Default, Clone)]
pub(super) struct Counts(Arc<Mutex<BTreeMap<String, usize>>>);

/// One place of a principal in [`Counts`]; given back on drop.
pub(super) struct Slot {
    counts: Counts,
    name: String,
}

impl Counts {
    /// Takes a place for `name` unless `also` (what else counts against the
    /// same limit) and its places already reach `max`; `Err` holds that total.
    pub(super) fn take(&self, name: &str, also: usize, max: usize) -> Result<Slot, usize> {
        let mut counts = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = counts.entry(name.to_string()).or_default();
        if also + *held >= max {
            return Err(also + *held);
        }
        *held += 1;
        Ok(Slot { counts: self.clone(), name: name.to_string() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.name) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.name);
            }
        }
    }
}
