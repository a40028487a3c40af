//! What a launch will install and run, read from its final command lines
//! the way the launchers themselves read them (`npx`, `npm exec`, `uvx`,
//! `uv tool run`, `uv run`, `pipx run`, `bunx`, `pnpm dlx`, `yarn dlx`), so
//! that the policy judges every package a launch names — `--with`,
//! `--package`, `--from`, the positional one — and not only the request's
//! `package`. Pure: no I/O, no policy, only facts or the reason the facts
//! cannot be known (a shell command, a flag that changes where packages
//! come from, a source that is not a registry).

use crate::launch::LaunchSpec;

/// The registry a package comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registry {
    /// npm (`npx`, `npm exec`, `bunx`, `pnpm dlx`, `yarn dlx`).
    Npm,
    /// PyPI (`uvx`, `uv`, `pipx`).
    Pypi,
}

impl Registry {
    /// `npm` or `PyPI`, as messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Registry::Npm => "npm",
            Registry::Pypi => "PyPI",
        }
    }
}

/// One package a launch installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Where it comes from.
    pub registry: Registry,
    /// Its name; for PyPI normalized as PEP 503 says (`mcp_server.Git` → `mcp-server-git`).
    pub name: String,
    /// How the command line names it (`mcp-server-git==1.2`, `@scope/x@1`).
    pub written: String,
    /// `written` without its version (`@scope/x`, `mcp_server.Git[extra]`):
    /// what a pinned version is appended to.
    pub unversioned: String,
    /// The version `written` asks for: an npm version, range or dist-tag, a
    /// PEP 440 specifier (uv's `name@1.2` as `==1.2`); empty for none.
    pub version: String,
    /// The launcher and option that install it (`uvx --with`, `npx`).
    pub via: String,
}

/// Everything a launch will install and run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runs {
    /// Packages installed from a registry, in command-line order.
    pub packages: Vec<Package>,
    /// Container images.
    pub images: Vec<String>,
    /// The launchers used, by registry (for the server-type switches).
    pub launchers: Vec<(Registry, String)>,
}

/// Why what a launch runs cannot be known, or is not from a registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// Reads everything `spec` installs and runs, from its container and its
/// process command lines.
pub fn what_runs(spec: &LaunchSpec) -> Result<Runs, Unreadable> {
    let mut runs = Runs::default();
    if let Some(c) = &spec.container {
        runs.images.push(c.image.clone());
        read_argv(&c.command, &mut runs)?;
    }
    if let Some(p) = &spec.process {
        read_argv(&p.command, &mut runs)?;
    }
    Ok(runs)
}

/// The program's file name (`/usr/bin/npx` → `npx`).
fn program(arg: &str) -> &str {
    arg.rsplit('/').next().unwrap_or(arg)
}

fn read_argv(argv: &[String], runs: &mut Runs) -> Result<(), Unreadable> {
    let Some(first) = argv.first() else { return Ok(()) };
    let prog = program(first);
    let rest = &argv[1..];
    let sub = |n: usize| rest.get(n).map(String::as_str);
    match prog {
        "sh" | "bash" | "dash" | "zsh" | "ash" | "busybox"
            if rest.iter().any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c')) =>
        {
            Err(Unreadable(format!(
                "the launch runs a shell command (`{prog} -c`), whose packages the policy cannot read; run the program directly"
            )))
        }
        "env" => read_argv(
            &rest[rest.iter().position(|a| !a.contains('=') && !a.starts_with('-')).unwrap_or(rest.len())..],
            runs,
        ),
        "npx" | "bunx" | "pnpx" => npm_exec(prog, rest, runs),
        "npm" if matches!(sub(0), Some("exec" | "x")) => npm_exec("npm exec", &rest[1..], runs),
        "pnpm" | "yarn" | "bun" if matches!(sub(0), Some("dlx" | "x")) => {
            npm_exec(&format!("{prog} dlx"), &rest[1..], runs)
        }
        "uvx" => uv_run("uvx", rest, true, runs),
        "uv" if sub(0) == Some("tool") && sub(1) == Some("run") => uv_run("uv tool run", &rest[2..], true, runs),
        "uv" if sub(0) == Some("run") => uv_run("uv run", &rest[1..], false, runs),
        "pipx" if sub(0) == Some("run") => pipx_run(&rest[1..], runs),
        "npm" | "pnpm" | "yarn" | "bun" | "pip" | "pip3" | "uv" | "pipx"
            if rest.iter().any(|a| matches!(a.as_str(), "install" | "i" | "add" | "sync")) =>
        {
            Err(Unreadable(format!(
                "the launch installs packages with `{prog} {}`; only launchers the policy reads (npx, uvx, ...) may install",
                rest.first().map(String::as_str).unwrap_or_default()
            )))
        }
        _ => Ok(()),
    }
}

