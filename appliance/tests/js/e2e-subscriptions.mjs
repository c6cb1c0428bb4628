#!/usr/bin/env node
// Live updates from a prividium node with UNMODIFIED viem, ethers and the
// `ws` WebSocket client: polled filters over HTTP, eth_subscribe over
// WebSocket, filtered by the subscriber's rights, and the ways a socket is
// refused or closed.
//
// Usage (appliance/tests/it/subscriptions.rs runs it):
//   NODE_EXTRA_CA_CERTS=ca.pem node e2e-subscriptions.mjs dev.json
// Environment: PRIVIDIUM_PEERS (node_modules with viem, ethers),
//   TRADER_TOKEN, TRADER_WALLET, TRADER_PRIVATE_KEY (an API key of role
//   trader bound to a funded wallet), NODE_PID (for its memory),
//   REVOKE_CMD (a shell command that revokes the trader's key).
// The node must run with --ws-send-queue 16 (the slow-consumer check).
//
// Output: one line per step, then `e2e-subscriptions: N passed, M failed`.

import fs from 'node:fs';
import path from 'node:path';
import { execSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const NAME = 'e2e-subscriptions';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACT = path.resolve(HERE, '..', '..', '..', 'contracts', 'out', 'BankToken.json');
const dev = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const PEERS = process.env.PRIVIDIUM_PEERS;
const peer = createRequire(path.join(PEERS, 'node_modules', 'ethers', 'package.json'));
const ethers = peer('ethers');
const WebSocket = peer('ws');
const viem = await import(path.join(PEERS, 'node_modules', 'viem', '_esm', 'index.js'));
const artifact = JSON.parse(fs.readFileSync(ARTIFACT, 'utf8'));

const RPC_URL = dev.rpc_url;
const WS_URL = RPC_URL.replace(/^https:/, 'wss:');
const ADMIN = dev.api_key;
const TRADER = process.env.TRADER_TOKEN;
const TRADER_WALLET = ethers.getAddress(process.env.TRADER_WALLET);
const T0 = Date.now();
const trace = (what) => process.env.E2E_TRACE && console.log(`     [${((Date.now() - T0) / 1000).toFixed(1)} s] ${what}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Nothing here may hang the test suite.
setTimeout(() => {
  console.log(`${NAME}: still running after 8 minutes; ${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 8 * 60_000).unref();

let passed = 0;
let failed = 0;
async function step(name, fn, ms = 60_000) {
  try {
    let timer;
    const limit = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`step still running after ${ms / 1000} s`)), ms);
    });
    await Promise.race([fn(), limit]).finally(() => clearTimeout(timer));
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
async function until(what, cond, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}
function rss() {
  const status = fs.readFileSync(`/proc/${process.env.NODE_PID}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]) * 1024;
}

// The receipt of a sent transaction, polled: ethers' wait() listens for the
// next block, and a chain that makes no empty blocks may have none.
async function mined(sent, provider_ = provider) {
  const tx = await sent;
  let receipt = null;
  await until(`receipt of ${tx.hash}`, async () => {
    receipt = await provider_.getTransactionReceipt(tx.hash);
    return receipt !== null;
  }, 30_000);
  assert(receipt.status === 1, `${tx.hash} reverted`);
  return receipt;
}

// A raw JSON-RPC WebSocket client: calls by id, notifications by
// subscription, the close code.
function connect(token, opts = {}) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  const ws = new WebSocket(WS_URL, { headers, ...opts });
  const c = { ws, pending: new Map(), notes: new Map(), closed: null, nextId: 1 };
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    const all = Array.isArray(msg) ? msg : [msg];
    for (const m of all) {
      if (m.method === 'eth_subscription') {
        const list = c.notes.get(m.params.subscription) || [];
        list.push(m.params.result);
        c.notes.set(m.params.subscription, list);
      } else if (c.pending.has(m.id)) {
        c.pending.get(m.id)(m);
        c.pending.delete(m.id);
      }
    }
  });
  ws.on('close', (code, reason) => {
    c.closed = { code, reason: reason.toString() };
    // Calls that will never be answered.
    for (const resolve of c.pending.values()) resolve({ error: { code: 'closed', message: `socket closed ${code}` } });
    c.pending.clear();
  });
  ws.on('error', () => {});
  c.open = new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
  c.call = (method, params = []) =>
    new Promise((resolve) => {
      const id = c.nextId++;
      if (c.closed) return resolve({ error: { code: 'closed', message: 'socket closed' } });
      c.pending.set(id, resolve);
      ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  c.got = (sub) => c.notes.get(sub) || [];
  return c;
}

// ---- set up: the token and the clients watching it ------------------------
const req = new ethers.FetchRequest(RPC_URL);
req.setHeader('Authorization', `Bearer ${ADMIN}`);
// cacheTimeout -1: ethers otherwise answers a repeated eth_getTransactionCount
// from a 250 ms cache, and on 100 ms blocks two sends in a row get one nonce.
const provider = new ethers.JsonRpcProvider(req, dev.chain_id, { staticNetwork: true, cacheTimeout: -1, pollingInterval: 100 });
const admin = new ethers.Wallet(dev.accounts[0].private_key, provider);
const factory = new ethers.ContractFactory(artifact.abi, artifact.bytecode, admin);
const deployed = await factory.deploy('Bank Token', 'BANK', 1_000_000n);
const token = (await mined(deployed.deploymentTransaction())).contractAddress;
const erc20 = new ethers.Contract(token, artifact.abi, admin);
const transferEvent = viem.parseAbi(['event Transfer(address indexed from, address indexed to, uint256 value)']);
const chain = viem.defineChain({
  id: dev.chain_id,
  name: 'prividium',
  nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
  rpcUrls: { default: { http: [RPC_URL], webSocket: [WS_URL] } },
});

const httpMethods = new Set();
const viemHttp = viem.createPublicClient({
  chain,
  pollingInterval: 150,
  transport: viem.http(RPC_URL, {
    fetchOptions: { headers: { Authorization: `Bearer ${ADMIN}` } },
    onFetchRequest: async (request) => {
      const body = await request.clone().json();
      for (const b of Array.isArray(body) ? body : [body]) httpMethods.add(b.method);
    },
  }),
});
const viemWs = viem.createPublicClient({
  chain,
  transport: viem.webSocket(WS_URL, { keepAlive: false, reconnect: false }),
});
const seen = { httpLogs: [], httpBlocks: [], wsLogs: [], wsBlocks: [], ethers: [] };
const unwatch = [];

await step('a viem client over WebSocket authenticates with prividium_auth (no header in browsers)', async () => {
  const who = await viemWs.request({ method: 'prividium_auth', params: [ADMIN] });
  assert(who && who.principal, `prividium_auth answered ${JSON.stringify(who)}`);
});

unwatch.push(
  viemHttp.watchContractEvent({ address: token, abi: transferEvent, eventName: 'Transfer', poll: true, onLogs: (l) => seen.httpLogs.push(...l) }),
  viemHttp.watchBlocks({ onBlock: (b) => seen.httpBlocks.push(b) }),
  viemWs.watchContractEvent({ address: token, abi: transferEvent, eventName: 'Transfer', onLogs: (l) => seen.wsLogs.push(...l) }),
  viemWs.watchBlocks({ onBlock: (b) => seen.wsBlocks.push(b) }),
);
const ethersWs = new ethers.WebSocketProvider(
  () => new WebSocket(WS_URL, { headers: { Authorization: `Bearer ${ADMIN}` } }),
  dev.chain_id,
  { staticNetwork: true },
);
await new ethers.Contract(token, artifact.abi, ethersWs).on('Transfer', (from, to, value) => {
  seen.ethers.push({ from, to, value });
});

const adminSock = connect(ADMIN);
const traderSock = connect(TRADER);
await adminSock.open;
await traderSock.open;
const adminLogs = (await adminSock.call('eth_subscribe', ['logs', { address: token }])).result;
const traderLogs = (await traderSock.call('eth_subscribe', ['logs', { address: token }])).result;
const traderPending = (await traderSock.call('eth_subscribe', ['newPendingTransactions'])).result;
const traderHeads = (await traderSock.call('eth_subscribe', ['newHeads'])).result;
// Subscriptions and filters start now; give the pollers one round.
await sleep(500);

const stranger = ethers.Wallet.createRandom().address;
await mined(erc20.transfer(stranger, 1n));
await mined(erc20.transfer(TRADER_WALLET, 2n));

// ---- what each client saw ---------------------------------------------------
await step('viem watchContractEvent over http() sees both transfers through eth_newFilter/eth_getFilterChanges', async () => {
  await until('two Transfer logs over http', () => seen.httpLogs.length >= 2);
  assert(httpMethods.has('eth_newFilter') && httpMethods.has('eth_getFilterChanges'), `methods used: ${[...httpMethods]}`);
  const values = seen.httpLogs.map((l) => l.args.value).sort();
  assert(values[0] === 1n && values[1] === 2n, `values ${values}`);
});
await step('viem watchBlocks over http() sees new blocks', async () => {
  await until('a block over http', () => seen.httpBlocks.length >= 1);
});
await step('viem watchContractEvent over webSocket() sees both transfers', async () => {
  await until('two Transfer logs over ws', () => seen.wsLogs.length >= 2);
  assert(seen.wsLogs.every((l) => l.address.toLowerCase() === token.toLowerCase()), 'a log of another contract');
});
await step('viem watchBlocks over webSocket() gets newHeads', async () => {
  await until('a block over ws', () => seen.wsBlocks.length >= 1);
  const b = seen.wsBlocks[seen.wsBlocks.length - 1];
  assert(typeof b.number === 'bigint' && b.hash && b.stateRoot, `block ${JSON.stringify(b, (_, v) => (typeof v === 'bigint' ? v.toString() : v))}`);
});
await step('ethers WebSocketProvider contract.on("Transfer") fires for both transfers', async () => {
  await until('two ethers events', () => seen.ethers.length >= 2);
  assert(seen.ethers.some((e) => e.to === TRADER_WALLET && e.value === 2n), 'no transfer to the trader');
});
await step("a trader's subscription gets only the transfer naming its wallet; the admin's gets both", async () => {
  await until("the admin's two logs", () => adminSock.got(adminLogs).length >= 2);
  await until("the trader's log", () => traderSock.got(traderLogs).length >= 1);
  await sleep(500);
  const mine = traderSock.got(traderLogs);
  assert(mine.length === 1, `trader got ${mine.length} logs: ${JSON.stringify(mine)}`);
  assert(mine[0].topics[2].toLowerCase().endsWith(TRADER_WALLET.slice(2).toLowerCase()), `trader got ${JSON.stringify(mine[0])}`);
  assert(traderSock.got(traderHeads).length >= 1, 'the trader got no headers');
});
await step('newPendingTransactions shows a trader its own transactions only', async () => {
  const before = traderSock.got(traderPending).length;
  trace('admin sends');
  const adminTx = await admin.sendTransaction({ to: stranger, value: 1n });
  trace('admin sent');
  await mined(adminTx);
  trace('admin mined');
  const treq = new ethers.FetchRequest(RPC_URL);
  treq.setHeader('Authorization', `Bearer ${TRADER}`);
  const tprov = new ethers.JsonRpcProvider(treq, dev.chain_id, { staticNetwork: true, cacheTimeout: -1, pollingInterval: 100 });
  const trader = new ethers.Wallet(process.env.TRADER_PRIVATE_KEY, tprov);
  const own = await trader.sendTransaction({ to: dev.accounts[0].address, value: 1n });
  trace('trader sent');
  await until("the trader's own hash", () => traderSock.got(traderPending).includes(own.hash));
  const got = traderSock.got(traderPending).slice(before);
  assert(!got.includes(adminTx.hash), "the admin's pending transaction reached the trader");
  await mined(own, tprov);
});

// ---- refusals and limits ----------------------------------------------------
await step('malformed subscriptions get -32602 and the socket stays usable', async () => {
  const bad = await traderSock.call('eth_subscribe', ['logs', { address: 7 }]);
  assert(bad.error && bad.error.code === -32602, JSON.stringify(bad));
  const unknown = await traderSock.call('eth_subscribe', ['syncing']);
  assert(unknown.error && unknown.error.code === -32602, JSON.stringify(unknown));
  const none = await traderSock.call('eth_unsubscribe', ['0x1234']);
  assert(none.result === false, JSON.stringify(none));
  const id = await traderSock.call('eth_chainId');
  assert(id.result === `0x${dev.chain_id.toString(16)}`, JSON.stringify(id));
});
await step('10,000 subscriptions from one key: the cap holds, every refusal is -32005, the socket survives', async () => {
  const flood = connect(TRADER);
  await flood.open;
  const answers = await Promise.all(Array.from({ length: 10_000 }, () => flood.call('eth_subscribe', ['newHeads'])));
  const ok = answers.filter((a) => a.result).length;
  const refused = answers.filter((a) => a.error);
  assert(ok === 64, `${ok} subscriptions accepted (cap 64)`);
  assert(refused.every((a) => a.error.code === -32005), `other refusals: ${JSON.stringify(refused.find((a) => a.error.code !== -32005))}`);
  assert(refused.some((a) => /subscriptions/.test(a.error.message)), 'no refusal named the cap');
  await sleep(1_100); // the rate limit refills
  const still = await flood.call('eth_chainId');
  assert(still.result && flood.closed === null, `socket after the flood: ${JSON.stringify(still)} ${JSON.stringify(flood.closed)}`);
  flood.ws.close();
});
await step('without a credential: calls get -32001, a bad token -32001, silence closes with 1008', async () => {
  const anon = connect(null);
  await anon.open;
  const pub = await anon.call('eth_chainId');
  assert(pub.result, JSON.stringify(pub));
  const denied = await anon.call('eth_getBalance', [TRADER_WALLET, 'latest']);
  assert(denied.error && denied.error.code === -32001, JSON.stringify(denied));
  const bad = await anon.call('prividium_auth', ['not-a-key']);
  assert(bad.error && bad.error.code === -32001, JSON.stringify(bad));
  await until('the close', () => anon.closed !== null, 15_000);
  assert(anon.closed.code === 1008, JSON.stringify(anon.closed));
});
await step('a connection with a bad header is refused with HTTP 401', async () => {
  const c = connect('not-a-key');
  let err = null;
  await c.open.catch((e) => {
    err = e;
  });
  assert(err && /401/.test(err.message), `upgrade answered ${err}`);
});
await step('a message over the size limit closes the socket (1009)', async () => {
  const big = connect(ADMIN);
  await big.open;
  big.ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: ['x'.repeat(6 * 1024 * 1024)] }));
  await until('the close', () => big.closed !== null, 15_000);
  // 1009 when the close frame gets through; the node stops reading the
  // rest of the message, so the client may see the connection reset.
  assert([1009, 1006].includes(big.closed.code), JSON.stringify(big.closed));
  const health = await adminSock.call('eth_chainId');
  assert(health.result, 'the node stopped answering');
});
await step('a subscriber that stops reading is disconnected and the node stays flat', async () => {
  const slow = connect(ADMIN);
  await slow.open;
  for (let i = 0; i < 64; i++) await slow.call('eth_subscribe', ['logs', { address: token }]);
  slow.ws._socket.pause();
  trace('slow reader paused');
  const before = rss();
  // 300 Transfer logs per transaction, 64 copies each: about 15 MB per
  // transaction for a reader that reads nothing.
  const holders = Array.from({ length: 300 }, () => ethers.Wallet.createRandom().address);
  for (let i = 0; i < 4; i++) {
    await mined(erc20.mintBatch(holders, 1n));
    trace(`mint ${i} mined`);
  }
  // The node waits 5 s for room before it gives up on the reader.
  await sleep(12_000);
  const after = rss();
  slow.ws._socket.resume();
  await until('the slow socket to be closed', () => slow.closed !== null, 30_000);
  assert([1006, 1008].includes(slow.closed.code), JSON.stringify(slow.closed));
  const grown = (after - before) / 1024 / 1024;
  console.log(`     node RSS ${(before / 1048576).toFixed(1)} -> ${(after / 1048576).toFixed(1)} MiB while 64 subscriptions went unread`);
  assert(grown < 48, `node memory grew ${grown.toFixed(1)} MiB`);
  const fine = await adminSock.call('eth_blockNumber');
  assert(fine.result, 'the other admin socket stopped answering');
});
await step("a revoked key's socket is closed with 1008", async () => {
  execSync(process.env.REVOKE_CMD, { stdio: 'ignore' });
  await until('the close', () => traderSock.closed !== null, 15_000);
  assert(traderSock.closed.code === 1008, JSON.stringify(traderSock.closed));
  assert(/no longer valid/.test(traderSock.closed.reason), JSON.stringify(traderSock.closed));
});

for (const u of unwatch) u();
adminSock.ws.close();
await ethersWs.destroy();
console.log(`${NAME}: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
