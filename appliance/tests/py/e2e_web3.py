#!/usr/bin/env python3
"""End-to-end check of a prividium JSON-RPC endpoint with unmodified web3.py (v7/v8).

Usage:
    $PRIVIDIUM_PEERS/venv/bin/python appliance/tests/py/e2e_web3.py /path/dev.json

(If run with a python that lacks web3, the script re-executes itself with
$PRIVIDIUM_PEERS/venv/bin/python, default ~/.cache/prividium-peers; install it
with deploy/dev/install-peers.sh.)

dev.json:
    {"rpc_url": "https://127.0.0.1:PORT", "chain_id": N, "api_key": "hex",
     "ca_cert": "/path/ca.pem",
     "accounts": [{"address": "0x..", "private_key": "0x.."}, ...]}   (>= 3 accounts)

TLS: the appliance CA (dev.json ca_cert) is passed to requests as `verify`; the
bearer token goes in an Authorization header on every request.

Dev-only: if rpc_url starts with http:// (e.g. plain anvil for validating this
script), the CA is not required and step (j) (auth checks) is skipped.

The BankToken artifact is read from contracts/out/BankToken.json (repo root,
resolved relative to this file; build it with contracts/compile.sh).

Output: one line per step, then `e2e-web3: N passed, M failed[, K skipped]`.
Exit code 0 iff no step failed. Stops at the first failing step.
"""

import json
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

NAME = "e2e-web3"
HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent.parent
ARTIFACT = REPO_ROOT / "contracts" / "out" / "BankToken.json"
TX_TIMEOUT = float(os.environ.get("E2E_TX_TIMEOUT_MS", "60000")) / 1000.0
PEERS = Path(os.environ.get("PRIVIDIUM_PEERS") or Path.home() / ".cache" / "prividium-peers")


def fatal(msg):
    print(f"{NAME}: ERROR: {msg}", file=sys.stderr)
    print(f"{NAME}: 0 passed, 1 failed")
    sys.exit(1)


try:
    import requests
    from eth_account import Account
    from web3 import HTTPProvider, Web3
    from web3.exceptions import ContractLogicError
except ImportError as e:
    venv_py = PEERS / "venv" / "bin" / "python"
    if venv_py.exists() and Path(sys.prefix).resolve() != (PEERS / "venv").resolve():
        os.execv(str(venv_py), [str(venv_py), os.path.abspath(__file__), *sys.argv[1:]])
    fatal(f"cannot import web3 ({e}); run deploy/dev/install-peers.sh and use {venv_py}")


# ---- setup -------------------------------------------------------------------
if len(sys.argv) != 2:
    fatal("usage: e2e_web3.py <path-to-dev.json>")
dev_path = sys.argv[1]
try:
    with open(dev_path) as f:
        dev = json.load(f)
except Exception as e:  # noqa: BLE001
    fatal(f"cannot read {dev_path}: {e}")
for k in ("rpc_url", "chain_id", "accounts"):
    if k not in dev:
        fatal(f'{dev_path}: missing "{k}"')
if not isinstance(dev["accounts"], list) or len(dev["accounts"]) < 3:
    fatal(f"{dev_path}: need at least 3 accounts")

RPC_URL = str(dev["rpc_url"])
CHAIN_ID = int(dev["chain_id"])
IS_HTTPS = RPC_URL.startswith("https://")
IS_DEV_HTTP = RPC_URL.startswith("http://")
if not (IS_HTTPS or IS_DEV_HTTP):
    fatal(f"rpc_url must be http(s)://..., got {RPC_URL}")
API_KEY = dev.get("api_key") or ""
CA_CERT = dev.get("ca_cert") or ""
if IS_HTTPS:
    if not CA_CERT or not os.path.isfile(CA_CERT):
        fatal(f"rpc_url is https but ca_cert {CA_CERT!r} from {dev_path} is not a readable file")
    if not API_KEY:
        fatal(f'{dev_path}: missing "api_key" (required for https endpoints)')

