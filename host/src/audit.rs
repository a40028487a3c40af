//! The audit log: one JSON line per call that reads or does something on a
//! server (`tools/call`, `resources/read`, `prompts/get`,
//! `completion/complete`) and per server start and stop, naming who
//! (principal), where (server, session, request), what (method and name),
//! a SHA-256 of the arguments (never their values, so no secret can land
//! here), the outcome and the duration. Written to stdout or to a file that
//! rotates by size; `mcpod audit tail` reads it. One thread writes, fed
//! by a bounded queue: a record never blocks the request that made it (a
//! stdout pipe nobody reads, a slow disk), and a record that finds the
//! queue full is dropped and counted (`mcpod_audit_dropped_total`). The
//! writer writes what gathered every 10 ms, in one write, and stays awake
//! while records keep coming: a record wakes it only after 100 ms without any.
//! A call's record is queued as it was taken and written out as a line by
//! the writer: the answer it records waits for none of that text.

use crate::identity::Principal;
use crate::jsonrpc::{push_hex, push_json_str};
use crate::metrics::Metrics;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The methods whose calls are audited, as the mux sees them.
pub const AUDITED: &[&str] = &["tools/call", "resources/read", "prompts/get", "completion/complete"];

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered with a result.
    Ok,
    /// A tool answered `isError: true`.
    ToolError,
    /// Answered with a JSON-RPC error.
    Error,
    /// The server was lost before it answered.
    Failed,
    /// Refused by mcpod before it reached the server (the server's expose rules).
    Denied,
}

impl Outcome {
    /// The name in records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Error => "error",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
        }
    }
}

/// What the mux knows about one audited call when it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// The method.
    pub method: String,
    /// The tool, resource URI, prompt or completion reference named.
    pub name: Option<String>,
    /// Hex SHA-256 of the arguments' JSON text, if there were any.
    pub args_sha256: Option<String>,
    /// The client's request id.
    pub request_id: crate::jsonrpc::Id,
    /// How it ended.
    pub outcome: Outcome,
    /// The JSON-RPC error code, for [`Outcome::Error`].
    pub error_code: Option<i64>,
    /// For a call the access policies refused: which policy outcome.
    pub policy: Option<String>,
    /// How long the server took.
    pub duration: Duration,
}

/// Hex SHA-256 of `text`.
pub fn digest(text: &str) -> String {
    let mut out = String::with_capacity(64);
    for b in Sha256::digest(text.as_bytes()) {
        push_hex(&mut out, b);
    }
    out
}

#[cfg_attr(test, derive(Serialize))]
struct Who<'a> {
    name: &'a str,
    issuer: &'a str,
    role: &'a str,
    #[cfg_attr(test, serde(skip_serializing_if = "<[String]>::is_empty"))]
    groups: &'a [String],
}

/// One audit record. Written by [`Line::to_json`], not by serde: serde_json
/// escaped each of its ~26 keys and values through its formatter, a fifth
/// of what a record cost on every audited call. The test build derives
/// `Serialize` to check that both write the same text.
#[cfg_attr(test, derive(Serialize))]
struct Line<'a> {
    time: String,
    event: &'a str,
    principal: Who<'a>,
    server: &'a str,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    session: Option<&'a str>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    request_id: Option<&'a str>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    method: Option<&'a str>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    name: Option<&'a str>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    args_sha256: Option<&'a str>,
    outcome: &'a str,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    error_code: Option<i64>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    policy: Option<&'a str>,
    #[cfg_attr(test, serde(skip_serializing_if = "Option::is_none"))]
    duration_ms: Option<f64>,
    /// A start's packages, as pinned (`name@version`, `name==version`).
    #[cfg_attr(test, serde(skip_serializing_if = "<[String]>::is_empty"))]
    packages: &'a [String],
}

