//! Control groups for local instances: one group per instance holds the
//! server and everything it spawns, with memory, CPU and process-count
//! limits, and is emptied (every process killed) when the instance ends.
//! cgroup v2 where this host's own group has the controllers delegated to
//! it; else the v1 hierarchies, which a root host can write.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The limits of one instance's group; `None` leaves one unset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory (page cache included) before the kernel's OOM killer acts in the group.
    pub memory_bytes: Option<u64>,
    /// Thousandths of a CPU the group may use (Kubernetes' `500m` is 500).
    pub cpu_millis: Option<u64>,
    /// Processes and threads the group may hold at once.
    pub max_processes: Option<u64>,
}

/// One kind of limit, and the controller that enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    /// `memory`.
    Memory,
    /// `cpu`.
    Cpu,
    /// `pids`.
    Pids,
}

impl Controller {
    /// Every controller the sandbox uses.
    pub const ALL: [Controller; 3] = [Controller::Memory, Controller::Cpu, Controller::Pids];

    /// The kernel's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }
}

/// Where this host can make groups, per controller.
#[derive(Debug, Clone, Default)]
pub struct Cgroups {
    /// cgroup v2: the directory under which instance groups are made (every
    /// controller at once).
    v2: Option<PathBuf>,
    /// cgroup v1: a directory per controller.
    v1: Vec<(Controller, PathBuf)>,
    /// Why a controller has no place, for status.
    missing: Vec<(Controller, String)>,
}

/// Why a group could not be made or limited.
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot set up the control group {path}: {source}; give this host a writable cgroup or set [sandbox] cgroups = false"
)]
pub struct CgroupError {
    /// The file or directory that failed.
    path: String,
    /// The error.
    source: std::io::Error,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |source| CgroupError { path: path.display().to_string(), source }
}

impl Cgroups {
    /// What this process can use, read from `/proc/self/mounts` and
    /// `/proc/self/cgroup`; groups go in a directory named `prefix` (unique
    /// to this runtime) under this process's own group.
    pub fn detect(prefix: &str) -> Cgroups {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let membership = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Cgroups::from_texts(&mounts, &membership, prefix)
    }

