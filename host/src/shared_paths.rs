//! Which host paths stay below the paths an operator shares
//! (`policy.allowed_paths`), as they resolve: links followed, no `..`.
//! The policy judges every path a launch names at start; the local
//! sandbox judges its arguments again at launch, so a link swapped in
//! between is not granted either. A leaf, so that both can use it.

use std::path::{Component, Path, PathBuf};

/// What a word names that a path policy must judge.
#[derive(Debug, PartialEq, Eq)]
enum Named {
    /// An absolute path (`/srv/data`, `file:///srv/data`).
    Absolute(String),
    /// A path that cannot be judged before it is used: one with `..`, one
    /// under a home (`~/x`) that the server's shell or program expands, a
    /// file URL with escapes.
    Unjudgeable(String),
}

/// The first path among `words` that leads outside every one of `allowed`,
/// or cannot be judged, as it was written; `None` when all stay inside.
pub fn first_outside<'a>(words: impl IntoIterator<Item = &'a str>, allowed: &[PathBuf]) -> Option<String> {
    let roots = roots(allowed);
    words.into_iter().flat_map(named_in).find_map(|named| match named {
        Named::Unjudgeable(p) => Some(p),
        Named::Absolute(p) => match resolve(Path::new(&p)) {
            Some(at) if roots.iter().any(|root| at.starts_with(root)) => None,
            _ => Some(p),
        },
    })
}

/// Whether `path` resolves below one of `allowed` (the sandbox's second look).
pub fn inside(path: &Path, allowed: &[PathBuf]) -> bool {
    resolve(path).is_some_and(|at| roots(allowed).iter().any(|root| at.starts_with(root)))
}

/// The shared paths as they resolve (as written, where they do not).
fn roots(allowed: &[PathBuf]) -> Vec<PathBuf> {
    allowed.iter().map(|r| resolve(r).unwrap_or_else(|| r.clone())).collect()
}

/// What separates the paths of a word: blanks and the punctuation of
/// flags, lists, assignments, quotes, brackets and queries.
const SEPARATORS: &[char] =
    &[' ', '\t', '\n', ';', ',', ':', '=', '"', '\'', '(', ')', '[', ']', '{', '}', '<', '>', '|', '?', '&', '#', '@'];