try:
    with open(ARTIFACT) as f:
        artifact = json.load(f)
except Exception as e:  # noqa: BLE001
    fatal(f"cannot read {ARTIFACT}: {e} (run contracts/compile.sh)")

# NOTE: a "headers" dict in request_kwargs REPLACES web3.py's default headers,
# so Content-Type must be given explicitly (without it e.g. anvil answers
# -32600 Invalid request).
request_kwargs = {"timeout": TX_TIMEOUT, "headers": {"Content-Type": "application/json"}}
if API_KEY:
    request_kwargs["headers"]["Authorization"] = "Bearer " + API_KEY
if IS_HTTPS:
    request_kwargs["verify"] = CA_CERT
w3 = Web3(HTTPProvider(RPC_URL, request_kwargs=request_kwargs))

accounts = [Account.from_key(a["private_key"]) for a in dev["accounts"]]
for i, (a, acct) in enumerate(zip(dev["accounts"], accounts)):
    if a.get("address") and Web3.to_checksum_address(a["address"]) != acct.address:
        fatal(f"accounts[{i}]: address {a['address']} does not match its private key ({acct.address})")
a0, a1, a2 = accounts[:3]


# ---- helpers -----------------------------------------------------------------
class StepFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise StepFailed(msg)


def check_eq(actual, expected, what):
    norm = lambda v: v.lower() if isinstance(v, str) else v  # noqa: E731
    if norm(actual) != norm(expected):
        raise StepFailed(f"{what}: expected {expected!r}, got {actual!r}")


def hx(v):
    """0x-prefixed lowercase hex of bytes/HexBytes/str."""
    return Web3.to_hex(v).lower() if not isinstance(v, str) else v.lower()


def send(acct, tx):
    """Fill nonce/chainId/gas/fees, sign locally, send raw, wait for a status-1 receipt."""
    tx = dict(tx)
    tx.setdefault("from", acct.address)
    tx.setdefault("chainId", CHAIN_ID)
    tx.setdefault("nonce", w3.eth.get_transaction_count(acct.address, "pending"))
    if "gasPrice" not in tx and "maxFeePerGas" not in tx:
        base = w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
        prio = w3.eth.max_priority_fee
        tx["maxPriorityFeePerGas"] = prio
        tx["maxFeePerGas"] = 2 * base + prio
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas(tx)
    tx.pop("from")
    signed = acct.sign_transaction(tx)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    check_eq(hx(h), hx(signed.hash), "send_raw_transaction returned hash")
    rcpt = w3.eth.wait_for_transaction_receipt(h, timeout=TX_TIMEOUT, poll_latency=0.25)
    check_eq(rcpt["status"], 1, f"receipt.status of {hx(h)}")
    return h, rcpt


# ---- steps -------------------------------------------------------------------
SUPPLY = 1_000_000 * 10**18
AMOUNT = Web3.to_wei(Decimal("1234.5"), "ether")
ETH_AMOUNT = Web3.to_wei(Decimal("0.01"), "ether")
state = {}
steps = []


def step(sid, title, skip=None):
    def deco(fn):
        steps.append((sid, title, fn, skip))
        return fn

    return deco


@step("a", "chain_id and block_number")
def _a():
    check_eq(w3.eth.chain_id, CHAIN_ID, "eth_chainId")
    bn = w3.eth.block_number
    check(isinstance(bn, int) and bn >= 0, f"block_number is not an int: {bn!r}")
    return f"chainId={CHAIN_ID} block={bn}"


@step("b", "deploy BankToken")
def _b():
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = factory.constructor("Bank Token", "BANK", SUPPLY).build_transaction({"from": a0.address})
    _, rcpt = send(a0, tx)
    addr = rcpt["contractAddress"]
    check(addr, "deploy receipt has no contractAddress")
    code = w3.eth.get_code(addr)
    check(len(code) > 0, f"get_code({addr}) is empty")
    state["token"] = w3.eth.contract(address=addr, abi=artifact["abi"])
    return f"at {addr} block {rcpt['blockNumber']}"


