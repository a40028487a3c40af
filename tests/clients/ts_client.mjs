// Drives an MCP server through mcpod with the official TypeScript SDK (1.x).
// Usage: node ts_client.mjs URL TRANSPORT [--call TOOL JSON_ARGS] [--sampling-tool TOOL JSON_ARGS] [--wait-logs N]
// TRANSPORT is streamable-http, sse or websocket. Prints one JSON object:
// tools, the call's text, resource and prompt counts, the first resource's
// contents read and the first argument-free prompt's messages, progress and
// log notifications seen, and the sampling round trip's text.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { WebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js";
import { CreateMessageRequestSchema, LoggingMessageNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, transportName, ...rest] = process.argv.slice(2);
let call = null;
let sampling = null;
let waitLogs = 0;
for (let i = 0; i < rest.length; i += 3) {
  if (rest[i] === "--wait-logs") { waitLogs = Number(rest[i + 1]); i -= 1; continue; }
  const entry = [rest[i + 1], JSON.parse(rest[i + 2])];
  if (rest[i] === "--call") call = entry;
  if (rest[i] === "--sampling-tool") sampling = entry;
}

const transport =
  transportName === "streamable-http" ? new StreamableHTTPClientTransport(new URL(url))
  : transportName === "sse" ? new SSEClientTransport(new URL(url))
  : transportName === "websocket" ? new WebSocketClientTransport(new URL(url))
  : null;
if (!transport) throw new Error(`unknown transport ${transportName}`);

const out = { progress: 0, logs: 0, sampled: null };
const client = new Client({ name: "mcpod-ts-test", version: "1.0.0" }, { capabilities: { sampling: {} } });
client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
  out.sampled = req.params.messages?.[0]?.content?.text ?? "";
  return { role: "assistant", content: { type: "text", text: "forty-two" }, model: "fake-model" };
});
client.setNotificationHandler(LoggingMessageNotificationSchema, () => { out.logs += 1; });

await client.connect(transport);
const info = client.getServerVersion();
out.server = info?.name;
const caps = client.getServerCapabilities() ?? {};
out.tools = (await client.listTools()).tools.map((t) => t.name).sort();
if (caps.resources) {
  const { resources } = await client.listResources();
  out.resources = resources.length;
  // Read the first resource: its contents, as the server sent them.
  if (resources.length) out.read = (await client.readResource({ uri: resources[0].uri })).contents.length;
}
if (caps.prompts) {
  const { prompts } = await client.listPrompts();
  out.prompts = prompts.length;
  // Get the first prompt that needs no arguments.
  const plain = prompts.find((p) => !(p.arguments ?? []).some((a) => a.required));
  if (plain) out.prompt_messages = (await client.getPrompt({ name: plain.name })).messages.length;
}
if (call) {
  const result = await client.callTool({ name: call[0], arguments: call[1] }, undefined, {
    onprogress: () => { out.progress += 1; },
  });
  out.call = result.content.filter((c) => c.type === "text").map((c) => c.text).join("");
}
if (sampling) {
  const result = await client.callTool({ name: sampling[0], arguments: sampling[1] });
  out.sampling_result = JSON.stringify(result.content);
}
// Logging notifications arrive on their own; give them 15 s.
for (let i = 0; i < 150 && out.logs < waitLogs; i++) await new Promise((r) => setTimeout(r, 100));
await client.close();
console.log(JSON.stringify(out));
process.exit(0);
