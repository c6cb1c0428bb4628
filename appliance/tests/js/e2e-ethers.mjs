#!/usr/bin/env node
// End-to-end check of a prividium JSON-RPC endpoint with UNMODIFIED ethers v6.
//
// Usage:
//   NODE_EXTRA_CA_CERTS=/path/ca.pem node appliance/tests/js/e2e-ethers.mjs /path/dev.json
//
// dev.json:
//   {"rpc_url": "https://127.0.0.1:PORT", "chain_id": N, "api_key": "hex",
//    "ca_cert": "/path/ca.pem",
//    "accounts": [{"address": "0x..", "private_key": "0x.."}, ...]}   (>= 3 accounts)
//
// TLS: the appliance uses its own CA. Node reads NODE_EXTRA_CA_CERTS only at
// process start, so the CALLER must set NODE_EXTRA_CA_CERTS to dev.json's
// ca_cert before starting node. With an https:// rpc_url the script refuses
// to run without it.
//
// Dev-only: if rpc_url starts with http:// (e.g. plain anvil for validating
// this script), the CA requirement is skipped and so is step (j) (auth checks).
//
// Dependencies: `ethers` is loaded from $PRIVIDIUM_PEERS/node_modules
// (default ~/.cache/prividium-peers; run deploy/dev/install-peers.sh).
// The BankToken artifact comes from contracts/out/BankToken.json (repo root,
// resolved relative to this file; build it with contracts/compile.sh).
//
// Output: one line per step, then `e2e-ethers: N passed, M failed[, K skipped]`.
// Exit code 0 iff no step failed. Stops at the first failing step.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const NAME = 'e2e-ethers';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '..', '..', '..');
const ARTIFACT = path.join(REPO_ROOT, 'contracts', 'out', 'BankToken.json');
const TX_TIMEOUT_MS = Number(process.env.E2E_TX_TIMEOUT_MS || 60_000);
const TOTAL_TIMEOUT_MS = Number(process.env.E2E_TIMEOUT_MS || 300_000);

function fatal(msg) {
  console.error(`${NAME}: ERROR: ${msg}`);
  console.log(`${NAME}: 0 passed, 1 failed`);
  process.exit(1);
}

// ---- setup -----------------------------------------------------------------
const devPath = process.argv[2];
if (!devPath) fatal('usage: node e2e-ethers.mjs <path-to-dev.json>');
let dev;
try {
  dev = JSON.parse(fs.readFileSync(devPath, 'utf8'));
} catch (e) {
  fatal(`cannot read ${devPath}: ${e.message}`);
}
for (const k of ['rpc_url', 'chain_id', 'accounts']) {
  if (dev[k] === undefined) fatal(`${devPath}: missing "${k}"`);
}
if (!Array.isArray(dev.accounts) || dev.accounts.length < 3) {
  fatal(`${devPath}: need at least 3 accounts, got ${dev.accounts?.length}`);
}
const RPC_URL = String(dev.rpc_url);
const CHAIN_ID = Number(dev.chain_id);
const IS_HTTPS = RPC_URL.startsWith('https://');
const IS_DEV_HTTP = RPC_URL.startsWith('http://');
if (!IS_HTTPS && !IS_DEV_HTTP) fatal(`rpc_url must be http(s)://..., got ${RPC_URL}`);