@step("c", "ERC-20 transfer account0 -> account1")
def _c():
    token = state["token"]
    tx = token.functions.transfer(a1.address, AMOUNT).build_transaction({"from": a0.address})
    h, rcpt = send(a0, tx)
    state["xfer_hash"], state["xfer_rcpt"] = h, rcpt
    return f"tx {hx(h)}"


@step("d", "balances and totalSupply via eth_call")
def _d():
    f = state["token"].functions
    check_eq(f.balanceOf(a1.address).call(), AMOUNT, "balanceOf(account1)")
    check_eq(f.balanceOf(a0.address).call(), SUPPLY - AMOUNT, "balanceOf(account0)")
    check_eq(f.totalSupply().call(), SUPPLY, "totalSupply")
    check_eq(f.decimals().call(), 18, "decimals")
    check_eq(f.symbol().call(), "BANK", "symbol")


@step("e", "get_transaction_receipt / get_transaction by hash")
def _e():
    token, h, sent = state["token"], state["xfer_hash"], state["xfer_rcpt"]
    r = w3.eth.get_transaction_receipt(h)
    check_eq(hx(r["transactionHash"]), hx(h), "receipt.transactionHash")
    check_eq(r["blockNumber"], sent["blockNumber"], "receipt.blockNumber")
    check_eq(hx(r["blockHash"]), hx(sent["blockHash"]), "receipt.blockHash")
    check_eq(len(r["logs"]), 1, "receipt.logs length")
    log = r["logs"][0]
    check_eq(log["address"], token.address, "log.address")
    transfer_topic = hx(Web3.keccak(text="Transfer(address,address,uint256)"))
    check_eq(hx(log["topics"][0]), transfer_topic, "log.topics[0] (Transfer)")
    ev = token.events.Transfer().process_receipt(r)
    check_eq(len(ev), 1, "decoded Transfer events in receipt")
    check_eq(ev[0]["args"]["value"], AMOUNT, "Transfer.value (receipt)")
    tx = w3.eth.get_transaction(h)
    check_eq(tx["from"], a0.address, "tx.from")
    check_eq(tx["to"], token.address, "tx.to")
    check_eq(tx["blockNumber"], sent["blockNumber"], "tx.blockNumber")


@step("f", "events.Transfer().get_logs(from_block=0) finds the transfer")
def _f():
    token, h = state["token"], state["xfer_hash"]
    logs = list(token.events.Transfer().get_logs(from_block=0))
    mine = [l for l in logs if hx(l["transactionHash"]) == hx(h)]
    check_eq(len(mine), 1, f"Transfer logs for tx {hx(h)} (of {len(logs)})")
    args = mine[0]["args"]
    check_eq(args["from"], a0.address, "Transfer.from")
    check_eq(args["to"], a1.address, "Transfer.to")
    check_eq(args["value"], AMOUNT, "Transfer.value")
    check(any(l["args"]["from"] == "0x" + "00" * 20 for l in logs), "mint Transfer(0x0 -> account0) not found")
    filtered = list(token.events.Transfer().get_logs(argument_filters={"to": a1.address}, from_block=0))
    check(any(hx(l["transactionHash"]) == hx(h) for l in filtered), "get_logs with argument_filters(to) missed it")
    return f"{len(logs)} Transfer logs"


@step("g", "reverting transfer is rejected, balances unchanged")
def _g():
    f = state["token"].functions
    bal0, bal1 = f.balanceOf(a0.address).call(), f.balanceOf(a1.address).call()
    err = None
    try:
        f.transfer(a0.address, bal1 + 1).estimate_gas({"from": a1.address})
    except Exception as e:  # noqa: BLE001
        err = e
    check(err is not None, "estimate_gas of an over-balance transfer did not raise")
    check(
        isinstance(err, ContractLogicError) or "revert" in str(err).lower(),
        f"expected an execution-reverted error, got {type(err).__name__}: {err}",
    )
    check_eq(f.balanceOf(a0.address).call(), bal0, "balanceOf(account0) after revert")
    check_eq(f.balanceOf(a1.address).call(), bal1, "balanceOf(account1) after revert")
    return type(err).__name__


