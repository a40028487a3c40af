//! What the servers of this host no longer use: the checked package files
//! kept for them and their package caches, removed once unused for
//! `[packages] keep_unused_days`. What a running server names is kept (and
//! marked used), so that a sweep never removes a file or cache under it.

use super::Manager;
use crate::launch::LaunchSpec;
use crate::sweep::Swept;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

impl Manager {
    /// Removes the kept package files and package caches that no server
    /// has used for longer than `keep`, but for those a running server
    /// names. Blocks on the file system: call it off the runtime's workers.
    pub fn sweep_unused(&self, keep: Duration) -> Swept {
        let specs: Vec<LaunchSpec> =
            self.servers.read().map(|s| s.values().map(|s| s.spec.clone()).collect()).unwrap_or_default();
        let mut swept = match &self.supply {
            Some(supply) => supply.sweep(&arguments(&specs), keep),
            None => Swept::default(),
        };
        swept += self.runtime.sweep_caches(&specs, keep);
        swept
    }
}

/// Every argument of the servers' command lines, and the value of each
/// `--option=VALUE`, as paths: where a kept file is handed to a launch.
fn arguments(specs: &[LaunchSpec]) -> HashSet<PathBuf> {
    let mut found = HashSet::new();
    for word in specs.iter().flat_map(|s| s.process.iter().flat_map(|p| p.command.iter())) {
        found.insert(PathBuf::from(word));
        if let Some((_, value)) = word.split_once('=') {
            found.insert(PathBuf::from(value));
        }
    }
    found
}

/// Runs [`Manager::sweep_unused`] now and then every `period`, for as long
/// as the manager lives, logging what each sweep removed.
pub fn sweep_every(manager: &Arc<Manager>, period: Duration, keep: Duration) {
    super::every(manager, period, move |manager| async move {
        match tokio::task::spawn_blocking(move || manager.sweep_unused(keep)).await {
            Ok(Swept { entries: 0, .. }) => {}
            Ok(swept) => tracing::info!(
                removed = swept.entries,
                bytes = swept.bytes,
                keep_days = keep.as_secs() / 86_400,
                "removed package files and caches unused for longer than [packages] keep_unused_days"
            ),
            Err(e) => tracing::warn!("the sweep of unused package files stopped: {e}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_file_is_found_as_a_whole_argument_and_as_an_options_value() {
        let spec = crate::policy::test_spec("uvx --with=/k/a.whl --from /k/b.whl b --flag", None, &[]);
        let found = arguments(&[spec]);
        for path in ["/k/a.whl", "/k/b.whl", "uvx", "b"] {
            assert!(found.contains(&PathBuf::from(path)), "{path}: {found:?}");
        }
    }
}
