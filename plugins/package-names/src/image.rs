//! OCI image references: `[registry[:port]/]path[:tag][@sha256:digest]`,
//! following the grammar of the distribution `reference` package.

use crate::NameError;
use crate::shape::shown;

/// The longest image reference accepted.
const MAX_REFERENCE: usize = 512;

/// The longest repository name (registry and path) the grammar allows.
const MAX_NAME: usize = 255;

/// Checks an OCI image reference: an optional registry host (with a port),
/// lowercase path components, an optional tag and an optional
/// `@sha256:<64 hex>` digest. White space, shell metacharacters, URLs and
/// leading `-` are refused.
pub fn check_image(image: &str) -> Result<(), NameError> {
    let bad = |why: String| Err(NameError::new("image", format!("{} is not an image reference: {why}", shown(image))));
    if image.is_empty() {
        return Err(NameError::new("empty", "the image reference is empty"));
    }
    if image.len() > MAX_REFERENCE {
        return Err(NameError::new(
            "too-long",
            format!(
                "the image reference {} is {} bytes long; at most {MAX_REFERENCE} are allowed",
                shown(image),
                image.len()
            ),
        ));
    }
    if image.starts_with('-') {
        return Err(NameError::new(
            "no-flag",
            format!("the image reference {} starts with `-` and would be read as a flag", shown(image)),
        ));
    }
    if image.contains("://") {
        return Err(NameError::new(
            "no-url",
            format!("the image reference {} is a URL; give `registry/path:tag` without a scheme", shown(image)),
        ));
    }
    if let Some(c) = image.chars().find(|c| !(c.is_ascii_alphanumeric() || "._-/:@".contains(*c))) {
        let rule = if c.is_whitespace() || c.is_control() { "no-space" } else { "no-shell" };
        return Err(NameError::new(
            rule,
            format!("the image reference {} contains {c:?}, which is not allowed", shown(image)),
        ));
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let hex_ok = d
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        if !hex_ok {
            return bad("the digest must be `@sha256:` and 64 lowercase hex digits".to_string());
        }
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match name[last_slash..].find(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && t.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return bad(format!(
                "the tag {t:?} must be letters, digits, `_`, `.` or `-` (at most 128, not starting with `.` or `-`)"
            ));
        }
    }
    if repository.len() > MAX_NAME {
        return bad(format!("the repository name is longer than {MAX_NAME} bytes"));
    }
    let components: Vec<&str> = repository.split('/').collect();
    let has_registry =
        components.len() > 1 && components.first().is_some_and(|c| c.contains(['.', ':']) || *c == "localhost");
    for (i, component) in components.iter().enumerate() {
        let ok = if i == 0 && has_registry { is_registry(component) } else { is_path_component(component) };
        if !ok {
            let what = if i == 0 && has_registry {
                "a registry is a host name with an optional `:port`"
            } else {
                "path components are lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
            };
            return bad(format!("{component:?} is invalid; {what}"));
        }
    }
    Ok(())
}

/// A registry: DNS labels joined by `.`, with an optional `:port`.
fn is_registry(s: &str) -> bool {
    let (host, port) = match s.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    host.split('.').all(label_ok) && port_ok
}

/// A path component: `[a-z0-9]+` runs joined by `.`, `_`, `__` or `-`s.
fn is_path_component(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !s.starts_with(alnum) || !s.ends_with(alnum) {
        return false;
    }
    let mut separator = String::new();
    for c in s.chars() {
        if alnum(c) {
            let ok = separator.is_empty()
                || separator == "."
                || separator == "_"
                || separator == "__"
                || separator.chars().all(|c| c == '-');
            if !ok {
                return false;
            }
            separator.clear();
        } else if "._-".contains(c) {
            separator.push(c);
        } else {
            return false;
        }
    }
    true
}
