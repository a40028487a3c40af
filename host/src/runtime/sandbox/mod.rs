//! What a local server may touch. Landlock limits its files to reading the
//! system and its own programs and writing only its work directory and the
//! package caches of its own command line (and, for a network server with
//! no internet, TCP to binding its own port); `no_new_privs` keeps a setuid
//! program from lifting that; a network namespace with no interface takes
//! the network away from a stdio server when policy says no internet; a
//! control group caps the memory, CPU and processes of the server and
//! everything it spawns.
//!
//! Each launch is planned once ([`Sandbox::protections`] shows the plan, as
//! `mcpod servers status` prints it); a protection that policy requires and
//! that cannot be had here fails the launch instead of running without it.
//! Everything is prepared in the host; between fork and exec the child
//! makes only system calls (join the group, set limits, unshare, restrict).

mod cgroup;
mod landlock;

use super::{LaunchRequest, Protection};
use crate::launch::LaunchSpec;
use nix::sys::resource::Resource;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The operator's sandbox settings: `[sandbox]`, `policy.internet_access`
/// and the `[limits]` rlimits of local processes.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Landlock, `no_new_privs`, the network namespace and control groups
    /// (false: servers run with the host user's rights, rlimits aside).
    pub enabled: bool,
    /// Use control groups where this host can (false: rlimits only).
    pub cgroups: bool,
    /// Paths servers may also read.
    pub read: Vec<PathBuf>,
    /// Paths servers may also write.
    pub write: Vec<PathBuf>,
    /// mcpod's own directories (its state, its config), which no server
    /// may write however its arguments name them.
    pub guarded: Vec<PathBuf>,
    /// Where mcpod keeps the package files it checked (`state_dir/packages`,
    /// written by `supply` alone). A command line that names one is keyed
    /// by its path below this, which names its content, so the servers of
    /// one package share their caches whichever state dir holds the file.
    pub kept_packages: Option<PathBuf>,
    /// `policy.allowed_paths`: when not empty, a directory or file among a
    /// server's arguments is granted only if it still resolves below one
    /// of these at launch (the policy judged it at start; a link swapped
    /// in since is not granted), kept package files aside.
    pub shared_paths: Vec<PathBuf>,
    /// Processes and threads one instance may hold (the `pids` controller).
    pub max_processes: Option<u64>,
    /// Whether servers that ask for the network may have it.
    pub internet_access: bool,
    /// Where instances' work directories are made.
    pub work_root: PathBuf,
    /// Address-space cap of each process, in bytes (`RLIMIT_AS`).
    pub address_space_bytes: Option<u64>,
    /// CPU seconds of each process (`RLIMIT_CPU`).
    pub cpu_seconds: Option<u64>,
}

impl SandboxSettings {
    /// No sandbox, no limits (what a runtime built without settings uses).
    pub fn off() -> Self {
        SandboxSettings {
            enabled: false,
            cgroups: false,
            read: Vec::new(),
            write: Vec::new(),
            guarded: Vec::new(),
            kept_packages: None,
            shared_paths: Vec::new(),
            max_processes: None,
            internet_access: true,
            work_root: std::env::temp_dir().join("mcpod-work"),
            address_space_bytes: None,
            cpu_seconds: None,
        }
    }
}

/// Why a launch cannot be sandboxed as planned.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Policy requires a protection this machine cannot give.
    #[error("{0}")]
    Required(String),
    /// Preparing a protection failed.
    #[error("{0}")]
    Prepare(String),
}

/// What this machine offers, probed once.
#[derive(Debug)]
struct Kernel {
    landlock_abi: i64,
    root: bool,
    userns: Result<(), String>,
    cgroups: cgroup::Cgroups,
}

/// Plans and prepares the sandbox of each local launch.
#[derive(Debug)]
pub struct Sandbox {
    settings: SandboxSettings,
    kernel: Kernel,
    /// This runtime's own directory name under the work root and in each
    /// cgroup hierarchy (several hosts may share one machine or process).
    prefix: String,
    /// The host user's home, under whose cache servers' package caches are.
    home: Option<PathBuf>,
    /// Held while a launch makes and marks its caches and while the caches
    /// are swept, so that a sweep never removes caches a launch has chosen.
    caches_in_use: std::sync::Mutex<()>,
}

/// One launch's plan: what will be applied, and how status shows it.
#[derive(Debug, Default)]
struct Plan {
    landlock: bool,
    tcp_bind_only: Option<Option<u16>>,
    /// `Some(user)`: a new network namespace (inside a user namespace when
    /// the host is not root).
    netns: Option<bool>,
    cgroup: cgroup::Limits,
    rlimits: Vec<(Resource, u64)>,
    /// A protection policy requires that cannot be had: the launch fails.
    blocked: Option<String>,
    protections: Vec<Protection>,
    /// The directories among its arguments it may write, and those it may
    /// only read ([`Sandbox::argument_dirs`]), found once for both.
    arguments: (Vec<PathBuf>, Vec<PathBuf>),
}

fn protection(name: &str, active: bool, detail: impl Into<String>) -> Protection {
    Protection { name: name.to_string(), active, detail: detail.into() }
}

impl Sandbox {
    /// A sandbox for this machine, as `settings` ask.
    pub fn new(settings: SandboxSettings) -> Sandbox {
        static RUNTIMES: AtomicU64 = AtomicU64::new(0);
        let prefix = format!("mcpod-{}-{}", std::process::id(), RUNTIMES.fetch_add(1, Ordering::Relaxed));
        let root = nix::unistd::geteuid().is_root();
        let cgroups =
            if settings.enabled && settings.cgroups { cgroup::Cgroups::detect(&prefix) } else { Default::default() };
        let kernel = Kernel { landlock_abi: landlock::kernel_abi(), root, userns: user_namespaces(), cgroups };
        let home = std::env::var_os("HOME").map(PathBuf::from).filter(|h| h.is_absolute() && h != Path::new("/"));
        Sandbox { settings, kernel, prefix, home, caches_in_use: std::sync::Mutex::new(()) }
    }

    /// The protections a server launched from `spec` gets, active or not and why.
    pub fn protections(&self, spec: &LaunchSpec) -> Vec<Protection> {
        self.plan(spec).protections
    }

