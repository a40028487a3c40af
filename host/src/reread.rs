//! Files a running host reads again when they change (the named tokens,
//! the access policies): the modification time each compares, and the
//! task that asks each to look, off the async workers, until it is dropped.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// When `path` was last modified (`None`: it cannot be read).
pub fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Calls `refresh` on `target` every `every` (a stat of one file, on the
/// blocking pool), until the last other holder of `target` drops it.
pub fn every<T: Send + Sync + 'static>(target: &Arc<T>, every: Duration, refresh: fn(&T)) {
    let weak = Arc::downgrade(target);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let Some(target) = weak.upgrade() else { return };
            tokio::task::spawn_blocking(move || refresh(&target)).await.ok();
        }
    });
}
