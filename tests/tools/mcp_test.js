// mcp_test.js - nearcache's MCP server driven by the official MCP TypeScript SDK.
//
// Started by mcp_test.py, which installs the pinned SDK (package.json,
// package-lock.json), starts redis-server and the proxy with the admin
// endpoint on, and runs this twice:
//   node mcp_test.js open  URL BIN PROXY_ADDR          admin.token not set
//   node mcp_test.js token URL BIN PROXY_ADDR TOKEN    admin.token = TOKEN
// URL is the admin endpoint's /mcp; BIN is build/nearcache, whose `mcp`
// subcommand is driven over stdio. Checks (each prints PASS or FAIL):
//   sdk-*       the SDK's Client over Streamable HTTP and over stdio: it
//               initializes, lists the tools with their schemas and
//               annotations, and calls each with good and bad arguments
//   version-*   initialize answers each supported version, and the latest
//               for an unknown one; the stateless 2026-07-28 revision:
//               server/discover, resultType, -32022, and -32020 for the
//               MCP-Protocol-Version, Mcp-Method and Mcp-Name headers
//               (plain and base64) missing or not matching the body
//   http-*      raw requests: bad JSON (-32700), unknown method (-32601),
//               too large (413), GET (405), a foreign Origin (403),
//               notifications (202), batches only under 2025-03-26
//   token-*     the tools that change state (invalidate, reload,
//               performance_tuning, bulk_operations): absent and refused
//               without admin.token; listed but refused without the bearer
//               header; run with it
// The last line is "N passed, M failed"; the exit status is 1 if one failed.
'use strict';

const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');
const { LATEST_PROTOCOL_VERSION } = require('@modelcontextprotocol/sdk/types.js');
const { createConnection } = require('net');

const [MODE, URL_TEXT, BIN, PROXY_ADDR, TOKEN] = process.argv.slice(2);
const MODERN = '2026-07-28';
const LEGACY = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'];
const READ_TOOLS = ['cache_stats', 'hot_keys', 'inspect_key', 'explain_policy', 'pattern_analysis'];
const CHANGING = ['invalidate', 'reload', 'performance_tuning', 'bulk_operations'];
const DESTRUCTIVE = ['invalidate', 'reload', 'bulk_operations'];
const ACCEPT = 'application/json, text/event-stream';
let passed = 0;
let failed = 0;