    fn plan(&self, spec: &LaunchSpec) -> Plan {
        let s = &self.settings;
        let k = &self.kernel;
        let mut plan = Plan::default();
        if let Some(b) = s.address_space_bytes {
            plan.rlimits.push((Resource::RLIMIT_AS, b));
        }
        if let Some(c) = s.cpu_seconds {
            plan.rlimits.push((Resource::RLIMIT_CPU, c));
        }
        if !s.enabled {
            plan.protections.push(protection(
                "sandbox",
                false,
                "off ([sandbox] enabled = false): the server runs with the host user's files and network",
            ));
            return plan;
        }
        let p = &mut plan.protections;
        // Files.
        plan.landlock = k.landlock_abi > 0;
        plan.arguments = self.argument_dirs(spec);
        p.push(if plan.landlock {
            protection(
                "files",
                true,
                format!(
                    "Landlock ABI {}: writes only its work directory and its own package caches; reads the system and its programs{}",
                    k.landlock_abi,
                    match &plan.arguments.1 {
                        only_read if only_read.is_empty() => String::new(),
                        only_read => format!(
                            "; reads but never writes {} (mcpod's own files or the host user's home)",
                            only_read.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
                        ),
                    }
                ),
            )
        } else {
            protection("files", false, "this kernel has no Landlock (Linux 5.13 or later, with landlock among its LSMs)")
        });
        p.push(protection("privileges", true, "no_new_privs: setuid programs gain nothing"));
        // Network.
        let network_server = spec.transport.is_network();
        if s.internet_access && spec.network_access {
            p.push(protection(
                "network",
                false,
                "open: policy.internet_access = true and the server type asks for the network",
            ));
        } else if network_server {
            if k.landlock_abi >= 4 {
                plan.tcp_bind_only = Some(spec.port);
                let port = spec.port.map(|p| format!("binds only port {p}")).unwrap_or_else(|| "binds no port".into());
                p.push(protection(
                    "network",
                    true,
                    format!("Landlock: {port} and opens no TCP connection (UDP is not covered)"),
                ));
            } else {
                let why = format!(
                    "this kernel's Landlock (ABI {}) cannot limit TCP (needs ABI 4, Linux 6.7)",
                    k.landlock_abi
                );
                p.push(protection("network", false, why.clone()));
                plan.blocked = Some(no_internet(&why));
            }
        } else if k.root {
            plan.netns = Some(false);
            p.push(protection("network", true, "its own network namespace: no interface, no route out"));
        } else {
            match &k.userns {
                Ok(()) => {
                    plan.netns = Some(true);
                    p.push(protection(
                        "network",
                        true,
                        "its own user and network namespaces: no interface, no route out",
                    ));
                }
                Err(why) => {
                    p.push(protection("network", false, why.clone()));
                    plan.blocked = Some(no_internet(why));
                }
            }
        }
        // Memory, CPU, processes.
        let memory = spec.resources.memory_limit.as_deref().and_then(bytes);
        match (memory, k.cgroups.controller(cgroup::Controller::Memory)) {
            (None, _) => p.push(protection("memory", false, "no memory limit set (resources.memory_limit)")),
            (Some(m), Ok(how)) => {
                plan.cgroup.memory_bytes = Some(m);
                p.push(protection("memory", true, format!("{how}: {} MiB for the server and all it spawns", m >> 20)));
            }
            (Some(m), Err(why)) => {
                plan.rlimits.push((Resource::RLIMIT_DATA, m));
                p.push(protection(
                    "memory",
                    true,
                    format!("RLIMIT_DATA: {} MiB per process, not in all ({})", m >> 20, self.why_no_cgroup(why)),
                ));
            }
        }
        let cpu = spec.resources.cpu_limit.as_deref().and_then(millis);
        match (cpu, k.cgroups.controller(cgroup::Controller::Cpu)) {
            (None, _) => p.push(protection("cpu", false, "no CPU limit set (resources.cpu_limit)")),
            (Some(c), Ok(how)) => {
                plan.cgroup.cpu_millis = Some(c);
                p.push(protection("cpu", true, format!("{how}: {c}m of a CPU")));
            }
            (Some(_), Err(why)) => p.push(protection(
                "cpu",
                false,
                format!("{}; only limits.local_cpu_secs (RLIMIT_CPU) caps CPU time", self.why_no_cgroup(why)),
            )),
        }
        match (s.max_processes, k.cgroups.controller(cgroup::Controller::Pids)) {
            (None, _) => p.push(protection("processes", false, "no process limit set ([sandbox] max_processes)")),
            (Some(n), Ok(how)) => {
                plan.cgroup.max_processes = Some(n);
                p.push(protection("processes", true, format!("{how}: at most {n} processes and threads")));
            }
            (Some(_), Err(why)) => p.push(protection(
                "processes",
                false,
                format!(
                    "{}; RLIMIT_NPROC counts all of the user's processes, so it is not used",
                    self.why_no_cgroup(why)
                ),
            )),
        }
        plan
    }

    fn why_no_cgroup(&self, why: String) -> String {
        if self.settings.cgroups { why } else { "[sandbox] cgroups = false".to_string() }
    }

