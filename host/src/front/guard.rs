//! The browser guard, one layer in front of every route (API, MCP front,
//! health, metrics, unknown paths): a request's `Host` must be one of this
//! host's own names (DNS rebinding), a browser's `Origin` must be allowed,
//! and a POST must say `Content-Type: application/json` (so that no
//! cross-site "simple" request — text/plain or a form — can reach a
//! handler without a CORS preflight, which mcpod answers only for
//! configured origins). Pure rules here; the layer that applies them is
//! wired in `app`.

use axum::http::{HeaderMap, Method, StatusCode, header};

/// The allowed origins and hosts.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    origins: Vec<String>,
    hosts: Vec<String>,
    networks: Vec<(std::net::IpAddr, u8)>,
}

/// Why a request was refused: which rule, and the setting that would allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status to answer with.
    pub status: StatusCode,
    /// The rule broken: `host`, `origin` or `content_type` (also a metrics label).
    pub rule: &'static str,
    /// What was wrong and what to do.
    pub message: String,
}

/// Splits `host[:port]` (or `[v6]:port`) into the bare host name.
fn bare_host(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(inside, _)| inside);
    }
    host.rsplit_once(':').filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit())).map_or(host, |(name, _)| name)
}

fn is_loopback_host(host: &str) -> bool {
    let h = bare_host(host);
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `addr/len` as a network, or `None` if `entry` is not CIDR notation.
fn parse_network(entry: &str) -> Option<(std::net::IpAddr, u8)> {
    let (addr, len) = entry.split_once('/')?;
    let addr: std::net::IpAddr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn in_network(ip: std::net::IpAddr, (net, len): (std::net::IpAddr, u8)) -> bool {
    let bits = |ip: std::net::IpAddr| match ip {
        std::net::IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, true),
        std::net::IpAddr::V6(v6) => (u128::from(v6), false),
    };
    let ((a, a4), (b, b4)) = (bits(ip), bits(net));
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
    a4 == b4 && (a & mask) == (b & mask)
}

/// True if `value` is `application/json`, with parameters or none
/// (`application/json; charset=utf-8`), but not `application/jsonp`.
pub fn is_json_content_type(value: &str) -> bool {
    value.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("application/json")
}

impl Guard {
    /// Allows loopback plus `origins` (full origins such as
    /// `https://app.example`) and `hosts`: host names with an optional port,
    /// or networks in CIDR notation (`10.0.0.0/8`) for hosts given as an IP
    /// address, such as a Prometheus scrape or a kubelet probe by pod IP.
    pub fn new(origins: Vec<String>, hosts: Vec<String>) -> Self {
        let networks = hosts.iter().filter_map(|h| parse_network(h)).collect();
        Guard {
            origins: origins.into_iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect(),
            hosts: hosts.into_iter().filter(|h| parse_network(h).is_none()).map(|h| h.to_ascii_lowercase()).collect(),
            networks,
        }
    }

    /// The guard for a host whose clients reach it at `public_url` (if set)
    /// besides the configured origins and hosts.
    pub fn for_host(origins: Vec<String>, mut hosts: Vec<String>, public_url: Option<&str>) -> Self {
        if let Some(host) =
            public_url.and_then(|u| url::Url::parse(u).ok()).and_then(|u| u.host_str().map(String::from))
        {
            hosts.push(host.trim_start_matches('[').trim_end_matches(']').to_string());
        }
        Guard::new(origins, hosts)
    }

    /// True if `origin` (as sent, e.g. `http://localhost:6274`) is allowed.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
        is_loopback_host(host) || self.origins.contains(&origin)
    }

    /// True if at least one non-loopback origin is configured.
    pub fn has_origins(&self) -> bool {
        !self.origins.is_empty()
    }

    /// The configured origins (for the CORS layer).
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let bare = bare_host(&host);
        is_loopback_host(&host)
            || self.hosts.iter().any(|h| *h == host || *h == bare)
            || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| self.networks.iter().any(|n| in_network(ip, *n)))
    }

    /// `Err` naming the broken rule when the request must be refused.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), Refusal> {
        let forbidden = |rule, message| Refusal { status: StatusCode::FORBIDDEN, rule, message };
        // HTTP/1.1 requires Host; a request without one names no host of ours.
        let host = headers.get(header::HOST).map(|h| h.to_str().unwrap_or("\u{fffd}")).unwrap_or("");
        if !self.host_allowed(host) {
            return Err(forbidden(
                "host",
                format!(
                    "Forbidden: Host {host:?} is not allowed; add it to server.allowed_hosts (or set server.public_url) if clients reach mcpod under that name"
                ),
            ));
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("\u{fffd}");
            if !self.origin_allowed(origin) {
                return Err(forbidden(
                    "origin",
                    format!(
                        "Forbidden: Origin {origin:?} is not allowed; add it to server.allowed_origins to let that site use this host"
                    ),
                ));
            }
        }
        if [Method::POST, Method::PUT, Method::PATCH].contains(method) {
            let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
            if !is_json_content_type(content_type) {
                return Err(Refusal {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    rule: "content_type",
                    message: format!(
                        "Unsupported Media Type: send Content-Type: application/json (got {content_type:?})"
                    ),
                });
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

    fn get(g: &Guard, pairs: &[(&'static str, &'static str)]) -> Result<(), Refusal> {
        g.check(&Method::GET, &headers(pairs))
    }

    #[test]
    fn loopback_is_allowed_and_foreign_names_are_not() {
        let g = Guard::new(vec!["https://app.example".into()], vec!["mcpod.internal".into()]);
        assert!(get(&g, &[("host", "127.0.0.1:7460")]).is_ok());
        assert!(get(&g, &[("host", "localhost:7460"), ("origin", "http://localhost:3000")]).is_ok());
        assert!(get(&g, &[("host", "[::1]:7460"), ("origin", "http://[::1]:5173")]).is_ok());
        assert!(get(&g, &[("host", "127.0.0.1:7460"), ("origin", "https://app.example")]).is_ok());
        assert!(get(&g, &[("host", "mcpod.internal:7460")]).is_ok());
        let err = get(&g, &[("host", "127.0.0.1:7460"), ("origin", "http://evil.example")]).unwrap_err();
        assert!(err.message.contains("allowed_origins") && err.rule == "origin", "{err:?}");
        let err = get(&g, &[("host", "evil.example:7460")]).unwrap_err();
        assert!(err.message.contains("allowed_hosts") && err.rule == "host", "{err:?}");
        assert!(get(&g, &[("host", "127.0.0.1.evil.example")]).is_err());
    }

    #[test]
    fn a_request_without_a_host_or_with_a_null_origin_is_refused() {
        let g = Guard::default();
        assert_eq!(get(&g, &[]).unwrap_err().rule, "host");
        let err = get(&g, &[("host", "127.0.0.1:7460"), ("origin", "null")]).unwrap_err();
        assert_eq!(err.rule, "origin", "a sandboxed frame or file:// page sends Origin: null");
    }

    #[test]
    fn the_public_url_host_and_configured_networks_are_hosts_of_ours() {
        let g =
            Guard::for_host(vec![], vec!["10.0.0.0/8".into(), "fd00::/8".into()], Some("http://mcpod.team.svc:7460"));
        assert!(get(&g, &[("host", "mcpod.team.svc:7460")]).is_ok());
        assert!(get(&g, &[("host", "mcpod.team.svc")]).is_ok());
        assert!(get(&g, &[("host", "10.244.1.7:7460")]).is_ok(), "a pod IP inside a configured network");
        assert!(get(&g, &[("host", "[fd00::5]:7460")]).is_ok());
        assert_eq!(get(&g, &[("host", "11.0.0.1:7460")]).unwrap_err().rule, "host");
        assert_eq!(get(&g, &[("host", "[fe80::1]:7460")]).unwrap_err().rule, "host");
        assert_eq!(get(&g, &[("host", "10.evil.example")]).unwrap_err().rule, "host", "a name is not an address");
        let g = Guard::for_host(vec![], vec![], Some("http://[fd00::9]:7460/"));
        assert!(get(&g, &[("host", "[fd00::9]:7460")]).is_ok());
    }

    #[test]
    fn a_post_must_be_json_and_nothing_that_merely_starts_like_it() {
        let g = Guard::default();
        let post = |ct: &'static str| {
            let mut h = headers(&[("host", "127.0.0.1:7460")]);
            if !ct.is_empty() {
                h.insert("content-type", HeaderValue::from_static(ct));
            }
            g.check(&Method::POST, &h)
        };
        assert!(post("application/json").is_ok());
        assert!(post("Application/JSON; charset=utf-8").is_ok());
        for bad in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
        ] {
            let err = post(bad).unwrap_err();
            assert_eq!((err.status, err.rule), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_type"), "{bad}");
            assert!(err.message.contains("application/json"), "{err:?}");
        }
        assert!(get(&g, &[("host", "127.0.0.1:7460"), ("content-type", "text/plain")]).is_ok(), "a GET has no body");
    }

    #[test]
    fn network_entries_match_only_their_prefix() {
        let net = parse_network("192.168.4.0/22").unwrap();
        assert!(in_network("192.168.7.255".parse().unwrap(), net));
        assert!(!in_network("192.168.8.0".parse().unwrap(), net));
        assert!(!in_network("::ffff:192.168.4.1".parse().unwrap(), net), "families never mix");
        assert!(in_network("8.8.8.8".parse().unwrap(), parse_network("0.0.0.0/0").unwrap()));
        assert!(parse_network("10.0.0.0/33").is_none() && parse_network("mcpod").is_none());
    }
}
