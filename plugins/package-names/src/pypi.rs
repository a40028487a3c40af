//! PyPI project names (the core-metadata `Name` rule) and their PEP 503
//! normal form.

use crate::NameError;
use crate::shape::{SHELL_CHARS, Shape, shown};

/// The longest PyPI project name accepted (PyPI sets no hard limit; real
/// names stay far below this).
const MAX_NAME: usize = 128;

/// Checks a PyPI project name against the core-metadata rule
/// `^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$` (case-insensitive), at most
/// 128 bytes.
pub fn check_pypi_name(name: &str) -> Result<(), NameError> {
    Shape { what: "PyPI project name", max: MAX_NAME, spaces: false, shell: SHELL_CHARS }.check(name)?;
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c))) {
        return Err(NameError::new(
            "pypi-name",
            format!(
                "{} is not a PyPI project name: `{c}` is not allowed (letters, digits, `.`, `_` and `-` are)",
                shown(name)
            ),
        ));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return Err(NameError::new(
            "pypi-name",
            format!("{} is not a PyPI project name: it must start and end with a letter or digit", shown(name)),
        ));
    }
    Ok(())
}

/// The PEP 503 normal form of a PyPI name: lowercase, each run of `-`, `_`
/// and `.` replaced by one `-` (`Mcp_Server.Time` → `mcp-server-time`).
pub fn normalize_pypi_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if "-_.".contains(c) {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_run = false;
        }
    }
    out
}
