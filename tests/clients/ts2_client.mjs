// Drives an MCP server through mcpod with the official TypeScript SDK 2.x
// (@modelcontextprotocol/client), which speaks MCP 2026-07-28.
// Usage: node ts2_client.mjs URL MODE [--call TOOL JSON_ARGS] [--sampling TOOL JSON_ARGS] [--elicitation TOOL JSON_ARGS]
// MODE is auto (probe with server/discover) or 2026-07-28 (pinned). Prints
// one JSON object: the negotiated version, tools, the call's text, resource
// and prompt counts, a resource read, a prompt got, and the sampling and
// elicitation round trips (input_required at 2026-07-28).
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";

const [url, mode, ...rest] = process.argv.slice(2);
const calls = [];
for (let i = 0; i < rest.length; i += 3) calls.push([rest[i].replace(/^--/, ""), rest[i + 1], JSON.parse(rest[i + 2])]);

const out = { sampled: null, elicited: null };
const client = new Client(
  { name: "mcpod-ts2-test", version: "1.0.0" },
  {
    capabilities: { sampling: {}, elicitation: {} },
    versionNegotiation: { mode: mode === "auto" ? "auto" : { pin: mode } },
  },
);
client.setRequestHandler("sampling/createMessage", async (req) => {
  out.sampled = req.params.messages?.[0]?.content?.text ?? "";
  return { role: "assistant", content: { type: "text", text: "forty-two" }, model: "fake-model" };
});
client.setRequestHandler("elicitation/create", async (req) => {
  out.elicited = req.params.message;
  return { action: "accept", content: { color: "blue", number: 7, name: "Ada" } };
});

await client.connect(new StreamableHTTPClientTransport(new URL(url)));
out.protocol = client.getNegotiatedProtocolVersion();
out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
const { resources } = await client.listResources();
out.resources = resources.length;
if (resources.length) out.read = (await client.readResource({ uri: resources[0].uri })).contents.length;
const { prompts } = await client.listPrompts();
out.prompts = prompts.length;
const plain = prompts.find((p) => !(p.arguments ?? []).some((a) => a.required));
if (plain) out.prompt_messages = (await client.getPrompt({ name: plain.name })).messages.length;
for (const [kind, name, args] of calls) {
  const result = await client.callTool({ name, arguments: args });
  out[kind] = result.content.filter((c) => c.type === "text").map((c) => c.text).join("");
}
await client.close();
console.log(JSON.stringify(out));
process.exit(0);
