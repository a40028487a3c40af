// A real MCP server from the official TypeScript SDK 2.x (@modelcontextprotocol/server 2.4.0)
// that serves ONLY revision 2026-07-28 over Streamable HTTP on 127.0.0.1:PORT/mcp.
// `legacy: 'reject'` turns off the SDK's 2025-era stateless fallback (initialize is refused).
// Usage: node modern_server.mjs [port]   (env LEGACY=stateless to re-enable the fallback; RESPONSE_MODE=auto|sse|json)
import http from 'node:http';
import { Readable } from 'node:stream';
import { McpServer, createMcpHandler, inputRequired, acceptedContent } from '@modelcontextprotocol/server';
import * as z from 'zod';

const port = Number(process.argv[2] ?? process.env.PORT ?? 8931);

function factory() {
    const server = new McpServer({ name: 'rev-2026-server', version: '1.0.0' }, { capabilities: { logging: {} } });
    server.registerTool('echo', { description: 'Echo the text back', inputSchema: z.object({ text: z.string() }) },
        async ({ text }, ctx) => {
            await ctx.mcpReq.log('info', `echoing ${text}`); // sent only if _meta carries io.modelcontextprotocol/logLevel
            const token = ctx.mcpReq._meta?.progressToken;
            if (token !== undefined) await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 1, message: 'echoed' } });
            return { content: [{ type: 'text', text }] };
        });
    server.registerTool('confirm', { description: 'Asks the user (elicitation) before answering', inputSchema: z.object({ question: z.string() }) },
        async ({ question }, ctx) => {
            const answer = acceptedContent(ctx.mcpReq.inputResponses, 'confirm');
            if (answer === undefined) {
                return inputRequired({
                    inputRequests: { confirm: inputRequired.elicit({ message: question, requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } }) },
                    requestState: 'round-1'
                });
            }
            return { content: [{ type: 'text', text: `answer=${JSON.stringify(answer)} state=${ctx.mcpReq.requestState()}` }] };
        });
    server.registerTool('summarize', { description: 'Asks the client for sampling', inputSchema: z.object({ text: z.string() }) },
        async ({ text }, ctx) => {
            const r = ctx.mcpReq.inputResponses?.llm;
            if (r === undefined) return inputRequired({ inputRequests: { llm: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: `Summarize: ${text}` } }], maxTokens: 50 }) } });
            return { content: [{ type: 'text', text: `summary=${JSON.stringify(r.content)}` }] };
        });
    server.registerResource('greeting', 'test://greeting', { mimeType: 'text/plain', description: 'A static greeting' },
        async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'hello from 2026-07-28' }] }));
    server.registerPrompt('greet', { description: 'Greets someone', argsSchema: z.object({ name: z.string() }) },
        ({ name }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `Say hello to ${name}` } }] }));
    return server;
}

const handler = createMcpHandler(factory, { legacy: process.env.LEGACY ?? 'reject', responseMode: process.env.RESPONSE_MODE ?? 'auto', onerror: (e) => console.error('[mcp]', e.message) });

// Minimal node:http <-> fetch adapter (the SDK's own is in @modelcontextprotocol/node, not needed here).
http.createServer(async (req, res) => {
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const request = new Request(`http://${req.headers.host ?? `127.0.0.1:${port}`}${req.url}`, {
        method: req.method, headers: Object.entries(req.headers).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]])),
        body: hasBody ? Readable.toWeb(req) : undefined, duplex: hasBody ? 'half' : undefined, signal: ac.signal
    });
    const response = await handler.fetch(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (response.body) Readable.fromWeb(response.body).on('error', () => res.end()).pipe(res); else res.end();
}).listen(port, '127.0.0.1', () => console.error(`listening on http://127.0.0.1:${port}/mcp`));
setInterval(() => handler.notify.toolsChanged(), Number(process.env.NOTIFY_MS ?? 3000)); // feeds subscriptions/listen streams
