//! Landlock rulesets: which paths a server may read and run, which it may
//! write, and (for a network server with no internet) the one TCP port it
//! may bind. The ruleset is built in the host; the child only hands its
//! file descriptor to `landlock_restrict_self` between fork and exec.

use landlock::{
    ABI, Access, AccessFs, AccessNet, NetPort, Ruleset, RulesetAttr, RulesetCreatedAttr, path_beneath_rules,
};
use std::os::fd::OwnedFd;
use std::path::PathBuf;

/// The newest Landlock ABI whose rights this sandbox asks for (5: device
/// ioctls); older kernels enforce what they know.
const ASKED: ABI = ABI::V5;

/// The Landlock ABI version the running kernel offers (0: none).
pub fn kernel_abi() -> i64 {
    // SAFETY: the documented probe: no attributes, size 0, the VERSION flag.
    #[allow(unsafe_code)]
    let v = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    v.max(0)
}

/// What one ruleset allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Paths (and everything beneath) the server may read and execute.
    pub read: Vec<PathBuf>,
    /// Paths (and everything beneath) the server may also write.
    pub write: Vec<PathBuf>,
    /// `Some`: TCP is handled too, and only binding this port (if any) is
    /// allowed: no outgoing connection at all.
    pub tcp_bind_only: Option<Option<u16>>,
}

/// Builds the ruleset of `rules`; paths that do not exist are skipped.
pub fn ruleset(rules: &Rules) -> Result<OwnedFd, String> {
    let fail = |e: landlock::RulesetError| format!("cannot build the Landlock ruleset: {e}");
    let mut ruleset = Ruleset::default().handle_access(AccessFs::from_all(ASKED)).map_err(fail)?;
    if rules.tcp_bind_only.is_some() {
        ruleset = ruleset.handle_access(AccessNet::from_all(ABI::V4)).map_err(fail)?;
    }
    let mut created = ruleset
        .create()
        .map_err(fail)?
        .add_rules(path_beneath_rules(&rules.read, AccessFs::from_read(ASKED)))
        .map_err(fail)?
        .add_rules(path_beneath_rules(&rules.write, AccessFs::from_all(ASKED)))
        .map_err(fail)?;
    if let Some(Some(port)) = rules.tcp_bind_only {
        created = created.add_rule(NetPort::new(port, AccessNet::BindTcp)).map_err(fail)?;
    }
    Option::<OwnedFd>::from(created).ok_or_else(|| "this kernel has no Landlock".to_string())
}
