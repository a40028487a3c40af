//! PEP 440 versions (`1.2.3`, `2025.1.1`, `1.0rc1`, `1!2.0.post1.dev3+local`)
//! and specifier sets (`==1.0`, `>=1.2,<2`, `~=1.4`, `!=1.3.*`), with the
//! spellings PEP 440 permits (`v1.0`, `1.0-1`, `1.0alpha2`).

use crate::NameError;
use crate::shape::{Shape, shown};

/// The longest version spec accepted.
const MAX_SPEC: usize = 256;

/// Checks a PEP 440 version or specifier set (clauses joined by `,`).
pub fn check_pep440(spec: &str) -> Result<(), NameError> {
    let shell = ";|&$`'\"(){}[]?#\\";
    Shape { what: "PEP 440 version", max: MAX_SPEC, spaces: true, shell }.check(spec)?;
    let spec_trimmed = spec.trim();
    let ok = parse_version(spec_trimmed, Wildcard::No, true).is_some() || spec_trimmed.split(',').all(is_clause);
    if ok {
        return Ok(());
    }
    Err(NameError::new(
        "pep440",
        format!(
            "{} is not a PEP 440 version or specifier set (like `1.2.3`, `==2025.1.1`, `>=1.2,<2`, `~=1.4`, `!=1.3.*`)",
            shown(spec)
        ),
    ))
}

/// The comparison operators, longest first.
const OPERATORS: [&str; 8] = ["===", "~=", "==", "!=", "<=", ">=", "<", ">"];

/// One clause of a specifier set: an operator and a version it accepts.
fn is_clause(clause: &str) -> bool {
    let clause = clause.trim();
    let Some((op, version)) = OPERATORS.iter().find_map(|op| clause.strip_prefix(op).map(|v| (*op, v.trim()))) else {
        return false;
    };
    match op {
        "===" => parse_version(version, Wildcard::No, true).is_some(),
        "~=" => parse_version(version, Wildcard::No, false).is_some_and(|v| v.release_segments >= 2),
        "==" | "!=" => parse_version(version, Wildcard::Allowed, true).is_some(),
        _ => parse_version(version, Wildcard::No, false).is_some(),
    }
}

/// Whether a trailing `.*` (prefix match) may follow the release numbers.
#[derive(Clone, Copy, PartialEq)]
enum Wildcard {
    No,
    Allowed,
}

/// What the checks need to know about a parsed version.
struct Parsed {
    /// How many numbers the release has (`1.4` has 2).
    release_segments: usize,
}

/// Parses `[v][N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, accepting the
/// alternative spellings and separators PEP 440 normalizes.
fn parse_version(s: &str, wildcard: Wildcard, local: bool) -> Option<Parsed> {
    let lower = s.to_ascii_lowercase();
    let mut c = Cursor { s: lower.as_bytes(), i: 0 };
    c.eat("v");
    let start = c.i;
    if !(c.digits() > 0 && c.eat("!")) {
        c.i = start;
    }
    if c.digits() == 0 {
        return None;
    }
    let mut release_segments = 1;
    while c.attempt(|c| c.eat(".") && c.digits() > 0) {
        release_segments += 1;
    }
    if wildcard == Wildcard::Allowed && c.eat(".*") {
        return c.done().then_some(Parsed { release_segments });
    }
    c.attempt(|c| {
        c.sep();
        c.word(&["alpha", "beta", "preview", "pre", "rc", "a", "b", "c"]) && c.number_tail()
    });
    let implicit_post = c.attempt(|c| c.eat("-") && c.digits() > 0);
    if !implicit_post {
        c.attempt(|c| {
            c.sep();
            c.word(&["post", "rev", "r"]) && c.number_tail()
        });
    }
    c.attempt(|c| {
        c.sep();
        c.word(&["dev"]) && c.number_tail()
    });
    if c.eat("+") && !(local && c.local_segments()) {
        return None;
    }
    c.done().then_some(Parsed { release_segments })
}

/// A position in a lowercase ASCII version string.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    /// Consumes `lit` if it comes next.
    fn eat(&mut self, lit: &str) -> bool {
        let ok = self.s[self.i..].starts_with(lit.as_bytes());
        if ok {
            self.i += lit.len();
        }
        ok
    }

    /// Consumes digits (at most 20, so that no number is absurd) and says how many.
    fn digits(&mut self) -> usize {
        let n = self.s[self.i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if n > 20 {
            return 0;
        }
        self.i += n;
        n
    }

    /// Consumes one separator (`-`, `_` or `.`) if it comes next.
    fn sep(&mut self) -> bool {
        self.eat("-") || self.eat("_") || self.eat(".")
    }

    /// Consumes the first of `words` that comes next.
    fn word(&mut self, words: &[&str]) -> bool {
        words.iter().any(|w| self.eat(w))
    }

    /// The optional number after a pre/post/dev word, with an optional
    /// separator before it (`rc1`, `rc.1`, `post`).
    fn number_tail(&mut self) -> bool {
        if !self.attempt(|c| c.sep() && c.digits() > 0) {
            self.digits();
        }
        true
    }

    /// Local version segments: `[a-z0-9]+` joined by `-`, `_` or `.`.
    fn local_segments(&mut self) -> bool {
        let segment = |c: &mut Self| {
            let n = c.s[c.i..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
            c.i += n;
            n > 0
        };
        if !segment(self) {
            return false;
        }
        while self.attempt(|c| c.sep() && segment(c)) {}
        true
    }

    /// Runs `step`; if it fails, rewinds to where it started.
    fn attempt(&mut self, step: impl FnOnce(&mut Self) -> bool) -> bool {
        let start = self.i;
        let ok = step(self);
        if !ok {
            self.i = start;
        }
        ok
    }

    /// True once everything is consumed.
    fn done(&self) -> bool {
        self.i == self.s.len()
    }
}