if (IS_HTTPS) {
  if (!process.env.NODE_EXTRA_CA_CERTS) {
    fatal(
      `rpc_url is https but NODE_EXTRA_CA_CERTS is not set; node only trusts the ` +
        `appliance CA if it is set before node starts. Run:\n` +
        `  NODE_EXTRA_CA_CERTS=${dev.ca_cert ?? '<ca_cert from dev.json>'} node ${fileURLToPath(import.meta.url)} ${devPath}`,
    );
  }
  if (dev.ca_cert && path.resolve(process.env.NODE_EXTRA_CA_CERTS) !== path.resolve(dev.ca_cert)) {
    // Accept a bundle that contains the CA; otherwise TLS would fail later with
    // a less obvious "unable to verify the first certificate".
    const pemBlocks = (f) => {
      try {
        return fs.readFileSync(f, 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
      } catch {
        return [];
      }
    };
    const norm = (b) => b.replace(/\s+/g, '');
    const have = new Set(pemBlocks(process.env.NODE_EXTRA_CA_CERTS).map(norm));
    const want = pemBlocks(dev.ca_cert).map(norm);
    if (want.length === 0) fatal(`ca_cert ${dev.ca_cert} from ${devPath} has no PEM certificate`);
    if (!want.every((b) => have.has(b))) {
      fatal(
        `NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS} does not contain dev.json's ca_cert ` +
          `${dev.ca_cert}; start node with NODE_EXTRA_CA_CERTS=${dev.ca_cert}`,
      );
    }
  }
  if (!dev.api_key) fatal(`${devPath}: missing "api_key" (required for https endpoints)`);
}

const PEERS = process.env.PRIVIDIUM_PEERS || path.join(os.homedir(), '.cache', 'prividium-peers');
let ethers;
try {
  ethers = createRequire(path.join(path.resolve(PEERS), 'package.json'))('ethers');
} catch (e) {
  fatal(`cannot load ethers from ${PEERS}/node_modules (${e.message}); run deploy/dev/install-peers.sh`);
}
if (!String(ethers.version).startsWith('6.')) fatal(`need ethers v6, got ${ethers.version}`);

let artifact;
try {
  artifact = JSON.parse(fs.readFileSync(ARTIFACT, 'utf8'));
} catch (e) {
  fatal(`cannot read ${ARTIFACT}: ${e.message} (run contracts/compile.sh)`);
}

const req = new ethers.FetchRequest(RPC_URL);
if (dev.api_key) req.setHeader('Authorization', 'Bearer ' + dev.api_key);
req.timeout = TX_TIMEOUT_MS;
const provider = new ethers.JsonRpcProvider(req, CHAIN_ID, {
  staticNetwork: true,
  cacheTimeout: -1,
  pollingInterval: 250,
});
const wallets = dev.accounts.map((a) => new ethers.Wallet(a.private_key, provider));
for (const [i, a] of dev.accounts.entries()) {
  if (a.address && ethers.getAddress(a.address) !== wallets[i].address) {
    fatal(`accounts[${i}]: address ${a.address} does not match its private key (${wallets[i].address})`);
  }
}
const [w0, w1, w2] = wallets;

// ---- tiny harness ------------------------------------------------------------
let passed = 0;
let failed = 0;
let skipped = 0;

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}
function assertEq(actual, expected, what) {
  const a = typeof actual === 'string' ? actual.toLowerCase() : actual;
  const e = typeof expected === 'string' ? expected.toLowerCase() : expected;
  if (a !== e) throw new Error(`${what}: expected ${expected}, got ${actual}`);
}
async function waitOk(tx, what) {
  const receipt = await tx.wait(1, TX_TIMEOUT_MS);
  assert(receipt, `${what}: no receipt for ${tx.hash}`);
  assertEq(receipt.status, 1, `${what}: receipt.status`);
  return receipt;
}

const steps = [];
function step(id, title, fn, { skip } = {}) {
  steps.push({ id, title, fn, skip });
}

// ---- shared state between steps ------------------------------------------------
const SUPPLY = ethers.parseUnits('1000000', 18);
const AMOUNT = ethers.parseUnits('1234.5', 18);
const ETH_AMOUNT = ethers.parseEther('0.01');
let token; // ethers.Contract
let tokenAddr;
let xferTx; // TransactionResponse of step c
let xferReceipt;
const iface = new ethers.Interface(artifact.abi);
const TRANSFER_TOPIC = iface.getEvent('Transfer').topicHash;

// ---- steps -----------------------------------------------------------------
step('a', 'chainId and blockNumber', async () => {
  const hex = await provider.send('eth_chainId', []);
  assertEq(Number(BigInt(hex)), CHAIN_ID, 'eth_chainId');
  const bn = await provider.getBlockNumber();
  assert(typeof bn === 'number' && Number.isInteger(bn) && bn >= 0, `blockNumber is not a number: ${bn}`);
  return `chainId=${CHAIN_ID} block=${bn}`;
});

step('b', 'deploy BankToken', async () => {
  const factory = new ethers.ContractFactory(artifact.abi, artifact.bytecode, w0);
  const c = await factory.deploy('Bank Token', 'BANK', SUPPLY);
  const receipt = await waitOk(c.deploymentTransaction(), 'deploy');
  assert(receipt.contractAddress, 'deploy receipt has no contractAddress');
  tokenAddr = ethers.getAddress(receipt.contractAddress);
  assertEq(tokenAddr, await c.getAddress(), 'contractAddress vs predicted address');
  const code = await provider.getCode(tokenAddr);
  assert(code && code !== '0x' && code.length > 2, `getCode(${tokenAddr}) is empty`);
  token = new ethers.Contract(tokenAddr, artifact.abi, w0);
  return `at ${tokenAddr} block ${receipt.blockNumber}`;
});