impl Line<'_> {
    /// The record as one line of JSON (without its newline), its fields in
    /// declaration order and absent options left out, as serde would write it.
    fn to_json(&self) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(256);
        out.push_str("{\"time\":");
        push_json_str(&mut out, &self.time);
        field(&mut out, "event", self.event);
        out.push_str(",\"principal\":{\"name\":");
        push_json_str(&mut out, self.principal.name);
        field(&mut out, "issuer", self.principal.issuer);
        field(&mut out, "role", self.principal.role);
        if !self.principal.groups.is_empty() {
            out.push_str(",\"groups\":");
            json_strs(&mut out, self.principal.groups);
        }
        out.push('}');
        field(&mut out, "server", self.server);
        for (key, value) in [
            ("session", self.session),
            ("request_id", self.request_id),
            ("method", self.method),
            ("name", self.name),
            ("args_sha256", self.args_sha256),
        ] {
            if let Some(v) = value {
                field(&mut out, key, v);
            }
        }
        field(&mut out, "outcome", self.outcome);
        if let Some(code) = self.error_code {
            let _ = write!(out, ",\"error_code\":{code}");
        }
        if let Some(policy) = self.policy {
            field(&mut out, "policy", policy);
        }
        if let Some(ms) = self.duration_ms {
            // serde_json's own float text (a non-finite one is `null`).
            match serde_json::Number::from_f64(ms) {
                Some(n) => {
                    let _ = write!(out, ",\"duration_ms\":{n}");
                }
                None => out.push_str(",\"duration_ms\":null"),
            }
        }
        if !self.packages.is_empty() {
            out.push_str(",\"packages\":");
            json_strs(&mut out, self.packages);
        }
        out.push('}');
        out
    }
}

/// `,"key":"value"`: a key needs no escaping (they are ours).
fn field(out: &mut String, key: &str, value: &str) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":");
    push_json_str(out, value);
}

/// A JSON array of strings.
fn json_strs(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, item);
    }
    out.push(']');
}

/// Where audit lines go.
pub enum Sink {
    /// Nowhere (auditing off).
    Off,
    /// Standard output (logs go to stderr, so the two never mix).
    Stdout,
    /// A file, rotated to `FILE.1` … `FILE.keep` past `max_bytes`.
    File {
        /// The file.
        path: PathBuf,
        /// Its size before it rotates.
        max_bytes: u64,
        /// How many rotated files are kept.
        keep: u32,
    },
}

/// How many records may wait for the writer before new ones are dropped.
const QUEUE: usize = 8192;

/// How long the writer, once woken, gathers records before it writes them:
/// a busy host wakes it at most this often, not once per record (a wake-up
/// per call cost each call more than the record itself).
const GATHER: Duration = Duration::from_millis(10);

/// How many rounds of [`GATHER`] with nothing to write the writer waits
/// before it sleeps until woken (100 ms).
const AWAKE_ROUNDS: u32 = 10;

/// The records waiting for the writer thread, and how to wake it.
struct Queue {
    pending: Mutex<Pending>,
    /// True while the writer is awake (or about to be): writers of records
    /// wake it only when this was false.
    awake: std::sync::atomic::AtomicBool,
    writer: std::sync::OnceLock<std::thread::Thread>,
}

/// A record waiting for the writer: a line already written, or a call,
/// whose line the writer writes.
enum Entry {
    Line(String),
    Call(Box<QueuedCall>),
}

/// A call's record as it was taken on the answer's path.
struct QueuedCall {
    at: SystemTime,
    principal: Arc<Principal>,
    server: String,
    session: Option<String>,
    record: CallRecord,
}

