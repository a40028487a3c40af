// A real OpenID provider (oidc-provider) for the OAuth tests: the
// authorization server mcpod's resource server trusts.
//
// Usage: node oidc_provider.mjs
// Listens on 127.0.0.1, an ephemeral port, and prints one JSON line on stdout
// when ready: {"issuer":"http://127.0.0.1:PORT"}. It runs until killed or until
// its stdin, when a pipe, reaches EOF (so a test that dies leaves no orphan:
// give it a piped stdin and keep the write end open).
// Logs go to stderr.
//
// Environment:
//   OIDC_CLIENTS  JSON array of static confidential clients for the
//                 client_credentials grant (client_secret_basic or _post both
//                 work), e.g. [{"client_id":"alice","client_secret":"s1","groups":["developers"]}].
//                 Other keys are passed to oidc-provider as client metadata
//                 (e.g. "scope" to restrict the scopes it may get).
//                 Default: [{"client_id":"mcpod-test","client_secret":"secret","groups":["developers"]}].
//   OIDC_SCOPES   the resource scopes tokens may carry (default "mcp:tools mcpod:admin").
//   OIDC_ACCESS_TOKEN_ALG  RS256 (default) or ES256: how JWT access tokens are signed.
//   OIDC_ACCESS_TOKEN_TTL  seconds (default 3600).
//   OIDC_OPAQUE=1 access tokens for a resource are opaque too (introspect them).
//   OIDC_DEBUG=1  log each request's route and parameters (secrets left out) to stderr.
//
// What it serves (all under the issuer):
//   /.well-known/oauth-authorization-server and /.well-known/openid-configuration
//                                        discovery (the same document; RFC 8414 / OIDC)
//   /jwks  /token  /auth  /reg (open dynamic registration, RFC 7591)
//   /token/introspection (RFC 7662; for opaque tokens, any confidential client may call it)
//   /me /session/end  /interaction/:uid (the dev login and consent pages)
// A token request with resource=<URL> (http(s), host 127.0.0.1, localhost or
// [::1]) gets a JWT access token (typ at+jwt) with aud = that URL and the
// claims iss, sub (the client_id for client_credentials, the login name for
// the code flow), client_id, scope, iat, exp, jti and groups. Without resource
// the access token is opaque (introspect it). groups: a client's "groups" for
// client_credentials; for a login, ["platform-admins"] when the name starts
// with "admin", else ["developers"]. Any login name and password are accepted.
//
// Test-only endpoints (not under any OIDC route):
//   POST /test/sign   {"header":{...},"claims":{...},"key":"current"|"foreign"}
//        -> {"token":"..."}: the claims exactly as given (nothing added),
//        signed with the provider's current signing key for header.alg
//        (default RS256; ES256 uses the EC key); header.kid defaults to that
//        key's kid and header.typ to "at+jwt" (as the provider's own access
//        tokens, RFC 9068); either may be overridden, or dropped with null. key "foreign" signs with a throwaway
//        key that is not in the JWKS (a forged signature).
//   POST /test/rotate -> {"kid":"<new kid>","kids":[...]}: a new RSA key
//        becomes the first (signing) key of the JWKS, the old keys stay
//        published. oidc-provider cannot change its keystore at run time, so
//        this builds a new Provider instance with the new key set and swaps it
//        in behind the same listening socket (same port, same issuer). Its
//        storage (the in-memory adapter: registered clients, sessions, grants,
//        opaque tokens) is module-global and the cookie keys are kept, so
//        nothing else changes.
//
// The interactive login (authorization code + PKCE) with plain HTTP, no
// browser; carry cookies (by name; later ones replace earlier ones) and do not
// follow redirects:
//   1. GET  <authorization URL: /auth?response_type=code&client_id&redirect_uri&code_challenge&...>
//           -> 303 Location /interaction/<uid1>, Set-Cookie _interaction, _interaction_resume
//   2. POST /interaction/<uid1>  (form) prompt=login&login=<name>&password=x
//           -> 303 Location /auth/<uid1>
//   3. GET  /auth/<uid1>  -> 303 Location /interaction/<uid2> (consent), Set-Cookie _session
//   4. POST /interaction/<uid2>  (form) prompt=consent
//           -> 303 Location /auth/<uid2>
//   5. GET  /auth/<uid2>  -> 303 Location <redirect_uri>?code=...&state=...&iss=<issuer>
// (GET /interaction/<uid> shows the HTML form but is not needed.) Step 3 may
// go straight to the redirect when consent was already given to that client.
import * as http from "node:http";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import Provider, { errors } from "oidc-provider";
import * as jose from "jose";

// oidc-provider prints notices with console.info: keep stdout for the ready line.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

const clients = JSON.parse(
  process.env.OIDC_CLIENTS || '[{"client_id":"mcpod-test","client_secret":"secret","groups":["developers"]}]',
);
const groupsByClient = new Map(clients.map((c) => [c.client_id, c.groups ?? []]));
const resourceScopes = (process.env.OIDC_SCOPES || "mcp:tools mcpod:admin").split(/\s+/).filter(Boolean);
const accessTokenAlg = process.env.OIDC_ACCESS_TOKEN_ALG || "RS256";
const accessTokenTTL = Number(process.env.OIDC_ACCESS_TOKEN_TTL || 3600);
const cookieKeys = [crypto.randomBytes(32).toString("base64url")];

const groupsForAccount = (id) => (String(id).startsWith("admin") ? ["platform-admins"] : ["developers"]);

