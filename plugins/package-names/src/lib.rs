//! Rules for the strings a user hands to a server type: package names,
//! version specs, arguments, environment names and image references. Each
//! check refuses anything that could be read as a flag, a path, a URL or a
//! shell word, and names the rule it broke.

/// Why an input was refused: the rule it broke, in a sentence naming the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// A short id of the rule (`npm-name`, `no-flag`, ...).
    pub rule: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NameError {}

fn fail(rule: &'static str, message: String) -> Result<(), NameError> {
    Err(NameError { rule, message })
}

/// Checks what every name-like input shares: not empty, not too long, no
/// control characters or white space, not a flag, a path or a URL.
fn common(what: &str, s: &str, max: usize) -> Result<(), NameError> {
    if s.is_empty() {
        return fail("empty", format!("the {what} is empty"));
    }
    if s.len() > max {
        return fail("too-long", format!("the {what} is {} bytes long; at most {max} are allowed", s.len()));
    }
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return fail("no-space", format!("the {what} {s:?} contains white space or a control character"));
    }
    if s.starts_with('-') {
        return fail("no-flag", format!("the {what} {s:?} starts with `-` and would be read as a flag"));
    }
    if s.starts_with('/') || s.starts_with("./") || s.starts_with("../") || s.starts_with('~') || s.contains("/../") || s == ".." {
        return fail("no-path", format!("the {what} {s:?} looks like a file path"));
    }
    if s.contains("://") || s.starts_with("file:") || s.starts_with("git+") || s.starts_with("github:") || s.starts_with("git:") {
        return fail("no-url", format!("the {what} {s:?} looks like a URL or a git/file spec; only registry names are allowed"));
    }
    if let Some(c) = s.chars().find(|c| ";|&$`'\"\\<>(){}*?!#".contains(*c)) {
        return fail("no-shell", format!("the {what} {s:?} contains `{c}`, which is not allowed"));
    }
    Ok(())
}

/// An npm package name: `name` or `@scope/name`, lowercase, URL-safe, at
/// most 214 characters, not starting with `.` or `_`.
pub fn check_npm_name(name: &str) -> Result<(), NameError> {
    common("npm package name", name, 214)?;
    let body = name.strip_prefix('@');
    let parts: Vec<&str> = body.unwrap_or(name).split('/').collect();
    match (body.is_some(), parts.len()) {
        (true, 2) | (false, 1) => {}
        (false, _) => {
            return fail("npm-name", format!("{name:?} is not an npm name: only scoped names (`@scope/name`) contain `/`"));
        }
        (true, _) => return fail("npm-name", format!("{name:?} is not an npm name: a scoped name is `@scope/name`")),
    }
    for part in parts {
        if part.is_empty() || part.starts_with('.') || part.starts_with('_') {
            return fail("npm-name", format!("{name:?} is not an npm name: a part is empty or starts with `.` or `_`"));
        }
        if let Some(c) = part.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "-._~".contains(*c))) {
            return fail("npm-name", format!("{name:?} is not an npm name: `{c}` is not allowed (lowercase letters, digits, `-`, `.`, `_`, `~`)"));
        }
    }
    Ok(())
}

/// A PyPI project name (core metadata): letters, digits, `.`, `_`, `-`,
/// starting and ending with a letter or digit.
pub fn check_pypi_name(name: &str) -> Result<(), NameError> {
    common("PyPI project name", name, 128)?;
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if let Some(c) = name.chars().find(|c| !ok_char(*c)) {
        return fail("pypi-name", format!("{name:?} is not a PyPI name: `{c}` is not allowed (letters, digits, `.`, `_`, `-`)"));
    }
    let first = name.chars().next().unwrap_or('.');
    let last = name.chars().last().unwrap_or('.');
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return fail("pypi-name", format!("{name:?} is not a PyPI name: it must start and end with a letter or digit"));
    }
    Ok(())
}

/// The PEP 503 normal form of a PyPI name: lowercase, runs of `-_.` as `-`.
pub fn normalize_pypi_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.chars() {
        if "-_.".contains(c) {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// True for a semver core with optional pre-release and build parts (`1.2.3-rc.1+b5`).
fn is_semver(v: &str) -> bool {
    let v = v.strip_prefix('v').unwrap_or(v);
    let (core, rest) = match v.find(['-', '+']) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, ""),
    };
    let nums: Vec<&str> = core.split('.').collect();
    nums.len() == 3
        && nums.iter().all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || "-+.".contains(c))
}