    /// Prepares the launch of `req`: its work directory, control group and
    /// ruleset, and what the child does before exec. Fails, starting
    /// nothing, if a required protection cannot be had.
    pub fn prepare(&self, req: &LaunchRequest, program: &str) -> Result<Prepared, SandboxError> {
        let plan = self.plan(&req.spec);
        if let Some(why) = plan.blocked {
            return Err(SandboxError::Required(why));
        }
        let mut prepared =
            Prepared { steps: ChildSteps { rlimits: plan.rlimits, ..Default::default() }, ..Default::default() };
        if !self.settings.enabled {
            return Ok(prepared);
        }
        let work = self.settings.work_root.join(&self.prefix).join(&req.instance_id);
        let tmp = work.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| {
            SandboxError::Prepare(format!(
                "cannot make the work directory {}: {e}; check [server] state_dir",
                work.display()
            ))
        })?;
        prepared.work_dir = Some(work.clone());
        let caches = self.caches(&req.spec);
        prepared.env = self.env(&work, &tmp, caches.as_ref());
        let group = self.kernel.cgroups.create(&req.instance_id, &plan.cgroup);
        prepared.group = group.map_err(|e| SandboxError::Prepare(e.to_string()))?;
        prepared.steps.procs = prepared.group.procs().to_vec();
        prepared.steps.no_new_privs = true;
        if plan.landlock {
            let rules = landlock::Rules {
                read: self.readable(&req.spec, program, &plan.arguments.1),
                write: self.writable(&req.spec, &work, caches.as_ref(), &plan.arguments.0),
                tcp_bind_only: plan.tcp_bind_only,
            };
            let fd = landlock::ruleset(&rules).map_err(SandboxError::Prepare)?;
            prepared.steps.ruleset = Some(fd.as_raw_fd());
            prepared.ruleset = Some(fd);
        }
        if let Some(user) = plan.netns {
            prepared.steps.unshare_net = true;
            if user {
                let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
                let c = |s: &str| CString::new(s).unwrap_or_default();
                prepared.steps.maps = vec![
                    (c("/proc/self/setgroups"), b"deny".to_vec()),
                    (c("/proc/self/uid_map"), format!("{uid} {uid} 1").into_bytes()),
                    (c("/proc/self/gid_map"), format!("{gid} {gid} 1").into_bytes()),
                ];
            }
        }
        Ok(prepared)
    }

    /// The package caches of the servers launched with `spec`'s command
    /// line: npm's, the XDG cache (uv, pip) and uv's tools and Pythons,
    /// under the host user's cache in a directory named by a hash of what
    /// the line installs ([`command_key`]). The servers of one package
    /// share them, whatever their arguments, so downloads are made once;
    /// a server cannot write the caches another package will run from.
    /// Created here, because Landlock can only allow paths that exist.
    fn caches(&self, spec: &LaunchSpec) -> Option<Caches> {
        let root = self.caches_root()?.join(self.command_key(spec));
        let caches = Caches { npm: root.join("npm"), xdg: root.join("cache"), uv: root.join("uv") };
        let _in_use = self.caches_in_use.lock().ok()?;
        for dir in [caches.npm.clone(), caches.xdg.clone(), caches.uv.join("tools"), caches.uv.join("python")] {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::debug!(dir = %dir.display(), error = %e, "cannot make a package cache; the server will download into its work directory");
                return None;
            }
        }
        if let Err(e) = crate::sweep::touch(&root) {
            tracing::debug!(dir = %root.display(), error = %e, "cannot mark package caches used");
        }
        Some(caches)
    }

    /// Where each command line's caches are: `mcpod/servers` in the host
    /// user's cache.
    fn caches_root(&self) -> Option<PathBuf> {
        let home = self.home.as_ref()?;
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|d| d.is_absolute())
            .unwrap_or_else(|| home.join(".cache"));
        Some(cache.join("mcpod/servers"))
    }

    /// The name of the caches of `spec`'s command line ([`command_key`]).
    fn command_key(&self, spec: &LaunchSpec) -> String {
        command_key(command_line(spec), spec.working_dir.as_deref(), self.settings.kept_packages.as_deref())
    }

    /// Removes the caches of command lines unused for longer than `keep`,
    /// but for those of `live` (the servers this host runs), which are
    /// marked used.
    pub fn sweep_caches(&self, live: &[LaunchSpec], keep: std::time::Duration) -> crate::sweep::Swept {
        let Some(root) = self.caches_root() else { return Default::default() };
        let live = live.iter().map(|spec| root.join(self.command_key(spec))).collect();
        let aside = match self.caches_in_use.lock() {
            Ok(_in_use) => {
                crate::sweep::set_aside(&crate::sweep::children(&root), &live, keep, std::time::SystemTime::now())
            }
            Err(_) => return Default::default(),
        };
        // Deleting a tree takes long: not under the lock launches take.
        crate::sweep::remove(aside)
    }

    /// The env a sandboxed server runs with: its work directory as home and
    /// temp, and its command line's package caches.
    fn env(&self, work: &Path, tmp: &Path, caches: Option<&Caches>) -> Vec<(String, String)> {
        let mut env = vec![("HOME".to_string(), path_text(work)), ("TMPDIR".to_string(), path_text(tmp))];
        if let Some(c) = caches {
            env.extend([
                ("npm_config_cache".to_string(), path_text(&c.npm)),
                ("XDG_CACHE_HOME".to_string(), path_text(&c.xdg)),
                ("UV_PYTHON_INSTALL_DIR".to_string(), path_text(&c.uv.join("python"))),
                ("UV_TOOL_DIR".to_string(), path_text(&c.uv.join("tools"))),
            ]);
        }
        env
    }

    /// What a server may read and run: the system, the directories on PATH
    /// (with their installation: `~/.pyenv` for `~/.pyenv/shims`), its
    /// program's installation (a venv for `.venv/bin/python`, as named and
    /// as its link resolves), the directory of each file among its arguments
    /// (a script and the modules beside it) with the package it belongs to
    /// ([`Sandbox::package_of`]), and what the operator adds.
    fn readable(&self, spec: &LaunchSpec, program: &str, only_read: &[PathBuf]) -> Vec<PathBuf> {
        let mut read: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let entries: Vec<PathBuf> = std::env::split_paths(&path).filter(|p| p.is_absolute()).collect();
        for entry in &entries {
            match entry.parent() {
                Some(parent) if parent != Path::new("/") && Some(parent) != self.home.as_deref() => {
                    read.push(parent.to_path_buf())
                }
                _ => read.push(entry.clone()),
            }
        }
        let found = if program.contains('/') {
            Some(PathBuf::from(program))
        } else {
            entries.iter().map(|d| d.join(program)).find(|p| p.is_file())
        };
        // The program's installation, as named and as resolved: a venv's
        // `bin/python` needs the venv's `lib`, and the interpreter it links
        // to needs its own.
        let installation = |bin: &Path| -> Option<PathBuf> {
            let dir = bin.parent()?;
            let top = dir.parent().filter(|p| *p != Path::new("/") && Some(*p) != self.home.as_deref());
            Some(if dir.ends_with("bin") { top.unwrap_or(dir) } else { dir }.to_path_buf())
        };
        if let Some(program) = found {
            read.extend(installation(&program));
            read.extend(program.canonicalize().ok().as_deref().and_then(installation));
        }
        for file in absolute_args(spec).filter(|a| a.is_file() && self.shared(a)) {
            // Its directory and package, but with shared paths never above
            // them: a file a caller may name opens only what is shared.
            let around: Vec<PathBuf> = file
                .parent()
                .filter(|d| *d != Path::new("/"))
                .map(Path::to_path_buf)
                .into_iter()
                .chain(self.package_of(file))
                .collect();
            let (inside, above): (Vec<PathBuf>, Vec<PathBuf>) = around.into_iter().partition(|d| self.shared(d));
            if !above.is_empty() {
                read.push(file.to_path_buf());
            }
            read.extend(inside);
        }
        read.extend(only_read.iter().cloned());
        read.extend(self.settings.read.iter().cloned());
        read
    }

    /// What a script needs beside its own directory to load its modules:
    /// the package it belongs to (the nearest directory above it with a
    /// `package.json` or `pyproject.toml`: `/app` for `/app/dist/index.js`,
    /// whose dependencies are in `/app/node_modules`), and the outermost
    /// `node_modules` on its path, where npm hoists a package's
    /// dependencies. Never `/` or the host user's home itself.
    fn package_of(&self, script: &Path) -> Vec<PathBuf> {
        let allowed = |d: &Path| d != Path::new("/") && Some(d) != self.home.as_deref();
        let mut found = Vec::new();
        if let Some(root) = script
            .ancestors()
            .skip(1)
            .take_while(|d| allowed(d))
            .find(|d| d.join("package.json").is_file() || d.join("pyproject.toml").is_file())
        {
            found.push(root.to_path_buf());
        }
        if let Some(modules) = script.ancestors().skip(1).filter(|d| d.ends_with("node_modules")).last() {
            found.push(modules.to_path_buf());
        }
        found.retain(|d| allowed(d));
        found
    }

    /// What a server may write: its work directory, its package caches, the
    /// harmless devices, its working directory and the directories among
    /// its arguments (an admin's or a template's choice: the filesystem
    /// server's allowed directories), and what the operator adds.
    fn writable(&self, spec: &LaunchSpec, work: &Path, caches: Option<&Caches>, arguments: &[PathBuf]) -> Vec<PathBuf> {
        let mut write = vec![work.to_path_buf()];
        write.extend(WRITABLE_DEVICES.iter().map(PathBuf::from));
        if let Some(c) = caches {
            write.extend([c.npm.clone(), c.xdg.clone(), c.uv.clone()]);
        }
        write.extend(spec.working_dir.iter().map(PathBuf::from).filter(|d| self.shared(d)));
        write.extend(arguments.iter().cloned());
        write.extend(self.settings.write.iter().cloned());
        write
    }

    /// The existing directories among a server's arguments (but `/`): those
    /// it may write, and those it may only read because they hold mcpod's
    /// own files (the package and compile caches, the servers' work
    /// directories, `guarded`) or the host user's home. A caller may name a template's directories (the
    /// filesystem server's `allowed-paths`), so a directory is writable
    /// only when it can hold nothing another server runs or mcpod reads.
    fn argument_dirs(&self, spec: &LaunchSpec) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let mut guarded: Vec<PathBuf> = self.settings.guarded.iter().map(|g| real(g)).collect();
        guarded.extend(self.caches_root().as_deref().and_then(Path::parent).map(real));
        // Other servers' homes (without a state_dir, under the temp directory).
        guarded.push(real(&self.settings.work_root));
        let home = self.home.as_deref().map(real);
        let dirs = absolute_args(spec).filter(|a| a.is_dir() && *a != Path::new("/") && self.shared(a));
        dirs.map(Path::to_path_buf).partition(|dir| {
            let dir = real(dir);
            let overlaps = guarded.iter().any(|g| dir.starts_with(g) || g.starts_with(&dir));
            let holds_home = home.as_ref().is_some_and(|h| h.starts_with(&dir));
            !overlaps && !holds_home
        })
    }

    /// Whether an argument may be granted under `shared_paths` (none: any),
    /// judged where it resolves now; kept package files always may.
    fn shared(&self, arg: &Path) -> bool {
        let shared = &self.settings.shared_paths;
        shared.is_empty()
            || self
                .settings
                .kept_packages
                .as_ref()
                .is_some_and(|kept| crate::shared_paths::inside(arg, std::slice::from_ref(kept)))
            || crate::shared_paths::inside(arg, shared)
    }

    /// Removes this runtime's directories (host shutdown).
    pub fn remove_all(&self) {
        let _ = std::fs::remove_dir_all(self.settings.work_root.join(&self.prefix));
        self.kernel.cgroups.remove_all();
    }
}

