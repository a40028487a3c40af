//! The `mcpod` binary: the CLI at the edge, everything else in the library.

/// mimalloc, not the system allocator: a proxied call makes about 110
/// small allocations, and glibc's malloc and free were a quarter of the
/// instructions mcpod spent per call (`bench/scripts/instructions.sh`,
/// docs/benchmarks.md). Built without transparent huge pages, and tuned in
/// `main` to commit and return memory as glibc does, so that it costs no
/// resident memory the system allocator did not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tune_allocator();
    // The client commands end quietly on a closed pipe; `serve` keeps
    // SIGPIPE ignored, so that writing to a server that died is an error
    // it handles, not the end of the host.
    if std::env::args().nth(1).as_deref() != Some("serve") {
        restore_sigpipe();
    }
    mcpod::cli::main()
}

/// mimalloc's `arena_eager_commit` and `purge_delay` (numbers 4 and 15 of
/// `mi_option_t`, in its v2 and v3 alike): arenas committed as they are
/// used, and freed memory given back at once rather than 10 ms later.
/// Together with `no_thp`, mcpod's resident memory is the system
/// allocator's (40 MiB serving one server), where mimalloc's defaults
/// held 58 MiB.
#[allow(unsafe_code)]
fn tune_allocator() {
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: setting an option stores an integer; called first thing in
    // `main`, before any thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
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
