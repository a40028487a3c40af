//! DNS-rebinding protection: the `Origin` of browser requests and the
//! `Host` of every request must be loopback names or ones the operator
//! allowed, as the MCP transport specification requires of local servers.

use axum::http::{HeaderMap, header};

/// The allowed origins and hosts.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    origins: Vec<String>,
    hosts: Vec<String>,
}

fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[');
    let h = match h.split_once(']') {
        Some((inside, _)) => inside,
        None => h.rsplit_once(':').filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit())).map_or(h, |(name, _)| name),
    };
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Guard {
    /// Allows loopback plus `origins` (full origins such as `https://app.example`)
    /// and `hosts` (host names with optional port).
    pub fn new(origins: Vec<String>, hosts: Vec<String>) -> Self {
        Guard {
            origins: origins.into_iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect(),
            hosts: hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
        }
    }

    /// `Err` with a reason when the request must be refused.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), String> {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("").trim_end_matches('/').to_ascii_lowercase();
            let host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
            let ok = is_loopback_host(host) || self.origins.contains(&origin);
            if !ok {
                return Err(format!(
                    "Origin {origin:?} is not allowed; add it to server.allowed_origins to let that site use this server"
                ));
            }
        }
        if let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().unwrap_or("").to_ascii_lowercase();
            let bare = host
                .rsplit_once(':')
                .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
                .map_or(host.as_str(), |(n, _)| n);
            if !is_loopback_host(&host) && !self.hosts.iter().any(|h| *h == host || *h == bare) {
                return Err(format!(
                    "Host {host:?} is not allowed; add it to server.allowed_hosts if clients reach mcpod under that name"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn loopback_is_allowed_and_foreign_names_are_not() {
        let g = Guard::new(vec!["https://app.example".into()], vec!["mcpod.internal".into()]);
        assert!(g.check(&headers(&[("host", "127.0.0.1:7460")])).is_ok());
        assert!(g.check(&headers(&[("host", "localhost:7460"), ("origin", "http://localhost:3000")])).is_ok());
        assert!(g.check(&headers(&[("host", "[::1]:7460"), ("origin", "http://[::1]:5173")])).is_ok());
        assert!(g.check(&headers(&[("host", "127.0.0.1:7460"), ("origin", "https://app.example")])).is_ok());
        assert!(g.check(&headers(&[("host", "mcpod.internal:7460")])).is_ok());
        let err = g.check(&headers(&[("host", "127.0.0.1:7460"), ("origin", "http://evil.example")])).unwrap_err();
        assert!(err.contains("allowed_origins"), "{err}");
        let err = g.check(&headers(&[("host", "evil.example:7460")])).unwrap_err();
        assert!(err.contains("allowed_hosts"), "{err}");
        assert!(g.check(&headers(&[("host", "127.0.0.1.evil.example")])).is_err());
    }
}