    /// [`Cgroups::detect`] from the texts of the two files.
    pub fn from_texts(mounts: &str, membership: &str, prefix: &str) -> Cgroups {
        let mut found = Cgroups::default();
        let own = |hierarchy: &dyn Fn(&str) -> bool| {
            membership.lines().find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
                hierarchy(names).then(|| path.trim_start_matches('/').to_string())
            })
        };
        let mut v2_error = None;
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, mountpoint, fstype, options, ..] = fields[..] else { continue };
            let mountpoint = Path::new(mountpoint);
            match fstype {
                "cgroup2" => {
                    let Some(path) = own(&|names| names.is_empty()) else { continue };
                    let base = mountpoint.join(path);
                    match v2_base(&base, prefix) {
                        Ok(dir) => found.v2 = Some(dir),
                        Err(why) => v2_error = Some(why),
                    }
                }
                "cgroup" => {
                    for c in Controller::ALL {
                        if !options.split(',').any(|o| o == c.name()) {
                            continue;
                        }
                        let Some(path) = own(&|names| names.split(',').any(|n| n == c.name())) else { continue };
                        let base = mountpoint.join(path);
                        if writable(&base) {
                            found.v1.push((c, base.join(prefix)));
                        }
                    }
                }
                _ => {}
            }
        }
        for c in Controller::ALL {
            if found.v2.is_none() && !found.v1.iter().any(|(have, _)| *have == c) {
                let why = v2_error.clone().unwrap_or_else(|| {
                    format!(
                        "no writable `{}` controller (cgroup v2 not delegated to this host, no v1 hierarchy)",
                        c.name()
                    )
                });
                found.missing.push((c, why));
            }
        }
        found
    }

    /// `Ok` with how `c` is enforced, or why it cannot be.
    pub fn controller(&self, c: Controller) -> Result<&'static str, String> {
        if self.v2.is_some() {
            return Ok("cgroup v2");
        }
        if self.v1.iter().any(|(have, _)| *have == c) {
            return Ok("cgroup v1");
        }
        Err(self.missing.iter().find(|(m, _)| *m == c).map(|(_, why)| why.clone()).unwrap_or_default())
    }

    /// Makes the group of `instance` with `limits` (only the controllers
    /// that have a limit, and only where they are available).
    pub fn create(&self, instance: &str, limits: &Limits) -> Result<Group, CgroupError> {
        let mut group = Group::default();
        let wanted = |c: Controller| match c {
            Controller::Memory => limits.memory_bytes.is_some(),
            Controller::Cpu => limits.cpu_millis.is_some(),
            Controller::Pids => limits.max_processes.is_some(),
        };
        if let Some(base) = &self.v2 {
            if !Controller::ALL.iter().any(|c| wanted(*c)) {
                return Ok(group);
            }
            let dir = base.join(instance);
            group.make(&dir)?;
            if let Some(m) = limits.memory_bytes {
                write(&dir.join("memory.max"), &m.to_string())?;
                // Where swap is accounted, none of it: the limit is the limit.
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
            }
            if let Some(c) = limits.cpu_millis {
                write(&dir.join("cpu.max"), &format!("{} {CPU_PERIOD_US}", c * CPU_PERIOD_US / 1000))?;
            }
            if let Some(p) = limits.max_processes {
                write(&dir.join("pids.max"), &p.to_string())?;
            }
            return Ok(group);
        }
        for (c, base) in &self.v1 {
            if !wanted(*c) {
                continue;
            }
            let dir = base.join(instance);
            group.make(&dir)?;
            match c {
                Controller::Memory => {
                    let m = limits.memory_bytes.unwrap_or_default();
                    write(&dir.join("memory.limit_in_bytes"), &m.to_string())?;
                    let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), m.to_string());
                }
                Controller::Cpu => {
                    let c = limits.cpu_millis.unwrap_or_default();
                    write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                    write(&dir.join("cpu.cfs_quota_us"), &(c * CPU_PERIOD_US / 1000).to_string())?;
                }
                Controller::Pids => {
                    write(&dir.join("pids.max"), &limits.max_processes.unwrap_or_default().to_string())?;
                }
            }
        }
        Ok(group)
    }

    /// Removes this runtime's directories, killing what is left in any
    /// instance's group (a host dropped without stopping its servers),
    /// waiting up to half a second for each.
    pub fn remove_all(&self) {
        for dir in self.v2.iter().chain(self.v1.iter().map(|(_, d)| d)) {
            for _ in 0..50 {
                let groups = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path());
                let mut left = false;
                for group in groups.filter(|p| p.is_dir()) {
                    left |= kill_members(&group) || std::fs::remove_dir(&group).is_err();
                }
                if !left && (std::fs::remove_dir(dir).is_ok() || !dir.exists()) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// SIGKILLs every process in the group at `dir`; true if there was one.
fn kill_members(dir: &Path) -> bool {
    let pids = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    let mut any = false;
    for pid in pids.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        any = true;
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    any
}

/// The CPU accounting period, in microseconds (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io(path))
}

fn writable(dir: &Path) -> bool {
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// The v2 directory for this runtime's groups under `base` (this process's
/// own group), with the controllers enabled for its children; or why not.
fn v2_base(base: &Path, prefix: &str) -> Result<PathBuf, String> {
    let available = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
    let lacking: Vec<&str> =
        Controller::ALL.iter().map(|c| c.name()).filter(|n| !available.split_whitespace().any(|a| a == *n)).collect();
    if !lacking.is_empty() {
        return Err(format!("cgroup v2 controllers {} are not delegated to this host's group", lacking.join(", ")));
    }
    if !writable(base) {
        return Err(format!("this host cannot write its cgroup {}", base.display()));
    }
    let dir = base.join(prefix);
    let enable = Controller::ALL.map(|c| format!("+{}", c.name())).join(" ");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("cgroup.subtree_control"), &enable))
        .map_err(|e| format!("cannot enable cgroup v2 controllers under {}: {e}", dir.display()))?;
    Ok(dir)
}

/// One instance's group: its directories (one per v1 controller, or one v2
/// directory) and the `cgroup.procs` files its process joins before exec.
#[derive(Debug, Default)]
pub struct Group {
    dirs: Vec<PathBuf>,
    procs: Vec<CString>,
}

