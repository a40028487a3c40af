//! What no name-like input may look like: empty or over-long, with control
//! characters or white space, a flag, a URL or `scheme:` spec, a path, or a
//! shell word. Each refusal names its rule.

use crate::NameError;

/// Shell metacharacters (plus `\`), refused in names and version specs.
pub(crate) const SHELL_CHARS: &str = ";|&$`'\"<>(){}[]*?!#\\";

/// How one kind of input is checked against the look-alike rules.
pub(crate) struct Shape {
    /// What the input is, for messages (`npm package name`).
    pub what: &'static str,
    /// The longest allowed input, in bytes.
    pub max: usize,
    /// True if single spaces may separate words (`>=1.0.0 <2.0.0`).
    pub spaces: bool,
    /// The characters refused as shell metacharacters.
    pub shell: &'static str,
}

impl Shape {
    /// Checks `s` against every look-alike rule, in a fixed order so that
    /// the rule reported is the most telling one (`-e` is a flag first).
    pub(crate) fn check(&self, s: &str) -> Result<(), NameError> {
        let what = self.what;
        if s.is_empty() {
            return Err(NameError::new("empty", format!("the {what} is empty")));
        }
        if s.len() > self.max {
            return Err(NameError::new(
                "too-long",
                format!("the {what} {} is {} bytes long; at most {} are allowed", shown(s), s.len(), self.max),
            ));
        }
        if s.contains('\0') {
            return Err(NameError::new("no-nul", format!("the {what} {} contains a NUL byte", shown(s))));
        }
        if s.contains(['\n', '\r']) {
            return Err(NameError::new("no-newline", format!("the {what} {} contains a line break", shown(s))));
        }
        if s.chars().any(char::is_control) {
            return Err(NameError::new("no-control", format!("the {what} {} contains a control character", shown(s))));
        }
        if s.trim_start().starts_with('-') {
            return Err(NameError::new(
                "no-flag",
                format!("the {what} {} starts with `-` and would be read as a command-line flag", shown(s)),
            ));
        }
        if looks_like_url(s) {
            return Err(NameError::new(
                "no-url",
                format!(
                    "the {what} {} looks like a URL or a `scheme:` spec (https:, git+ssh:, file:, github:); only registry names and versions are allowed",
                    shown(s)
                ),
            ));
        }
        if looks_like_path(s) {
            return Err(NameError::new(
                "no-path",
                format!("the {what} {} looks like a file path; only registry names and versions are allowed", shown(s)),
            ));
        }
        if let Some(c) = s.chars().find(|c| self.shell.contains(*c)) {
            return Err(NameError::new(
                "no-shell",
                format!("the {what} {} contains `{c}`, a shell metacharacter, which is not allowed", shown(s)),
            ));
        }
        let bad_space = |c: char| c.is_whitespace() && !(self.spaces && c == ' ');
        if s.chars().any(bad_space) {
            return Err(NameError::new("no-space", format!("the {what} {} contains white space", shown(s))));
        }
        Ok(())
    }
}

/// `s` quoted for a message, cut to its first 60 characters.
pub(crate) fn shown(s: &str) -> String {
    const KEEP: usize = 60;
    match s.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{:?}…", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// True for `https://…`, `git+ssh://…`, and `scheme:rest` specs such as
/// `file:../x`, `github:user/repo` or `npm:other@1`.
fn looks_like_url(s: &str) -> bool {
    if s.contains("://") {
        return true;
    }
    let Some((scheme, _)) = s.split_once(':') else {
        return false;
    };
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
}

/// True for absolute and home-relative paths (`~/x`, `~user/x`; a lone
/// leading `~` is a version operator), for anything with a `.` or `..`
/// segment, and for anything with a backslash.
fn looks_like_path(s: &str) -> bool {
    s.starts_with('/')
        || s == "~"
        || (s.starts_with('~') && s.contains('/'))
        || s.contains('\\')
        || s.split('/').any(|segment| segment == "." || segment == "..")
}