step('c', 'ERC-20 transfer account0 -> account1', async () => {
  xferTx = await token.transfer(w1.address, AMOUNT);
  xferReceipt = await waitOk(xferTx, 'transfer');
  return `tx ${xferTx.hash}`;
});

step('d', 'balances and totalSupply via eth_call', async () => {
  assertEq(await token.balanceOf(w1.address), AMOUNT, 'balanceOf(account1)');
  assertEq(await token.balanceOf(w0.address), SUPPLY - AMOUNT, 'balanceOf(account0)');
  assertEq(await token.totalSupply(), SUPPLY, 'totalSupply');
  assertEq(await token.decimals(), 18n, 'decimals');
  assertEq(await token.symbol(), 'BANK', 'symbol');
});

step('e', 'getTransactionReceipt / getTransaction by hash', async () => {
  const r = await provider.getTransactionReceipt(xferTx.hash);
  assert(r, `getTransactionReceipt(${xferTx.hash}) returned null`);
  assertEq(r.hash, xferTx.hash, 'receipt.hash');
  assertEq(r.status, 1, 'receipt.status');
  assertEq(r.blockNumber, xferReceipt.blockNumber, 'receipt.blockNumber');
  assertEq(r.blockHash, xferReceipt.blockHash, 'receipt.blockHash');
  assertEq(r.logs.length, 1, 'receipt.logs.length');
  const log = r.logs[0];
  assertEq(log.address, tokenAddr, 'log.address');
  assertEq(log.topics[0], TRANSFER_TOPIC, 'log.topics[0] (Transfer)');
  assertEq(log.topics[1], ethers.zeroPadValue(w0.address, 32), 'log.topics[1] (from)');
  assertEq(log.topics[2], ethers.zeroPadValue(w1.address, 32), 'log.topics[2] (to)');
  const tx = await provider.getTransaction(xferTx.hash);
  assert(tx, `getTransaction(${xferTx.hash}) returned null`);
  assertEq(tx.from, w0.address, 'tx.from');
  assertEq(tx.to, tokenAddr, 'tx.to');
  assertEq(tx.blockNumber, xferReceipt.blockNumber, 'tx.blockNumber');
});

step('f', 'getLogs finds the Transfer', async () => {
  const logs = await provider.getLogs({ address: tokenAddr, topics: [TRANSFER_TOPIC], fromBlock: 0 });
  // Expect the mint (from 0x0) and our transfer.
  const mine = logs.filter((l) => l.transactionHash.toLowerCase() === xferTx.hash.toLowerCase());
  assertEq(mine.length, 1, `logs for tx ${xferTx.hash} (of ${logs.length} Transfer logs)`);
  const ev = iface.parseLog(mine[0]);
  assertEq(ev.name, 'Transfer', 'event name');
  assertEq(ev.args.from, w0.address, 'Transfer.from');
  assertEq(ev.args.to, w1.address, 'Transfer.to');
  assertEq(ev.args.value, AMOUNT, 'Transfer.value');
  assertEq(mine[0].blockNumber, xferReceipt.blockNumber, 'log.blockNumber');
  const mint = logs.find((l) => l.topics[1] === ethers.zeroPadValue(ethers.ZeroAddress, 32));
  assert(mint, 'mint Transfer(0x0 -> account0) log not found');
  return `${logs.length} Transfer logs`;
});

step('g', 'reverting transfer is rejected, balances unchanged', async () => {
  const bal0 = await token.balanceOf(w0.address);
  const bal1 = await token.balanceOf(w1.address);
  let err;
  try {
    const tx = await token.connect(w1).transfer(w0.address, bal1 + 1n);
    // Should not get here; if a node accepted it anyway, make sure it failed.
    await tx.wait(1, TX_TIMEOUT_MS).catch((e) => {
      err = e;
    });
    if (!err) throw new Error(`over-balance transfer was accepted and mined: ${tx.hash}`);
  } catch (e) {
    err = err ?? e;
  }
  const msg = `${err?.message ?? ''} ${err?.shortMessage ?? ''} ${err?.info?.error?.message ?? ''}`;
  assert(/revert/i.test(msg), `expected an execution-reverted error, got: ${err?.message ?? err}`);
  let detail = err.code ?? '';
  if (err.revert?.name) detail += ` ${err.revert.name}`;
  else if (err.data && err.data !== '0x') {
    try {
      detail += ` ${iface.parseError(err.data)?.name}`;
    } catch {}
  }
  assertEq(await token.balanceOf(w0.address), bal0, 'balanceOf(account0) after revert');
  assertEq(await token.balanceOf(w1.address), bal1, 'balanceOf(account1) after revert');
  return detail.trim();
});

