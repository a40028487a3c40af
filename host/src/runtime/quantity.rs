//! Kubernetes resource quantities as the API writes them: memory in bytes
//! (`512Mi`, `1G`, `12345Ki`) and CPU in cores (`500m`, `1`, `1234567n`).

/// A memory quantity in bytes.
pub fn bytes(q: &str) -> Option<u64> {
    const UNITS: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (num, scale) = UNITS.iter().find_map(|(s, f)| q.strip_suffix(s).map(|n| (n, *f))).unwrap_or((q, 1.0));
    let n: f64 = num.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some((n * scale) as u64)
}

/// A CPU quantity in cores (`500m` → 0.5, `1234567n` → 0.001234567).
pub fn cores(q: &str) -> Option<f64> {
    let (num, scale) = [("n", 1e-9), ("u", 1e-6), ("m", 1e-3)]
        .iter()
        .find_map(|(s, f)| q.strip_suffix(s).map(|n| (n, *f)))
        .unwrap_or((q, 1.0));
    let n: f64 = num.parse().ok()?;
    (n.is_finite() && n >= 0.0).then_some(n * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_in_every_suffix_the_metrics_api_and_resources_use() {
        assert_eq!(bytes("12345Ki"), Some(12345 * 1024));
        assert_eq!(bytes("0"), Some(0));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("lots"), None);
        assert_eq!(bytes("-1Mi"), None);
        assert_eq!(cores("1234567n"), Some(0.001234567));
        assert_eq!(cores("500m"), Some(0.5));
        assert_eq!(cores("250u"), Some(0.00025));
        assert_eq!(cores("2"), Some(2.0));
        assert_eq!(cores("NaN"), None);
    }
}
