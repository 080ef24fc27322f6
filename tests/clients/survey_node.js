// survey_node.js - the ioredis and node-redis (v4, v5) driver of survey.py;
// the protocol is described at the top of survey_redispy.py.
//
//   node survey_node.js NODE_MODULES ioredis|redis4|redis5 CONFIG_JSON
//
// NODE_MODULES holds ioredis, redis4 (npm:redis@4) and redis5 (npm:redis@5),
// installed by survey.py outside the source tree. Styles: "url" (node-redis:
// the url option), "csc" (node-redis v5, RESP3: its own client-side cache,
// clientSideCache, which turns on CLIENT TRACKING).
'use strict';
const path = require('path');
const readline = require('readline');

const [modules, lib, json] = process.argv.slice(2);
const cfg = JSON.parse(json);

function describe(e) {
  return `${e.constructor && e.constructor.name}: ${e.message}`;
}

async function attempt(fn) {
  try {
    const v = await fn();
    return v === undefined ? null : v;
  } catch (e) {
    return { err: describe(e) };
  }
}

async function connect() {
  if (lib === 'ioredis') {
    const Redis = require(path.join(modules, 'ioredis'));
    const opts = { host: cfg.host, port: cfg.port, maxRetriesPerRequest: 1,
                   commandTimeout: 5000, retryStrategy: () => null };
    if ('name' in cfg) opts.connectionName = cfg.name;
    if ('user' in cfg) opts.username = cfg.user;
    if ('password' in cfg) opts.password = cfg.password;
    if ('db' in cfg) opts.db = cfg.db;
    const c = new Redis(opts);
    c.on('error', () => {});
    return {
      c,
      set: (k, v) => c.set(k, v), get: (k) => c.get(k),
      hset: (k, m) => c.hset(k, m), hgetall: (k) => c.hgetall(k),
      mget: (ks) => c.mget(ks), getname: () => c.client('GETNAME'),
      close: () => c.quit(),
    };
  }
  const { createClient } = require(path.join(modules, lib));
  let opts;
  if (cfg.style === 'url') {
    const auth = 'password' in cfg ? `${cfg.user || ''}:${cfg.password}@` : '';
    opts = { url: `redis://${auth}${cfg.host}:${cfg.port}/${cfg.db || 0}` };
  } else {
    opts = { socket: { host: cfg.host, port: cfg.port } };
    if ('user' in cfg) opts.username = cfg.user;
    if ('password' in cfg) opts.password = cfg.password;
    if ('db' in cfg) opts.database = cfg.db;
  }
  if ('name' in cfg) opts.name = cfg.name;
  if (cfg.resp === 3) opts.RESP = 3;
  if (cfg.style === 'csc') opts.clientSideCache = { ttl: 0, maxEntries: 0 };
  opts.socket = Object.assign(opts.socket || {}, { reconnectStrategy: false });
  const c = createClient(opts);
  c.on('error', () => {});
  await c.connect();
  return {
    c,
    set: (k, v) => c.set(k, v), get: (k) => c.get(k),
    hset: (k, m) => c.hSet(k, m), hgetall: (k) => c.hGetAll(k),
    mget: (ks) => c.mGet(ks), getname: () => c.clientGetName(),
    close: () => (c.close ? c.close() : c.quit()),
  };
}

async function workload(d, p) {
  return [
    await attempt(() => d.set(p + 's', 'v1')),
    await attempt(() => d.get(p + 's')),
    await attempt(() => d.get(p + 'missing')),
    await attempt(() => d.hset(p + 'h', { f1: 'a', f2: 'b' })),
    await attempt(async () => Object.assign({}, await d.hgetall(p + 'h'))),
    await attempt(() => d.mget([p + 's', p + 'missing', p + 'h'])),
    await attempt(() => d.getname()),
    await attempt(() => d.set(p + 'hot', 'hotvalue')),
    await attempt(() => d.get(p + 'hot')),
  ];
}

async function main() {
  let d;
  try {
    d = await connect();
  } catch (e) {
    console.log(JSON.stringify({ error: describe(e) }));
    process.exit(1);
  }
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const req = JSON.parse(line);
    let out;
    try {
      if (req.op === 'workload') {
        out = { ok: await workload(d, req.p) };
      } else {
        const vals = [];
        for (let i = 0; i < req.n; i++) vals.push(await attempt(() => d.get(req.key)));
        out = { ok: vals };
      }
    } catch (e) {
      out = { error: describe(e) };
    }
    console.log(JSON.stringify(out));
  }
  try { await d.close(); } catch (e) { /* closing */ }
  process.exit(0);
}

main();
