// node_clients.js - ioredis and node-redis v5 through nearcache.
//
// Started by node_clients.py, which installs the pinned packages (package.json,
// package-lock.json), starts redis-server and the proxy and passes their ports:
//   node node_clients.js PROXY_PORT REDIS_PORT
//
// Two clients as applications configure them, each named and in database 1:
// ioredis (RESP2, connectionName, db: 1) and node-redis v5 (RESP: 3, name,
// database: 1, its default CLIENT SETINFO and MAINT_NOTIFICATIONS handshake).
// Both must stay on the proxy's shared connections and be served from its
// tier. For each, these checks print PASS or FAIL (as in python_client.py):
//   results       SET/GET, HSET/HGETALL, MGET, a pipeline and a MULTI answer
//                 what the same client with the same settings gets directly
//                 from Redis, and the writes land in database 1
//   name          CLIENT GETNAME answers the client's name
//   hits          once a key is in the tier, 20 more GETs (then HGETALLs)
//                 raise `hits` by exactly 20 and `misses` by 0
//   proxy-write   a SET by a second client through the proxy is seen by the
//                 first client's next GET
//   direct-write  a SET made on Redis in database 1 is seen within 2 s
// The last line is "N passed, M failed"; the exit status is 1 if one failed.
'use strict';

const Redis = require('ioredis');
const { createClient } = require('redis');

const HOST = '127.0.0.1';
const HIT_READS = 20;        // reads that must all be hits once a key is cached
const MAX_TRIES = 100;       // reads until the first hit (a new lane is tracked lazily)
const INVALIDATION_BOUND_MS = 2000;
const [PROXY_PORT, REDIS_PORT] = process.argv.slice(2).map(Number);

// What differs between the two libraries; every method returns a promise.
const LIBRARIES = [
  {
    name: 'ioredis',
    pkg: 'ioredis',
    clientName: 'web-ioredis',
    async connect(port, clientName) {
      const c = new Redis({ host: HOST, port, connectionName: clientName, db: 1,
                            lazyConnect: true, maxRetriesPerRequest: 1,
                            retryStrategy: () => null });
      c.on('error', () => {});   // a failed command rejects: that is what is reported
      await c.connect();
      return c;
    },
    set: (c, k, v) => c.set(k, v),
    get: (c, k) => c.get(k),
    hset: (c, k, fields) => c.hset(k, fields),
    hgetall: (c, k) => c.hgetall(k),
    mget: (c, keys) => c.mget(keys),
    pipeline: async (c, p) => (await c.pipeline().set(p + 'n', 1).incr(p + 'n').get(p + 'n')
      .get(p + 'str').hget(p + 'hash', 'f1').exec()).map(([err, reply]) => err || reply),
    multi: async (c, p) => (await c.multi().incr(p + 'n').get(p + 'n').hgetall(p + 'hash')
      .mget([p + 'str', p + 'n']).exec()).map(([err, reply]) => err || reply),
    getname: (c) => c.client('GETNAME'),
    close: (c) => c.quit(),
  },
  {
    name: 'node-redis',
    pkg: 'redis',
    clientName: 'web-node-redis',
    async connect(port, clientName) {
      const c = createClient({ RESP: 3, name: clientName, database: 1,
                               socket: { host: HOST, port, reconnectStrategy: false } });
      c.on('error', () => {});
      await c.connect();
      return c;
    },
    set: (c, k, v) => c.set(k, v),
    get: (c, k) => c.get(k),
    hset: (c, k, fields) => c.hSet(k, fields),
    hgetall: (c, k) => c.hGetAll(k),
    mget: (c, keys) => c.mGet(keys),
    pipeline: (c, p) => c.multi().set(p + 'n', '1').incr(p + 'n').get(p + 'n')
      .get(p + 'str').hGet(p + 'hash', 'f1').execAsPipeline(),
    multi: (c, p) => c.multi().incr(p + 'n').get(p + 'n').hGetAll(p + 'hash')
      .mGet([p + 'str', p + 'n']).exec(),
    getname: (c) => c.clientGetName(),
    close: (c) => c.close(),
  },
];

class Mismatch extends Error {}

// Replies compared as JSON: RESP3 maps may come as Map or as objects.
const show = (v) => JSON.stringify(v, (_, x) => (x instanceof Map ? Object.fromEntries(x) : x));