impl Entry {
    /// The entry's line, its newline included; a call is counted in
    /// `metrics` as its line is written.
    fn into_text(self, metrics: &Metrics) -> String {
        let c = match self {
            Entry::Line(text) => return text,
            Entry::Call(c) => c,
        };
        let outcome = c.record.outcome.as_str();
        metrics.audit(&c.principal.name, outcome);
        let request_id = serde_json::to_string(&c.record.request_id).unwrap_or_default();
        let mut text = Line {
            time: rfc3339(c.at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()),
            event: "call",
            principal: who(&c.principal),
            server: &c.server,
            session: c.session.as_deref(),
            request_id: Some(&request_id),
            method: Some(&c.record.method),
            name: c.record.name.as_deref(),
            args_sha256: c.record.args_sha256.as_deref(),
            outcome,
            error_code: c.record.error_code,
            policy: c.record.policy.as_deref(),
            duration_ms: Some(c.record.duration.as_secs_f64() * 1000.0),
            packages: &[],
        }
        .to_json();
        text.push('\n');
        text
    }
}

#[derive(Default)]
struct Pending {
    lines: Vec<Entry>,
    /// Answered once every record before them is written.
    flushes: Vec<std::sync::mpsc::Sender<()>>,
    /// Records queued or being written, against [`QUEUE`].
    waiting: usize,
}

impl Queue {
    fn wake(&self) {
        if !self.awake.swap(true, std::sync::atomic::Ordering::AcqRel)
            && let Some(t) = self.writer.get()
        {
            t.unpark();
        }
    }

    /// The writer thread: sleeps until woken, then every [`GATHER`] writes
    /// what is queued and answers flushes, until [`AWAKE_ROUNDS`] rounds in
    /// a row found nothing; ends when the log is dropped. While records keep
    /// coming it is never woken: waking it was a system call on the path of
    /// the answer whose record found it asleep.
    fn run(weak: std::sync::Weak<Queue>, mut writer: Writer, metrics: Arc<Metrics>) {
        use std::sync::atomic::Ordering;
        loop {
            std::thread::park();
            let mut idle = 0;
            loop {
                std::thread::sleep(GATHER);
                let Some(queue) = weak.upgrade() else { return };
                let (lines, flushes) = match queue.pending.lock() {
                    Ok(mut p) => (std::mem::take(&mut p.lines), std::mem::take(&mut p.flushes)),
                    Err(_) => return,
                };
                if lines.is_empty() && flushes.is_empty() {
                    idle += 1;
                    if idle < AWAKE_ROUNDS {
                        continue;
                    }
                    queue.awake.store(false, Ordering::Release);
                    // A record queued before `awake` turned false woke no one.
                    let more = queue.pending.lock().map(|p| !p.lines.is_empty() || !p.flushes.is_empty());
                    if more.unwrap_or(false) {
                        queue.awake.store(true, Ordering::Release);
                        idle = 0;
                        continue;
                    }
                    break;
                }
                idle = 0;
                let written = lines.len();
                writer.write_lines(lines.into_iter().map(|entry| entry.into_text(&metrics)));
                if let Ok(mut p) = queue.pending.lock() {
                    p.waiting = p.waiting.saturating_sub(written);
                }
                for done in flushes {
                    let _ = done.send(());
                }
            }
        }
    }
}

/// The audit log of a host, shared by the API and every instance.
pub struct AuditLog {
    queue: Option<Arc<Queue>>,
    metrics: Arc<Metrics>,
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        // The writer wakes, finds the queue gone and ends.
        if let Some(t) = self.queue.as_ref().and_then(|q| q.writer.get()) {
            t.unpark();
        }
    }
}

impl AuditLog {
    /// An audit log writing to `sink` on a thread of its own, counting
    /// events in `metrics`.
    pub fn new(sink: Sink, metrics: Arc<Metrics>) -> Arc<AuditLog> {
        let queue = match sink {
            Sink::Off => None,
            sink => {
                let queue = Arc::new(Queue {
                    pending: Mutex::new(Pending::default()),
                    awake: std::sync::atomic::AtomicBool::new(false),
                    writer: std::sync::OnceLock::new(),
                });
                let weak = Arc::downgrade(&queue);
                let writer = Writer { sink, file: None };
                let counted = metrics.clone();
                let spawned = std::thread::Builder::new()
                    .name("mcpod-audit".into())
                    .spawn(move || Queue::run(weak, writer, counted));
                match spawned {
                    Ok(handle) => {
                        let _ = queue.writer.set(handle.thread().clone());
                        Some(queue)
                    }
                    Err(e) => {
                        tracing::error!("cannot start the audit writer thread: {e}; audit records are dropped");
                        None
                    }
                }
            }
        };
        Arc::new(AuditLog { queue, metrics })
    }

