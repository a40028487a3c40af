//! The process's one TLS crypto provider (ring): reqwest, kube and the
//! plugins' HTTP share it, and whoever makes the first TLS client installs
//! it, so no client depends on who was first.

/// Installs the process-wide TLS provider (ring), once.
pub fn install_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