/// `--name=value` or `--name value`: the flag's name and its value, and how many arguments it took.
fn flag_value(args: &[String], i: usize) -> (&str, Option<&str>, usize) {
    let a = args[i].as_str();
    match a.split_once('=') {
        Some((name, value)) if a.starts_with("--") => (name, Some(value), 1),
        _ => (a, args.get(i + 1).map(String::as_str), 2),
    }
}

/// `npx [options] <pkg>[@<version>] [args...]`: options end at the first
/// positional, which is the package unless `--package` named them (then it
/// is a command of theirs). Every other option is an npm configuration
/// (`--registry`, `--userconfig`, `--script-shell`), which is the operator's.
fn npm_exec(launcher: &str, args: &[String], runs: &mut Runs) -> Result<(), Unreadable> {
    runs.launchers.push((Registry::Npm, launcher.to_string()));
    let mut named = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "--" => {
                i += 1;
                break;
            }
            "-y" | "--yes" | "--no" | "-q" | "--quiet" | "-s" | "--silent" => i += 1,
            "-c" | "--call" => {
                return Err(Unreadable(format!(
                    "`{launcher} {a}` runs a shell command, whose packages the policy cannot read"
                )));
            }
            _ if a == "-p" || a == "--package" || a.starts_with("--package=") => {
                let (_, value, took) = flag_value(args, i);
                let value = value.ok_or_else(|| Unreadable(format!("`{launcher} {a}` needs a package")))?;
                named.push((value.to_string(), format!("{launcher} --package")));
                i += took;
            }
            _ if a.starts_with('-') => {
                return Err(Unreadable(format!(
                    "`{launcher}` option `{a}` configures npm itself (where packages come from, what scripts run); \
                     only the operator configures npm, on the host"
                )));
            }
            _ => break,
        }
    }
    if named.is_empty()
        && let Some(positional) = args.get(i)
    {
        named.push((positional.clone(), launcher.to_string()));
    }
    for (written, via) in named {
        runs.packages.push(npm_package(&via, &written)?);
    }
    Ok(())
}

/// The registry name in npm spec `written` (`@scope/name@1.2`, `name@^1`, `name`).
fn npm_package(launcher: &str, written: &str) -> Result<Package, Unreadable> {
    let not_registry = || {
        Unreadable(format!(
            "`{written}` (run by `{launcher}`) is not a package from the npm registry (a git, URL, file, alias or GitHub source); \
             the policy only runs registry packages"
        ))
    };
    let (scope, rest) = match written.strip_prefix('@') {
        Some(r) => {
            let (scope, rest) = r.split_once('/').ok_or_else(not_registry)?;
            (Some(scope), rest)
        }
        None => (None, written),
    };
    let (bare, version) = match rest.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (rest, None),
    };
    let valid =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'));
    if !valid(bare) || scope.is_some_and(|s| !valid(s)) || version.is_some_and(|v| v.starts_with("npm:")) {
        return Err(not_registry());
    }
    let name = match scope {
        Some(s) => format!("@{s}/{bare}"),
        None => bare.to_string(),
    };
    Ok(Package {
        registry: Registry::Npm,
        unversioned: name.clone(),
        name,
        written: written.to_string(),
        version: version.unwrap_or_default().to_string(),
        via: launcher.to_string(),
    })
}