/// One comparator of a range: `1.2.3`, `^1.2`, `~1.2.3`, `>=1`, `1.x`, `*`.
fn is_comparator(c: &str) -> bool {
    let c = c.trim_start_matches(['^', '~', '>', '<', '=']);
    if c == "*" || c.is_empty() {
        return !c.is_empty();
    }
    if is_semver(c) {
        return true;
    }
    let parts: Vec<&str> = c.strip_prefix('v').unwrap_or(c).split('.').collect();
    parts.len() <= 3 && parts.iter().all(|p| p == &"x" || p == &"X" || p == &"*" || (!p.is_empty() && p.chars().all(|ch| ch.is_ascii_digit())))
}

/// An npm version spec: a version, a dist-tag (`latest`, `next`) or a semver range.
pub fn check_npm_version(spec: &str) -> Result<(), NameError> {
    if spec.is_empty() || spec.len() > 256 || spec.starts_with('-') || spec.contains(['\n', '\r', '\0']) {
        return fail("npm-version", format!("{spec:?} is not an npm version, tag or range"));
    }
    let is_tag = spec.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && spec.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
        && !spec.starts_with('v');
    if is_tag {
        return Ok(());
    }
    if spec.contains(['/', ':', ';', '$', '`', '\'', '"', '\\']) {
        return fail("npm-version", format!("{spec:?} is not an npm version, tag or range"));
    }
    let ok = spec.split("||").all(|alt| {
        let alt = alt.trim();
        if let Some((a, b)) = alt.split_once(" - ") {
            return is_comparator(a.trim()) && is_comparator(b.trim());
        }
        !alt.is_empty() && alt.split_whitespace().all(is_comparator)
    });
    if ok {
        Ok(())
    } else {
        fail("npm-version", format!("{spec:?} is not an npm version, tag or semver range (like `1.2.3`, `^1.2.0`, `>=1 <2`, `latest`)"))
    }
}

/// A PEP 440 version (`1.2.3`, `2025.1.1`, `1.0rc1`, `1.0.post1`) or a
/// specifier set (`==1.0`, `>=1.2,<2`, `~=1.4`, `!=1.3.*`).
pub fn check_pep440(spec: &str) -> Result<(), NameError> {
    let bad = || fail("pep440", format!("{spec:?} is not a PEP 440 version or specifier (like `1.2.3`, `==2025.1.1`, `>=1.2,<2`)"));
    if spec.is_empty() || spec.len() > 256 || spec.contains(['\n', '\r', '\0', ';', '$', '`', '/', '\\', '\'', '"']) || spec.starts_with('-') {
        return bad();
    }
    let version_ok = |v: &str, wildcard: bool| {
        let v = v.trim();
        let v = if wildcard { v.strip_suffix(".*").unwrap_or(v) } else { v };
        let v = v.strip_prefix('v').unwrap_or(v);
        let v = match v.split_once('!') {
            Some((epoch, rest)) if epoch.chars().all(|c| c.is_ascii_digit()) => rest,
            Some(_) => return false,
            None => v,
        };
        !v.is_empty()
            && v.chars().next().is_some_and(|c| c.is_ascii_digit())
            && v.chars().all(|c| c.is_ascii_alphanumeric() || ".+-_".contains(c))
    };
    if version_ok(spec, false) {
        return Ok(());
    }
    for clause in spec.split(',') {
        let clause = clause.trim();
        let op = ["===", "~=", "==", "!=", "<=", ">=", "<", ">"].into_iter().find(|op| clause.starts_with(op));
        let Some(op) = op else { return bad() };
        if !version_ok(&clause[op.len()..], op == "==" || op == "!=") {
            return bad();
        }
    }
    Ok(())
}

/// An argument passed to a server (never through a shell): no NUL, no line
/// breaks, at most 4096 bytes.
pub fn check_arg(arg: &str) -> Result<(), NameError> {
    if arg.contains('\0') {
        return fail("arg", "an argument contains a NUL byte".to_string());
    }
    if arg.contains(['\n', '\r']) {
        return fail("arg", format!("the argument {arg:?} contains a line break"));
    }
    if arg.len() > 4096 {
        return fail("arg", format!("an argument is {} bytes long; at most 4096 are allowed", arg.len()));
    }
    Ok(())
}