function check(name, ok, detail) {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${name}${ok || detail === undefined ? '' : ': ' + detail}`);
}

// One RESP command to the proxy (SET, GET), for the keys the tools look at.
function resp(args) {
  const [host, port] = PROXY_ADDR.split(':');
  return new Promise((resolve, reject) => {
    const s = createConnection(Number(port), host, () => {
      s.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join(''));
    });
    s.once('data', (d) => { s.end(); resolve(d.toString()); });
    s.on('error', reject);
  });
}

async function post(body, headers = {}) {
  const res = await fetch(URL_TEXT, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: ACCEPT, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { /* not JSON: json stays null */ }
  return { status: res.status, json, text };
}

function meta(version) {
  return { 'io.modelcontextprotocol/protocolVersion': version,
    'io.modelcontextprotocol/clientInfo': { name: 'mcp_test', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': {} };
}

async function errorCode(promise) {
  try { await promise; return 'no error'; } catch (e) { return e.code; }
}

// Calls a tool; the result's JSON text must match its structuredContent.
async function call(client, name, args) {
  const r = await client.callTool({ name, arguments: args });
  const text = r.content && r.content[0] && r.content[0].text;
  return { r, text, data: r.structuredContent };
}

async function toolsChecks(client, via) {
  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  check(`sdk-${via}-list`, READ_TOOLS.every((n) => names.includes(n)), names.join(','));
  const inspect = tools.find((t) => t.name === 'inspect_key');
  check(`sdk-${via}-schema`, inspect && inspect.inputSchema.required[0] === 'key' &&
        inspect.inputSchema.properties.key.type === 'string' &&
        inspect.inputSchema.additionalProperties === false, JSON.stringify(inspect));
  check(`sdk-${via}-annotations`, tools.every((t) => t.annotations &&
        t.annotations.readOnlyHint === !CHANGING.includes(t.name) &&
        t.annotations.destructiveHint === DESTRUCTIVE.includes(t.name)),
        JSON.stringify(tools.map((t) => [t.name, t.annotations])));

  const stats = await call(client, 'cache_stats', {});
  check(`sdk-${via}-cache_stats`, !stats.r.isError && typeof stats.data.hits === 'number' &&
        typeof stats.data.hit_ratio === 'number' && JSON.parse(stats.text).hits === stats.data.hits,
        stats.text);
  const inspect1 = await call(client, 'inspect_key', { key: 'mcp:foo' });
  const redis = inspect1.data && inspect1.data.redis;
  check(`sdk-${via}-inspect_key-redis`, !inspect1.r.isError && redis.type === 'string' &&
        redis.value === 'bar' && redis.pttl_ms === -1 && redis.truncated === false, inspect1.text);
  check(`sdk-${via}-inspect_key-tier`, inspect1.data && inspect1.data.tier &&
        inspect1.data.tier.error === undefined && Object.keys(inspect1.data.tier).length > 0,
        inspect1.text);
  const big = await call(client, 'inspect_key', { key: 'mcp:list' });
  check(`sdk-${via}-inspect_key-truncated`, !big.r.isError && big.data.redis.type === 'list' &&
        big.data.redis.size === 60 && big.data.redis.value.length === 50 &&
        big.data.redis.truncated === true, big.text);
  const hot = await call(client, 'hot_keys', { n: 1000 });
  check(`sdk-${via}-hot_keys`, !hot.r.isError && Array.isArray(hot.data.keys) &&
        hot.data.keys.some((k) => k.key === 'mcp:foo' && typeof k.reads === 'number' &&
        typeof k.hits === 'number' && typeof k.error === 'number'), hot.text);
  const explain = await call(client, 'explain_policy', { key: 'mcp:foo', command: 'GET' });
  check(`sdk-${via}-explain_policy`, !explain.r.isError && explain.data &&
        Object.keys(explain.data).length > 0, explain.text);

  const analysis = await call(client, 'pattern_analysis', { max_keys: 100, rate: 5000 });
  const mcpPattern = analysis.data && analysis.data.patterns &&
        analysis.data.patterns.find((p) => p.pattern.startsWith('mcp:'));
  check(`sdk-${via}-pattern_analysis`, !analysis.r.isError && analysis.data.scan.keys >= 2 &&
        mcpPattern !== undefined && analysis.data.proxy !== null, analysis.text);

  const bad = [
    ['pattern_analysis', { max_keys: 0 }], ['pattern_analysis', { rate: 'x' }],
    ['pattern_analysis', { match: 'mcp:*', extra: 1 }],
    ['hot_keys', { n: 0 }], ['hot_keys', { n: 'x' }], ['hot_keys', { n: 5, bogus: 1 }],
    ['inspect_key', {}], ['inspect_key', { key: 7 }], ['inspect_key', { key: '' }],
    ['explain_policy', { command: 'GET' }], ['cache_stats', { extra: true }], ['no_such_tool', {}],
  ];
  for (const [name, args] of bad) {
    const code = await errorCode(client.callTool({ name, arguments: args }));
    check(`sdk-${via}-bad-${name}-${JSON.stringify(args)}`, code === -32602, `code ${code}`);
  }
  return names;
}

async function httpClient(headers) {
  const client = new Client({ name: 'mcp_test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(URL_TEXT), { requestInit: { headers } });
  await client.connect(transport);
  return client;
}

async function versionChecks() {
  for (const v of [...LEGACY, '1999-01-01', MODERN]) {
    const r = await post({ jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: v, capabilities: {}, clientInfo: { name: 't', version: '1' } } });
    const want = LEGACY.includes(v) ? v : '2025-11-25';
    check(`version-initialize-${v}`, r.status === 200 && r.json.result.protocolVersion === want, r.text);
  }
  const h = (method, name) => ({ 'MCP-Protocol-Version': MODERN, 'Mcp-Method': method,
    ...(name ? { 'Mcp-Name': name } : {}) });
  let r = await post({ jsonrpc: '2.0', id: 'd', method: 'server/discover', params: { _meta: meta(MODERN) } },
    h('server/discover'));
  check('version-modern-discover', r.status === 200 && r.json.result.resultType === 'complete' &&
        r.json.result.supportedVersions.includes(MODERN) && r.json.result.capabilities.tools, r.text);
  r = await post({ jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: meta(MODERN) } },
    h('tools/list'));
  check('version-modern-tools-list', r.status === 200 && r.json.result.resultType === 'complete' &&
        r.json.result.tools.length >= READ_TOOLS.length, r.text);
  const call = { jsonrpc: '2.0', id: 3, method: 'tools/call',
    params: { name: 'cache_stats', arguments: {}, _meta: meta(MODERN) } };
  r = await post(call, h('tools/call', 'cache_stats'));
  check('version-modern-call', r.status === 200 && r.json.result.isError === false &&
        typeof r.json.result.structuredContent.hits === 'number', r.text);
  r = await post(call, h('tools/call', '=?base64?' + Buffer.from('cache_stats').toString('base64') + '?='));
  check('version-modern-call-base64-name', r.status === 200 && r.json.result.isError === false, r.text);
  for (const [what, headers] of [['no-method', { 'MCP-Protocol-Version': MODERN }],
    ['wrong-method', h('tools/list')], ['no-name', h('tools/call')],
    ['wrong-name', h('tools/call', 'hot_keys')]]) {
    r = await post(call, headers);
    check(`version-modern-header-${what}`, r.status === 400 && r.json.error.code === -32020, r.text);
  }
  r = await post({ jsonrpc: '2.0', id: 4, method: 'tools/list', params: { _meta: meta('2099-01-01') } },
    { 'MCP-Protocol-Version': '2099-01-01', 'Mcp-Method': 'tools/list' });
  check('version-modern-unsupported', r.status === 400 && r.json.error.code === -32022 &&
        r.json.error.data.supported.includes(MODERN) && r.json.error.data.requested === '2099-01-01', r.text);
  r = await post({ jsonrpc: '2.0', id: 5, method: 'tools/list', params: { _meta: meta(MODERN) } },
    { 'MCP-Protocol-Version': '2025-11-25', 'Mcp-Method': 'tools/list' });
  check('version-modern-header-mismatch', r.status === 400 && r.json.error.code === -32020, r.text);
  r = await post({ jsonrpc: '2.0', id: 6, method: 'resources/list', params: { _meta: meta(MODERN) } },
    h('resources/list'));
  check('version-modern-unknown-method', r.status === 404 && r.json.error.code === -32601, r.text);
}

async function httpChecks() {
  const h = { 'MCP-Protocol-Version': '2025-11-25' };
  let r = await post('{"jsonrpc":"2.0","id":1,"method":', h);
  check('http-parse-error', r.status === 400 && r.json.error.code === -32700 && r.json.id === null, r.text);
  r = await post({ jsonrpc: '2.0', id: 1, method: 'no/such' }, h);
  check('http-unknown-method', r.status === 200 && r.json.error.code === -32601 && r.json.id === 1, r.text);
  r = await post({ jsonrpc: '1.0', id: 1, method: 'ping' }, h);
  check('http-invalid-request', r.status === 400 && r.json.error.code === -32600, r.text);
  r = await post({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: [1] }, h);
  check('http-invalid-params', r.json && r.json.error.code === -32602, r.text);
  r = await post({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(70000) } }, h);
  check('http-too-large', r.status === 413, `status ${r.status}`);
  const get = await fetch(URL_TEXT, { headers: { Accept: 'text/event-stream' } });
  check('http-get-405', get.status === 405, `status ${get.status}`);
  const del = await fetch(URL_TEXT, { method: 'DELETE' });
  check('http-delete-405', del.status === 405, `status ${del.status}`);
  r = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { ...h, Origin: 'http://evil.example' });
  check('http-foreign-origin-403', r.status === 403, `status ${r.status}`);
  r = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { ...h, Origin: 'http://localhost:3000' });
  check('http-local-origin', r.status === 200 && r.json.result !== undefined, r.text);
  r = await post({ jsonrpc: '2.0', id: 1, method: 'ping' }, { ...h, Accept: 'application/json' });
  check('http-accept-406', r.status === 406, `status ${r.status}`);
  r = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, h);
  check('http-notification-202', r.status === 202 && r.text === '', `status ${r.status}`);
  const batch = [{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', method: 'notifications/x' },
    { jsonrpc: '2.0', id: 2, method: 'tools/list' }];
  r = await post(batch, { 'MCP-Protocol-Version': '2025-03-26' });
  check('http-batch-2025-03-26', r.status === 200 && Array.isArray(r.json) && r.json.length === 2 &&
        r.json[1].result.tools.length > 0, r.text);
  r = await post(batch, h);
  check('http-batch-refused', r.status === 400 && r.json.error.code === -32600, r.text);
}

async function tokenChecks(names, client, via, authorized) {
  if (MODE === 'open') {
    check(`token-${via}-absent`, !CHANGING.some((n) => names.includes(n)), names.join(','));
    const code = await errorCode(client.callTool({ name: 'reload', arguments: {} }));
    check(`token-${via}-refused`, code === -32602, `code ${code}`);
    return;
  }
  check(`token-${via}-listed`, CHANGING.every((n) => names.includes(n)), names.join(','));
  const reload = await call(client, 'reload', {});
  const inv = await call(client, 'invalidate', { pattern: 'mcp:*' });
  if (!authorized) {
    check(`token-${via}-refused`, reload.r.isError && /admin token/.test(reload.text) &&
          inv.r.isError, `${reload.text} ${inv.text}`);
    return;
  }
  check(`token-${via}-reload`, !reload.r.isError && reload.data.reloaded === true, reload.text);
  check(`token-${via}-invalidate`, !inv.r.isError && inv.data.invalidated === true, inv.text);
  const badPattern = await call(client, 'invalidate', { pattern: 'user:{id' });
  check(`token-${via}-invalidate-bad-pattern`, badPattern.r.isError &&
        /invalid pattern/.test(badPattern.text), badPattern.text);
  await bulkChecks(client, via);
  const tune = await call(client, 'performance_tuning',
    { seconds: 0.5, keys: 200, prefix: `mcp:tune:${via}:` });
  check(`token-${via}-performance_tuning`, !tune.r.isError && tune.data.keys === 200 &&
        tune.data.recommendations.length > 0 && tune.data.passes !== undefined, tune.text);
  const leftover = await resp(['EXISTS', `mcp:tune:${via}:1`]);
  check(`token-${via}-performance_tuning-clean`, leftover === ':0\r\n', leftover);
  const code = await errorCode(client.callTool({ name: 'performance_tuning',
    arguments: { seconds: 60 } }));
  check(`token-${via}-performance_tuning-bounded`, code === -32602, `code ${code}`);
}

async function bulkChecks(client, via) {
  const key = `mcp:bulk:${via}`;
  const ops = [{ op: 'set', key, value: 'v 1', ttl: 100 }, { op: 'get', key },
    { op: 'nope', key }, { op: 'del', key }, { op: 'get', key }];
  const bulk = await call(client, 'bulk_operations', { operations: ops, batch: 2 });
  const res = bulk.data && bulk.data.results;
  check(`token-${via}-bulk_operations`, !bulk.r.isError && res.length === 5 &&
        res[1].value === 'v 1' && res[2].error !== undefined && res[4].outcome === 'nil',
        bulk.text);
  for (const args of [{ operations: [] }, { operations: [1] }, { operations: ops, batch: 0 }]) {
    const code = await errorCode(client.callTool({ name: 'bulk_operations', arguments: args }));
    check(`token-${via}-bulk_operations-bad-${JSON.stringify(args).slice(0, 40)}`,
          code === -32602, `code ${code}`);
  }
}

async function main() {
  await resp(['SET', 'mcp:foo', 'bar']);
  await resp(['DEL', 'mcp:list']);
  await resp(['RPUSH', 'mcp:list', ...Array.from({ length: 60 }, (_, i) => `e${i}`)]);
  for (let i = 0; i < 40; i++) await resp(['GET', 'mcp:foo']);

  const http = await httpClient({});
  check('sdk-http-initialize', http.getServerVersion().name === 'nearcache' &&
        http.getServerCapabilities().tools !== undefined, JSON.stringify(http.getServerVersion()));
  console.log(`SDK LATEST_PROTOCOL_VERSION ${LATEST_PROTOCOL_VERSION}`);
  const names = await toolsChecks(http, 'http');
  await tokenChecks(names, http, 'http', false);
  await http.close();
  if (MODE === 'token') {
    const authed = await httpClient({ Authorization: `Bearer ${TOKEN}` });
    await tokenChecks((await authed.listTools()).tools.map((t) => t.name), authed, 'http-bearer', true);
    const wrong = await httpClient({ Authorization: 'Bearer wrong' });
    await tokenChecks((await wrong.listTools()).tools.map((t) => t.name), wrong, 'http-wrong-bearer', false);
    await authed.close();
    await wrong.close();
  }
  await versionChecks();
  await httpChecks();

  const args = ['mcp', '--proxy', PROXY_ADDR];
  if (MODE === 'token') args.push('--admin-token', TOKEN);
  const stdio = new Client({ name: 'mcp_test', version: '1.0.0' });
  await stdio.connect(new StdioClientTransport({ command: BIN, args, stderr: 'inherit', env: {} }));
  const stdioNames = await toolsChecks(stdio, 'stdio');
  await tokenChecks(stdioNames, stdio, 'stdio', MODE === 'token');
  await stdio.close();
}

main().catch((e) => { failed++; console.log(`FAIL exception: ${e.stack}`); }).finally(() => {
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
});