    /// Records a call a server answered (or failed to) for `principal`.
    /// Only the time is taken here; the writer thread writes the line and
    /// counts the event (`mcpod_audit_events_total`), or this call does if
    /// the queue is full and the record is dropped.
    pub fn call(&self, principal: &Arc<Principal>, server: &str, session: Option<String>, record: CallRecord) {
        let call = QueuedCall {
            at: SystemTime::now(),
            principal: principal.clone(),
            server: server.to_string(),
            session,
            record,
        };
        self.queue_entry(&principal.name, Entry::Call(Box::new(call)));
    }

    /// Records a server start or stop (`event`: `server_start`, `server_stop`).
    pub fn server(&self, principal: &Principal, event: &'static str, server: &str, outcome: Result<(), i64>) {
        self.server_with(principal, event, server, outcome, &[]);
    }

    /// Records a server start with the packages it runs, as pinned.
    pub fn server_with(
        &self,
        principal: &Principal,
        event: &'static str,
        server: &str,
        outcome: Result<(), i64>,
        packages: &[String],
    ) {
        self.write(
            principal,
            Line {
                time: now_rfc3339(),
                event,
                principal: who(principal),
                server,
                session: None,
                request_id: None,
                method: None,
                name: None,
                args_sha256: None,
                outcome: if outcome.is_ok() { "ok" } else { "error" },
                error_code: outcome.err(),
                policy: None,
                duration_ms: None,
                packages,
            },
        );
    }

    fn write(&self, principal: &Principal, line: Line<'_>) {
        if self.queue.is_none() {
            return;
        }
        self.metrics.audit(&principal.name, line.outcome);
        let mut text = line.to_json();
        text.push('\n');
        self.queue_entry(&principal.name, Entry::Line(text));
    }

    /// Hands `entry` to the writer, or drops and counts it if the queue is full.
    fn queue_entry(&self, principal: &str, entry: Entry) {
        let Some(queue) = &self.queue else { return };
        let mut entry = Some(entry);
        let queued = queue.pending.lock().is_ok_and(|mut p| {
            if p.waiting >= QUEUE {
                return false;
            }
            p.waiting += 1;
            p.lines.extend(entry.take());
            true
        });
        if queued {
            queue.wake();
        } else {
            // A call is counted as its line is written; one that never will
            // be is counted here (a server event was counted before).
            if let Some(Entry::Call(c)) = &entry {
                self.metrics.audit(&c.principal.name, c.record.outcome.as_str());
            }
            self.metrics.audit_dropped.inc();
            tracing::error!(principal = %principal, "the audit writer is behind (or gone); a record was dropped");
        }
    }

    /// Waits until every record queued so far is written (at most `timeout`),
    /// as a host does before it exits.
    pub fn flush(&self, timeout: Duration) {
        let Some(queue) = &self.queue else { return };
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let queued = queue.pending.lock().is_ok_and(|mut p| {
            p.flushes.push(done_tx);
            true
        });
        if queued {
            queue.wake();
            let _ = done_rx.recv_timeout(timeout);
        }
    }
}

/// The writer thread's end: the sink and, for a file, the open file and its size.
struct Writer {
    sink: Sink,
    file: Option<(std::fs::File, u64)>,
}

