//! Port-forward for a host outside the cluster: a listener on 127.0.0.1
//! whose every connection is carried to the pod's port through the API
//! server's port-forward stream.

use super::RuntimeError;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;

/// Listens on an ephemeral 127.0.0.1 port that forwards to `port` of pod
/// `name`; returns the address and the task serving it (abort to stop).
pub async fn listen(
    pods: Api<Pod>,
    name: String,
    port: u16,
) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), RuntimeError> {
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| RuntimeError::Other(format!("cannot listen for the port-forward to pod {name}: {e}")))?;
    let addr = listener.local_addr().map_err(|e| RuntimeError::Other(e.to_string()))?;
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = conn.set_nodelay(true);
            let pods = pods.clone();
            let name = name.clone();
            tokio::spawn(async move {
                let mut forwarder = match pods.portforward(&name, &[port]).await {
                    Ok(f) => f,
                    Err(e) => return tracing::warn!(pod = %name, error = %e, "port-forward failed"),
                };
                let Some(mut upstream) = forwarder.take_stream(port) else { return };
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                drop(upstream);
                let _ = forwarder.join().await;
            });
        }
    });
    Ok((addr, task))
}
