#!/usr/bin/env python3
"""eth_getProof and eth_createAccessList against a prividium node, with
unmodified web3.py, every proof checked by an independent Merkle-Patricia
verifier (the Ethereum Foundation's py-trie, `trie` on PyPI) against the
block's stateRoot.

Usage (appliance/tests/it/insider/proofs.rs runs it):
    $PRIVIDIUM_PEERS/venv/bin/python e2e_proofs.py dev.json
Environment: TRADER_TOKEN, TRADER_PRIVATE_KEY (an API key of role trader
bound to a funded wallet).

Output: one line per step, then `e2e-proofs: N passed, M failed`.
"""

import json
import os
import sys
from pathlib import Path

import rlp
from eth_account import Account
from eth_utils import keccak
from trie import HexaryTrie
from trie.exceptions import BadTrieProof
from web3 import HTTPProvider, Web3

NAME = "e2e-proofs"
HERE = Path(__file__).resolve().parent
ARTIFACT = HERE.parent.parent.parent / "contracts" / "out" / "BankToken.json"
EMPTY_ROOT = bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")
EMPTY_CODE = keccak(b"")

dev = json.loads(Path(sys.argv[1]).read_text())
artifact = json.loads(ARTIFACT.read_text())


def client(token):
    return Web3(
        HTTPProvider(
            dev["rpc_url"],
            request_kwargs={
                "timeout": 60,
                "verify": dev["ca_cert"],
                "headers": {"Content-Type": "application/json", "Authorization": "Bearer " + token},
            },
        )
    )


w3 = client(dev["api_key"])
tw3 = client(os.environ["TRADER_TOKEN"])
admin = Account.from_key(dev["accounts"][0]["private_key"])
trader = Account.from_key(os.environ["TRADER_PRIVATE_KEY"])
stranger = Account.create().address
passed = failed = 0