/// `uvx [options] <command>[@<version>] [args...]`, `uv tool run`, `uv run`:
/// options end at the first positional. `--from` names the package (then
/// the positional is one of its commands); `--with` adds packages (a list
/// with commas); options that change where packages come from are the
/// operator's. For `uv run` the positional is a command, not a package.
fn uv_run(launcher: &str, args: &[String], positional_is_package: bool, runs: &mut Runs) -> Result<(), Unreadable> {
    runs.launchers.push((Registry::Pypi, launcher.to_string()));
    let mut from = None;
    let mut with = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') {
            break;
        }
        let (name, value, took) = flag_value(args, i);
        match name {
            "-q"
            | "--quiet"
            | "-v"
            | "--verbose"
            | "--isolated"
            | "--no-cache"
            | "-n"
            | "--offline"
            | "--refresh"
            | "--no-progress"
            | "--native-tls"
            | "--no-config"
            | "--no-python-downloads" => i += 1,
            "--from" | "--with" | "-w" | "--python" | "-p" => {
                let value = value.ok_or_else(|| Unreadable(format!("`{launcher} {name}` needs a value")))?;
                match name {
                    "--from" => from = Some((value.to_string(), format!("{launcher} --from"))),
                    "--with" | "-w" => {
                        with.extend(value.split(',').map(|v| (v.trim().to_string(), format!("{launcher} {name}"))))
                    }
                    _ => {}
                }
                i += took;
            }
            "--index" | "--index-url" | "-i" | "--extra-index-url" | "--default-index" | "--find-links" | "-f"
            | "--index-strategy" | "--keyring-provider" | "--config-file" => {
                return Err(Unreadable(format!(
                    "`{launcher}` option `{name}` changes where packages come from; only the operator sets the package index, on the host"
                )));
            }
            _ => {
                return Err(Unreadable(format!(
                    "`{launcher}` option `{name}` is not one the policy can read (editable installs, requirement and constraint files, \
                     and options it does not know are refused); name packages with `--with` or `--from`"
                )));
            }
        }
    }
    let mut named: Vec<(String, String)> = from.into_iter().collect();
    if named.is_empty() && positional_is_package {
        named.extend(args.get(i).map(|p| (p.clone(), launcher.to_string())));
    }
    named.extend(with);
    for (written, via) in named {
        runs.packages.push(pypi_package(&via, &written)?);
    }
    Ok(())
}

/// `pipx run [--spec S] <app> [args...]`.
fn pipx_run(args: &[String], runs: &mut Runs) -> Result<(), Unreadable> {
    runs.launchers.push((Registry::Pypi, "pipx run".to_string()));
    let mut i = 0;
    let mut spec = None;
    while i < args.len() && args[i].starts_with('-') {
        let (name, value, took) = flag_value(args, i);
        match name {
            "--spec" => spec = value.map(str::to_string),
            "--index-url" | "-i" | "--pip-args" => {
                return Err(Unreadable(format!(
                    "`pipx run` option `{name}` changes where packages come from; only the operator sets the package index"
                )));
            }
            _ => {
                return Err(Unreadable(format!("`pipx run` option `{name}` is not one the policy can read")));
            }
        }
        i += took;
    }
    if let Some((written, via)) =
        spec.map(|s| (s, "pipx run --spec")).or_else(|| args.get(i).map(|a| (a.clone(), "pipx run")))
    {
        runs.packages.push(pypi_package(via, &written)?);
    }
    Ok(())
}