@step("h", "plain ETH transfer to a fresh address")
def _h():
    to = Account.create().address
    check_eq(w3.eth.get_balance(to), 0, "fresh address balance before")
    _, rcpt = send(a2, {"to": to, "value": ETH_AMOUNT})
    check_eq(w3.eth.get_balance(to), ETH_AMOUNT, f"balance of {to}")
    return f"block {rcpt['blockNumber']}"


@step("i", "get_block includes the transfer tx")
def _i():
    h, sent = state["xfer_hash"], state["xfer_rcpt"]
    blk = w3.eth.get_block(sent["blockNumber"], full_transactions=True)
    check_eq(blk["number"], sent["blockNumber"], "block.number")
    check_eq(hx(blk["hash"]), hx(sent["blockHash"]), "block.hash")
    full = [t for t in blk["transactions"] if hx(t["hash"]) == hx(h)]
    check_eq(len(full), 1, "transfer tx in block (full_transactions=True)")
    check_eq(full[0]["from"], a0.address, "block tx.from")
    blk2 = w3.eth.get_block(sent["blockHash"])
    check(hx(h) in [hx(t) for t in blk2["transactions"]], "transfer tx hash not in get_block(hash)")


@step("j", "auth: no bearer token -> 401 on eth_getBalance, eth_chainId allowed",
      skip="plain http:// dev endpoint (no TLS/auth)" if IS_DEV_HTTP else None)
def _j():
    def rpc(method, params):
        r = requests.post(
            RPC_URL,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            verify=CA_CERT,
            timeout=TX_TIMEOUT,
        )
        try:
            return r.status_code, r.json()
        except ValueError:
            raise StepFailed(f"{method} without auth: HTTP {r.status_code}, body is not JSON: {r.text[:200]}")

    status, body = rpc("eth_getBalance", [a0.address, "latest"])
    check_eq(status, 401, "HTTP status of eth_getBalance without Authorization")
    check(isinstance(body, dict) and isinstance(body.get("error"), dict), f"401 body has no JSON-RPC error: {body}")
    check("result" not in body, "401 body must not carry a result")
    status, cbody = rpc("eth_chainId", [])
    check_eq(status, 200, "HTTP status of eth_chainId without Authorization")
    check_eq(int(cbody.get("result", "0x0"), 16), CHAIN_ID, "eth_chainId (no auth)")
    return f"error {body['error'].get('code')}: {body['error'].get('message')}"


# ---- run ---------------------------------------------------------------------
def main():
    import web3 as _web3

    print(f"{NAME}: web3.py {_web3.__version__} -> {RPC_URL} (chain {CHAIN_ID})", flush=True)
    passed = failed = skipped = 0
    for sid, title, fn, skip in steps:
        if skip:
            skipped += 1
            print(f"skip {sid}. {title} ({skip})", flush=True)
            continue
        t0 = time.monotonic()
        try:
            info = fn()
        except Exception as e:  # noqa: BLE001
            failed += 1
            kind = "" if isinstance(e, StepFailed) else f"{type(e).__name__}: "
            print(f"FAIL {sid}. {title}: {kind}{e}", flush=True)
            if os.environ.get("E2E_VERBOSE"):
                import traceback

                traceback.print_exc()
            break  # later steps depend on earlier ones
        passed += 1
        ms = int((time.monotonic() - t0) * 1000)
        print(f"ok   {sid}. {title}{' — ' + info if info else ''} ({ms} ms)", flush=True)
    tail = f", {skipped} skipped" if skipped else ""
    print(f"{NAME}: {passed} passed, {failed} failed{tail}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