/// The paths one word names, wherever they are in it: after a flag
/// (`--root=/x`, `-d/x`), an assignment (`root=/x`), in a list (`/a,/b`,
/// `/a:/b`, `/a /b`), quoted or bracketed; a URL with no host or a file
/// URL names its path (`file:///x`, `sqlite:////x`), another URL none.
fn named_in(word: &str) -> Vec<Named> {
    let mut out = Vec::new();
    let mut text = word.to_string();
    let mut from = 0;
    while let Some(at) = text[from..].find("://").map(|i| from + i) {
        let scheme_start = text[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
            .last()
            .map_or(at, |(i, _)| i);
        let scheme = text[scheme_start..at].to_ascii_lowercase();
        let after = at + 3;
        let end = text[after..].find(char::is_whitespace).map_or(text.len(), |i| after + i);
        let url = &text[after..end];
        let host_end = url.find('/').unwrap_or(url.len());
        if scheme.is_empty() {
            from = after;
            continue;
        }
        if scheme.ends_with("file") || host_end == 0 {
            let path = &url[host_end..];
            out.push(if path.contains('%') {
                Named::Unjudgeable(path.to_string())
            } else {
                Named::Absolute(path.to_string())
            });
        }
        // The URL is judged (or names nothing here): blank it out.
        text.replace_range(scheme_start..end, &" ".repeat(end - scheme_start));
        from = end;
    }
    for token in text.split(SEPARATORS).filter(|t| !t.is_empty()) {
        // `-d/srv`, `-d..`: a short flag run together with its value.
        let token = match token.strip_prefix('-') {
            Some(_) => token.find(['/', '~', '.']).map_or("", |at| &token[at..]),
            None => token,
        };
        let climbs = Path::new(token).components().any(|c| c == Component::ParentDir);
        if token.starts_with('~') || climbs {
            out.push(Named::Unjudgeable(token.to_string()));
        } else if token.starts_with('/') {
            out.push(Named::Absolute(token.to_string()));
        }
    }
    out
}

/// Where `path` leads: its canonical form when it exists (links followed),
/// else its nearest existing ancestor's with the rest appended; `None`
/// when the rest climbs (`..`), which could lead anywhere once made.
fn resolve(path: &Path) -> Option<PathBuf> {
    if let Ok(at) = std::fs::canonicalize(path) {
        return Some(at);
    }
    for ancestor in path.ancestors().skip(1) {
        let Ok(base) = std::fs::canonicalize(ancestor) else { continue };
        let rest = path.strip_prefix(ancestor).ok()?;
        if rest.components().any(|c| !matches!(c, Component::Normal(_))) {
            return None;
        }
        return Some(base.join(rest));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way a caller could write a path that leads elsewhere: a name
    /// that only shares a prefix, `..`, a link, a flag's value (long,
    /// short, `KEY=`), a comma or colon list, a `file://` URL, a home.
    #[test]
    fn a_path_counts_where_it_leads_not_how_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        let secret = dir.path().join("secret");
        std::fs::create_dir_all(shared.join("project")).unwrap();
        std::fs::create_dir_all(&secret).unwrap();
        std::os::unix::fs::symlink(&secret, shared.join("link")).unwrap();
        let allowed = [shared.clone()];
        let at = |p: &str| format!("{}/{p}", dir.path().display());
        let outside = |words: &[String]| first_outside(words.iter().map(String::as_str), &allowed);

        for inside in [
            at("shared"),
            at("shared/project"),
            at("shared/new/dir"),
            at("shared/./project"),
            format!("file://{}", at("shared/project")),
            format!("-d{}", at("shared")),
        ] {
            assert_eq!(outside(std::slice::from_ref(&inside)), None, "{inside}");
        }
        let plain = [
            "-y",
            "@modelcontextprotocol/server-filesystem",
            "relative/dir",
            "--port=8080",
            "https://example.com/a/../b",
            "--url=https://h.example/?next=/x",
            "a:b",
            "--local-timezone=Europe/Paris",
            "production",
        ];
        assert_eq!(outside(&plain.map(String::from)), None, "words that name no path of this host");
        for escape in [
            at("shared-not"),
            at("shared/../secret"),
            at("shared/link"),
            at("shared/link/new"),
            at("shared/missing/../../secret"),
            format!("--root={}", at("secret")),
            format!("root={}", at("secret")),
            format!("-d{}", at("secret")),
            format!("{},{}", at("shared/project"), at("secret")),
            format!("{}:{}", at("shared/project"), at("secret")),
            format!("file://{}", at("secret")),
            format!("file://localhost{}", at("secret")),
            "../../../../etc".to_string(),
            "~/.ssh".to_string(),
            "--dir=~".to_string(),
            "/etc".to_string(),
            "-d..".to_string(),
            // A server and the kernel may read `..` differently (through a
            // link): never judged, even when it would stay inside.
            at("shared/project/../project"),
            format!("file://{}", at("shared/%2e%2e/secret")),
            format!("{} {}", at("shared/project"), at("secret")),
            format!("{};{}", at("shared/project"), at("secret")),
            format!("{{\"root\":\"{}\"}}", at("secret")),
            format!("@{}", at("secret")),
            format!("sqlite:///{}", at("secret")),
            format!("git+file://{}", at("secret")),
        ] {
            assert!(outside(&[at("shared/project"), escape.clone()]).is_some(), "{escape} leads outside");
        }
        // What is named is what the error shows.
        assert_eq!(outside(&[format!("--root={}", at("secret"))]), Some(at("secret")));
        assert!(inside(&shared.join("project"), &allowed));
        assert!(!inside(&shared.join("link"), &allowed), "a link out of a shared directory");
    }
}
