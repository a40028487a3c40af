"""An OAuth MCP client with the official Python SDK, 1.x or 2.x (run it with
the venv's python: .venv for mcp 1.x, .venv-mcp2 for mcp 2.x).

From the resource server's 401 the SDK's OAuthClientProvider discovers
everything itself (protected resource metadata, the authorization server's
metadata, dynamic registration); this script plays the browser: it logs in
through the test OpenID provider's (oidc_provider.mjs) login and consent pages
with plain HTTP and hands the code back. Then it lists the tools and calls one.

Usage: python py_oauth_client.py [--client-credentials CLIENT_ID SECRET] [--auth-method METHOD]
                                 [--scope SCOPE] [--issuer ISSUER] [--mode MODE]
                                 MCP_URL TOOL [JSON_ARGS] [LOGIN_NAME]
Without --client-credentials: the authorization code flow with PKCE as a
public client registered on the fly, logging in as LOGIN_NAME (default
"alice"). With it: the SDK's ClientCredentialsOAuthProvider, authenticating
with METHOD (client_secret_basic, the default, or client_secret_post); the
SDK picks the scope from WWW-Authenticate or the protected resource metadata
(--scope is what the provider is configured with, used only when neither
names one). --issuer pins the authorization server the credentials may go
to. --mode (2.x only): auto (default), legacy or 2026-07-28.
Prints one JSON object: {"tools":[names],"result":<the tools/call result>,
"access_token_claims":<the payload of the access token used, if a JWT>}.
Any failure exits 1 with the error on stderr.
"""

import asyncio
import base64
import json
import re
import sys
import traceback
from urllib.parse import parse_qs, urljoin, urlparse

from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

try:  # mcp 2.x speaks httpx2 and hands the callback's iss (RFC 9207) to the SDK
    import httpx2 as httpx
    from mcp.shared.auth import AuthorizationCodeResult

    SDK2 = True
except ImportError:
    import httpx

    SDK2 = False

REDIRECT = "http://127.0.0.1:1/callback"


class MemoryStorage:
    """The SDK's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


async def login(authorization_url: str, login_name: str) -> dict[str, str]:
    """The browser's part: follow the provider's redirects with its cookies, submit
    the login page (any password) and the consent page, stop at the redirect to
    REDIRECT (never fetched) and return its query parameters."""
    async with httpx.AsyncClient(follow_redirects=False) as http:
        url = authorization_url
        for _ in range(20):
            res = await http.get(url)
            if res.status_code == 200 and "/interaction/" in urlparse(url).path:
                match = re.search(r'name="prompt" value="([a-z]+)"', res.text)
                if not match:
                    raise RuntimeError(f"no prompt in the interaction page {url}: {res.text[:300]}")
                form = {"prompt": match.group(1)}
                if form["prompt"] == "login":
                    form.update(login=login_name, password="x")
                res = await http.post(url, data=form)
            location = res.headers.get("location")
            if not 300 <= res.status_code < 400 or not location:
                raise RuntimeError(f"login: {url} answered {res.status_code}: {res.text[:500]}")
            url = urljoin(url, location)
            if url.startswith(REDIRECT):
                params = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
                if "error" in params:
                    raise RuntimeError(f"authorization failed: {params['error']}: {params.get('error_description')}")
                return params
        raise RuntimeError("login: too many redirects")


def take_flag(argv: list[str], flag: str, count: int) -> list[str] | None:
    if flag not in argv:
        return None
    i = argv.index(flag)
    values = argv[i + 1 : i + 1 + count]
    del argv[i : i + 1 + count]
    return values


async def main() -> None:
    argv = sys.argv[1:]
    credentials = take_flag(argv, "--client-credentials", 2)
    auth_method = (take_flag(argv, "--auth-method", 1) or ["client_secret_basic"])[0]
    scope = (take_flag(argv, "--scope", 1) or [None])[0]
    issuer = (take_flag(argv, "--issuer", 1) or [None])[0]
    mode = (take_flag(argv, "--mode", 1) or ["auto"])[0]
    if len(argv) < 2:
        raise SystemExit(__doc__)
    url, tool = argv[0], argv[1]
    tool_args = json.loads(argv[2]) if len(argv) > 2 else {}
    login_name = argv[3] if len(argv) > 3 else "alice"

    storage = MemoryStorage()
    if credentials:
        # Positional: the scope parameter is `scopes` in 1.x, `scope` in 2.x.
        auth = ClientCredentialsOAuthProvider(url, storage, credentials[0], credentials[1], auth_method, scope, issuer)
    else:
        callback: dict[str, str] = {}

        async def redirect_handler(authorization_url: str) -> None:
            callback.update(await login(authorization_url, login_name))

        async def callback_handler():
            if SDK2:
                return AuthorizationCodeResult(code=callback["code"], state=callback.get("state"), iss=callback.get("iss"))
            return callback["code"], callback.get("state")

        auth = OAuthClientProvider(
            server_url=url,
            client_metadata=OAuthClientMetadata(
                client_name="mcpod-py-oauth-test",
                redirect_uris=[REDIRECT],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
                scope=scope,
            ),
            storage=storage,
            redirect_handler=redirect_handler,
            callback_handler=callback_handler,
        )

    if SDK2:
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        async with create_mcp_http_client(auth=auth) as http:
            async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
                tools = sorted(t.name for t in (await client.list_tools()).tools)
                result = await client.call_tool(tool, tool_args)
    else:
        from mcp import ClientSession
        from mcp.client.streamable_http import streamablehttp_client

        async with streamablehttp_client(url, auth=auth) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = sorted(t.name for t in (await session.list_tools()).tools)
                result = await session.call_tool(tool, tool_args)

    token = storage.tokens.access_token if storage.tokens else ""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        claims = None  # opaque
    out = {
        "tools": tools,
        "result": result.model_dump(mode="json", by_alias=True, exclude_none=True),
        "access_token_claims": claims,
    }
    print(json.dumps(out))


try:
    asyncio.run(main())
except SystemExit:
    raise
except BaseException:  # noqa: BLE001 - reported, then a clear exit code
    print(f"py_oauth_client: {traceback.format_exc()}", file=sys.stderr)
    sys.exit(1)
