// A reference MCP server for the conformance suites, built on the official TypeScript SDK 2.x
// (@modelcontextprotocol/server 2.4.0, zod 4). One server factory implements the server-side
// fixtures the MCP conformance suite asks for — the 2025-era scenarios of its release (0.1.16)
// and the 2026-07-28 scenarios of its pre-release (0.2.0-alpha, npm alias `conformance-next`),
// among them every input-required-result-* (SEP-2322, multi round-trip requests), the stateless
// lifecycle (SEP-2575) and resource-not-found (SEP-2164) — and serves both protocol eras:
//
//   node reference_server.mjs stdio
//       serveStdio: the opening message picks the era of the connection — `initialize` gives the
//       2025 handshake, `server/discover` (or any request carrying the 2026-07-28 `_meta`
//       envelope) gives 2026-07-28. stdout is the protocol; diagnostics go to stderr.
//   node reference_server.mjs http PORT
//       Streamable HTTP at http://127.0.0.1:PORT/mcp. 2026-07-28 requests go to createMcpHandler
//       (a fresh instance per request); 2025-era requests go to a sessionful Streamable HTTP
//       transport (one instance per Mcp-Session-Id, with an in-memory event store for
//       resumability), so server→client requests, list_changed notifications and SSE polling work
//       on that era. Host/Origin are checked against localhost (DNS-rebinding protection).
//       Prints `listening on PORT` to stderr once bound.
//
// Tools that need client input (elicitation, sampling, roots) are written once, in the 2026-07-28
// style: they return `inputRequired(...)` and read `ctx.mcpReq.inputResponses` when the client
// retries. On a 2025-era connection the SDK's legacy shim turns the same return into real
// server→client requests and re-enters the handler, so e.g. `test_sampling` and
// `test_input_required_result_elicitation` work on both eras.
//
// Every requestState this server mints is HMAC-signed (createRequestStateCodec, per-process key)
// and verified by the SDK before a handler runs: a tampered or foreign state is refused with
// JSON-RPC -32602 and never reaches the handler. Each payload names the tool that minted it, so a
// state cannot be replayed against another tool.
import http from 'node:http';
import { Readable } from 'node:stream';
import { randomBytes, randomUUID } from 'node:crypto';
import zlib from 'node:zlib';
import {
    McpServer,
    ResourceTemplate,
    WebStandardStreamableHTTPServerTransport,
    CLIENT_CAPABILITIES_META_KEY,
    acceptedContent,
    completable,
    createMcpHandler,
    createRequestStateCodec,
    fromJsonSchema,
    hostHeaderValidationResponse,
    inputRequired,
    inputResponse,
    isLegacyRequest,
    localhostAllowedHostnames,
    localhostAllowedOrigins,
    originValidationResponse
} from '@modelcontextprotocol/server';
import { serveStdio } from '@modelcontextprotocol/server/stdio';
import * as z from 'zod';

const log = (...args) => console.error('[reference-server]', ...args);

// ---------------------------------------------------------------------------------------------
// Fixture media, generated rather than pasted: a 1x1 red PNG and 10 ms of silent 8 kHz WAV.

function pngChunk(type, data) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([length, body, crc]);
}

function redPixelPng() {
    const header = Buffer.alloc(13);
    header.writeUInt32BE(1, 0); // width
    header.writeUInt32BE(1, 4); // height
    header[8] = 8; // bit depth
    header[9] = 2; // colour type: RGB
    const scanline = Buffer.from([0, 0xff, 0x00, 0x00]); // filter byte, then R G B
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        pngChunk('IHDR', header),
        pngChunk('IDAT', zlib.deflateSync(scanline)),
        pngChunk('IEND', Buffer.alloc(0))
    ]).toString('base64');
}

