//! The rules, exercised with real names and with injection attempts.

use super::*;

/// Inputs that must never pass as a package name, each with the rule the
/// npm check reports for it.
fn injections() -> Vec<(String, &'static str)> {
    vec![
        ("--eval=require('child_process').execSync('id')".into(), "no-flag"),
        ("-e".into(), "no-flag"),
        ("../x".into(), "no-path"),
        ("/etc/passwd".into(), "no-path"),
        ("~/x".into(), "no-path"),
        ("./x".into(), "no-path"),
        ("pkg; rm -rf /".into(), "no-shell"),
        ("$(id)".into(), "no-shell"),
        ("`id`".into(), "no-shell"),
        ("a|b".into(), "no-shell"),
        ("a&b".into(), "no-shell"),
        ("'quoted'".into(), "no-shell"),
        ("https://evil.example/x.tgz".into(), "no-url"),
        ("git+ssh://git@github.com/x/y.git".into(), "no-url"),
        ("file:../x".into(), "no-url"),
        ("github:user/repo".into(), "no-url"),
        ("name with spaces".into(), "no-space"),
        ("tab\there".into(), "no-control"),
        ("line\nbreak".into(), "no-newline"),
        ("carriage\rreturn".into(), "no-newline"),
        ("nul\0byte".into(), "no-nul"),
        ("a".repeat(300), "too-long"),
        (String::new(), "empty"),
    ]
}

#[test]
fn injections_are_refused_as_npm_and_pypi_names_with_their_rule() {
    for (bad, rule) in injections() {
        let npm = check_npm_name(&bad).expect_err(&bad);
        assert_eq!(npm.rule, rule, "npm {bad:?}: {npm}");
        let pypi = check_pypi_name(&bad).expect_err(&bad);
        assert_eq!(pypi.rule, rule, "pypi {bad:?}: {pypi}");
        assert!(!npm.message.is_empty() && npm.to_string() == npm.message);
    }
}

#[test]
fn messages_name_the_input_and_stay_short() {
    let e = check_npm_name("$(id)").unwrap_err();
    assert!(e.message.contains("\"$(id)\"") && e.message.contains("`$`"), "{e}");
    let long = "a".repeat(10_000);
    let e = check_pypi_name(&long).unwrap_err();
    assert!(e.message.len() < 200, "the input is cut in the message: {e}");
    assert!(e.message.contains("10000 bytes"), "{e}");
}