/// The absolute paths among a server's arguments (not its program).
fn absolute_args(spec: &LaunchSpec) -> impl Iterator<Item = &Path> {
    spec.process.iter().flat_map(|p| p.command.iter().skip(1)).map(Path::new).filter(|a| a.is_absolute())
}

/// One command line's package caches (see `Sandbox::caches`).
struct Caches {
    npm: PathBuf,
    xdg: PathBuf,
    uv: PathBuf,
}

/// The program and arguments of a local launch (none for another).
fn command_line(spec: &LaunchSpec) -> &[String] {
    spec.process.as_ref().map(|p| p.command.as_slice()).unwrap_or_default()
}

/// The name of a command line's cache directory: 128 bits of the SHA-256
/// of the words that choose what it installs ([`installing_words`]), each
/// written as a kind, its length and its bytes, so that two lines share a
/// name only when they install the same. A word naming a file under `kept`
/// (a checked package file, `npm/sha512-…/x.tgz`) is written as its path
/// below `kept`, which names the file's content: the same package kept by
/// another host (another state dir) shares the name. The working
/// directory, where the installers read their configuration, is part of it.
fn command_key(line: &[String], working_dir: Option<&str>, kept: Option<&Path>) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    // npx and uv read configuration (`.npmrc`) from where they run: a line
    // run elsewhere may install otherwise.
    if let Some(dir) = working_dir {
        hash.update([2u8]);
        hash.update((dir.len() as u64).to_le_bytes());
        hash.update(dir.as_bytes());
    }
    for word in installing_words(line) {
        let below = kept.and_then(|k| Path::new(word).strip_prefix(k).ok()).and_then(|p| p.to_str());
        let (kind, text) = match below {
            Some(rel) if !rel.is_empty() && !rel.split('/').any(|c| c == "..") => (1u8, rel),
            _ => (0u8, word.as_str()),
        };
        hash.update([kind]);
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(text.as_bytes());
    }
    hash.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The words of a line that choose what it installs: for npx, uvx and
