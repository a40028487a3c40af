//! How much memory this machine has left for one more server: the kernel's
//! `MemAvailable`, or what mcpod's own control group may still use when
//! that is less (inside a container `/proc/meminfo` shows the whole node).
//! Read by the local runtime for `limits.min_available_memory_mib`.

use std::path::Path;

/// MiB available now; `None` when `/proc/meminfo` cannot be read.
pub fn available_mib() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    available(&meminfo, own_cgroup_room())
}

/// `MemAvailable` of `meminfo` in MiB, capped by `cgroup_room` (bytes).
pub fn available(meminfo: &str, cgroup_room: Option<u64>) -> Option<u64> {
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let mib = kib / 1024;
    Some(cgroup_room.map_or(mib, |room| mib.min(room >> 20)))
}

/// Bytes a cgroup v2 with `memory.max` and `memory.current` may still use;
/// `None` when it has no limit (`max`) or the files say nothing readable.
pub fn room(max: &str, current: &str) -> Option<u64> {
    let max: u64 = max.trim().parse().ok()?;
    let current: u64 = current.trim().parse().ok()?;
    Some(max.saturating_sub(current))
}

/// What mcpod's own control group (v2) may still use, if it has a limit.
fn own_cgroup_room() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = text.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    room(&read("memory.max")?, &read("memory.current")?)
}

/// Whether one more instance may start with `have` MiB available and
/// `min` required (0: no check; unknown availability: admitted); the
/// refusal names the limit and what to do.
pub fn admits(have: Option<u64>, min: u64) -> Result<(), String> {
    match have {
        Some(have) if min > 0 && have < min => Err(format!(
            "this machine has {have} MiB of memory available, less than limits.min_available_memory_mib = {min}; \
             try again when other servers or sessions have ended, or lower the limit"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:       24683784 kB\nMemFree:        20000000 kB\nMemAvailable:   22528000 kB\n";

    #[test]
    fn available_memory_is_mem_available_capped_by_the_control_group() {
        assert_eq!(available(MEMINFO, None), Some(22_000));
        assert_eq!(available(MEMINFO, Some(512 << 20)), Some(512), "a container's limit is what it has");
        assert_eq!(available("MemTotal: 1 kB\n", None), None, "no MemAvailable: unknown");
        assert_eq!(room("max\n", "1000\n"), None, "no limit");
        assert_eq!(room("2147483648\n", "1073741824\n"), Some(1 << 30));
        assert_eq!(room("100", "200"), Some(0), "over its limit: nothing left");
    }

    #[test]
    fn an_instance_is_refused_below_the_minimum_naming_the_limit_and_admitted_otherwise() {
        let refused = admits(Some(100), 256).unwrap_err();
        assert!(refused.contains("100 MiB") && refused.contains("limits.min_available_memory_mib = 256"), "{refused}");
        assert!(admits(Some(256), 256).is_ok());
        assert!(admits(Some(0), 0).is_ok(), "0 turns the check off");
        assert!(admits(None, 256).is_ok(), "unknown availability is not a refusal");
    }
}