def step(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   {name}", flush=True)
    except Exception as e:  # noqa: BLE001
        failed += 1
        print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def send(tx):
    tx = dict(tx)
    tx.setdefault("from", admin.address)
    tx.setdefault("chainId", dev["chain_id"])
    tx.setdefault("nonce", w3.eth.get_transaction_count(admin.address, "pending"))
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas(tx)
    tx.setdefault("maxFeePerGas", w3.eth.gas_price * 2 + 1)
    tx.setdefault("maxPriorityFeePerGas", 0)
    signed = admin.sign_transaction(tx)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(h, timeout=60, poll_latency=0.1)
    check(receipt.status == 1, f"{h.hex()} reverted")
    return receipt


def as_int(v):
    """web3.py answers slot values as HexBytes, other quantities as ints."""
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        return int(v, 16)
    return int.from_bytes(bytes(v), "big")


def raw(w, method, params):
    return w.provider.make_request(method, params)


def verified_account(proof, root):
    """The account the proof shows under `root` (None: absent); raises
    BadTrieProof when the nodes do not lead from the root."""
    nodes = [rlp.decode(bytes(n)) for n in proof["accountProof"]]
    leaf = HexaryTrie.get_from_proof(root, keccak(bytes.fromhex(proof["address"][2:])), nodes)
    if leaf == b"":
        return None
    nonce, balance, storage_root, code_hash = rlp.decode(leaf)
    return {
        "nonce": int.from_bytes(nonce, "big"),
        "balance": int.from_bytes(balance, "big"),
        "storageHash": storage_root,
        "codeHash": code_hash,
    }


def verified_slot(entry, storage_root):
    nodes = [rlp.decode(bytes(n)) for n in entry["proof"]]
    key = int(entry["key"].hex(), 16) if not isinstance(entry["key"], int) else entry["key"]
    leaf = HexaryTrie.get_from_proof(storage_root, keccak(key.to_bytes(32, "big")), nodes)
    return 0 if leaf == b"" else int.from_bytes(rlp.decode(leaf), "big")


def at(number):
    """A block number and its stateRoot, read as a verifier would."""
    return number, bytes(w3.eth.get_block(number)["stateRoot"])


# ---- set up: a token with three holders ----------------------------------------
factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
token_addr = send(factory.constructor("Bank Token", "BANK", 1_000_000).build_transaction({"from": admin.address})).contractAddress
token = w3.eth.contract(address=token_addr, abi=artifact["abi"])
send(token.functions.transfer(trader.address, 700).build_transaction({"from": admin.address}))
balance_call = {"from": admin.address, "to": token_addr, "data": token.encode_abi("balanceOf", [trader.address])}
state = {}


def access_list_of_a_read():
    got = w3.eth.create_access_list(balance_call)
    entries = got["accessList"]
    check(len(entries) == 1, f"one contract expected: {entries}")
    check(entries[0]["address"].lower() == token_addr.lower(), f"{entries}")
    check(len(entries[0]["storageKeys"]) == 1, f"one slot expected: {entries}")
    state["slot"] = entries[0]["storageKeys"][0]
    check(got["gasUsed"] > 21_000, f"gasUsed {got['gasUsed']}")


def access_list_matches_the_mined_gas():
    tx = token.functions.transfer(stranger, 5).build_transaction({"from": admin.address})
    got = w3.eth.create_access_list({k: tx[k] for k in ("from", "to", "data")})
    slots = {k.hex() if not isinstance(k, str) else k for e in got["accessList"] for k in e["storageKeys"]}
    check(len(slots) == 2, f"two balances expected: {got['accessList']}")
    access_list = [
        {"address": e["address"], "storageKeys": [k if isinstance(k, str) else Web3.to_hex(k) for k in e["storageKeys"]]}
        for e in got["accessList"]
    ]
    receipt = send({"to": token_addr, "data": tx["data"], "accessList": access_list, "gas": got["gasUsed"] + 50_000})
    check(receipt.gasUsed == got["gasUsed"], f"mined {receipt.gasUsed} gas, createAccessList said {got['gasUsed']}")
    check(receipt.type == 2, f"type {receipt.type}")


def a_revert_is_reported_with_the_list():
    data = token.encode_abi("transfer", [stranger, 10**30])
    r = raw(w3, "eth_createAccessList", [{"from": admin.address, "to": token_addr, "data": data}])
    check("result" in r and "execution reverted" in r["result"].get("error", ""), f"{r}")


def token_proof_verifies():
    number, root = at(w3.eth.block_number)
    proof = w3.eth.get_proof(token_addr, [state["slot"]], number)
    account = verified_account(proof, root)
    check(account is not None, "the token is shown absent")
    check(account["nonce"] == proof["nonce"] and account["balance"] == proof["balance"], f"{account} vs {proof}")
    check(account["storageHash"] == bytes(proof["storageHash"]), "storageHash differs from the proven leaf")
    check(account["codeHash"] == bytes(proof["codeHash"]), "codeHash differs from the proven leaf")
    check(account["codeHash"] == keccak(bytes(w3.eth.get_code(token_addr))), "codeHash is not the code's hash")
    entry = proof["storageProof"][0]
    value = verified_slot(entry, account["storageHash"])
    answered = as_int(entry["value"])
    check(value == answered == 700, f"slot proven {value}, answered {answered}, balanceOf 700")
    state["old"] = (number, root, proof)


def absent_account_and_slot_verify():
    number, root = at(w3.eth.block_number)
    nobody = Account.create().address
    proof = w3.eth.get_proof(nobody, ["0x0"], number)
    check(verified_account(proof, root) is None, "a random address proven present")
    check(proof["balance"] == 0 and proof["nonce"] == 0, f"{proof}")
    check(bytes(proof["codeHash"]) == EMPTY_CODE and bytes(proof["storageHash"]) == EMPTY_ROOT, f"{proof}")
    check(as_int(proof["storageProof"][0]["value"]) == 0 and not proof["storageProof"][0]["proof"], f"{proof}")
    # An unset slot of a contract: a proof of absence under its storage root.
    token_proof = w3.eth.get_proof(token_addr, ["0x" + "ab" * 32], number)
    entry = token_proof["storageProof"][0]
    check(as_int(entry["value"]) == 0, f"{entry}")
    check(verified_slot(entry, bytes(token_proof["storageHash"])) == 0, "unset slot proven set")


def a_forged_answer_is_caught():
    _, root, proof = state["old"]
    # One bit of the leaf flipped (inside the code hash): the path no longer
    # hashes to the root.
    tampered = list(proof["accountProof"])
    leaf = bytearray(bytes(tampered[-1]))
    leaf[-1] ^= 1
    tampered[-1] = bytes(leaf)
    try:
        got = verified_account({**proof, "accountProof": tampered}, root)
    except BadTrieProof:
        return
    raise AssertionError(f"a tampered proof verified: {got}")


def later_blocks_change_the_root():
    number, root, proof = state["old"]
    send(token.functions.transfer(trader.address, 1).build_transaction({"from": admin.address}))
    new_number, new_root = at(w3.eth.block_number)
    fresh = w3.eth.get_proof(token_addr, [state["slot"]], new_number)
    check(verified_slot(fresh["storageProof"][0], verified_account(fresh, new_root)["storageHash"]) == 701, "new balance")
    # The old proof still verifies against the old root, not the new one.
    check(verified_account(proof, root) is not None, "old proof against the old root")
    try:
        got = verified_account(proof, new_root)
        raise AssertionError(f"the old proof verified against the new root: {got}")
    except BadTrieProof:
        pass
    # Asked again at the old block after the chain moved on: the old
    # balance, proven against the old root.
    again = w3.eth.get_proof(token_addr, [state["slot"]], number)
    old_account = verified_account(again, root)
    check(old_account is not None and bytes(again["storageHash"]) == old_account["storageHash"], "old account")
    check(verified_slot(again["storageProof"][0], old_account["storageHash"]) == as_int(again["storageProof"][0]["value"]) == 700, f"{again}")


def a_trader_proves_its_own_wallet_only():
    number, root = at(tw3.eth.block_number)
    own = tw3.eth.get_proof(trader.address, [], number)
    account = verified_account(own, root)
    check(account is not None and account["balance"] == own["balance"] > 0, f"{account} {own}")
    other = raw(tw3, "eth_getProof", [admin.address, [], "latest"])
    check(other.get("error", {}).get("code") == -32003, f"{other}")
    slots = raw(tw3, "eth_getProof", [token_addr, [state["slot"]], "latest"])
    check(slots.get("error", {}).get("code") == -32003, f"{slots}")
    check("raw storage" in slots["error"]["message"], f"{slots}")


def bad_input_is_refused():
    too_many = raw(w3, "eth_getProof", [token_addr, ["0x1"] * 1025, "latest"])
    check(too_many.get("error", {}).get("code") == -32602, f"{too_many}")
    bad_key = raw(w3, "eth_getProof", [token_addr, ["not-a-key"], "latest"])
    check(bad_key.get("error", {}).get("code") == -32602, f"{bad_key}")
    future = raw(w3, "eth_getProof", [token_addr, [], hex(w3.eth.block_number + 1000)])
    check("error" in future and "not found" in future["error"]["message"], f"{future}")


step("eth_createAccessList names the balance slot a balanceOf reads", access_list_of_a_read)
step("a transfer sent with its access list uses exactly the gas createAccessList said", access_list_matches_the_mined_gas)
step("a reverting transaction gets its list and the revert reason in `error`", a_revert_is_reported_with_the_list)
step("the token's account and balance slot verify with py-trie against the block's stateRoot", token_proof_verifies)
step("an absent account and an unset slot are proven absent", absent_account_and_slot_verify)
step("a tampered proof does not verify", a_forged_answer_is_caught)
step("after a later block the old proof fits only the old root, and a proof asked at the old block still shows the old value", later_blocks_change_the_root)
step("a trader proves its own wallet, not another's, and no raw storage", a_trader_proves_its_own_wallet_only)
step("too many keys, a malformed key, a future block: clear errors", bad_input_is_refused)

print(f"{NAME}: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