/// `uv tool run`, the program, the installer's own options and the command
/// they run (`npx -y -p FILE mcp-server-filesystem`), without the words
/// after it, which are the server's arguments (the directories one
/// filesystem server is given and another is not) and change nothing in
/// the caches. So the servers of one package share one set of caches.
/// Any option not known here (it might take a value, or change what is
/// installed) keeps the whole line, as does any other program.
fn installing_words(line: &[String]) -> &[String] {
    let program = line.first().map(|p| p.rsplit('/').next().unwrap_or(p));
    let (from, flags, valued): (usize, &[&str], &[&str]) = match program {
        Some("npx") => (1, NPX_FLAGS, NPX_VALUED),
        Some("uvx") => (1, UV_FLAGS, UV_VALUED),
        Some("uv") if line.get(1..3).is_some_and(|w| w == ["tool", "run"]) => (3, UV_FLAGS, UV_VALUED),
        _ => return line,
    };
    let mut at = from;
    while let Some(word) = line.get(at) {
        let name = word.split_once('=').map_or(word.as_str(), |(n, _)| n);
        if !word.starts_with('-') {
            return &line[..=at];
        } else if flags.contains(&word.as_str()) || (name.starts_with("--") && valued.contains(&name) && name != word) {
            at += 1;
        } else if valued.contains(&word.as_str()) {
            at += 2;
        } else {
            return line;
        }
    }
    line
}

/// npx options that take no value, and those that take one.
const NPX_FLAGS: &[&str] = &["-y", "--yes", "--no", "-q", "--quiet", "--silent"];
const NPX_VALUED: &[&str] = &["-p", "--package"];
/// `uvx` (`uv tool run`) options that take no value, and those that take one.
const UV_FLAGS: &[&str] = &["-q", "--quiet", "--offline", "--isolated", "--no-progress"];
const UV_VALUED: &[&str] = &["--from", "--with", "--python", "-p", "--with-editable", "--with-requirements"];

/// What every server may read and run.
const SYSTEM_READ: &[&str] =
    &["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/opt", "/proc", "/sys", "/dev", "/run"];

/// Devices every server may write.
const WRITABLE_DEVICES: &[&str] =
    &["/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/shm", "/dev/pts", "/dev/ptmx"];

fn no_internet(why: &str) -> String {
    format!(
        "policy.internet_access = false, but this machine cannot take the network away from a local server: {why}. Nothing was started; allow the network (policy.internet_access = true) or run on Kubernetes"
    )
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Whether this (non-root) user may make user namespaces, or what forbids it.
fn user_namespaces() -> Result<(), String> {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Err("user namespaces are disabled (user.max_user_namespaces = 0)".into());
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Err("unprivileged user namespaces disabled (kernel.unprivileged_userns_clone = 0)".into());
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return Err("unprivileged user namespaces are restricted by AppArmor (kernel.apparmor_restrict_unprivileged_userns = 1)".into());
    }
    Ok(())
}

/// A Kubernetes memory quantity in bytes (`512Mi`, `1G`, `1e9` aside).
fn bytes(q: &str) -> Option<u64> {
    super::quantity::bytes(q).filter(|b| *b > 0)
}

/// A Kubernetes CPU quantity in thousandths of a CPU (`500m`, `1`, `0.5`).
fn millis(q: &str) -> Option<u64> {
    super::quantity::cores(q).filter(|c| *c > 0.0).map(|c| ((c * 1000.0).ceil() as u64).max(1))
}

/// What the child does between fork and exec: only system calls on data
/// made in the host (no allocation, no lock).
#[derive(Debug, Clone, Default)]
struct ChildSteps {
    procs: Vec<CString>,
    rlimits: Vec<(Resource, u64)>,
    unshare_net: bool,
    maps: Vec<(CString, Vec<u8>)>,
    no_new_privs: bool,
    ruleset: Option<i32>,
}

fn write_file(path: &CString, content: &[u8]) -> std::io::Result<()> {
    use nix::libc;
    // SAFETY: open, write and close are async-signal-safe; `path` is a
    // valid C string and `content` a valid buffer.
    #[allow(unsafe_code)]
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = libc::write(fd, content.as_ptr().cast(), content.len());
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if n != content.len() as isize {
            return Err(err);
        }
    }
    Ok(())
}

impl ChildSteps {
    fn is_empty(&self) -> bool {
        self.procs.is_empty() && self.rlimits.is_empty() && !self.unshare_net && !self.no_new_privs
    }