function silentWav() {
    const sampleRate = 8000;
    const samples = 80;
    const dataBytes = samples * 2; // 16-bit mono
    const wav = Buffer.alloc(44 + dataBytes);
    wav.write('RIFF', 0, 'ascii');
    wav.writeUInt32LE(36 + dataBytes, 4);
    wav.write('WAVE', 8, 'ascii');
    wav.write('fmt ', 12, 'ascii');
    wav.writeUInt32LE(16, 16); // fmt chunk size
    wav.writeUInt16LE(1, 20); // PCM
    wav.writeUInt16LE(1, 22); // mono
    wav.writeUInt32LE(sampleRate, 24);
    wav.writeUInt32LE(sampleRate * 2, 28); // byte rate
    wav.writeUInt16LE(2, 32); // block align
    wav.writeUInt16LE(16, 34); // bits per sample
    wav.write('data', 36, 'ascii');
    wav.writeUInt32LE(dataBytes, 40);
    return wav.toString('base64');
}

const PNG = redPixelPng();
const WAV = silentWav();

// ---------------------------------------------------------------------------------------------
// Shared pieces of the fixtures.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (value) => ({ content: [{ type: 'text', text: value }] });

// requestState integrity: HMAC-SHA256 over a per-process random key (states die with the process).
const stateCodec = createRequestStateCodec({ key: randomBytes(32), ttlSeconds: 600 });

/** The decoded requestState payload when it was minted for `tool`, else undefined. */
function stateFor(ctx, tool) {
    const state = ctx.mcpReq.requestState();
    return state !== null && typeof state === 'object' && state.tool === tool ? state : undefined;
}

/** Accepted elicitation content of `key` whose field `field` is a non-empty string, else undefined. */
function acceptedString(ctx, key, field) {
    const value = acceptedContent(ctx.mcpReq.inputResponses, key)?.[field];
    return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** The sampled text of a sampling response under `key`, else undefined. */
function sampledText(ctx, key) {
    const view = inputResponse(ctx.mcpReq.inputResponses, key);
    if (view.kind !== 'sampling') return undefined;
    const content = Array.isArray(view.result.content) ? view.result.content[0] : view.result.content;
    return content?.type === 'text' ? content.text : JSON.stringify(content);
}

/** The roots of a roots/list response under `key`, else undefined. */
function listedRoots(ctx, key) {
    const view = inputResponse(ctx.mcpReq.inputResponses, key);
    return view.kind === 'roots' ? view.roots : undefined;
}

/** Whether the response under `key` is an elicitation the user declined or cancelled. */
function refused(ctx, key) {
    const view = inputResponse(ctx.mcpReq.inputResponses, key);
    return view.kind === 'elicit' && view.action !== 'accept' ? view.action : undefined;
}

const stringForm = (message, field) => ({
    message,
    requestedSchema: { type: 'object', properties: { [field]: { type: 'string' } }, required: [field] }
});

const askName = () => inputRequired.elicit(stringForm('What is your name?', 'name'));
const askConfirm = () =>
    inputRequired.elicit({
        message: 'Please confirm',
        requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] }
    });
const askModel = (prompt, maxTokens) =>
    inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens });

// The JSON Schema 2020-12 document of the json-schema-2020-12 scenario, kept verbatim in tools/list.
const JSON_SCHEMA_2020_12 = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    type: 'object',
    $defs: {
        address: {
            $anchor: 'addressDef',
            type: 'object',
            properties: { street: { type: 'string' }, city: { type: 'string' } }
        }
    },
    properties: {
        name: { type: 'string' },
        address: { $ref: '#/$defs/address' },
        contactMethod: { type: 'string', enum: ['phone', 'email'] },
        phone: { type: 'string' },
        email: { type: 'string' }
    },
    allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
    if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
    then: { required: ['phone'] },
    else: { required: ['email'] },
    additionalProperties: false
};

// Called by the list-change triggers on the HTTP entry: per-request 2026-07-28 instances are not
// tied to the subscriptions/listen streams, so the change is also published on the handler's bus.
let publishChange = { toolsChanged() {}, promptsChanged() {} };

// ---------------------------------------------------------------------------------------------
// The server factory: one definition for both eras and both transports.

