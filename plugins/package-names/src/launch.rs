//! Rules for the parts every server config shares: arguments, environment
//! variables, the endpoint path and port, and server-type options. The
//! checks over a whole config return `(field, error)` pairs so that a server
//! type can report every problem with its field (`args[2]`, `env.FOO`).

use crate::NameError;
use crate::shape::shown;
use std::collections::HashSet;

/// The most arguments a server config may pass.
pub const MAX_ARGS: usize = 64;

/// The most environment variables a server config may set.
pub const MAX_ENV: usize = 128;

/// The longest environment variable value accepted, in bytes.
pub const MAX_ENV_VALUE_BYTES: usize = 32 * 1024;

/// The longest argument accepted, in bytes.
const MAX_ARG_BYTES: usize = 4096;

/// The longest environment variable name accepted, in bytes.
const MAX_ENV_NAME: usize = 256;

/// The most options looked at one by one.
const MAX_OPTIONS: usize = 64;

/// The longest endpoint path accepted, in bytes.
const MAX_PATH: usize = 256;

/// Variables that change how programs are loaded or what code they run
/// before the server's own, compared case-insensitively.
const LOADER_ENV: [&str; 30] = [
    "PATH",
    "NODE_OPTIONS",
    "NODE_PATH",
    "NODE_REPL_EXTERNAL_MODULE",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PYTHONUSERBASE",
    "PYTHONINSPECT",
    "PYTHONWARNINGS",
    "PYTHONBREAKPOINT",
    "PYTHONEXECUTABLE",
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
];

/// Prefixes of variable families read by dynamic loaders (`LD_PRELOAD`,
/// `LD_LIBRARY_PATH`, `LD_AUDIT`, `DYLD_INSERT_LIBRARIES`, ...).
const LOADER_PREFIXES: [&str; 2] = ["LD_", "DYLD_"];

/// Checks one argument passed to a server (as an argv element, never
/// through a shell): no NUL byte, no line break, at most 4096 bytes.
pub fn check_arg(arg: &str) -> Result<(), NameError> {
    if arg.contains('\0') {
        return Err(NameError::new("no-nul", format!("the argument {} contains a NUL byte", shown(arg))));
    }
    if arg.contains(['\n', '\r']) {
        return Err(NameError::new("no-newline", format!("the argument {} contains a line break", shown(arg))));
    }
    if arg.len() > MAX_ARG_BYTES {
        return Err(NameError::new(
            "too-long",
            format!("the argument {} is {} bytes long; at most {MAX_ARG_BYTES} are allowed", shown(arg), arg.len()),
        ));
    }
    Ok(())
}

/// Checks an environment variable name: `^[A-Za-z_][A-Za-z0-9_]*$`, at most
/// 256 bytes, and not one that changes how programs load (`LD_PRELOAD`,
/// `LD_LIBRARY_PATH`, `DYLD_*`, `NODE_OPTIONS`, `PYTHONPATH`, `PATH`, ...).
pub fn check_env_name(name: &str) -> Result<(), NameError> {
    let valid = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(NameError::new(
            "env-name",
            format!(
                "{} is not an environment variable name (letters, digits and `_`, not starting with a digit)",
                shown(name)
            ),
        ));
    }
    if name.len() > MAX_ENV_NAME {
        return Err(NameError::new(
            "too-long",
            format!("the environment variable name {} is longer than {MAX_ENV_NAME} bytes", shown(name)),
        ));
    }
    let upper = name.to_ascii_uppercase();
    if LOADER_ENV.contains(&upper.as_str()) || LOADER_PREFIXES.iter().any(|p| upper.starts_with(p)) {
        return Err(NameError::new(
            "env-loader",
            format!("{name} changes how programs are loaded or what code they run, so a server config cannot set it"),
        ));
    }
    Ok(())
}

/// Checks the value of environment variable `name`: no NUL byte (line
/// breaks are fine: keys and certificates have them), at most 32 KiB.
pub fn check_env_value(name: &str, value: &str) -> Result<(), NameError> {
    if value.contains('\0') {
        return Err(NameError::new("no-nul", format!("the value of {name} contains a NUL byte")));
    }
    if value.len() > MAX_ENV_VALUE_BYTES {
        return Err(NameError::new(
            "too-long",
            format!("the value of {name} is {} bytes long; at most {MAX_ENV_VALUE_BYTES} are allowed", value.len()),
        ));
    }
    Ok(())
}