#[test]
fn real_npm_names_pass_and_npm_specific_rules_hold() {
    for ok in [
        "@modelcontextprotocol/server-everything",
        "@playwright/mcp",
        "mcp-server-time",
        "supergateway",
        "lodash.get",
        "a",
        "@a/b",
    ] {
        check_npm_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    check_npm_name(&"a".repeat(214)).unwrap();
    assert_eq!(check_npm_name(&"a".repeat(215)).unwrap_err().rule, "too-long");
    for (bad, rule) in [
        ("user/repo", "npm-name"),
        ("@scope", "npm-name"),
        ("@scope/", "npm-name"),
        ("@/name", "npm-name"),
        ("@a/b/c", "npm-name"),
        (".hidden", "npm-name"),
        ("_private", "npm-name"),
        ("@scope/_x", "npm-name"),
        ("Upper", "npm-lowercase"),
        ("tilde~", "npm-name"),
        ("node_modules", "npm-name"),
        ("caf\u{e9}", "npm-name"),
    ] {
        assert_eq!(check_npm_name(bad).map_err(|e| e.rule), Err(rule), "{bad:?}");
    }
}

#[test]
fn real_pypi_names_pass_and_the_core_metadata_rule_holds() {
    for ok in ["mcp-server-time", "mcp_server.fetch", "Django", "mcp", "a", "A1", "zope.interface"] {
        check_pypi_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in ["x-", "_x", ".x", "x.", "@scope/name", "a/b", "caf\u{e9}", "a+b", "a=b"] {
        assert!(check_pypi_name(bad).is_err(), "{bad:?}");
    }
    assert_eq!(check_pypi_name("a/b").unwrap_err().rule, "pypi-name");
}

#[test]
fn pypi_names_normalize_as_pep_503_says() {
    assert_eq!(normalize_pypi_name("Mcp_Server.Time"), "mcp-server-time");
    assert_eq!(normalize_pypi_name("a--_.b"), "a-b");
    assert_eq!(normalize_pypi_name("zope.interface"), "zope-interface");
    assert_eq!(normalize_pypi_name("plain"), "plain");
}

/// Version specs neither registry may accept.
const BAD_VERSIONS: [&str; 12] = [
    "--registry=x",
    "1.0; id",
    "../1",
    "$(id)",
    "",
    "1.0\n",
    "1.0\0",
    "https://x/y.tgz",
    "file:../x",
    "1.0 && id",
    "`id`",
    "/1.0",
];

#[test]
fn npm_versions_tags_and_ranges() {
    for ok in [
        "1.2.3",
        "^1.2.0",
        "~1.2.3",
        "latest",
        "next",
        "beta-2",
        ">=1.0.0 <2.0.0",
        ">= 1.0.0 < 2.0.0",
        "1.x",
        "1.2.x",
        "1.2.3-rc.1",
        "1.2.3-rc.1+build.5",
        "v1.2.3",
        "=1.2.3",
        "^1 || ^2",
        "1.0.0 - 2.0.0",
        "*",
        "x",
        "~>1.2",
        "2025.8.21",
    ] {
        check_npm_version(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in BAD_VERSIONS {
        assert!(check_npm_version(bad).is_err(), "npm {bad:?}");
    }
    for bad in ["npm:other@1", "1.2.3.4", "01.2.3", "1.2-rc", "^", "1 ||", ">=", "1.2.3-", "1 - 2 - 3", "a b", "1@2"] {
        assert!(check_npm_version(bad).is_err(), "npm {bad:?}");
    }
    assert_eq!(check_npm_version("--registry=x").unwrap_err().rule, "no-flag");
    assert_eq!(check_npm_version("1.0; id").unwrap_err().rule, "no-shell");
    assert_eq!(check_npm_version("../1").unwrap_err().rule, "no-path");
    assert_eq!(check_npm_version("1.2.3.4").unwrap_err().rule, "npm-version");
}

#[test]
fn pep440_versions_and_specifier_sets() {
    for ok in [
        "1.2.3",
        "2025.1.1",
        "==2025.1.1",
        ">=1.2,<2",
        ">= 1.2, < 2",
        "~=1.4",
        "!=1.3.*",
        "==1.*",
        "1.0rc1",
        "1.0.post1",
        "1.0.dev0",
        "1.0a1.post2.dev3",
        "1.0-1",
        "1.0alpha2",
        "2!1.0",
        "v1.0",
        "1.0+local.7",
        "==1.0+ubuntu-1",
        "===1.0",
        "<3",
    ] {
        check_pep440(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in BAD_VERSIONS {
        assert!(check_pep440(bad).is_err(), "pep440 {bad:?}");
    }
    for bad in [
        "~=1",
        "~=1.*",
        ">=1.*",
        "<1.0+local",
        "1.0.*",
        "=1.0",
        ">=1 <2",
        "1.0junk",
        "latest",
        "==",
        ">=1.2,",
        "1..0",
        "^1.2",
    ] {
        assert!(check_pep440(bad).is_err(), "pep440 {bad:?}");
    }
    assert_eq!(check_pep440("--registry=x").unwrap_err().rule, "no-flag");
    assert_eq!(check_pep440("~=1").unwrap_err().rule, "pep440");
}

#[test]
fn arguments_allow_flags_but_not_line_breaks_or_nul() {
    for ok in ["/tmp", "--root=/srv", "", "$(not a shell)", "a b"] {
        check_arg(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }
    assert_eq!(check_arg("a\nb").unwrap_err().rule, "no-newline");
    assert_eq!(check_arg("a\rb").unwrap_err().rule, "no-newline");
    assert_eq!(check_arg("a\0b").unwrap_err().rule, "no-nul");
    check_arg(&"x".repeat(4096)).unwrap();
    assert_eq!(check_arg(&"x".repeat(4097)).unwrap_err().rule, "too-long");
}

#[test]
fn env_names_follow_the_shell_rule_and_refuse_loader_variables() {
    for ok in ["BRAVE_API_KEY", "_X", "a1", "HOME", "LDAP_URL", "NODE_ENV", "PYTHONUNBUFFERED"] {
        check_env_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in ["", "1X", "A-B", "A B", "A=B", "A\nB", "é"] {
        assert_eq!(check_env_name(bad).map_err(|e| e.rule), Err("env-name"), "{bad:?}");
    }
    for loader in [
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "DYLD_INSERT_LIBRARIES",
        "NODE_OPTIONS",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PATH",
        "path",
        "ld_preload",
        "BASH_ENV",
        "JAVA_TOOL_OPTIONS",
    ] {
        assert_eq!(check_env_name(loader).map_err(|e| e.rule), Err("env-loader"), "{loader:?}");
    }
    assert_eq!(check_env_name(&"A".repeat(257)).unwrap_err().rule, "too-long");
    check_env_name(&"A".repeat(256)).unwrap();
}

#[test]
fn images_follow_the_reference_grammar() {
    let digest = format!("busybox@sha256:{}", "a".repeat(64));
    let tagged_digest = format!("ghcr.io/acme/mcp:1.0@sha256:{}", "0".repeat(64));
    for ok in [
        "node:22.12.0-bookworm-slim",
        "ghcr.io/astral-sh/uv:0.9.13-python3.12-bookworm-slim",
        "archon-mcp:latest",
        "archon-mcp",
        "localhost:5000/a/b",
        "localhost:5000/a/b:tag",
        "registry.example/archon-mcp:1.2",
        "my_org/my__image",
        "a-b--c",
        digest.as_str(),
        tagged_digest.as_str(),
    ] {
        check_image(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, rule) in [
        ("", "empty"),
        ("-x", "no-flag"),
        ("--privileged", "no-flag"),
        ("https://x/y", "no-url"),
        ("a b", "no-space"),
        ("a\nb", "no-space"),
        ("a;b", "no-shell"),
        ("$(id)", "no-shell"),
        ("Upper/Case", "image"),
        ("x:tag with space", "no-space"),
        ("x:.tag", "image"),
        ("x:", "image"),
        ("busybox@md5:1", "image"),
        ("busybox@sha256:abc", "image"),
        ("a//b", "image"),
        ("a_", "image"),
        ("a___b", "image"),
        ("bad-host-:5000/x", "image"),
        ("host.example:99999/x", "image"),
    ] {
        assert_eq!(check_image(bad).map_err(|e| e.rule), Err(rule), "{bad:?}");
    }
    assert_eq!(check_image(&"a".repeat(600)).unwrap_err().rule, "too-long");
}

#[test]
fn endpoint_paths() {
    for ok in ["/", "/mcp", "/sse", "/api/v1/mcp", "/a-b_c.d~e%20"] {
        check_path(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in ["mcp", "", "/a b", "/a?b", "/a#b", "/../etc", "/a/./b", "/a\nb", "//evil\\x"] {
        assert_eq!(check_path(bad).map_err(|e| e.rule), Err("path"), "{bad:?}");
    }
}

#[test]
fn common_checks_name_every_field() {
    let args = vec!["ok".to_string(), "bad\nline".to_string(), "x\0".to_string()];
    let env = [("GOOD", "1"), ("LD_PRELOAD", "/x.so"), ("1BAD", ""), ("GOOD", "2"), ("NUL", "a\0")];
    let fields: Vec<String> = check_common(&args, &env, Some("mcp"), Some(0)).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["args[1]", "args[2]", "env.LD_PRELOAD", "env.1BAD", "env.GOOD", "env.NUL", "path", "port"]);
    assert!(check_common(&args[..1], &env[..1], Some("/mcp"), Some(8080)).is_empty());
}

#[test]
fn common_checks_cap_the_lists_and_check_only_within_the_cap() {
    let args: Vec<String> = (0..100).map(|i| if i == 90 { "a\0".into() } else { format!("a{i}") }).collect();
    let problems = check_common(&args, &[], None, None);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!((problems[0].0.as_str(), problems[0].1.rule), ("args", "too-many"));
    let names: Vec<String> = (0..129).map(|i| format!("V{i}")).collect();
    let env: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "")).collect();
    let problems = check_common(&[], &env, None, None);
    assert_eq!(problems.iter().map(|(f, e)| (f.as_str(), e.rule)).collect::<Vec<_>>(), [("env", "too-many")]);
    assert!(check_common(&[], &env[..MAX_ENV], None, None).is_empty());
    let big = "v".repeat(MAX_ENV_VALUE_BYTES + 1);
    assert_eq!(check_common(&[], &[("BIG", big.as_str())], None, None)[0].1.rule, "too-long");
}

#[test]
fn options_are_refused_by_name_unless_known() {
    let problems = check_options("uv", &[("from", "git+https://x")], &[]);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0, "options.from");
    assert!(problems[0].1.message.contains("uv server type has no option \"from\""), "{}", problems[0].1);
    let problems =
        check_options("image", &[("network", "true"), ("privileged", "true"), ("network", "false")], &["network"]);
    let got: Vec<(&str, &str)> = problems.iter().map(|(f, e)| (f.as_str(), e.rule)).collect();
    assert_eq!(got, [("options.privileged", "unknown-option"), ("options.network", "duplicate")]);
    assert!(problems[0].1.message.contains("`network`"));
}