function expect(what, got, want) {
  if (show(got) !== show(want)) {
    throw new Mismatch(`${what}: got ${show(got)}, expected ${show(want)}`);
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Commands an application sends, on keys under prefix p; every reply, in order.
async function scenario(lib, c, p) {
  const out = [await lib.set(c, p + 'str', 'v1'), await lib.get(c, p + 'str'),
               await lib.get(c, p + 'str'), await lib.get(c, p + 'none')];
  out.push(await lib.hset(c, p + 'hash', { f1: 'a', f2: 'b' }), await lib.hgetall(c, p + 'hash'),
           await lib.hgetall(c, p + 'hash'), await lib.hgetall(c, p + 'none'));
  out.push(await lib.mget(c, [p + 'str', p + 'none', p + 'hash']),
           await lib.mget(c, [p + 'str', p + 'none']));
  out.push(await lib.pipeline(c, p), await lib.multi(c, p));
  return out;
}

async function stats(env) {
  const text = await env.stats.call('NEARCACHE', 'STATS');
  return Object.fromEntries(text.split('\r\n').filter((l) => l.includes(':'))
    .map((l) => { const i = l.indexOf(':'); return [l.slice(0, i), Number(l.slice(i + 1))]; }));
}

// Read until a read is a tier hit, then HIT_READS more that must all be hits,
// with the same reply; that reply.
async function cachedReads(env, what, read) {
  let first;
  for (let tries = 0; ; tries++) {
    if (tries === MAX_TRIES) {
      const s = await stats(env);
      throw new Mismatch(`${what}: no tier hit in ${MAX_TRIES} reads (cache_active ` +
                         `${s.cache_active}, hits ${s.hits}, misses ${s.misses})`);
    }
    const before = (await stats(env)).hits;
    first = await read();
    if ((await stats(env)).hits > before) break;
  }
  const before = await stats(env);
  const replies = [];
  for (let i = 0; i < HIT_READS; i++) replies.push(await read());
  const after = await stats(env);
  const hits = after.hits - before.hits;
  const misses = after.misses - before.misses;
  if (hits !== HIT_READS || misses !== 0) {
    throw new Mismatch(`${what}: ${HIT_READS} reads of a cached key made ${hits} hits and ` +
                       `${misses} misses, expected ${HIT_READS} and 0`);
  }
  for (const reply of replies) expect(`${what} served from the tier`, reply, first);
  return first;
}

const CHECKS = [
  ['results', async (env, lib) => {
    const want = await scenario(lib, env.direct, 'direct:');
    const got = await scenario(lib, env.client, 'proxy:');
    want.forEach((w, i) => expect(`reply ${i} of the scenario`, got[i], w));
    expect('GET proxy:str on Redis, db 1', await lib.get(env.direct, 'proxy:str'), 'v1');
    expect('EXISTS proxy:str on Redis, db 0', await env.db0.exists('proxy:str'), 0);
  }],
  ['name', async (env, lib) => {
    expect('CLIENT GETNAME', await lib.getname(env.client), lib.clientName);
  }],
  ['hits', async (env, lib) => {
    await lib.set(env.client, 'hot', 'h1');
    await lib.hset(env.client, 'hot:h', { a: '1' });
    expect('GET hot', await cachedReads(env, 'GET hot', () => lib.get(env.client, 'hot')), 'h1');
    expect('HGETALL hot:h', await cachedReads(env, 'HGETALL hot:h',
                                              () => lib.hgetall(env.client, 'hot:h')), { a: '1' });
  }],
  ['proxy-write', async (env, lib) => {
    await cachedReads(env, 'GET hot', () => lib.get(env.client, 'hot'));
    const other = await lib.connect(PROXY_PORT, lib.clientName + '-2');
    try {
      await lib.set(other, 'hot', 'h2');
    } finally {
      await lib.close(other);
    }
    expect("GET hot right after another client's SET", await lib.get(env.client, 'hot'), 'h2');
  }],
  ['direct-write', async (env, lib) => {
    expect('GET hot', await cachedReads(env, 'GET hot', () => lib.get(env.client, 'hot')), 'h2');
    await lib.set(env.direct, 'hot', 'h3');
    const written = Date.now();
    for (let got; (got = await lib.get(env.client, 'hot')) !== 'h3'; await sleep(1)) {
      if (Date.now() - written > INVALIDATION_BOUND_MS) {
        throw new Mismatch(`GET hot through the proxy still answers ${show(got)} ` +
                           `${INVALIDATION_BOUND_MS} ms after SET hot h3 on Redis`);
      }
    }
  }],
];

async function main() {
  let passed = 0;
  let failed = 0;
  // Plain connections: NEARCACHE STATS through the proxy, database 0 on Redis.
  const stats = new Redis({ host: HOST, port: PROXY_PORT, maxRetriesPerRequest: 1 });
  const db0 = new Redis({ host: HOST, port: REDIS_PORT, maxRetriesPerRequest: 1 });
  for (const lib of LIBRARIES) {
    console.log(`${lib.name} ${require(`${lib.pkg}/package.json`).version}`);
    await db0.flushall();   // each library starts from empty databases
    const env = { stats, db0, client: await lib.connect(PROXY_PORT, lib.clientName),
                  direct: await lib.connect(REDIS_PORT, lib.clientName) };
    for (const [name, check] of CHECKS) {
      try {
        await check(env, lib);
        passed++;
        console.log(`PASS ${lib.name} ${name}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${lib.name} ${name}: ${e.constructor.name}: ${e.message}`);
      }
    }
    await lib.close(env.client);
    await lib.close(env.direct);
  }
  await stats.quit();
  await db0.quit();
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

main().then((status) => process.exit(status), (e) => {
  console.error(`node_clients.js: ${e.stack || e}`);
  process.exit(2);
});