/// Checks the HTTP path of a network server's endpoint: starts with `/`,
/// at most 256 bytes, printable ASCII without white space, `?`, `#`, `\` or
/// `.`/`..` segments.
pub fn check_path(path: &str) -> Result<(), NameError> {
    let bad = |why: &str| Err(NameError::new("path", format!("{} is not an endpoint path: {why}", shown(path))));
    if !path.starts_with('/') {
        return bad("it must start with `/` (like `/mcp`)");
    }
    if path.len() > MAX_PATH {
        return bad("it is longer than 256 bytes");
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic() || "?#\\\"<>`{}|^".contains(*c)) {
        return bad(&format!("{c:?} is not allowed"));
    }
    if path.split('/').any(|segment| segment == "." || segment == "..") {
        return bad("it must not have `.` or `..` segments");
    }
    Ok(())
}

/// Every problem with the parts every server config shares, as `(field,
/// error)`: the number of arguments and each one (`args[2]`), the number of
/// variables, each name and value, and names set twice (`env.FOO`), the
/// endpoint `path` and the `port` (0 is not a port). Past a limit, only
/// the entries within it are checked one by one.
pub fn check_common(
    args: &[String],
    env: &[(&str, &str)],
    path: Option<&str>,
    port: Option<u16>,
) -> Vec<(String, NameError)> {
    let mut out = Vec::new();
    if args.len() > MAX_ARGS {
        out.push((
            "args".to_string(),
            NameError::new("too-many", format!("{} arguments are given; at most {MAX_ARGS} are allowed", args.len())),
        ));
    }
    for (i, arg) in args.iter().take(MAX_ARGS).enumerate() {
        if let Err(e) = check_arg(arg) {
            out.push((format!("args[{i}]"), e));
        }
    }
    if env.len() > MAX_ENV {
        out.push((
            "env".to_string(),
            NameError::new(
                "too-many",
                format!("{} environment variables are set; at most {MAX_ENV} are allowed", env.len()),
            ),
        ));
    }
    let mut seen = HashSet::new();
    for (name, value) in env.iter().take(MAX_ENV) {
        let field = format!("env.{name}");
        if let Err(e) = check_env_name(name).and_then(|()| check_env_value(name, value)) {
            out.push((field, e));
        } else if !seen.insert(*name) {
            out.push((field, NameError::new("duplicate", format!("{name} is set more than once"))));
        }
    }
    if let Some(Err(e)) = path.map(check_path) {
        out.push(("path".to_string(), e));
    }
    if port == Some(0) {
        out.push((
            "port".to_string(),
            NameError::new("port", "port 0 is not a port; give the port the server listens on (1-65535)"),
        ));
    }
    out
}

/// Problems with a server type's `options`, as `(field, error)`: each key
/// that `server_type` does not know (`options.from`), and keys given twice
/// (past 64 options, only the first 64 are looked at one by one).
pub fn check_options(server_type: &str, options: &[(&str, &str)], known: &[&str]) -> Vec<(String, NameError)> {
    let mut out = Vec::new();
    if options.len() > MAX_OPTIONS {
        out.push((
            "options".to_string(),
            NameError::new(
                "too-many",
                format!("{} options are given; at most {MAX_OPTIONS} are allowed", options.len()),
            ),
        ));
    }
    let mut seen = HashSet::new();
    for (key, _) in options.iter().take(MAX_OPTIONS) {
        let field = format!("options.{key}");
        if !known.contains(key) {
            let offered = if known.is_empty() {
                "it takes no options".to_string()
            } else {
                format!("its options are {}", known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))
            };
            out.push((
                field,
                NameError::new(
                    "unknown-option",
                    format!("the {server_type} server type has no option {}; {offered}", shown(key)),
                ),
            ));
        } else if !seen.insert(*key) {
            out.push((field, NameError::new("duplicate", format!("option `{key}` is given more than once"))));
        }
    }
    out
}