    /// Runs in the child after fork.
    fn run(&self) -> std::io::Result<()> {
        use nix::libc;
        // Join the group first: a user namespace could forbid it later.
        for procs in &self.procs {
            write_file(procs, b"0")?;
        }
        for (resource, limit) in &self.rlimits {
            nix::sys::resource::setrlimit(*resource, *limit, *limit)?;
        }
        // SAFETY: unshare, prctl and the Landlock syscall take plain
        // integers; the child is single-threaded after fork.
        #[allow(unsafe_code)]
        unsafe {
            if self.unshare_net {
                let user = if self.maps.is_empty() { 0 } else { libc::CLONE_NEWUSER };
                if libc::unshare(libc::CLONE_NEWNET | user) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for (path, content) in &self.maps {
                    write_file(path, content)?;
                }
            }
            if self.no_new_privs && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(fd) = self.ruleset
                && libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// One launch, prepared: the env, directory and child steps to apply to its
/// command, and what to clean up when it ends.
#[derive(Debug, Default)]
pub struct Prepared {
    work_dir: Option<PathBuf>,
    env: Vec<(String, String)>,
    group: cgroup::Group,
    ruleset: Option<OwnedFd>,
    steps: ChildSteps,
}

impl Prepared {
    /// Applies the sandbox to `cmd` (after its env and directory are set:
    /// the sandbox's own env wins).
    pub fn apply(&self, cmd: &mut tokio::process::Command, has_working_dir: bool) {
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let (Some(work), false) = (&self.work_dir, has_working_dir) {
            cmd.current_dir(work);
        }
        if self.steps.is_empty() {
            return;
        }
        let steps = self.steps.clone();
        // SAFETY: `ChildSteps::run` makes only async-signal-safe calls on
        // data made before the fork.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || steps.run());
        }
    }

    /// Called once the child is spawned: the ruleset's descriptor is no
    /// longer needed in the host.
    pub fn spawned(&mut self) {
        self.ruleset = None;
    }

    /// After the instance ended: kills what is left in its group, removes
    /// the group and the work directory.
    pub async fn cleanup(self) {
        self.group.kill_and_remove().await;
        if let Some(work) = &self.work_dir {
            let _ = std::fs::remove_dir_all(work);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::{ProcessLaunch, Readiness, ResourceHints, Transport};

    fn spec(transport: Transport, port: Option<u16>, network_access: bool) -> LaunchSpec {
        LaunchSpec {
            container: None,
            process: Some(ProcessLaunch { command: vec!["python3".into()] }),
            env: Vec::new(),
            working_dir: None,
            transport,
            port,
            path: None,
            readiness: Readiness::TcpOpen,
            resources: ResourceHints {
                memory_limit: Some("256Mi".into()),
                cpu_limit: Some("500m".into()),
                ..Default::default()
            },
            network_access,
        }
    }

    fn sandbox(landlock_abi: i64, root: bool, userns: Result<(), String>) -> Sandbox {
        let mut settings = SandboxSettings::off();
        settings.enabled = true;
        settings.internet_access = false;
        settings.max_processes = Some(64);
        let kernel = Kernel { landlock_abi, root, userns, cgroups: Default::default() };
        Sandbox { settings, kernel, prefix: "test".into(), home: None, caches_in_use: std::sync::Mutex::new(()) }
    }

    #[test]
    fn no_internet_that_cannot_be_had_blocks_the_launch_and_says_why() {
        let old = sandbox(3, false, Err("unprivileged user namespaces disabled".into()));
        let stdio = old.plan(&spec(Transport::Stdio, None, true));
        let why = stdio.blocked.expect("blocked");
        assert!(why.contains("unprivileged user namespaces disabled") && why.contains("Nothing was started"), "{why}");
        let network = old.plan(&spec(Transport::StreamableHttp, Some(8080), true));
        assert!(network.blocked.expect("blocked").contains("needs ABI 4"));
        // Where the kernel can, each is planned, and nothing blocks.
        let new = sandbox(6, false, Ok(()));
        let stdio = new.plan(&spec(Transport::Stdio, None, true));
        assert_eq!((stdio.netns, stdio.blocked), (Some(true), None));
        let network = new.plan(&spec(Transport::StreamableHttp, Some(8080), true));
        assert_eq!(network.tcp_bind_only, Some(Some(8080)));
        assert!(network.netns.is_none(), "the host must reach its port");
    }

    #[test]
    fn without_control_groups_memory_falls_back_to_a_per_process_rlimit_and_the_rest_says_why() {
        let plan = sandbox(6, true, Ok(())).plan(&spec(Transport::Stdio, None, false));
        assert!(plan.rlimits.contains(&(Resource::RLIMIT_DATA, 256 << 20)));
        assert_eq!(plan.cgroup, cgroup::Limits::default());
        let off: Vec<&str> = plan.protections.iter().filter(|p| !p.active).map(|p| p.name.as_str()).collect();
        assert_eq!(off, ["cpu", "processes"], "{:?}", plan.protections);
        let files = plan.protections.iter().find(|p| p.name == "files").unwrap();
        assert!(files.active && files.detail.contains("ABI 6"), "{files:?}");
    }

    #[test]
    fn a_directory_argument_is_writable_and_a_script_argument_only_lets_its_directory_be_read() {
        let root = tempfile::tempdir().unwrap();
        let (allowed, scripts) = (root.path().join("allowed"), root.path().join("app"));
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&scripts).unwrap();
        let script = scripts.join("server.mjs");
        std::fs::write(&script, "").unwrap();
        let mut launch = spec(Transport::Stdio, None, true);
        let args = [&script, &allowed, &root.path().join("missing")].map(|p| p.display().to_string());
        launch.process = Some(ProcessLaunch { command: ["node".to_string()].into_iter().chain(args).collect() });
        let sb = sandbox(6, false, Ok(()));
        let work = root.path().join("work");
        let write = sb.writable(&launch, &work, None, &sb.argument_dirs(&launch).0);
        assert!(write.contains(&allowed) && write.contains(&work), "{write:?}");
        assert!(
            !write.iter().any(|p| p.starts_with(&scripts)),
            "a script must not be able to rewrite itself: {write:?}"
        );
        let read = sb.readable(&launch, "node", &sb.argument_dirs(&launch).1);
        assert!(read.contains(&scripts), "{read:?}");
        assert!(!read.iter().any(|p| p.starts_with(root.path().join("missing"))), "{read:?}");
    }

    /// The policy judged a launch's paths at start; at launch a link put
    /// in a shared directory since then (to the home's `.ssh`) is not
    /// granted, while a real shared directory and a kept file are.
    #[test]
    fn with_shared_paths_only_what_still_resolves_inside_them_is_granted() {
        let root = tempfile::tempdir().unwrap();
        let (shared, secret, kept) = (root.path().join("shared"), root.path().join("secret"), root.path().join("kept"));
        for d in [&shared.join("project"), &secret, &kept] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(kept.join("x.tgz"), b"").unwrap();
        std::os::unix::fs::symlink(&secret, shared.join("swapped")).unwrap();
        let mut sb = sandbox(6, false, Ok(()));
        sb.settings.shared_paths = vec![shared.clone()];
        sb.settings.kept_packages = Some(kept.clone());
        let mut launch = spec(Transport::Stdio, None, true);
        let args = [shared.join("project"), shared.join("swapped"), kept.join("x.tgz")];
        launch.process = Some(ProcessLaunch {
            command: ["npx".to_string()].into_iter().chain(args.iter().map(|p| p.display().to_string())).collect(),
        });
        let (write, read_only) = sb.argument_dirs(&launch);
        assert_eq!(write, [shared.join("project")], "{read_only:?}");
        assert!(read_only.is_empty());
        let read = sb.readable(&launch, "npx", &read_only);
        assert!(read.contains(&kept), "the kept file's directory: {read:?}");
        assert!(!read.iter().any(|p| p.starts_with(&secret) || p.ends_with("swapped")), "{read:?}");

        // Written as a kept file, leading elsewhere: judged where it leads.
        let sneaky = kept.join("..").join("shared").join("swapped");
        launch.process = Some(ProcessLaunch { command: vec!["npx".into(), sneaky.display().to_string()] });
        assert!(sb.argument_dirs(&launch).0.is_empty(), "a link out of a shared directory, however written");
        // A shared file whose package lies above the shared root: the file
        // alone is read, not its package.
        std::fs::write(root.path().join("package.json"), "{}").unwrap();
        let data = shared.join("project").join("a.json");
        std::fs::write(&data, "{}").unwrap();
        launch.process = Some(ProcessLaunch { command: vec!["node".into(), data.display().to_string()] });
        let read = sb.readable(&launch, "node", &[]);
        assert!(read.contains(&shared.join("project")) && !read.contains(&root.path().to_path_buf()), "{read:?}");
        // A working directory that leads outside is not written.
        launch.working_dir = Some(shared.join("swapped").display().to_string());
        let write = sb.writable(&launch, &root.path().join("work"), None, &[]);
        assert!(!write.iter().any(|p| p.ends_with("swapped")), "{write:?}");
    }

    /// A caller may name the filesystem server's directories: one that
    /// holds mcpod's own files (its state, the package caches another
    /// server runs from) or the host user's home is read, never written.
    #[test]
    fn a_directory_holding_mcpods_files_or_the_home_is_read_and_never_written_whoever_names_it() {
        let root = tempfile::tempdir().unwrap();
        let (home, state) = (root.path().join("home"), root.path().join("state"));
        let project = home.join("project");
        for d in [&project, &state.join("packages")] {
            std::fs::create_dir_all(d).unwrap();
        }
        let mut sb = sandbox(6, false, Ok(()));
        sb.home = Some(home.clone());
        sb.settings.guarded = vec![state.clone()];
        let caches = sb.caches_root().unwrap();
        std::fs::create_dir_all(&caches).unwrap();
        let mcpod_cache = caches.parent().unwrap().to_path_buf();
        sb.settings.work_root = root.path().join("work-root");
        std::fs::create_dir_all(&sb.settings.work_root).unwrap();
        let guarded = [
            home.clone(),
            root.path().to_path_buf(),
            state.clone(),
            state.join("packages"),
            mcpod_cache,
            caches,
            sb.settings.work_root.clone(),
        ];
        let mut launch = spec(Transport::Stdio, None, true);
        let args = guarded.iter().chain([&project]).map(|p| p.display().to_string());
        launch.process = Some(ProcessLaunch { command: ["npx".to_string()].into_iter().chain(args).collect() });
        let write = sb.writable(&launch, &root.path().join("work"), None, &sb.argument_dirs(&launch).0);
        let read = sb.readable(&launch, "npx", &sb.argument_dirs(&launch).1);
        assert!(write.contains(&project), "a directory of the home's own is the server's to write: {write:?}");
        for dir in &guarded {
            assert!(!write.contains(dir), "{} is written: {write:?}", dir.display());
            assert!(read.contains(dir), "{} is not even read: {read:?}", dir.display());
        }
        let files = sb.plan(&launch).protections.into_iter().find(|p| p.name == "files").unwrap();
        assert!(files.detail.contains("reads but never writes"), "status says so: {}", files.detail);
    }

    #[test]
    fn a_script_may_read_its_package_and_the_node_modules_it_was_installed_in_and_nothing_above() {
        let root = tempfile::tempdir().unwrap();
        let app = root.path().join("app");
        let modules = app.join("node_modules");
        let installed = modules.join("@scope/server");
        for dir in [app.join("dist"), installed.join("dist"), modules.join("dep")] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(app.join("package.json"), "{}").unwrap();
        std::fs::write(installed.join("package.json"), "{}").unwrap();
        for script in [app.join("dist/index.js"), installed.join("dist/index.js")] {
            std::fs::write(script, "").unwrap();
        }
        let sb = sandbox(6, false, Ok(()));
        let readable = |script: &Path| {
            let mut launch = spec(Transport::Stdio, None, true);
            launch.process = Some(ProcessLaunch { command: vec!["node".into(), script.display().to_string()] });
            sb.readable(&launch, "node", &sb.argument_dirs(&launch).1)
        };
        // A project's build: the project, whose node_modules holds its dependencies.
        let read = readable(&app.join("dist/index.js"));
        assert!(read.contains(&app), "{read:?}");
        // A package installed by npm: itself, and the node_modules its
        // dependencies were hoisted to (`dep` beside it, not inside it).
        let read = readable(&installed.join("dist/index.js"));
        assert!(read.contains(&installed) && read.contains(&modules), "{read:?}");
        assert!(!read.iter().any(|p| p == root.path()), "nothing above the project: {read:?}");
        // A lone script: its directory only.
        let lone = root.path().join("lone");
        std::fs::create_dir_all(&lone).unwrap();
        std::fs::write(lone.join("server.py"), "").unwrap();
        let read = readable(&lone.join("server.py"));
        assert!(read.contains(&lone) && !read.iter().any(|p| p == root.path()), "{read:?}");
    }

    /// Runs `script` under the system python3 with `prepared` applied; its stdout.
    async fn run_python(prepared: &Prepared, script: &str) -> String {
        let mut cmd = tokio::process::Command::new("/usr/bin/python3");
        cmd.args(["-c", script]).env_clear();
        prepared.apply(&mut cmd, false);
        let out = cmd.output().await.expect("python3 runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[tokio::test]
    async fn landlock_lets_a_network_server_bind_only_its_port_and_connect_nowhere() {
        if landlock::kernel_abi() < 4 {
            eprintln!("skipped: this kernel's Landlock cannot limit TCP");
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap().port();
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let rules = landlock::Rules {
            read: ["/usr", "/lib", "/lib64", "/etc", "/proc"].map(PathBuf::from).to_vec(),
            write: Vec::new(),
            tcp_bind_only: Some(Some(free)),
        };
        let fd = landlock::ruleset(&rules).unwrap();
        let steps = ChildSteps { no_new_privs: true, ruleset: Some(fd.as_raw_fd()), ..Default::default() };
        let prepared = Prepared { steps, ruleset: Some(fd), ..Default::default() };
        let script = format!(
            "import socket\n\
def tried(f):\n    try:\n        f(); return 'ok'\n    except OSError as e:\n        return 'refused %d' % e.errno\n\
print(tried(lambda: socket.socket().bind(('127.0.0.1', {free}))),\n\
      tried(lambda: socket.socket().bind(('127.0.0.1', 0))),\n\
      tried(lambda: socket.create_connection(('127.0.0.1', {open}), 2)))"
        );
        assert_eq!(run_python(&prepared, &script).await, "ok refused 13 refused 13");
        drop(listener);
    }

    #[tokio::test]
    async fn an_unprivileged_launch_gets_its_own_user_and_network_namespace() {
        // The steps a non-root host takes (root may take them too).
        let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
        let c = |s: &str| CString::new(s).unwrap();
        let steps = ChildSteps {
            unshare_net: true,
            maps: vec![
                (c("/proc/self/setgroups"), b"deny".to_vec()),
                (c("/proc/self/uid_map"), format!("{uid} {uid} 1").into_bytes()),
                (c("/proc/self/gid_map"), format!("{gid} {gid} 1").into_bytes()),
            ],
            ..Default::default()
        };
        let prepared = Prepared { steps, ..Default::default() };
        let script = "import os, socket\n\
try:\n    socket.create_connection(('127.0.0.1', 9), 2); r = 'connected'\n\
except OSError as e:\n    r = 'refused %d' % e.errno\n\
print(os.geteuid(), open('/proc/self/uid_map').read().split()[1], r)";
        let out = run_python(&prepared, script).await;
        // Same user id inside, mapped to itself; no network at all (ENETUNREACH).
        assert_eq!(out, format!("{uid} {uid} refused 101"));
    }

    #[test]
    fn two_command_lines_share_a_cache_name_only_when_they_are_the_same_line() {
        let line = |words: &[&str]| command_key(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>(), None, None);
        let npx = line(&["npx", "-y", "-p", "/k/x-1.0.0.tgz", "x"]);
        assert_eq!(npx, line(&["npx", "-y", "-p", "/k/x-1.0.0.tgz", "x"]));
        assert_eq!(npx.len(), 32);
        assert!(npx.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(npx, line(&["npx", "-y", "-p", "/k/x-1.0.1.tgz", "x"]), "another version");
        // Words are not run together: no line can be made to match another.
        assert_ne!(line(&["uvx", "a b"]), line(&["uvx", "a", "b"]));
        assert_ne!(line(&["uvx", "ab"]), line(&["uvx", "a", "b"]));
        assert_ne!(line(&["uvx", "", "a"]), line(&["uvx", "a", ""]));
        assert_ne!(line(&["uvx"]), line(&[]));
    }

    /// Each test host (and each host of a machine) keeps checked files in
    /// its own state dir: the same package still has one set of caches,
    /// so its dependencies are downloaded once. Another file, or the same
    /// name outside the kept files, is another line.
    #[test]
    fn a_kept_package_file_names_its_caches_by_its_content_whichever_state_dir_holds_it() {
        let key = |kept: &str, words: &[&str]| {
            command_key(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>(), None, Some(Path::new(kept)))
        };
        let file = "npm/sha512-abc/x-1.0.0.tgz";
        let here = key("/a/packages", &["npx", "-y", "-p", &format!("/a/packages/{file}"), "x", "/data"]);
        let there = key("/b/packages", &["npx", "-y", "-p", &format!("/b/packages/{file}"), "x", "/data"]);
        assert_eq!(here, there, "the same package kept by two hosts");
        let other = key("/a/packages", &["npx", "-y", "-p", "/a/packages/npm/sha512-abd/x-1.0.0.tgz", "x", "/data"]);
        assert_ne!(here, other, "another file");
        let outside = key("/a/packages", &["npx", "-y", "-p", &format!("/tmp/{file}"), "x", "/data"]);
        assert_ne!(here, outside, "a file of that name that mcpod did not keep");
        let bare = key("/a/packages", &["npx", "-y", "-p", file, "x", "/data"]);
        assert_ne!(here, bare, "the path below the kept files, written as a word");
        let escape = key("/a/packages", &["npx", "/a/packages/../../b/packages/npm/sha512-abc/x-1.0.0.tgz"]);
        assert_ne!(escape, key("/b/packages", &["npx", &format!("/b/packages/{file}")]));
    }

    /// A filesystem server per directory would otherwise install its
    /// package once per directory; an option that may change what is
    /// installed (another package) still makes the line its own.
    #[test]
    fn the_servers_of_one_package_share_its_caches_whatever_arguments_they_are_given() {
        let key = |words: &[&str]| command_key(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>(), None, None);
        let fs = |dir: &str| key(&["npx", "-y", "-p", "/k/fs.tgz", "mcp-server-filesystem", dir]);
        assert_eq!(fs("/home/a"), fs("/home/b"));
        assert_eq!(
            key(&["/usr/bin/uvx", "--from", "/k/t.whl", "mcp-server-time", "--local-timezone", "UTC"]),
            key(&["/usr/bin/uvx", "--from", "/k/t.whl", "mcp-server-time"])
        );
        assert_eq!(
            key(&["uv", "tool", "run", "--from=/k/t.whl", "mcp-server-time", "a"]),
            key(&["uv", "tool", "run", "--from=/k/t.whl", "mcp-server-time", "b"])
        );
        assert_eq!(key(&["npx", "--yes", "pkg@1.0.0", "a"]), key(&["npx", "--yes", "pkg@1.0.0", "b"]));
        // What the installer is asked to install is part of the name.
        assert_ne!(fs("/a"), key(&["npx", "-y", "-p", "/k/fs.tgz", "-p", "evil", "mcp-server-filesystem", "/a"]));
        assert_ne!(fs("/a"), key(&["npx", "-y", "-p", "/k/other.tgz", "mcp-server-filesystem", "/a"]));
        assert_ne!(fs("/a"), key(&["npx", "-y", "-p", "/k/fs.tgz", "other-command", "/a"]));
        assert_ne!(key(&["uvx", "--with", "a", "x", "1"]), key(&["uvx", "--with", "b", "x", "1"]));
        // An option not known here keeps the whole line: it might take a
        // value that names a package.
        assert_ne!(key(&["npx", "--registry", "r", "pkg", "a"]), key(&["npx", "--registry", "r", "pkg", "b"]));
        assert_ne!(key(&["npx", "-y", "--", "pkg", "a"]), key(&["npx", "-y", "--", "pkg", "b"]));
        // `-p=x` is not npx's way of giving a value: the whole line.
        assert_ne!(key(&["npx", "-p=x", "pkg", "a"]), key(&["npx", "-p=x", "pkg", "b"]));
        // Run elsewhere, an installer reads another `.npmrc`: other caches.
        let npx = ["npx", "-y", "pkg@1.0.0"].map(String::from);
        assert_ne!(command_key(&npx, Some("/srv/shared/evil"), None), command_key(&npx, None, None));
        assert_ne!(command_key(&npx, Some("/a"), None), command_key(&npx, Some("/b"), None));
        // Any other program: the whole line.
        assert_ne!(key(&["node", "/s/server.js", "a"]), key(&["node", "/s/server.js", "b"]));
        assert_ne!(key(&["uv", "run", "x", "a"]), key(&["uv", "run", "x", "b"]));
    }

    #[test]
    fn kubernetes_quantities_become_bytes_and_thousandths() {
        assert_eq!(bytes("512Mi"), Some(512 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(bytes("100"), Some(100));
        assert_eq!(bytes("lots"), None);
        assert_eq!(bytes("0"), None);
        assert_eq!(millis("500m"), Some(500));
        assert_eq!(millis("2"), Some(2000));
        assert_eq!(millis("0.25"), Some(250));
        assert_eq!(millis("-1"), None);
    }
}
