//! The `mcpod` binary: the CLI at the edge, everything else in the library.

fn main() -> std::process::ExitCode {
    mcpod::cli::main()
}