/// The project in PEP 508 requirement `written` (`name[extra]>=1,<2`,
/// `name==1.2`, uv's `name@1.2`), normalized as PEP 503 says.
fn pypi_package(launcher: &str, written: &str) -> Result<Package, Unreadable> {
    let end =
        written.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))).unwrap_or(written.len());
    let (bare, rest) = written.split_at(end);
    let direct = rest.trim_start().starts_with('@') && rest.contains("://")
        || rest.trim_start().starts_with('@') && rest.contains('/');
    if bare.is_empty() || direct || written.contains("://") || rest.starts_with(' ') || rest.contains(';') {
        return Err(Unreadable(format!(
            "`{written}` (run by `{launcher}`) is not a project from the package index (a URL, path or direct reference); \
             the policy only runs index packages"
        )));
    }
    let (extras, spec) = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((inner, after)) => (&rest[..inner.len() + 2], after.trim()),
        None => ("", rest.trim()),
    };
    Ok(Package {
        registry: Registry::Pypi,
        name: normalize_pypi(bare),
        written: written.to_string(),
        unversioned: format!("{bare}{extras}"),
        version: match spec.strip_prefix('@') {
            Some(v) => format!("=={}", v.trim()),
            None => spec.to_string(),
        },
        via: launcher.to_string(),
    })
}