function createServer({ era } = {}) {
    const legacy = era === 'legacy';
    const hint = { ttlMs: 60_000, cacheScope: 'private' };
    const server = new McpServer(
        { name: 'mcpod-reference-server', version: '1.0.0' },
        {
            capabilities: {
                tools: { listChanged: true },
                prompts: { listChanged: true },
                resources: legacy ? { listChanged: true, subscribe: true } : { listChanged: true },
                logging: {}
            },
            instructions: 'Conformance fixtures for the MCP conformance suite (mcpod tests).',
            requestState: { verify: (state, ctx) => stateCodec.verify(state, ctx) },
            cacheHints: {
                'tools/list': hint,
                'prompts/list': hint,
                'resources/list': hint,
                'resources/templates/list': hint,
                'resources/read': hint
            }
        }
    );

    /** Client capabilities in force for this request: the 2026 envelope's, else the handshake's. */
    const clientCapabilities = (ctx) =>
        ctx.mcpReq.envelope?.[CLIENT_CAPABILITIES_META_KEY] ?? server.server.getClientCapabilities() ?? {};

    // -- Plain content tools (registered first: the header-validation scenario calls tools[0]
    //    with no arguments). ----------------------------------------------------------------
    server.registerTool('test_simple_text', { description: 'Returns a simple text response' }, async () =>
        text('This is a simple text response for testing.')
    );
    server.registerTool('test_image_content', { description: 'Returns a 1x1 red PNG image' }, async () => ({
        content: [{ type: 'image', data: PNG, mimeType: 'image/png' }]
    }));
    server.registerTool('test_audio_content', { description: 'Returns a short silent WAV clip' }, async () => ({
        content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }]
    }));
    server.registerTool('test_embedded_resource', { description: 'Returns an embedded text resource' }, async () => ({
        content: [
            {
                type: 'resource',
                resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' }
            }
        ]
    }));
    server.registerTool('test_multiple_content_types', { description: 'Returns text, image and resource content' }, async () => ({
        content: [
            { type: 'text', text: 'Multiple content types test:' },
            { type: 'image', data: PNG, mimeType: 'image/png' },
            {
                type: 'resource',
                resource: {
                    uri: 'test://mixed-content-resource',
                    mimeType: 'application/json',
                    text: JSON.stringify({ test: 'data', value: 123 })
                }
            }
        ]
    }));
    server.registerTool('test_error_handling', { description: 'Always fails with a tool error' }, async () => {
        throw new Error('This tool intentionally returns an error for testing');
    });
    server.registerTool('test_tool_with_progress', { description: 'Reports progress 0/100, 50/100, 100/100' }, async (ctx) => {
        const progressToken = ctx.mcpReq._meta?.progressToken;
        for (const progress of [0, 50, 100]) {
            if (progressToken !== undefined) {
                await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress, total: 100 } });
            }
            if (progress < 100) await sleep(50);
        }
        return text(`Progress tool completed (token ${progressToken === undefined ? 'absent' : JSON.stringify(progressToken)})`);
    });
    server.registerTool('test_tool_with_logging', { description: 'Sends three info log messages while running' }, async (ctx) => {
        await ctx.mcpReq.log('info', 'Tool execution started');
        await sleep(50);
        await ctx.mcpReq.log('info', 'Tool processing data');
        await sleep(50);
        await ctx.mcpReq.log('info', 'Tool execution completed');
        return text('Logging tool completed: 3 info messages sent');
    });
    // 2026-07-28: logs without `_meta.io.modelcontextprotocol/logLevel` must not be sent (the SDK drops them).
    server.registerTool('test_logging_tool', { description: 'Logs one message at info level' }, async (ctx) => {
        await ctx.mcpReq.log('info', 'test_logging_tool ran');
        return text('Logged one info message (delivered only when the request asked for a log level)');
    });
    server.registerTool(
        'json_schema_2020_12_tool',
        { description: 'Tool with JSON Schema 2020-12 features', inputSchema: fromJsonSchema(JSON_SCHEMA_2020_12) },
        async (args) => text(`Received ${JSON.stringify(args)}`)
    );
    server.registerTool(
        'test_custom_header_echo',
        {
            description: 'Echoes its region argument; the argument is mirrored in the Mcp-Param-Region header (SEP-2243)',
            inputSchema: fromJsonSchema({
                type: 'object',
                properties: { region: { type: 'string', description: 'Region to echo', 'x-mcp-header': 'Region' } },
                required: ['region']
            })
        },
        async ({ region }) => text(`region=${region}`)
    );

    // -- 2025-era client-input tools, written once with inputRequired (the legacy shim turns them
    //    into real server→client requests on a 2025 connection). ------------------------------
    server.registerTool(
        'test_sampling',
        { description: 'Asks the client LLM (sampling) to answer the prompt', inputSchema: z.object({ prompt: z.string() }) },
        async ({ prompt }, ctx) => {
            const answer = sampledText(ctx, 'llm');
            if (answer === undefined) return inputRequired({ inputRequests: { llm: askModel(prompt, 100) } });
            return text(`LLM response: ${answer}`);
        }
    );
    server.registerTool(
        'test_elicitation',
        { description: 'Asks the user (elicitation) for a username and email', inputSchema: z.object({ message: z.string() }) },
        async ({ message }, ctx) => {
            const view = inputResponse(ctx.mcpReq.inputResponses, 'user_input');
            if (view.kind !== 'elicit') {
                return inputRequired({
                    inputRequests: {
                        user_input: inputRequired.elicit({
                            message,
                            requestedSchema: {
                                type: 'object',
                                properties: {
                                    username: { type: 'string', description: "User's response" },
                                    email: { type: 'string', description: "User's email address" }
                                },
                                required: ['username', 'email']
                            }
                        })
                    }
                });
            }
            return text(`User response: action=${view.action}, content=${JSON.stringify(view.content ?? {})}`);
        }
    );
    server.registerTool('test_elicitation_sep1034_defaults', { description: 'Elicitation whose fields carry defaults (SEP-1034)' }, async (ctx) => {
        const view = inputResponse(ctx.mcpReq.inputResponses, 'defaults');
        if (view.kind !== 'elicit') {
            return inputRequired({
                inputRequests: {
                    defaults: inputRequired.elicit({
                        message: 'Please review and update the form fields with defaults',
                        requestedSchema: {
                            type: 'object',
                            properties: {
                                name: { type: 'string', description: 'User name', default: 'John Doe' },
                                age: { type: 'integer', description: 'User age', default: 30 },
                                score: { type: 'number', description: 'User score', default: 95.5 },
                                status: { type: 'string', description: 'User status', enum: ['active', 'inactive', 'pending'], default: 'active' },
                                verified: { type: 'boolean', description: 'Verification status', default: true }
                            }
                        }
                    })
                }
            });
        }
        return text(`Elicitation completed: action=${view.action}, content=${JSON.stringify(view.content ?? {})}`);
    });
    server.registerTool('test_elicitation_sep1330_enums', { description: 'Elicitation with the five enum shapes (SEP-1330)' }, async (ctx) => {
        const view = inputResponse(ctx.mcpReq.inputResponses, 'enums');
        if (view.kind !== 'elicit') {
            return inputRequired({
                inputRequests: {
                    enums: inputRequired.elicit({
                        message: 'Please pick from the enum fields',
                        requestedSchema: {
                            type: 'object',
                            properties: {
                                untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
                                titledSingle: {
                                    type: 'string',
                                    oneOf: [
                                        { const: 'value1', title: 'First Option' },
                                        { const: 'value2', title: 'Second Option' },
                                        { const: 'value3', title: 'Third Option' }
                                    ]
                                },
                                legacyEnum: {
                                    type: 'string',
                                    enum: ['opt1', 'opt2', 'opt3'],
                                    enumNames: ['Option One', 'Option Two', 'Option Three']
                                },
                                untitledMulti: { type: 'array', items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
                                titledMulti: {
                                    type: 'array',
                                    items: {
                                        anyOf: [
                                            { const: 'value1', title: 'First Choice' },
                                            { const: 'value2', title: 'Second Choice' },
                                            { const: 'value3', title: 'Third Choice' }
                                        ]
                                    }
                                }
                            }
                        }
                    })
                }
            });
        }
        return text(`Elicitation completed: action=${view.action}, content=${JSON.stringify(view.content ?? {})}`);
    });
    // SSE polling (SEP-1699, 2025 era): closes the POST's SSE stream mid-call; the client resumes
    // with GET + Last-Event-ID and gets the result from the event store.
    server.registerTool('test_reconnection', { description: 'Closes its SSE stream mid-call, then answers' }, async (ctx) => {
        await sleep(100);
        ctx.http?.closeSSE?.();
        await sleep(200);
        return text('Reconnection test completed');
    });

    // -- SEP-2322 input-required fixtures. ----------------------------------------------------
    server.registerTool('test_input_required_result_elicitation', { description: 'Asks for the user name (elicitation)' }, async (ctx) => {
        const declined = refused(ctx, 'user_name');
        if (declined) return text(`No name given (${declined})`);
        const name = acceptedString(ctx, 'user_name', 'name');
        if (name === undefined) return inputRequired({ inputRequests: { user_name: askName() } });
        return text(`Hello, ${name}!`);
    });
    server.registerTool('test_input_required_result_sampling', { description: 'Asks the client LLM a question (sampling)' }, async (ctx) => {
        const answer = sampledText(ctx, 'capital_question');
        if (answer === undefined) {
            return inputRequired({ inputRequests: { capital_question: askModel('What is the capital of France?', 100) } });
        }
        return text(`The model answered: ${answer}`);
    });
    server.registerTool('test_input_required_result_list_roots', { description: "Asks for the client's roots" }, async (ctx) => {
        const roots = listedRoots(ctx, 'client_roots');
        if (roots === undefined) return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
        return text(`Client roots: ${roots.map((root) => (root.name ? `${root.name} (${root.uri})` : root.uri)).join(', ') || '(none)'}`);
    });
    {
        const tool = 'test_input_required_result_request_state';
        server.registerTool(tool, { description: 'Asks for confirmation and round-trips a signed requestState' }, async (ctx) => {
            const state = stateFor(ctx, tool);
            const confirmation = acceptedContent(ctx.mcpReq.inputResponses, 'confirm');
            if (state === undefined || typeof confirmation?.ok !== 'boolean') {
                return inputRequired({ inputRequests: { confirm: askConfirm() }, requestState: await stateCodec.mint({ tool, round: 1 }) });
            }
            return text(`state-ok: requestState verified (round ${state.round}), confirmed=${confirmation.ok}`);
        });
    }
    {
        const tool = 'test_input_required_result_multiple_inputs';
        server.registerTool(tool, { description: 'Asks for elicitation, sampling and roots at once' }, async (ctx) => {
            const name = acceptedString(ctx, 'user_name', 'name');
            const greeting = sampledText(ctx, 'greeting');
            const roots = listedRoots(ctx, 'client_roots');
            if (stateFor(ctx, tool) === undefined || name === undefined || greeting === undefined || roots === undefined) {
                return inputRequired({
                    inputRequests: {
                        user_name: askName(),
                        greeting: askModel('Generate a greeting', 50),
                        client_roots: inputRequired.listRoots()
                    },
                    requestState: await stateCodec.mint({ tool })
                });
            }
            return text(`${greeting} ${name}; roots: ${roots.map((root) => root.uri).join(', ') || '(none)'}`);
        });
    }
    {
        const tool = 'test_input_required_result_multi_round';
        const step1 = () => inputRequired.elicit(stringForm('Step 1: What is your name?', 'name'));
        const step2 = () => inputRequired.elicit(stringForm('Step 2: What is your favorite color?', 'color'));
        server.registerTool(tool, { description: 'Two elicitation rounds with an evolving requestState' }, async (ctx) => {
            const state = stateFor(ctx, tool);
            if (state?.round === 2) {
                const color = acceptedString(ctx, 'step2', 'color');
                if (color !== undefined) return text(`${state.name}'s favorite color is ${color}`);
                return inputRequired({ inputRequests: { step2: step2() }, requestState: await stateCodec.mint({ tool, round: 2, name: state.name }) });
            }
            const name = state?.round === 1 ? acceptedString(ctx, 'step1', 'name') : undefined;
            if (name !== undefined) {
                return inputRequired({ inputRequests: { step2: step2() }, requestState: await stateCodec.mint({ tool, round: 2, name }) });
            }
            return inputRequired({ inputRequests: { step1: step1() }, requestState: await stateCodec.mint({ tool, round: 1 }) });
        });
    }
    {
        const tool = 'test_input_required_result_tampered_state';
        server.registerTool(tool, { description: 'Round-trips an HMAC-signed requestState; a tampered one is refused (-32602)' }, async (ctx) => {
            // A tampered state never gets here: the SDK's verify hook answers -32602 first.
            const confirmation = acceptedContent(ctx.mcpReq.inputResponses, 'confirm');
            if (stateFor(ctx, tool) === undefined || typeof confirmation?.ok !== 'boolean') {
                return inputRequired({ inputRequests: { confirm: askConfirm() }, requestState: await stateCodec.mint({ tool }) });
            }
            return text(`state-ok: integrity verified, confirmed=${confirmation.ok}`);
        });
    }
    server.registerTool(
        'test_input_required_result_capabilities',
        { description: 'Asks only for the kinds of input the request declares it can provide' },
        async (ctx) => {
            const declared = clientCapabilities(ctx);
            const inputRequests = {};
            if (declared.elicitation && refused(ctx, 'user_name') === undefined && acceptedString(ctx, 'user_name', 'name') === undefined) {
                inputRequests.user_name = askName();
            }
            if (declared.sampling && sampledText(ctx, 'capital_question') === undefined) {
                inputRequests.capital_question = askModel('What is the capital of France?', 100);
            }
            if (declared.roots && listedRoots(ctx, 'client_roots') === undefined) {
                inputRequests.client_roots = inputRequired.listRoots();
            }
            if (Object.keys(inputRequests).length > 0) return inputRequired({ inputRequests });
            const got = Object.keys(ctx.mcpReq.inputResponses ?? {});
            return text(`Declared: ${Object.keys(declared).join(', ') || '(none)'}; received: ${got.join(', ') || '(nothing)'}`);
        }
    );
    // SEP-2575: needs sampling; when the request does not declare it, the SDK refuses the
    // input-required return with MissingRequiredClientCapabilityError (-32021, data.requiredCapabilities).
    server.registerTool('test_missing_capability', { description: 'Needs the sampling capability' }, async (ctx) => {
        const answer = sampledText(ctx, 'llm');
        if (answer === undefined) return inputRequired({ inputRequests: { llm: askModel('Say hello', 20) } });
        return text(`Sampled: ${answer}`);
    });
    // SEP-2575: a response stream for a call that needs input carries the input-required result,
    // never a server→client request.
    server.registerTool('test_streaming_elicitation', { description: 'Needs user input; answered with an input-required result' }, async (ctx) => {
        const name = acceptedString(ctx, 'user_name', 'name');
        if (name === undefined) return inputRequired({ inputRequests: { user_name: askName() } });
        return text(`Hello, ${name}!`);
    });

    // -- List-change triggers: toggle a dynamic tool / prompt on this instance (the SDK then sends
    //    the list_changed notification on the connection: the 2025 session's stream, or the stdio
    //    subscriptions/listen streams) and publish the change for HTTP subscriptions. -----------
    let dynamicTool;
    server.registerTool('test_trigger_tool_change', { description: 'Adds or removes the tool test_dynamic_tool' }, async () => {
        if (dynamicTool) {
            dynamicTool.remove();
            dynamicTool = undefined;
        } else {
            dynamicTool = server.registerTool('test_dynamic_tool', { description: 'Appears and disappears with test_trigger_tool_change' }, async () =>
                text('dynamic tool')
            );
        }
        publishChange.toolsChanged();
        return text(`Tool list changed: test_dynamic_tool ${dynamicTool ? 'added' : 'removed'}`);
    });
    let dynamicPrompt;
    server.registerTool('test_trigger_prompt_change', { description: 'Adds or removes the prompt test_dynamic_prompt' }, async () => {
        if (dynamicPrompt) {
            dynamicPrompt.remove();
            dynamicPrompt = undefined;
        } else {
            dynamicPrompt = server.registerPrompt('test_dynamic_prompt', { description: 'Appears and disappears with test_trigger_prompt_change' }, async () => ({
                messages: [{ role: 'user', content: { type: 'text', text: 'dynamic prompt' } }]
            }));
        }
        publishChange.promptsChanged();
        return text(`Prompt list changed: test_dynamic_prompt ${dynamicPrompt ? 'added' : 'removed'}`);
    });

    // -- Prompts. -----------------------------------------------------------------------------
    server.registerPrompt('test_simple_prompt', { description: 'A simple prompt without arguments' }, async () => ({
        messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }]
    }));
    server.registerPrompt(
        'test_prompt_with_arguments',
        {
            description: 'A prompt with two required arguments',
            argsSchema: z.object({
                arg1: completable(z.string().describe('First test argument'), (value) =>
                    ['paris', 'park', 'party', 'test', 'testing'].filter((word) => word.startsWith(value ?? ''))
                ),
                arg2: z.string().describe('Second test argument')
            })
        },
        async ({ arg1, arg2 }) => ({
            messages: [{ role: 'user', content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }]
        })
    );
    server.registerPrompt(
        'test_prompt_with_embedded_resource',
        {
            description: 'A prompt embedding a resource',
            argsSchema: z.object({ resourceUri: z.string().describe('URI of the resource to embed') })
        },
        async ({ resourceUri }) => ({
            messages: [
                {
                    role: 'user',
                    content: { type: 'resource', resource: { uri: resourceUri, mimeType: 'text/plain', text: 'Embedded resource content for testing.' } }
                },
                { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } }
            ]
        })
    );
    server.registerPrompt('test_prompt_with_image', { description: 'A prompt with an image' }, async () => ({
        messages: [
            { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
            { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } }
        ]
    }));
    server.registerPrompt('test_input_required_result_prompt', { description: 'A prompt that first asks for context (elicitation)' }, async (ctx) => {
        const context = acceptedString(ctx, 'user_context', 'context');
        if (context === undefined) {
            return inputRequired({ inputRequests: { user_context: inputRequired.elicit(stringForm('What context should the prompt use?', 'context')) } });
        }
        return { messages: [{ role: 'user', content: { type: 'text', text: `Answer using this context: ${context}` } }] };
    });

    // -- Resources. Unknown URIs get the SDK's ResourceNotFoundError (-32602, data.uri; SEP-2164).
    server.registerResource(
        'static-text',
        'test://static-text',
        { description: 'A static text resource', mimeType: 'text/plain' },
        async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'This is the content of the static text resource.' }] })
    );
    server.registerResource(
        'static-binary',
        'test://static-binary',
        { description: 'A static binary resource (1x1 PNG)', mimeType: 'image/png' },
        async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'image/png', blob: PNG }] })
    );
    server.registerResource(
        'watched-resource',
        'test://watched-resource',
        { description: 'A resource clients may subscribe to', mimeType: 'text/plain' },
        async (uri) => ({ contents: [{ uri: uri.href, mimeType: 'text/plain', text: 'Watched resource content.' }] })
    );
    server.registerResource(
        'template-data',
        new ResourceTemplate('test://template/{id}/data', { list: undefined }),
        { description: 'Data for an id, from a URI template', mimeType: 'application/json' },
        async (uri, { id }) => ({
            contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }) }]
        })
    );
    if (legacy) {
        // resources/subscribe exists only before 2026-07-28 (SEP-2575 removed it).
        const subscriptions = new Set();
        server.server.setRequestHandler('resources/subscribe', async (request) => {
            subscriptions.add(request.params.uri);
            return {};
        });
        server.server.setRequestHandler('resources/unsubscribe', async (request) => {
            subscriptions.delete(request.params.uri);
            return {};
        });
    }
    return server;
}

