//! `mcpod audit …`: reads the audit log a host writes (`[audit] sink = "file"`).

use std::io::{BufRead, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `mcpod audit …`.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Print the last records of the audit log, one JSON line each, and
    /// with `--follow` the ones written after.
    Tail {
        /// The audit log (default: `[audit] file` of the config).
        #[arg(long)]
        file: Option<PathBuf>,
        /// How many records to print.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// Keep printing records as they are written (Ctrl-C ends it).
        #[arg(short, long)]
        follow: bool,
        #[command(flatten)]
        config: super::ConfigArg,
    },
}

/// Runs an `audit` subcommand.
pub async fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Tail { file, lines, follow, config } = cmd;
    let path = match file {
        Some(f) => f,
        None => {
            let cfg = crate::config::Config::load(&config.config)?;
            match (cfg.audit.sink, cfg.audit.file) {
                (crate::config::AuditSink::File, Some(f)) => f,
                (sink, _) => anyhow::bail!(
                    "the host's audit records go to {} (config {}), not to a file; pass --file PATH, or set [audit] sink = \"file\" and file = \"PATH\"",
                    match sink {
                        crate::config::AuditSink::Stdout => "stdout",
                        _ => "nowhere",
                    },
                    config.config.display()
                ),
            }
        }
    };
    let mut reader = std::io::BufReader::new(std::fs::File::open(&path).map_err(|e| {
        anyhow::anyhow!("cannot read the audit log {}: {e}; is the host writing it ([audit] file)?", path.display())
    })?);
    let mut all = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        if line.ends_with('\n') {
            all.push(std::mem::take(&mut line));
        }
    }
    for l in &all[all.len().saturating_sub(lines)..] {
        print!("{l}");
    }
    if !follow {
        return Ok(ExitCode::SUCCESS);
    }
    // Whole lines only: a partial one waits for its end.
    let mut pos = reader.stream_position()? - line.len() as u64;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // Rotated: the new file starts from its beginning.
            reader = std::io::BufReader::new(std::fs::File::open(&path)?);
            pos = 0;
        }
        reader.seek(SeekFrom::Start(pos))?;
        let mut chunk = String::new();
        while reader.read_line(&mut chunk)? > 0 {
            if !chunk.ends_with('\n') {
                break;
            }
            print!("{chunk}");
            pos += chunk.len() as u64;
            chunk.clear();
        }
    }
}