step('h', 'plain ETH transfer to a fresh address', async () => {
  const to = ethers.Wallet.createRandom().address;
  assertEq(await provider.getBalance(to), 0n, 'fresh address balance before');
  const tx = await w2.sendTransaction({ to, value: ETH_AMOUNT });
  const r = await waitOk(tx, 'ETH transfer');
  assertEq(await provider.getBalance(to), ETH_AMOUNT, `balance of ${to}`);
  return `block ${r.blockNumber}`;
});

step('i', 'getBlock includes the transfer tx', async () => {
  const blk = await provider.getBlock(xferReceipt.blockNumber, true);
  assert(blk, `getBlock(${xferReceipt.blockNumber}, true) returned null`);
  assertEq(blk.number, xferReceipt.blockNumber, 'block.number');
  assertEq(blk.hash, xferReceipt.blockHash, 'block.hash');
  assert(
    blk.transactions.map((h) => h.toLowerCase()).includes(xferTx.hash.toLowerCase()),
    `block ${blk.number} transactions do not include ${xferTx.hash}`,
  );
  const pre = blk.prefetchedTransactions.find((t) => t.hash.toLowerCase() === xferTx.hash.toLowerCase());
  assert(pre, 'prefetchedTransactions does not include the transfer');
  assertEq(pre.from, w0.address, 'prefetched tx.from');
  const byHash = await provider.getBlock(xferReceipt.blockHash);
  assert(byHash, `getBlock(${xferReceipt.blockHash}) returned null`);
  assertEq(byHash.number, xferReceipt.blockNumber, 'getBlock(hash).number');
  assert(
    byHash.transactions.map((h) => h.toLowerCase()).includes(xferTx.hash.toLowerCase()),
    'getBlock(hash) transactions do not include the transfer',
  );
});

step(
  'j',
  'auth: no bearer token -> 401 on eth_getBalance, eth_chainId allowed',
  async () => {
    const rpc = async (method, params) => {
      const res = await fetch(RPC_URL, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
        signal: AbortSignal.timeout(TX_TIMEOUT_MS),
      });
      const text = await res.text();
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        throw new Error(`${method} without auth: HTTP ${res.status}, body is not JSON: ${text.slice(0, 200)}`);
      }
      return { status: res.status, body };
    };
    const bal = await rpc('eth_getBalance', [w0.address, 'latest']);
    assertEq(bal.status, 401, 'HTTP status of eth_getBalance without Authorization');
    assert(
      bal.body && typeof bal.body.error === 'object' && bal.body.error !== null,
      `401 body has no JSON-RPC error object: ${JSON.stringify(bal.body)}`,
    );
    assert(bal.body.result === undefined, '401 body must not carry a result');
    const cid = await rpc('eth_chainId', []);
    assertEq(cid.status, 200, 'HTTP status of eth_chainId without Authorization');
    assert(cid.body.result !== undefined, `eth_chainId without auth has no result: ${JSON.stringify(cid.body)}`);
    assertEq(Number(BigInt(cid.body.result)), CHAIN_ID, 'eth_chainId (no auth)');
    return `error ${bal.body.error.code}: ${bal.body.error.message}`;
  },
  { skip: IS_DEV_HTTP ? 'plain http:// dev endpoint (no TLS/auth)' : undefined },
);

// ---- run ---------------------------------------------------------------------
const watchdog = setTimeout(() => {
  console.error(`${NAME}: ERROR: overall timeout after ${TOTAL_TIMEOUT_MS} ms`);
  console.log(`${NAME}: ${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);
watchdog.unref();

console.log(`${NAME}: ethers ${ethers.version} -> ${RPC_URL} (chain ${CHAIN_ID})`);
for (const s of steps) {
  if (s.skip) {
    skipped++;
    console.log(`skip ${s.id}. ${s.title} (${s.skip})`);
    continue;
  }
  const t0 = Date.now();
  try {
    const info = await s.fn();
    passed++;
    console.log(`ok   ${s.id}. ${s.title}${info ? ` — ${info}` : ''} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${s.id}. ${s.title}: ${e?.message ?? e}`);
    if (e?.stack && process.env.E2E_VERBOSE) console.error(e.stack);
    break; // later steps depend on earlier ones
  }
}
provider.destroy();
clearTimeout(watchdog);
console.log(`${NAME}: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