impl Group {
    fn make(&mut self, dir: &Path) -> Result<(), CgroupError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let procs = dir.join("cgroup.procs");
        let c = CString::new(procs.as_os_str().as_bytes()).map_err(|e| CgroupError {
            path: procs.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        })?;
        self.dirs.push(dir.to_path_buf());
        self.procs.push(c);
        Ok(())
    }

    /// The `cgroup.procs` files the child writes `0` to, joining the group.
    pub fn procs(&self) -> &[CString] {
        &self.procs
    }

    /// Kills whatever is left in the group (a daemon that left the process
    /// group stays in the cgroup) and removes it, waiting up to a second.
    pub async fn kill_and_remove(&self) {
        for _ in 0..50 {
            let mut left = false;
            for dir in &self.dirs {
                left |= kill_members(dir);
            }
            if !left && self.dirs.iter().all(|d| std::fs::remove_dir(d).is_ok() || !d.exists()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(groups = ?self.dirs, "a server's control group could not be emptied within a second; it is left behind");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_hierarchies_are_found_under_this_process_own_group() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display();
        for c in ["memory", "cpu", "pids"] {
            std::fs::create_dir_all(dir.path().join(c).join("outer")).unwrap();
        }
        let mounts = format!(
            "cgroup {root}/memory cgroup rw,memory 0 0\ncgroup {root}/cpu cgroup rw,cpu 0 0\ncgroup {root}/pids cgroup rw,pids 0 0\n"
        );
        let membership = "8:pids:/outer\n4:memory:/outer\n1:cpu:/outer\n0::/\n";
        let found = Cgroups::from_texts(&mounts, membership, "mcpod-1");
        assert_eq!(found.controller(Controller::Memory), Ok("cgroup v1"));
        let group = found
            .create("srv-0", &Limits { memory_bytes: Some(64 << 20), cpu_millis: Some(500), max_processes: Some(7) })
            .unwrap();
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(read("memory/outer/mcpod-1/srv-0/memory.limit_in_bytes"), (64u64 << 20).to_string());
        assert_eq!(read("cpu/outer/mcpod-1/srv-0/cpu.cfs_quota_us"), "50000");
        assert_eq!(read("pids/outer/mcpod-1/srv-0/pids.max"), "7");
        assert_eq!(group.procs().len(), 3);
    }

    #[test]
    fn v2_needs_the_controllers_delegated_and_then_writes_one_group() {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("user.slice/mcpod.service");
        std::fs::create_dir_all(&own).unwrap();
        let mounts = format!("cgroup2 {} cgroup2 rw 0 0\n", dir.path().display());
        let membership = "0::/user.slice/mcpod.service\n";
        std::fs::write(own.join("cgroup.controllers"), "cpu io\n").unwrap();
        let refused = Cgroups::from_texts(&mounts, membership, "mcpod-1");
        let why = refused.controller(Controller::Memory).unwrap_err();
        assert!(why.contains("memory, pids are not delegated"), "{why}");

        std::fs::write(own.join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
        let found = Cgroups::from_texts(&mounts, membership, "mcpod-1");
        assert_eq!(found.controller(Controller::Pids), Ok("cgroup v2"));
        assert_eq!(std::fs::read_to_string(own.join("mcpod-1/cgroup.subtree_control")).unwrap(), "+memory +cpu +pids");
        found
            .create("srv-0", &Limits { memory_bytes: Some(1 << 30), cpu_millis: Some(250), max_processes: None })
            .unwrap();
        assert_eq!(std::fs::read_to_string(own.join("mcpod-1/srv-0/cpu.max")).unwrap(), "25000 100000");
        assert_eq!(std::fs::read_to_string(own.join("mcpod-1/srv-0/memory.max")).unwrap(), (1u64 << 30).to_string());
        assert!(!own.join("mcpod-1/srv-0/pids.max").exists(), "no limit asked, none written");
    }

    #[test]
    fn without_any_hierarchy_each_controller_says_why() {
        let found = Cgroups::from_texts("proc /proc proc rw 0 0\n", "0::/\n", "mcpod-1");
        let why = found.controller(Controller::Pids).unwrap_err();
        assert!(why.contains("no writable `pids` controller"), "{why}");
    }
}