/// Environment names that change how programs load or behave, refused.
const DANGEROUS_ENV: [&str; 12] = [
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PATH",
    "BASH_ENV",
    "ENV",
    "PERL5OPT",
];

/// An environment variable name: `^[A-Za-z_][A-Za-z0-9_]*$`, at most 256
/// bytes, not one that changes how programs load (`LD_PRELOAD`, `NODE_OPTIONS`, ...).
pub fn check_env_name(name: &str) -> Result<(), NameError> {
    let valid = !name.is_empty()
        && name.len() <= 256
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return fail("env-name", format!("{name:?} is not an environment variable name (letters, digits, `_`, not starting with a digit)"));
    }
    let upper = name.to_ascii_uppercase();
    if DANGEROUS_ENV.contains(&upper.as_str()) || upper.starts_with("DYLD_") || upper.starts_with("LD_") {
        return fail("env-dangerous", format!("{name} changes how programs are loaded and cannot be set for a server"));
    }
    Ok(())
}

/// An OCI image reference: `[registry[:port]/]path[:tag][@sha256:digest]`.
pub fn check_image(image: &str) -> Result<(), NameError> {
    if image.is_empty() || image.len() > 512 || image.starts_with('-') || image.contains("://") {
        return fail("image", format!("{image:?} is not an image reference"));
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let ok = d.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return fail("image", format!("{image:?} has an invalid digest; use @sha256:<64 hex digits>"));
        }
    }
    let (path, tag) = match name.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t)),
        _ => (name, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty() && t.len() <= 128 && t.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) && !t.starts_with(['.', '-']);
        if !ok {
            return fail("image", format!("{image:?} has an invalid tag {t:?}"));
        }
    }
    let components: Vec<&str> = path.split('/').collect();
    for (i, c) in components.iter().enumerate() {
        let registry = i == 0 && components.len() > 1 && (c.contains('.') || c.contains(':') || *c == "localhost");
        let ok = if registry {
            c.chars().all(|ch| ch.is_ascii_alphanumeric() || ".-:".contains(ch))
        } else {
            !c.is_empty() && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch)) && !c.starts_with(['.', '-', '_'])
        };
        if !ok {
            return fail("image", format!("{image:?} is not an image reference: component {c:?} is invalid"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INJECTIONS: [&str; 11] = [
        "--eval=require('child_process')",
        "-e",
        "../x",
        "/etc/passwd",
        "pkg; rm -rf /",
        "$(id)",
        "https://evil.example/x.tgz",
        "git+ssh://git@github.com/x/y.git",
        "file:../x",
        "name with spaces",
        "line\nbreak",
    ];

    #[test]
    fn injections_are_refused_as_names_with_a_rule() {
        let long = "a".repeat(300);
        let nul = "nul\0byte".to_string();
        for bad in INJECTIONS.iter().copied().chain([long.as_str(), nul.as_str(), "github:user/repo", "user/repo", "~/x"]) {
            let npm = check_npm_name(bad).expect_err(bad);
            let pypi = check_pypi_name(bad).expect_err(bad);
            assert!(!npm.message.is_empty() && !pypi.message.is_empty());
        }
        assert_eq!(check_npm_name("-e").unwrap_err().rule, "no-flag");
        assert_eq!(check_npm_name("/etc/passwd").unwrap_err().rule, "no-path");
        assert_eq!(check_npm_name("https://evil.example/x.tgz").unwrap_err().rule, "no-url");
        assert_eq!(check_npm_name("$(id)").unwrap_err().rule, "no-shell");
        assert_eq!(check_pypi_name(&"a".repeat(300)).unwrap_err().rule, "too-long");
    }

    #[test]
    fn real_names_pass() {
        for ok in ["@modelcontextprotocol/server-everything", "@playwright/mcp", "supergateway", "left-pad", "lodash.get"] {
            check_npm_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for ok in ["mcp-server-time", "mcp_server.fetch", "Django", "mcp", "a"] {
            check_pypi_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        assert!(check_npm_name("Upper").is_err());
        assert!(check_npm_name("@scope").is_err());
        assert!(check_npm_name("@a/b/c").is_err());
        assert!(check_pypi_name("-x").is_err());
        assert!(check_pypi_name("x-").is_err());
    }

    #[test]
    fn pypi_normal_form() {
        assert_eq!(normalize_pypi_name("Mcp_Server.Time"), "mcp-server-time");
        assert_eq!(normalize_pypi_name("a--_b"), "a-b");
    }

    #[test]
    fn versions() {
        for ok in ["1.2.3", "^1.2.0", "~1.2.3", "latest", "next", ">=1.0.0 <2.0.0", "1.x", "1.2.3-rc.1", "^1 || ^2", "1.0.0 - 2.0.0", "*"] {
            check_npm_version(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for ok in ["1.2.3", "==2025.1.1", ">=1.2,<2", "~=1.4", "!=1.3.*", "1.0rc1", "1.0.post1", "2!1.0"] {
            check_pep440(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["--registry=x", "1.0; id", "../1", "$(id)", "", "1.0\n", "https://x/y.tgz"] {
            assert!(check_npm_version(bad).is_err(), "npm {bad:?}");
            assert!(check_pep440(bad).is_err(), "pep440 {bad:?}");
        }
    }

    #[test]
    fn args_and_env() {
        assert!(check_arg("/tmp").is_ok());
        assert!(check_arg("--root=/srv").is_ok(), "flags are fine after the package");
        assert!(check_arg("a\nb").is_err());
        assert!(check_arg("a\0b").is_err());
        assert!(check_arg(&"x".repeat(5000)).is_err());
        assert!(check_env_name("BRAVE_API_KEY").is_ok());
        for bad in ["", "1X", "A-B", "A B", "LD_PRELOAD", "NODE_OPTIONS", "DYLD_INSERT_LIBRARIES", "path"] {
            assert!(check_env_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn images() {
        for ok in ["node:22.12.0-bookworm-slim", "ghcr.io/astral-sh/uv:0.9.13-python3.12-bookworm-slim", "archon-mcp:latest", "localhost:5000/a/b", "busybox@sha256:".to_string().as_str()] {
            if ok.ends_with("sha256:") {
                let img = format!("busybox@sha256:{}", "a".repeat(64));
                check_image(&img).unwrap();
                continue;
            }
            check_image(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", "-x", "Upper/Case", "a b", "x:tag with space", "https://x/y", "a;b", "busybox@md5:1"] {
            assert!(check_image(bad).is_err(), "{bad:?}");
        }
    }
}

/// Problems with the parts every server config shares, as `(field, error)`:
/// each argument, each env name, the endpoint path, and the list sizes.
pub fn check_common(args: &[String], env_names: &[&str], path: Option<&str>) -> Vec<(String, NameError)> {
    let mut out = Vec::new();
    if args.len() > 64 {
        out.push(("args".to_string(), NameError { rule: "too-many", message: format!("{} arguments; at most 64 are allowed", args.len()) }));
    }
    for (i, a) in args.iter().enumerate() {
        if let Err(e) = check_arg(a) {
            out.push((format!("args[{i}]"), e));
        }
    }
    if env_names.len() > 128 {
        out.push(("env".to_string(), NameError { rule: "too-many", message: format!("{} variables; at most 128 are allowed", env_names.len()) }));
    }
    for name in env_names {
        if let Err(e) = check_env_name(name) {
            out.push((format!("env.{name}"), e));
        }
    }
    if let Some(p) = path {
        if !p.starts_with('/') || p.contains(char::is_whitespace) || p.len() > 256 || p.contains("..") {
            out.push(("path".to_string(), NameError { rule: "path", message: format!("{p:?} is not an endpoint path (it must start with `/`, no spaces or `..`)") }));
        }
    }
    out
}

/// What an HTTP status from a package registry means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryStatus {
    /// 2xx: use the body.
    Ok,
    /// 404: the package or version does not exist.
    NotFound,
    /// 429: the registry rate-limits us; retry later.
    RateLimited,
    /// Anything else: the registry failed.
    Failed,
}

/// Classifies a registry response status.
pub fn registry_status(status: u16) -> RegistryStatus {
    match status {
        200..=299 => RegistryStatus::Ok,
        404 | 410 => RegistryStatus::NotFound,
        429 => RegistryStatus::RateLimited,
        _ => RegistryStatus::Failed,
    }
}

/// Percent-encodes `s` for a URL path segment or query value (RFC 3986 unreserved kept).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