impl Writer {
    /// Writes `lines` in as few writes as the sink allows: one for stdout;
    /// for a file, one per run of lines that fits before the file rotates,
    /// so that it rotates where it would line by line. (A write per line
    /// was a system call per audited call, on a machine its servers share.)
    fn write_lines(&mut self, lines: impl Iterator<Item = String>) {
        let mut chunk = String::new();
        for line in lines {
            if !chunk.is_empty() && !self.takes(chunk.len() + line.len()) {
                self.write(chunk.as_bytes());
                chunk.clear();
            }
            chunk.push_str(&line);
        }
        if !chunk.is_empty() {
            self.write(chunk.as_bytes());
        }
    }

    /// Whether `n` more bytes go in one write with no rotation before it.
    fn takes(&self, n: usize) -> bool {
        match &self.sink {
            Sink::File { max_bytes, .. } => {
                self.file.as_ref().is_some_and(|(_, size)| size.saturating_add(n as u64) <= *max_bytes)
            }
            _ => true,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        match &self.sink {
            Sink::Off => {}
            Sink::Stdout => {
                let _ = std::io::stdout().lock().write_all(bytes);
            }
            Sink::File { path, max_bytes, keep } => {
                let (path, max_bytes, keep) = (path.clone(), *max_bytes, *keep);
                if let Err(e) = self.append(&path, max_bytes, keep, bytes) {
                    tracing::error!(path = %path.display(), "cannot write the audit log: {e}");
                }
            }
        }
    }

    fn append(&mut self, path: &Path, max_bytes: u64, keep: u32, bytes: &[u8]) -> std::io::Result<()> {
        let guard = &mut self.file;
        if guard.as_ref().is_some_and(|(_, size)| *size + bytes.len() as u64 > max_bytes) {
            *guard = None;
            rotate(path, keep)?;
        }
        if guard.is_none() {
            use std::os::unix::fs::OpenOptionsExt;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
            let size = file.metadata()?.len();
            *guard = Some((file, size));
        }
        if let Some((file, size)) = guard.as_mut() {
            file.write_all(bytes)?;
            *size += bytes.len() as u64;
        }
        Ok(())
    }
}

/// `FILE.keep-1` → `FILE.keep`, …, `FILE` → `FILE.1`.
fn rotate(path: &Path, keep: u32) -> std::io::Result<()> {
    let numbered = |n: u32| PathBuf::from(format!("{}.{n}", path.display()));
    if keep == 0 {
        return std::fs::remove_file(path);
    }
    for n in (1..keep).rev() {
        if numbered(n).exists() {
            std::fs::rename(numbered(n), numbered(n + 1))?;
        }
    }
    std::fs::rename(path, numbered(1))
}

fn who(p: &Principal) -> Who<'_> {
    Who { name: &p.name, issuer: &p.issuer, role: p.role.as_str(), groups: &p.groups }
}

/// The current time as RFC 3339 in UTC, to the millisecond.
fn now_rfc3339() -> String {
    rfc3339(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default())
}

