//! Small helpers registry plugins share: what an HTTP status from a package
//! registry means, and percent-encoding for URL parts.

/// What an HTTP status from a package registry means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryStatus {
    /// 2xx: use the body.
    Ok,
    /// 404 or 410: the package or version does not exist.
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

/// Percent-encodes `s` for a URL path segment or query value (RFC 3986
/// unreserved characters are kept; everything else, `/` and `@` included,
/// is encoded).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(registry_status(200), RegistryStatus::Ok);
        assert_eq!(registry_status(404), RegistryStatus::NotFound);
        assert_eq!(registry_status(410), RegistryStatus::NotFound);
        assert_eq!(registry_status(429), RegistryStatus::RateLimited);
        assert_eq!(registry_status(500), RegistryStatus::Failed);
        assert_eq!(registry_status(301), RegistryStatus::Failed);
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved() {
        assert_eq!(percent_encode("@scope/name"), "%40scope%2Fname");
        assert_eq!(percent_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(percent_encode("é "), "%C3%A9%20");
    }
}
