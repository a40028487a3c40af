//! The `mcpod` binary: the CLI at the edge, everything else in the library.

fn main() -> std::process::ExitCode {
    // The client commands end quietly on a closed pipe; `serve` keeps
    // SIGPIPE ignored, so that writing to a server that died is an error
    // it handles, not the end of the host.
    if std::env::args().nth(1).as_deref() != Some("serve") {
        restore_sigpipe();
    }
    mcpod::cli::main()
}

/// Lets a closed pipe end the process quietly, as other command-line tools
/// do (`mcpod servers list | head`), instead of a panic in `println!`: Rust
/// starts programs with SIGPIPE ignored.
#[allow(unsafe_code)]
fn restore_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: called first thing in `main`, before any thread exists; the
    // default disposition installs no handler that could run Rust code.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