/// PEP 503: lowercase, every run of `-`, `_` and `.` one `-`.
pub fn normalize_pypi(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// A stdio launch spec running `process`, and in a container `container`
/// (image, command line), with `env` names: the policy's tests build theirs so.
#[cfg(test)]
pub(crate) fn test_spec(process: &str, container: Option<(&str, &str)>, env: &[&str]) -> LaunchSpec {
    use crate::launch::{ContainerLaunch, EnvVar, ProcessLaunch, Readiness, ResourceHints, Transport};
    let argv = |line: &str| -> Vec<String> { line.split(' ').filter(|a| !a.is_empty()).map(str::to_string).collect() };
    LaunchSpec {
        container: container.map(|(image, cmd)| ContainerLaunch { image: image.into(), command: argv(cmd) }),
        process: Some(ProcessLaunch { command: argv(process) }),
        env: env.iter().map(|n| EnvVar { name: n.to_string(), value: "v".into(), secret: false }).collect(),
        working_dir: None,
        transport: Transport::Stdio,
        port: None,
        path: None,
        readiness: Readiness::McpInitialize,
        resources: ResourceHints::default(),
        network_access: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(process: &str, container: Option<(&str, &str)>) -> LaunchSpec {
        test_spec(process, container, &[])
    }

    fn names(line: &str) -> Result<Vec<String>, String> {
        what_runs(&spec(line, None)).map(|r| r.packages.into_iter().map(|p| p.name).collect()).map_err(|e| e.0)
    }

    #[test]
    fn each_package_is_read_into_its_name_and_the_version_it_asks_for() {
        let read = |line: &str| -> Vec<(String, String, String)> {
            let runs = what_runs(&test_spec(line, None, &[])).unwrap();
            runs.packages.into_iter().map(|p| (p.name, p.unversioned, p.version)).collect()
        };
        let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
        assert_eq!(
            read("npx -y -p @modelcontextprotocol/server-everything -p @scope/x@^1.2 --package=is-number@latest run"),
            [
                t("@modelcontextprotocol/server-everything", "@modelcontextprotocol/server-everything", ""),
                t("@scope/x", "@scope/x", "^1.2"),
                t("is-number", "is-number", "latest"),
            ]
        );
        assert_eq!(
            read("uvx --with mcp_server.git>=1 --with black[jupyter]==24.1 --from ruff@0.6.0 ruff"),
            [
                t("ruff", "ruff", "==0.6.0"),
                t("mcp-server-git", "mcp_server.git", ">=1"),
                t("black", "black[jupyter]", "==24.1")
            ]
        );
        assert_eq!(read("uvx mcp-server-time"), [t("mcp-server-time", "mcp-server-time", "")]);
    }

    #[test]
    fn npx_runs_its_first_positional_and_passes_the_rest_to_the_server() {
        assert_eq!(
            names("npx -y @modelcontextprotocol/server-memory@2025.1.1 --package evil").unwrap(),
            ["@modelcontextprotocol/server-memory"]
        );
        assert_eq!(names("/usr/local/bin/npx --yes left-pad").unwrap(), ["left-pad"]);
    }

    #[test]
    fn npx_packages_named_with_package_are_all_read_and_the_positional_is_their_command() {
        assert_eq!(names("npx -y -p a@1 --package=@s/b --package c run-me").unwrap(), ["a", "@s/b", "c"]);
        assert_eq!(names("npm exec -y -- mcp-x@1 arg").unwrap(), ["mcp-x"]);
        assert_eq!(names("pnpm dlx mcp-y").unwrap(), ["mcp-y"]);
    }

    #[test]
    fn npx_options_that_configure_npm_or_run_a_shell_are_refused() {
        let err = names("npx --registry=http://10.0.0.1/ -y pkg").unwrap_err();
        assert!(err.contains("--registry=http://10.0.0.1/") && err.contains("operator"), "{err}");
        assert!(names("npx --script-shell /tmp/x -y pkg").unwrap_err().contains("--script-shell"));
        assert!(names("npx -c whoami").unwrap_err().contains("shell command"));
    }

    #[test]
    fn npm_sources_that_are_not_the_registry_are_refused() {
        for line in [
            "npx -y github:user/repo",
            "npx -y user/repo",
            "npx -y git+https://example.com/x.git",
            "npx -y https://example.com/x.tgz",
            "npx -y ./local",
            "npx -y file:../x",
            "npx -y alias@npm:evil@1",
        ] {
            let err = names(line).unwrap_err();
            assert!(err.contains("not a package from the npm registry"), "{line}: {err}");
        }
    }

    #[test]
    fn uvx_reads_the_package_every_with_and_from() {
        assert_eq!(
            names("uvx --with mcp-server-git mcp-server-time --local-timezone UTC").unwrap(),
            ["mcp-server-time", "mcp-server-git"]
        );
        assert_eq!(
            names("uvx --with=a,b>=2 --from Mcp_Server.Fetch fetch-cmd").unwrap(),
            ["mcp-server-fetch", "a", "b"]
        );
        assert_eq!(names("uv tool run -w x y==1").unwrap(), ["y", "x"]);
        assert_eq!(names("uv run --with mcp-extra python -m server").unwrap(), ["mcp-extra"]);
        assert_eq!(names("pipx run --spec mcp-thing==1 thing").unwrap(), ["mcp-thing"]);
        assert_eq!(names("uvx ruff@0.3.0").unwrap(), ["ruff"]);
    }

    #[test]
    fn uvx_options_that_change_the_index_or_read_files_are_refused() {
        for (line, word) in [
            ("uvx --index-url http://10.0.0.1/simple pkg", "where packages come from"),
            ("uvx --extra-index-url=http://x/ pkg", "where packages come from"),
            ("uvx -f /tmp/wheels pkg", "where packages come from"),
            ("uvx --with-requirements /tmp/r.txt pkg", "not one the policy can read"),
            ("uvx --with-editable /tmp/src pkg", "not one the policy can read"),
        ] {
            let err = names(line).unwrap_err();
            assert!(err.contains(word), "{line}: {err}");
        }
        for line in ["uvx --from git+https://example.com/x.git x", "uvx --with x@https://e/x.whl y"] {
            assert!(names(line).unwrap_err().contains("not a project from the package index"), "{line}");
        }
    }

    #[test]
    fn shells_and_other_installers_cannot_hide_packages() {
        assert!(names("sh -c npx${IFS}-y${IFS}evil").unwrap_err().contains("shell command"));
        assert!(names("bash -lc x").unwrap_err().contains("shell command"));
        assert!(names("npm install evil").unwrap_err().contains("installs packages"));
        assert_eq!(names("env FOO=1 npx -y inner").unwrap(), ["inner"]);
        assert_eq!(names("node server.js").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_container_command_and_its_image_are_read_too() {
        let runs = what_runs(&spec("node x.js", Some(("node:22@sha256:ab", "npx -y inside")))).unwrap();
        assert_eq!(runs.images, ["node:22@sha256:ab"]);
        assert_eq!(runs.packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["inside"]);
        assert_eq!(runs.launchers, [(Registry::Npm, "npx".to_string())]);
    }

    #[test]
    fn pypi_names_are_normalized_so_spellings_of_one_project_match() {
        assert_eq!(normalize_pypi("MCP__Server.-Git"), "mcp-server-git");
    }
}
