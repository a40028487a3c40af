//! Removing what has not been used for a while. The checked package files
//! a host keeps and its servers' package caches grow by one entry with each
//! version and command line it runs, so each entry is touched (its
//! modification time set) when it is used, and a sweep removes the entries
//! unused for longer than the operator keeps them (`[packages]
//! keep_unused_days`). What a live server names is touched by every sweep,
//! so that it is never removed under it, and so that another host sharing
//! the directory sees it in use too.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Entries (files or whole directories) removed.
    pub entries: u64,
    /// Their size, in bytes.
    pub bytes: u64,
}

impl std::ops::AddAssign for Swept {
    fn add_assign(&mut self, other: Swept) {
        self.entries += other.entries;
        self.bytes += other.bytes;
    }
}

/// Marks `path` (a file or a directory) as used now.
pub fn touch(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.set_modified(SystemTime::now())
}

/// The entries of directory `dir` (none when it cannot be read).
pub fn children(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(read) => read.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    }
}

/// Removes each of `entries` (a file, or a directory with all it holds;
/// a symbolic link itself, never what it points to) last modified more
/// than `keep` before `now`; touches those `live` names instead.
pub fn sweep(entries: &[PathBuf], live: &HashSet<PathBuf>, keep: Duration, now: SystemTime) -> Swept {
    remove(set_aside(entries, live, keep, now))
}

/// The first half of [`sweep`], quick enough to run under the lock that
/// users of the entries take: each entry unused for longer than `keep` is
/// renamed beside itself (`.swept-…`, keeping its time, so that one left
/// by a crash is swept again), each `live` one touched. Returns what was
/// set aside, for [`remove`] to delete outside the lock.
pub fn set_aside(entries: &[PathBuf], live: &HashSet<PathBuf>, keep: Duration, now: SystemTime) -> Vec<PathBuf> {
    static ASIDE: AtomicU64 = AtomicU64::new(0);
    let mut aside = Vec::new();
    for entry in entries {
        if live.contains(entry) {
            if let Err(e) = touch(entry) {
                tracing::debug!(entry = %entry.display(), error = %e, "cannot mark an entry in use");
            }
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(entry) else { continue };
        let unused = meta.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
        let Some(dir) = entry.parent().filter(|_| unused > keep) else { continue };
        let n = ASIDE.fetch_add(1, Ordering::Relaxed);
        let moved = dir.join(format!(".swept-{}-{n}", std::process::id()));
        match std::fs::rename(entry, &moved) {
            Ok(()) => aside.push(moved),
            Err(e) => cannot_remove(entry, &e),
        }
    }
    aside
}

/// Deletes what [`set_aside`] renamed, and says how much that was.
pub fn remove(aside: Vec<PathBuf>) -> Swept {
    let mut swept = Swept::default();
    for entry in aside {
        let bytes = size_of(&entry);
        let is_dir = std::fs::symlink_metadata(&entry).is_ok_and(|m| m.is_dir());
        match if is_dir { std::fs::remove_dir_all(&entry) } else { std::fs::remove_file(&entry) } {
            Ok(()) => {
                swept.entries += 1;
                swept.bytes += bytes;
            }
            Err(e) => cannot_remove(&entry, &e),
        }
    }
    swept
}

fn cannot_remove(entry: &Path, e: &std::io::Error) {
    tracing::warn!(entry = %entry.display(), error = %e, "cannot remove an unused entry; remove it by hand");
}

/// The bytes of the files at and under `path`, links not followed.
fn size_of(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => children(path).iter().map(|c| size_of(c)).sum(),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn aged(path: &Path, days: u64) {
        let then = SystemTime::now() - DAY * days as u32;
        std::fs::File::open(path).unwrap().set_modified(then).unwrap();
    }

    #[test]
    fn what_was_unused_longer_than_kept_goes_and_what_is_live_or_recent_stays() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.tgz");
        let recent = dir.path().join("recent.tgz");
        let live = dir.path().join("live.tgz");
        let cache = dir.path().join("cache");
        for f in [&old, &recent, &live] {
            std::fs::write(f, b"12345").unwrap();
        }
        std::fs::create_dir_all(cache.join("_npx/a")).unwrap();
        std::fs::write(cache.join("_npx/a/index.js"), b"1234567890").unwrap();
        aged(&old, 40);
        aged(&recent, 10);
        aged(&live, 40);
        aged(&cache, 31);
        let entries = children(dir.path());
        let swept = sweep(&entries, &HashSet::from([live.clone()]), DAY * 30, SystemTime::now());
        assert_eq!(swept, Swept { entries: 2, bytes: 15 });
        assert!(!old.exists() && !cache.exists());
        assert!(recent.exists() && live.exists());
        // The live entry was touched: unused for a day at most now.
        let touched = std::fs::metadata(&live).unwrap().modified().unwrap();
        assert!(SystemTime::now().duration_since(touched).unwrap_or_default() < DAY);
    }

    #[test]
    fn a_link_is_removed_itself_and_never_what_it_points_to() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let precious = elsewhere.path().join("precious");
        std::fs::write(&precious, b"keep me").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
        let swept = sweep(std::slice::from_ref(&link), &HashSet::new(), Duration::ZERO, SystemTime::now() + DAY);
        assert_eq!(swept.entries, 1);
        assert!(std::fs::symlink_metadata(&link).is_err(), "the link is gone");
        assert_eq!(std::fs::read(&precious).unwrap(), b"keep me");
    }
}