async function newKey(alg) {
  const { privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(privateKey);
  jwk.kid = `${alg.toLowerCase()}-${(await jose.calculateJwkThumbprint(jwk)).slice(0, 16)}`;
  jwk.alg = alg;
  jwk.use = "sig";
  return jwk;
}

// Private JWKs, the signing ones first (oidc-provider signs with the first key
// that fits the algorithm).
let keys = [await newKey("RS256"), await newKey("ES256")];

function isLocalResource(value) {
  try {
    const url = new URL(value);
    return ["http:", "https:"].includes(url.protocol) && ["127.0.0.1", "localhost", "[::1]"].includes(url.hostname) && !url.hash;
  } catch {
    return false;
  }
}

function makeProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: clients.map(({ groups, ...meta }) => ({
      grant_types: ["client_credentials"],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: "client_secret_basic",
      ...meta,
    })),
    jwks: { keys },
    cookies: { keys: cookieKeys },
    // Resource scopes are listed too so that dynamic registration accepts a
    // client metadata "scope" naming them (SDKs register with the scope they
    // will ask for).
    scopes: ["openid", "offline_access", ...resourceScopes],
    pkce: { required: () => true },
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return { sub, groups: groupsForAccount(sub) };
        },
      };
    },
    async extraTokenClaims(ctx, token) {
      if (token.accountId) return { groups: groupsForAccount(token.accountId) };
      return { groups: groupsByClient.get(token.clientId) ?? [] };
    },
    ttl: {
      AccessToken: () => accessTokenTTL,
      ClientCredentials: () => accessTokenTTL,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 86400,
      Interaction: 3600,
      Session: 86400,
      Grant: 86400,
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      registration: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // The code flow's token request may omit resource: use the one the
        // authorization request named.
        async useGrantedResource() {
          return true;
        },
        async getResourceServerInfo(ctx, resourceIndicator) {
          if (!isLocalResource(resourceIndicator)) throw new errors.InvalidTarget();
          return {
            scope: resourceScopes.join(" "),
            audience: resourceIndicator,
            accessTokenTTL,
            // OIDC_OPAQUE=1: opaque access tokens even for a resource, to be
            // checked by introspection (they still carry aud = the resource).
            accessTokenFormat: process.env.OIDC_OPAQUE === "1" ? "opaque" : "jwt",
            jwt: { sign: { alg: accessTokenAlg } },
          };
        },
      },
    },
  });
  if (process.env.OIDC_DEBUG) {
    provider.use(async (ctx, next) => {
      await next();
      const params = { ...(ctx.oidc?.params ?? {}) };
      for (const k of ["client_secret", "code", "code_verifier", "refresh_token", "token", "password"]) {
        if (params[k] !== undefined) params[k] = "…";
      }
      for (const k of Object.keys(params)) if (params[k] === undefined) delete params[k];
      const basic = ctx.get("authorization").startsWith("Basic ") ? " (basic auth)" : "";
      console.error(`oidc ${ctx.method} ${ctx.path} -> ${ctx.status} ${ctx.oidc?.route ?? ""}${basic} ${JSON.stringify(params)}`);
    });
  }
  provider.on("server_error", (ctx, err) => console.error("oidc server_error", err));
  provider.on("grant.error", (ctx, err) => console.error("oidc grant.error", err.message, err.error_description ?? ""));
  provider.on("authorization.error", (ctx, err) =>
    console.error("oidc authorization.error", err.message, err.error_description ?? ""),
  );
  provider.on("registration_create.error", (ctx, err) =>
    console.error("oidc registration_create.error", err.message, err.error_description ?? ""),
  );
  return provider;
}

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString("utf8");
  return text ? JSON.parse(text) : {};
}

function reply(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

async function sign(body) {
  const header = { ...(body.header ?? {}) };
  header.alg ??= "RS256";
  let jwk = keys.find((k) => k.alg === header.alg);
  if (!jwk) throw new Error(`no key for alg ${header.alg}`);
  if (!("kid" in header)) header.kid = jwk.kid;
  if (!("typ" in header)) header.typ = "at+jwt";
  for (const k of Object.keys(header)) if (header[k] === null) delete header[k];
  if (body.key === "foreign") jwk = await newKey(header.alg);
  const key = await jose.importJWK(jwk, header.alg);
  const payload = new TextEncoder().encode(JSON.stringify(body.claims ?? {}));
  return new jose.CompactSign(payload).setProtectedHeader(header).sign(key);
}

let handler = null;
const server = http.createServer(async (req, res) => {
  try {
    if (req.method === "POST" && req.url === "/test/sign") {
      return reply(res, 200, { token: await sign(await readJson(req)) });
    }
    if (req.method === "POST" && req.url === "/test/rotate") {
      const fresh = await newKey("RS256");
      keys = [fresh, ...keys];
      handler = makeProvider(issuer).callback();
      console.error(`oidc: rotated, signing with ${fresh.kid}`);
      return reply(res, 200, { kid: fresh.kid, kids: keys.map((k) => k.kid) });
    }
  } catch (e) {
    return reply(res, 400, { error: String(e?.message ?? e) });
  }
  return handler(req, res);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
handler = makeProvider(issuer).callback();

process.stdout.write(JSON.stringify({ issuer }) + "\n");

// Exit when the parent goes away: EOF on a piped stdin. (A stdin that is not
// a pipe, e.g. /dev/null, is not watched.)
const stdin = fs.fstatSync(0);
if (stdin.isFIFO() || stdin.isSocket()) {
  process.stdin.on("data", () => {});
  process.stdin.on("end", () => process.exit(0));
  process.stdin.on("error", () => process.exit(0));
}
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
