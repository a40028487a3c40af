//! npm package names (`name`, `@scope/name`) and version specs (an exact
//! version, a dist-tag, or a semver range), as npm accepts them for new
//! packages, and nothing npm would read as a path, URL, git or file spec.

use crate::NameError;
use crate::shape::{SHELL_CHARS, Shape, shown};

/// The longest npm package name npm accepts.
const MAX_NAME: usize = 214;

/// The longest version spec accepted.
const MAX_SPEC: usize = 256;

/// Names npm refuses outright.
const RESERVED: [&str; 2] = ["node_modules", "favicon.ico"];

/// Checks an npm package name: `name` or `@scope/name`, lowercase letters,
/// digits, `-`, `.` and `_`, no part starting with `.` or `_`, at most 214
/// characters. Unscoped names with a `/` (`user/repo`) are refused: npm
/// reads them as GitHub repositories.
pub fn check_npm_name(name: &str) -> Result<(), NameError> {
    Shape { what: "npm package name", max: MAX_NAME, spaces: false, shell: SHELL_CHARS }.check(name)?;
    let refuse =
        |why: &str| Err(NameError::new("npm-name", format!("{} is not an npm package name: {why}", shown(name))));
    let parts: Vec<&str> = match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, rest)) if !rest.contains('/') => vec![scope, rest],
            _ => return refuse("a scoped name is `@scope/name`, with exactly one `/`"),
        },
        None if name.contains('/') => {
            return refuse(
                "only scoped names (`@scope/name`) contain `/`; `user/repo` would be read as a GitHub repository",
            );
        }
        None => vec![name],
    };
    for part in parts {
        if part.is_empty() {
            return refuse("the scope and the name must not be empty");
        }
        if part.starts_with(['.', '_']) {
            return refuse("it must not start with `.` or `_`");
        }
        if part.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(NameError::new(
                "npm-lowercase",
                format!("{} is not an npm package name: new npm names are lowercase", shown(name)),
            ));
        }
        if let Some(c) = part.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(*c))) {
            return refuse(&format!("`{c}` is not allowed (lowercase letters, digits, `-`, `.` and `_` are)"));
        }
    }
    if RESERVED.contains(&name) {
        return refuse("npm reserves this name");
    }
    Ok(())
}

/// Checks an npm version spec: an exact version (`1.2.3`, `1.2.3-rc.1`), a
/// dist-tag (`latest`, `next`, `beta`), or a semver range (`^1.2`, `~1.2.3`,
/// `>=1 <2`, `1.x`, `1.0.0 - 2.0.0`, `^1 || ^2`). Aliases (`npm:x@1`),
/// URLs, paths and git specs are refused.
pub fn check_npm_version(spec: &str) -> Result<(), NameError> {
    let shell = ";&$`'\"(){}[]?!#\\";
    Shape { what: "npm version", max: MAX_SPEC, spaces: true, shell }.check(spec)?;
    if is_dist_tag(spec) || is_range_set(spec) {
        return Ok(());
    }
    Err(NameError::new(
        "npm-version",
        format!(
            "{} is not an npm version, dist-tag or semver range (like `1.2.3`, `^1.2.0`, `~1.2.3`, `>=1.0.0 <2.0.0`, `1.x`, `latest`)",
            shown(spec)
        ),
    ))
}

/// A dist-tag: a letter, then letters, digits, `-`, `.` or `_`.
fn is_dist_tag(s: &str) -> bool {
    s.len() <= 128
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// A semver range set: ranges joined by `||`.
fn is_range_set(s: &str) -> bool {
    s.split("||").all(|range| is_range(range.trim()))
}

/// One range: a hyphen range (`1.0 - 2.0`) or comparators separated by
/// spaces, where an operator may stand apart from its version (`>= 1.2`).
fn is_range(range: &str) -> bool {
    let words: Vec<&str> = range.split(' ').filter(|w| !w.is_empty()).collect();
    if let [low, "-", high] = words.as_slice() {
        return is_partial(low) && is_partial(high);
    }
    if words.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        let comparator = if OPERATORS.contains(&word) {
            i += 1;
            match words.get(i) {
                Some(version) => format!("{word}{version}"),
                None => return false,
            }
        } else {
            word.to_string()
        };
        if !is_comparator(&comparator) {
            return false;
        }
        i += 1;
    }
    true
}

/// The operators a comparator may start with, longest first.
const OPERATORS: [&str; 8] = ["~>", ">=", "<=", "~", "^", ">", "<", "="];

/// One comparator: an optional operator and a partial version.
fn is_comparator(c: &str) -> bool {
    let rest = OPERATORS.iter().find_map(|op| c.strip_prefix(op)).unwrap_or(c);
    is_partial(rest)
}

/// A partial version: `1`, `1.2`, `1.x`, `*`, `1.2.3-rc.1+build.5`, with an
/// optional `v`; pre-release and build parts only after three numbers.
fn is_partial(p: &str) -> bool {
    let p = p.strip_prefix(['v', 'V']).unwrap_or(p);
    let (core, qualifier) = match p.find(['-', '+']) {
        Some(i) => (&p[..i], Some(&p[i..])),
        None => (p, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    if numbers.len() > 3 || !numbers.iter().all(|n| is_x(n) || is_number(n)) {
        return false;
    }
    match qualifier {
        None => true,
        Some(q) => numbers.len() == 3 && numbers.iter().all(|n| is_number(n)) && is_qualifier(q),
    }
}

/// `x`, `X` or `*`: any value.
fn is_x(n: &str) -> bool {
    matches!(n, "x" | "X" | "*")
}

/// A version number: `0` or digits without a leading zero, small enough
/// for npm (at most 15 digits).
fn is_number(n: &str) -> bool {
    !n.is_empty() && n.len() <= 15 && n.chars().all(|c| c.is_ascii_digit()) && (n == "0" || !n.starts_with('0'))
}

/// `-pre.release` and/or `+build.meta`: dot-separated words of letters,
/// digits and `-`.
fn is_qualifier(q: &str) -> bool {
    let (pre, build) = match q.split_once('+') {
        Some((pre, build)) => (pre, Some(build)),
        None => (q, None),
    };
    let parts_ok = |s: &str| {
        s.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let pre_ok = pre.is_empty() || pre.strip_prefix('-').is_some_and(parts_ok);
    pre_ok && build.is_none_or(parts_ok)
}
