// The browser's part of an authorization code flow, with plain fetch: follows
// the test OpenID provider's (oidc_provider.mjs) redirects, carrying its
// cookies, and submits its dev login page (as LOGIN_NAME, any password) and
// consent page, until it is sent to the client's redirect URL, which is never
// fetched. Returns that redirect's query parameters (code, state, iss); an
// error redirect (error=...) throws.
export async function login(authorizationUrl, loginName, redirectUrl) {
  const jar = new Map(); // cookie name -> value; paths are ignored (later ones win)
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const keep = (res) => {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split("=")[1]) < Date.now());
      if (expired || value === "") jar.delete(name);
      else jar.set(name, value);
    }
  };
  let url = new URL(String(authorizationUrl));
  for (let step = 0; step < 20; step++) {
    let res = await fetch(url, { redirect: "manual", headers: { cookie: cookie() } });
    keep(res);
    if (res.status === 200 && url.pathname.includes("/interaction/")) {
      // A login or consent page: submit its form to the same URL.
      const html = await res.text();
      const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1];
      if (!prompt) throw new Error(`no prompt in the interaction page ${url}: ${html.slice(0, 300)}`);
      const form = new URLSearchParams({ prompt });
      if (prompt === "login") { form.set("login", loginName); form.set("password", "x"); }
      res = await fetch(url, {
        method: "POST",
        redirect: "manual",
        headers: { cookie: cookie(), "content-type": "application/x-www-form-urlencoded" },
        body: form,
      });
      keep(res);
    }
    const location = res.headers.get("location");
    if (res.status < 300 || res.status >= 400 || !location) {
      throw new Error(`login: ${url} answered ${res.status}: ${(await res.text()).slice(0, 500)}`);
    }
    url = new URL(location, url);
    if (url.href.startsWith(redirectUrl)) {
      if (url.searchParams.get("error")) {
        throw new Error(`authorization failed: ${url.searchParams.get("error")}: ${url.searchParams.get("error_description")}`);
      }
      return url.searchParams;
    }
  }
  throw new Error("login: too many redirects");
}
