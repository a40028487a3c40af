//! `mcpod-bench auth`: what identity and policy add to each request, in
//! process, with warm caches: a named token, a JWT access token of a real
//! OpenID provider (`tests/clients/oidc_provider.mjs`, npm `oidc-provider`)
//! checked for the first time (signature, warm JWKS) and again (the checked
//! tokens' cache), and the Cedar decisions one call needs (`connect`, then
//! `call_tool`) under the worked example's policies, remembered and asked
//! for the first time. A call with identity
//! and policy on pays one token check and two decisions more than one
//! without; `mcpod-bench peers` measures the plain path beside it.

use crate::stats::{Samples, fmt};
use mcpod::access::{Access, Act, ServerFacts};
use mcpod::identity::{Authenticator, Principal, Resource, Role, TokenFile, TokenTable};
use serde_json::{Value, json};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

const ROUNDS: usize = 20_000;

async fn timed<F: std::future::Future<Output = bool>>(rounds: usize, mut f: impl FnMut() -> F) -> Samples {
    let mut s = Samples::default();
    for _ in 0..rounds.min(2_000) {
        assert!(f().await, "the warm-up call fails");
    }
    for _ in 0..rounds {
        let t = Instant::now();
        let ok = f().await;
        s.push(t.elapsed());
        assert!(ok, "a measured call fails");
    }
    s
}

/// The provider of the OAuth tests, started from `tests/clients` (which the
/// test suite installs); killed when dropped.
struct Provider {
    child: std::process::Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn provider(root: &Path) -> anyhow::Result<Provider> {
    let dir = root.join("tests/clients");
    if !dir.join("node_modules/oidc-provider").exists() {
        anyhow::bail!("tests/clients/node_modules has no oidc-provider; run the test suite once (it installs them)");
    }
    let mut child = Command::new("node")
        .arg("oidc_provider.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("the provider has no stdout"))?;
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let v: Value = serde_json::from_str(line.trim())?;
    let issuer = v["issuer"].as_str().ok_or_else(|| anyhow::anyhow!("the provider named no issuer: {line}"))?;
    Ok(Provider { child, issuer: issuer.to_string() })
}

/// `n` distinct access tokens for `aud`, signed by the provider's key.
async fn tokens(issuer: &str, aud: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let http = reqwest::Client::new();
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() + 3600;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let claims = json!({"iss": issuer, "sub": "dana", "aud": aud, "exp": exp, "iat": exp - 3600,
                            "jti": format!("bench-{i}"), "groups": ["developers"], "scope": "mcp:tools"});
        let v: Value = http
            .post(format!("{issuer}/test/sign"))
            .json(&json!({"header": {"alg": "RS256"}, "claims": claims, "key": "current"}))
            .send()
            .await?
            .json()
            .await?;
        out.push(v["token"].as_str().ok_or_else(|| anyhow::anyhow!("no token: {v}"))?.to_string());
    }
    Ok(out)
}

/// Runs the measurements and prints the table.
pub async fn run(root: std::path::PathBuf) -> anyhow::Result<()> {
    println!("$ mcpod-bench auth   (in process, {ROUNDS} rounds after 2,000 warm-up ones)\n");
    println!("{}", Samples::header());
    let base = "http://127.0.0.1:7460";
    let resource = Resource { base: base.to_string(), server: Some(format!("{base}/servers/github")) };

    // A named token: one SHA-256 and a table look-up.
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("tokens.toml");
    let mut named = TokenFile::default();
    let token = named.create("alice", Role::User)?;
    named.write(&file)?;
    let table = TokenTable::load(Some(file))?;
    let auth = &Authenticator::new(Some(Arc::from("admin-token")), table.clone(), None, None);
    let (token, res) = (token.as_str(), &resource);
    let static_token =
        timed(
            ROUNDS,
            move || async move { auth.authenticate(Some(token), res).await.is_ok_and(|p| p.name == "alice") },
        )
        .await;
    println!("{}", static_token.row("named token"));

    // A JWT access token of a real provider.
    let idp = provider(&root)?;
    let oidc = mcpod::config::OidcSection::for_issuer(idp.issuer.clone());
    let verifier = Arc::new(mcpod::identity::oidc::Verifier::new(&oidc, &|_| None)?);
    verifier.warm().await;
    let auth = &Authenticator::new(Some(Arc::from("admin-token")), table, Some(verifier), None);
    let fresh = tokens(&idp.issuer, resource.url(), 1_000).await?;
    let mut first = Samples::default();
    for t in &fresh {
        let started = Instant::now();
        let ok = auth.authenticate(Some(t.as_str()), res).await.is_ok_and(|p| p.name == "dana");
        first.push(started.elapsed());
        anyhow::ensure!(ok, "the provider's token is refused");
    }
    println!("{}", first.row("JWT, first use (RS256 signature, warm JWKS)"));
    let jwt = fresh[0].as_str();
    let again =
        timed(ROUNDS, move || async move { auth.authenticate(Some(jwt), res).await.is_ok_and(|p| p.name == "dana") })
            .await;
    println!("{}", again.row("JWT, again (checked tokens' cache)"));

    // The decisions of one call, under the worked example's policies.
    let access = &Access::load(Some(root.join("config/k8s/overlays/example/team.cedar")))?;
    let who = &Principal { groups: vec!["developers".to_string()], ..Principal::new("dana", &idp.issuer, Role::User) };
    let server = &ServerFacts { id: "github".to_string(), template: "github".to_string(), started_by: String::new() };
    let connect = timed(ROUNDS, move || async move { access.decide_on(who, Act::Connect, server, None).allowed }).await;
    println!("{}", connect.row("Cedar: connect (asked before: remembered)"));
    let call =
        timed(
            ROUNDS,
            move || async move { access.decide_on(who, Act::CallTool, server, Some("create_issue")).allowed },
        )
        .await;
    println!("{}", call.row("Cedar: call_tool (asked before: remembered)"));
    // A question never asked before: the policies are evaluated.
    let mut n = 0u64;
    let fresh = timed(ROUNDS, move || {
        n += 1;
        let name = format!("tool_{n}");
        async move { access.decide_on(who, Act::CallTool, server, Some(&name)).allowed }
    })
    .await;
    println!("{}", fresh.row("Cedar: call_tool (first time: evaluated)"));

    let p50 = |s: &Samples| s.percentile(50.0);
    let decisions = p50(&connect) + p50(&call);
    println!("\nadded per call at p50, with a warm cache:");
    println!("  named token + connect + call_tool: {}", fmt(p50(&static_token) + decisions));
    println!("  JWT (cached) + connect + call_tool: {}", fmt(p50(&again) + decisions));
    println!("  JWT (first use) + connect + call_tool: {}", fmt(p50(&first) + decisions));
    println!("  JWT (first use) + two first-time decisions: {}", fmt(p50(&first) + p50(&fresh) * 2));
    Ok(())
}
