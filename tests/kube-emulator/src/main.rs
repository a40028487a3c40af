//! `kube-emulator`: the Kubernetes API emulator as a program, for trying
//! mcpod's Kubernetes runtime (and kubectl) on a machine with no cluster.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Serves the Kubernetes API on loopback; pods run as local processes.
#[derive(Parser)]
#[command(name = "kube-emulator", version)]
struct Args {
    /// The address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where to write a kubeconfig that points at the emulator.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The namespace of that kubeconfig's context.
    #[arg(long, default_value = "default")]
    namespace: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "kube-emulator: --listen {} is not a loopback address; the emulator has no authentication",
            args.listen
        );
        return std::process::ExitCode::from(2);
    }
    let emulator = match mcpod_kube_emulator::Emulator::start_on(args.listen).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("kube-emulator: cannot listen on {}: {e}", args.listen);
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.kubeconfig
        && let Err(e) = emulator.write_kubeconfig(path, &args.namespace)
    {
        eprintln!("kube-emulator: cannot write the kubeconfig {}: {e}", path.display());
        return std::process::ExitCode::FAILURE;
    }
    println!("kube-emulator listening on {}", emulator.url());
    let _ = tokio::signal::ctrl_c().await;
    drop(emulator);
    std::process::ExitCode::SUCCESS
}
