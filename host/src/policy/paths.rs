//! Which host paths a local launch may name. With `policy.allowed_paths`,
//! every absolute path among a local server's arguments (the filesystem
//! server's directories, a script, a `--flag=/path`, each item of a comma
//! list) and its working directory must be one of those paths or below
//! one, as it resolves: links followed, and no `..` climbing out. So a
//! caller reaches only the files the operator shares, whatever a template
//! lets them name; the sandbox then grants what is left.

use std::path::{Component, Path, PathBuf};

/// The first path among `words` that leads outside every one of `allowed`,
/// as it was written; `None` when all stay inside.
pub fn first_outside<'a>(words: impl IntoIterator<Item = &'a str>, allowed: &[PathBuf]) -> Option<&'a str> {
    let roots: Vec<PathBuf> = allowed.iter().map(|r| resolve(r).unwrap_or_else(|| r.clone())).collect();
    words.into_iter().flat_map(paths_in).find(|p| match resolve(Path::new(p)) {
        Some(at) => !roots.iter().any(|root| at.starts_with(root)),
        None => true,
    })
}

/// The absolute paths a word names: itself, or the value of `--flag=VALUE`,
/// split at commas (`/a,/b`).
fn paths_in(word: &str) -> impl Iterator<Item = &str> {
    let value = word.split_once('=').filter(|(flag, _)| flag.starts_with('-')).map_or(word, |(_, v)| v);
    value.split(',').map(str::trim).filter(|p| p.starts_with('/'))
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
    /// that only shares a prefix, `..`, a link, a flag's value, a comma list.
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
        let outside = |words: &[String]| first_outside(words.iter().map(String::as_str), &allowed).map(str::to_string);

        for inside in [
            at("shared"),
            at("shared/project"),
            at("shared/new/dir"),
            at("shared/./project"),
            at("shared/project/../project"),
        ] {
            assert_eq!(outside(std::slice::from_ref(&inside)), None, "{inside}");
        }
        assert_eq!(outside(&["-y".into(), "pkg".into(), "relative/dir".into(), "--port=8080".into()]), None);
        for escape in [
            at("shared-not"),
            at("shared/../secret"),
            at("shared/link"),
            at("shared/link/new"),
            at("shared/missing/../../secret"),
            format!("--root={}", at("secret")),
            format!("{},{}", at("shared/project"), at("secret")),
            "/etc".to_string(),
        ] {
            assert!(outside(&[at("shared/project"), escape.clone()]).is_some(), "{escape} leads outside");
        }
        // What is named is what the error shows.
        assert_eq!(outside(&[format!("--root={}", at("secret"))]), Some(at("secret")));
    }
}