// ---------------------------------------------------------------------------------------------
// Entries.

function serveOnStdio() {
    serveStdio(createServer, { legacy: 'serve', onerror: (error) => log('stdio:', error.message) });
    log('serving MCP on stdio (2025 handshake and 2026-07-28)');
}

/** A minimal event store: every SSE event kept in memory, so a client can resume with Last-Event-ID. */
class MemoryEventStore {
    events = new Map(); // eventId -> { streamId, message }
    async storeEvent(streamId, message) {
        const eventId = `${streamId}::${randomUUID()}`;
        this.events.set(eventId, { streamId, message });
        return eventId;
    }
    async getStreamIdForEventId(eventId) {
        return this.events.get(eventId)?.streamId;
    }
    async replayEventsAfter(lastEventId, { send }) {
        const last = this.events.get(lastEventId);
        if (!last) return '';
        let after = false;
        for (const [eventId, { streamId, message }] of this.events) {
            if (eventId === lastEventId) {
                after = true;
                continue;
            }
            if (after && streamId === last.streamId && Object.keys(message).length > 0) await send(eventId, message);
        }
        return last.streamId;
    }
}

function serveOnHttp(port) {
    const onerror = (error) => log('http:', error.message);
    const modern = createMcpHandler(createServer, { legacy: 'reject', onerror });
    publishChange = modern.notify;

    // 2025 era: one instance and transport per session.
    const sessions = new Map(); // Mcp-Session-Id -> transport
    async function serveLegacy(request) {
        const sessionId = request.headers.get('mcp-session-id');
        if (sessionId) {
            const transport = sessions.get(sessionId);
            if (transport) return transport.handleRequest(request);
            return Response.json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }, { status: 404 });
        }
        if (request.method !== 'POST') {
            return Response.json({ jsonrpc: '2.0', error: { code: -32000, message: 'Bad Request: Mcp-Session-Id header is required' }, id: null }, { status: 400 });
        }
        const server = createServer({ era: 'legacy' });
        const transport = new WebStandardStreamableHTTPServerTransport({
            sessionIdGenerator: () => randomUUID(),
            eventStore: new MemoryEventStore(),
            retryInterval: 1000,
            onsessioninitialized: (id) => sessions.set(id, transport),
            onsessionclosed: (id) => {
                sessions.delete(id);
                server.close().catch(() => {});
            }
        });
        transport.onclose = () => {
            if (transport.sessionId) sessions.delete(transport.sessionId);
        };
        await server.connect(transport);
        const response = await transport.handleRequest(request);
        if (transport.sessionId === undefined) server.close().catch(() => {}); // not an initialize: nothing to keep
        return response;
    }

    async function serve(request) {
        const url = new URL(request.url);
        if (url.pathname !== '/mcp') return new Response('Not Found', { status: 404 });
        const rejected =
            hostHeaderValidationResponse(request, localhostAllowedHostnames()) ?? originValidationResponse(request, localhostAllowedOrigins());
        if (rejected) return rejected;
        if (await isLegacyRequest(request)) return serveLegacy(request);
        return modern.fetch(request);
    }

    // node:http <-> fetch Request/Response.
    const httpServer = http.createServer(async (req, res) => {
        const abort = new AbortController();
        res.on('close', () => abort.abort());
        const hasBody = req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'DELETE';
        const headers = new Headers();
        for (const [name, value] of Object.entries(req.headers)) {
            for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
        }
        try {
            const request = new Request(`http://${req.headers.host ?? `127.0.0.1:${port}`}${req.url}`, {
                method: req.method,
                headers,
                body: hasBody ? Readable.toWeb(req) : undefined,
                duplex: hasBody ? 'half' : undefined,
                signal: abort.signal
            });
            const response = await serve(request);
            res.writeHead(response.status, [...response.headers].flat());
            res.flushHeaders(); // an SSE client sees the stream open before its first event
            if (response.body) Readable.fromWeb(response.body).on('error', () => res.end()).pipe(res);
            else res.end();
        } catch (error) {
            onerror(error instanceof Error ? error : new Error(String(error)));
            if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32603, message: 'Internal server error' }, id: null }));
        }
    });
    httpServer.listen(port, '127.0.0.1', () => log(`listening on ${port} (http://127.0.0.1:${port}/mcp)`));
}

const [mode, portArg] = process.argv.slice(2);
if (mode === 'stdio') serveOnStdio();
else if (mode === 'http' && Number.isInteger(Number(portArg)) && Number(portArg) > 0) serveOnHttp(Number(portArg));
else {
    console.error('usage: node reference_server.mjs stdio | http PORT');
    process.exit(2);
}
