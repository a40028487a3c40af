// An OAuth MCP client with the official TypeScript SDK 2.x
// (@modelcontextprotocol/client): from the resource
// server's 401 it discovers everything itself (protected resource metadata,
// the authorization server's metadata, dynamic registration), logs in through
// the test OpenID provider's login and consent pages (oidc_provider.mjs) with
// plain HTTP, then lists the tools and calls one.
// Usage: node ts2_oauth_client.mjs [--client-credentials CLIENT_ID SECRET] [--scope SCOPE] [--issuer ISSUER]
//                                  [--mode auto|legacy|2026-07-28] MCP_URL TOOL [JSON_ARGS] [LOGIN_NAME]
// Without --client-credentials: the authorization code flow with PKCE as a
// public client registered on the fly, logging in as LOGIN_NAME (default
// "alice"). With it: the SDK's ClientCredentialsProvider (client_secret_basic;
// the scope is the SDK's choice, from WWW-Authenticate or the protected
// resource metadata, unless --scope is given). --issuer pins the authorization
// server the credentials may go to (expectedIssuer). --mode is the version
// negotiation (default auto: probe server/discover, fall back to initialize).
// The login's redirect is handed to finishAuth whole, so its RFC 9207 iss is
// checked.
// Prints one JSON object: {"tools":[names],"result":<the tools/call result>,
// "access_token_claims":<the payload of the access token used, if a JWT>}.
// Any failure exits 1 with the error on stderr.
import {
  Client,
  ClientCredentialsProvider,
  StreamableHTTPClientTransport,
  UnauthorizedError,
} from "@modelcontextprotocol/client";
import { login } from "./oauth_login.mjs";

const argv = process.argv.slice(2);
const flags = {};
for (const [flag, n] of [["--client-credentials", 2], ["--scope", 1], ["--issuer", 1], ["--mode", 1]]) {
  const i = argv.indexOf(flag);
  if (i >= 0) flags[flag] = argv.splice(i, n + 1).slice(1);
}
const [url, tool, jsonArgs, loginName = "alice"] = argv;
if (!url || !tool) {
  console.error("usage: node ts2_oauth_client.mjs [--client-credentials ID SECRET] [--scope S] [--issuer I] [--mode M] MCP_URL TOOL [JSON_ARGS] [LOGIN_NAME]");
  process.exit(2);
}
const toolArgs = jsonArgs ? JSON.parse(jsonArgs) : {};
const REDIRECT = "http://127.0.0.1:1/callback";

// In-memory OAuthClientProvider for an interactive (authorization code) client.
class MemoryProvider {
  constructor() {
    this.info = undefined;
    this.saved = undefined;
    this.verifier = undefined;
    this.discovery = undefined;
    this.callback = undefined; // the redirect's query parameters, once logged in
  }
  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return {
      client_name: "mcpod-ts2-oauth-test",
      redirect_uris: [REDIRECT],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
      ...(flags["--scope"] ? { scope: flags["--scope"][0] } : {}),
    };
  }
  clientInformation() { return this.info; }
  saveClientInformation(info) { this.info = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  // 2.x binds the code's redemption to the authorization server the flow began with.
  saveDiscoveryState(state) { this.discovery = state; }
  discoveryState() { return this.discovery; }
  async redirectToAuthorization(authorizationUrl) {
    this.callback = await login(authorizationUrl, loginName, REDIRECT);
  }
}

const provider = flags["--client-credentials"]
  ? new ClientCredentialsProvider({
      clientId: flags["--client-credentials"][0],
      clientSecret: flags["--client-credentials"][1],
      scope: flags["--scope"]?.[0],
      expectedIssuer: flags["--issuer"]?.[0],
    })
  : new MemoryProvider();

const mode = flags["--mode"]?.[0] ?? "auto";
const client = new Client(
  { name: "mcpod-ts2-oauth-test", version: "1.0.0" },
  { versionNegotiation: { mode: mode === "auto" || mode === "legacy" ? mode : { pin: mode } } },
);
try {
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
  } catch (e) {
    if (!(e instanceof UnauthorizedError) || !provider.callback) throw e;
    // The SDK stopped at the redirect; the login already ran: redeem the code.
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
    await transport.finishAuth(provider.callback);
    await client.connect(transport);
  }
  const tools = (await client.listTools()).tools.map((t) => t.name).sort();
  const result = await client.callTool({ name: tool, arguments: toolArgs });
  const token = provider.tokens()?.access_token ?? "";
  let claims = null;
  try { claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()); } catch { /* opaque */ }
  console.log(JSON.stringify({ tools, result, access_token_claims: claims }));
  await client.close();
  process.exit(0);
} catch (e) {
  console.error(`ts2_oauth_client: ${e?.stack ?? e}`);
  process.exit(1);
}