/// `since` the Unix epoch as RFC 3339 in UTC, to the millisecond.
fn rfc3339(since: Duration) -> String {
    let (secs, millis) = (since.as_secs() as i64, since.subsec_millis());
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Written digit by digit: `format!` with its padding was a tenth of
    // what an audit record cost, and each audited call writes one.
    let mut out = String::with_capacity(24);
    let fields: [(i64, usize, char); 7] = [
        (year, 4, '-'),
        (month, 2, '-'),
        (day, 2, 'T'),
        (rest / 3600, 2, ':'),
        (rest % 3600 / 60, 2, ':'),
        (rest % 60, 2, '.'),
        (i64::from(millis), 3, 'Z'),
    ];
    for (value, width, then) in fields {
        let mut digits = [b'0'; 4];
        let mut v = value.clamp(0, 9999);
        for d in digits[..width].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend(digits[..width].iter().map(|d| char::from(*d)));
        out.push(then);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Role;

    fn alice() -> Arc<Principal> {
        Arc::new(Principal::new("alice", "static", Role::User))
    }

    /// A directory for a test's log, and the log's path in it.
    fn log_dir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        (dir, path)
    }

    /// An audit log to `path`, rotated past `max_bytes`, keeping two.
    fn file_log(path: &Path, max_bytes: u64) -> Arc<AuditLog> {
        AuditLog::new(Sink::File { path: path.to_path_buf(), max_bytes, keep: 2 }, Arc::new(Metrics::new()))
    }

    fn call(outcome: Outcome) -> CallRecord {
        CallRecord {
            method: "tools/call".into(),
            name: Some("echo".into()),
            args_sha256: Some(digest(r#"{"message":"hunter2"}"#)),
            request_id: crate::jsonrpc::Id::Num(7),
            outcome,
            error_code: None,
            policy: None,
            duration: Duration::from_millis(3),
        }
    }

    #[test]
    fn a_call_is_one_json_line_with_who_where_what_and_a_digest_never_the_arguments() {
        let (_dir, path) = log_dir();
        let log = file_log(&path, 1 << 20);
        log.call(&alice(), "s1", Some("sess".into()), call(Outcome::ToolError));
        log.server(&alice(), "server_stop", "s1", Ok(()));
        log.server_with(&alice(), "server_start", "s2", Ok(()), &["mcp-server-time==2026.10.19".to_string()]);
        log.flush(Duration::from_secs(10));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3, "{text}");
        let c = &lines[0];
        assert_eq!(
            (c["event"].as_str(), c["principal"]["name"].as_str(), c["server"].as_str()),
            (Some("call"), Some("alice"), Some("s1"))
        );
        assert_eq!(
            (c["method"].as_str(), c["name"].as_str(), c["outcome"].as_str()),
            (Some("tools/call"), Some("echo"), Some("tool_error"))
        );
        assert_eq!(c["args_sha256"].as_str().map(str::len), Some(64));
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(lines[1]["event"], "server_stop");
        assert!(lines[1].get("packages").is_none(), "{text}");
        assert_eq!(
            lines[2]["packages"],
            serde_json::json!(["mcp-server-time==2026.10.19"]),
            "a start names what it runs"
        );
        let time = c["time"].as_str().unwrap();
        assert!(time.len() == 24 && time.ends_with('Z') && time.starts_with("20"), "{time}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_record_written_by_hand_is_the_text_serde_would_write_for_every_field_and_odd_string() {
        let odd = [
            "",
            "plain",
            "quote \" and back\\slash",
            "line\nfeed\r\ttab\u{8}\u{c}",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "ünïcödé 🦀 \u{2028}",
            "</script>/",
        ];
        let groups = vec!["g1".to_string(), "a\"b".to_string()];
        let packages = vec!["p==1".to_string(), "q@\n2".to_string()];
        let mut compared = 0;
        for (i, text) in odd.iter().enumerate() {
            let some = |n: usize| (i % n == 0).then_some(*text);
            for (duration_ms, error_code) in [
                (None, None),
                (Some(0.0), Some(-32603)),
                (Some(1e-7), Some(0)),
                (Some(123.456), None),
                (Some(f64::NAN), None),
                (Some(1e21), Some(i64::MIN)),
            ] {
                let line = Line {
                    time: text.to_string(),
                    event: text,
                    principal: Who {
                        name: text,
                        issuer: "iss",
                        role: text,
                        groups: if i % 2 == 0 { &groups } else { &[] },
                    },
                    server: text,
                    session: some(1),
                    request_id: some(2),
                    method: some(3),
                    name: some(1),
                    args_sha256: some(2),
                    outcome: text,
                    error_code,
                    policy: some(3),
                    duration_ms,
                    packages: if i % 3 == 0 { &packages } else { &[] },
                };
                let by_hand = line.to_json();
                assert_eq!(by_hand, serde_json::to_string(&line).unwrap());
                serde_json::from_str::<serde_json::Value>(&by_hand).expect("valid JSON");
                compared += 1;
            }
        }
        assert_eq!(compared, odd.len() * 6);
    }

    #[test]
    fn records_written_one_by_one_with_the_writer_idle_between_them_all_arrive() {
        let (_dir, path) = log_dir();
        let log = file_log(&path, 1 << 20);
        for i in 0..5 {
            log.call(&alice(), &format!("s{i}"), None, call(Outcome::Ok));
            // Long enough for the writer to write it and go back to sleep.
            std::thread::sleep(GATHER * (AWAKE_ROUNDS + 3));
        }
        log.flush(Duration::from_secs(10));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5, "{text}");
    }

    #[test]
    fn the_writer_stays_awake_while_records_keep_coming_and_sleeps_once_they_stop() {
        let (_dir, path) = log_dir();
        let log = file_log(&path, 1 << 20);
        let awake =
            |log: &AuditLog| log.queue.as_ref().is_some_and(|q| q.awake.load(std::sync::atomic::Ordering::Acquire));
        log.call(&alice(), "s1", None, call(Outcome::Ok));
        std::thread::sleep(GATHER * 3);
        assert!(awake(&log), "a record soon after the last finds the writer awake: no wake-up on its path");
        let asleep = (0..500).any(|_| {
            std::thread::sleep(GATHER);
            !awake(&log)
        });
        assert!(asleep, "an idle writer sleeps until woken");
        log.call(&alice(), "s2", None, call(Outcome::Ok));
        log.flush(Duration::from_secs(10));
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2, "the record that woke it is written");
    }

    #[test]
    fn the_file_rotates_by_size_and_keeps_as_many_as_configured() {
        let (dir, path) = log_dir();
        let log = file_log(&path, 400);
        for _ in 0..12 {
            log.call(&alice(), "s1", None, call(Outcome::Ok));
        }
        log.flush(Duration::from_secs(10));
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&path) <= 400 && size(&path) > 0);
        let (one, two) = (dir.path().join("audit.log.1"), dir.path().join("audit.log.2"));
        assert!(size(&one) > 0 && size(&two) > 0, "two rotated files are kept");
        assert!(!dir.path().join("audit.log.3").exists(), "no third");
        for p in [&path, &one, &two] {
            for line in std::fs::read_to_string(p).unwrap().lines() {
                serde_json::from_str::<serde_json::Value>(line).expect("whole lines only");
            }
        }
    }

    #[test]
    fn a_sink_that_never_takes_a_record_never_holds_up_a_caller_and_what_is_dropped_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let metrics = Arc::new(Metrics::new());
        // Opening a FIFO to write waits for a reader, which never comes: the
        // writer thread is stuck for good, as on a pipe nobody reads.
        let log = AuditLog::new(Sink::File { path: fifo, max_bytes: 1 << 30, keep: 0 }, metrics.clone());
        for _ in 0..QUEUE + 50 {
            log.call(&alice(), "s1", None, call(Outcome::Ok));
        }
        let dropped = metrics.audit_dropped.get();
        assert!(dropped >= 40, "{dropped}");
        let labels = crate::metrics::AuditLabels { principal: "alice".into(), outcome: "ok".into() };
        let events = metrics.audited.get_or_create(&labels).get();
        assert!(events >= dropped, "a dropped call is still an event: {events} counted, {dropped} dropped");
        log.flush(Duration::from_millis(50));
    }

    #[test]
    fn times_are_civil_utc_dates_leap_days_included() {
        let at = |secs: u64, millis: u64| rfc3339(Duration::from_secs(secs) + Duration::from_millis(millis));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(1_709_210_096, 789), "2024-02-29T12:34:56.789Z");
        assert_eq!(at(951_868_800, 5), "2000-03-01T00:00:00.005Z");
        assert_eq!(at(1_798_761_599, 999), "2026-12-31T23:59:59.999Z");
    }
}
