//! Disclosures over a small hand-built state: two holders and a token.

use super::*;
use crate::{Anchor, MAX_FILE_BYTES};
use alloy_primitives::{keccak256, Address, Bytes, KECCAK256_EMPTY};
use alloy_rpc_types_eth::EIP1186StorageProof;
use alloy_serde::storage::JsonStorageKey;
use alloy_trie::{proof::ProofRetainer, HashBuilder, Nibbles, EMPTY_ROOT_HASH};
use state_transition::{account_leaf, TrieAccountInput};

const HOLDER: Address = Address::repeat_byte(0x11);
const OTHER: Address = Address::repeat_byte(0x22);
const TOKEN: Address = Address::repeat_byte(0x33);
const NOBODY: Address = Address::repeat_byte(0x44);
const SLOT: u64 = 3;

/// Root of a trie of `(hashed key, value)` leaves and the proof for `target`.
fn trie(leaves: &[(B256, Vec<u8>)], target: B256) -> (B256, Vec<Bytes>) {
    let mut sorted: Vec<(Nibbles, &Vec<u8>)> = leaves
        .iter()
        .map(|(k, v)| (Nibbles::unpack(k), v))
        .collect();
    sorted.sort_by_key(|a| a.0);
    let target = Nibbles::unpack(target);
    let mut hb = HashBuilder::default().with_proof_retainer(ProofRetainer::new(vec![target]));
    for (k, v) in &sorted {
        hb.add_leaf(*k, v);
    }
    let root = hb.root();
    let proof = hb
        .take_proof_nodes()
        .matching_nodes_sorted(&target)
        .into_iter()
        .map(|(_, node)| node)
        .collect();
    (root, proof)
}

struct State {
    accounts: Vec<(Address, AccountFields)>,
    storage: Vec<(B256, U256)>,
}

impl State {
    fn new() -> Self {
        let storage = vec![
            (
                mapping_key(HOLDER, U256::from(SLOT)),
                U256::from(1_000_000u64),
            ),
            (mapping_key(OTHER, U256::from(SLOT)), U256::from(5u64)),
        ];
        let eoa = |balance: u64| AccountFields {
            nonce: 1,
            balance: U256::from(balance),
            storage_root: EMPTY_ROOT_HASH,
            code_hash: KECCAK256_EMPTY,
        };
        let mut s = Self {
            accounts: vec![(HOLDER, eoa(7_000)), (OTHER, eoa(9))],
            storage,
        };
        let token = AccountFields {
            nonce: 1,
            balance: U256::ZERO,
            storage_root: s.storage_proof(B256::ZERO).0,
            code_hash: keccak256("token code"),
        };
        s.accounts.push((TOKEN, token));
        s
    }

    fn storage_proof(&self, key: B256) -> (B256, Vec<Bytes>) {
        let leaves: Vec<_> = self
            .storage
            .iter()
            .map(|(k, v)| (keccak256(k), alloy_rlp::encode(v)))
            .collect();
        trie(&leaves, keccak256(key))
    }

    fn account_proof(&self, who: Address) -> (B256, EIP1186AccountProofResponse) {
        let leaves: Vec<_> = self
            .accounts
            .iter()
            .map(|(a, acct)| {
                let leaf = account_leaf(&TrieAccountInput {
                    address: *a,
                    nonce: acct.nonce,
                    balance: acct.balance,
                    code_hash: acct.code_hash,
                    storage_root: acct.storage_root,
                });
                (keccak256(a), leaf)
            })
            .collect();
        let (root, proof) = trie(&leaves, keccak256(who));
        let acct = self
            .accounts
            .iter()
            .find(|(a, _)| *a == who)
            .map(|(_, acct)| *acct)
            .unwrap_or(AccountFields {
                nonce: 0,
                balance: U256::ZERO,
                storage_root: EMPTY_ROOT_HASH,
                code_hash: KECCAK256_EMPTY,
            });
        let response = EIP1186AccountProofResponse {
            address: who,
            balance: acct.balance,
            code_hash: acct.code_hash,
            nonce: acct.nonce,
            storage_hash: acct.storage_root,
            account_proof: proof,
            storage_proof: Vec::new(),
        };
        (root, response)
    }

    fn disclose(&self, statement: Statement) -> Disclosure {
        let (root, mut proof) = self.account_proof(statement.proven_account());
        let key = match &statement {
            Statement::Balance { .. } => None,
            Statement::TokenBalance {
                account,
                balances_slot,
                ..
            } => Some(mapping_key(*account, *balances_slot)),
            Statement::Storage { slot, .. } => Some(*slot),
        };
        if let Some(key) = key {
            let value = self
                .storage
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(U256::ZERO, |(_, v)| *v);
            proof.storage_proof.push(EIP1186StorageProof {
                key: JsonStorageKey::Hash(key),
                value,
                proof: self.storage_proof(key).1,
            });
        }
        Disclosure {
            format: FORMAT.into(),
            statement,
            anchor: Anchor {
                chain_id: 271,
                batch: 4,
                state_root: root,
                block_hash: B256::repeat_byte(0xbb),
            },
            proof,
        }
    }
}

fn token_balance(account: Address, value: u64) -> Statement {
    Statement::TokenBalance {
        account,
        token: TOKEN,
        balances_slot: U256::from(SLOT),
        value: U256::from(value),
    }
}

fn refused(d: &Disclosure) -> String {
    check(d).expect_err("must not verify").to_string()
}

#[test]
fn a_token_balance_verifies_and_names_its_commitment_and_code() {
    let s = State::new();
    let d = s.disclose(token_balance(HOLDER, 1_000_000));
    let fact = check(&d).unwrap();
    assert_eq!(
        fact.commitment,
        state_transition::state_commitment(d.anchor.state_root, B256::repeat_byte(0xbb))
    );
    assert_eq!(fact.code_hash, keccak256("token code"));
    assert_eq!(fact.statement.value(), U256::from(1_000_000u64));
}

#[test]
fn every_changed_claim_or_proof_is_refused() {
    let s = State::new();
    let good = s.disclose(token_balance(HOLDER, 1_000_000));

    let mut d = good.clone();
    d.statement = token_balance(HOLDER, 1_000_001);
    assert!(refused(&d).contains("proven value"), "{}", refused(&d));

    let mut d = good.clone();
    d.statement = token_balance(OTHER, 1_000_000);
    assert!(refused(&d).contains("storage proof is for slot"));

    let mut d = good.clone();
    if let Statement::TokenBalance { balances_slot, .. } = &mut d.statement {
        *balances_slot = U256::from(4);
    }
    assert!(refused(&d).contains("storage proof is for slot"));

    let mut d = good.clone();
    d.anchor.state_root = B256::repeat_byte(1);
    assert!(refused(&d).contains("account"));

    // Any byte of any node.
    for (which, node) in [(0usize, 0usize), (1, 0)] {
        let mut d = good.clone();
        let proof = if which == 0 {
            &mut d.proof.account_proof
        } else {
            &mut d.proof.storage_proof[0].proof
        };
        let mut bytes = proof[node].to_vec();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 1;
        proof[node] = bytes.into();
        refused(&d);
    }

    // The token's storage root or code are part of its proven leaf.
    let mut d = good.clone();
    d.proof.code_hash = keccak256("other code");
    assert!(refused(&d).contains("account"));

    // A balance proven for the wrong account.
    let mut d = s.disclose(Statement::Balance {
        account: HOLDER,
        value: U256::from(7_000),
    });
    check(&d).unwrap();
    d.statement = Statement::Balance {
        account: OTHER,
        value: U256::from(7_000),
    };
    assert!(refused(&d).contains("the proof is for"));
}

#[test]
fn absent_entries_prove_zero_and_nothing_else() {
    let s = State::new();
    let d = s.disclose(token_balance(NOBODY, 0));
    check(&d).unwrap();
    let mut d = d.clone();
    d.statement = token_balance(NOBODY, 1);
    d.proof.storage_proof[0].value = U256::from(1);
    refused(&d);
    let d = s.disclose(Statement::Balance {
        account: NOBODY,
        value: U256::ZERO,
    });
    check(&d).unwrap();
}

#[test]
fn files_of_another_version_or_shape_are_refused() {
    let s = State::new();
    let d = s.disclose(token_balance(HOLDER, 1_000_000));
    let json = serde_json::to_value(&d).unwrap();
    assert_eq!(Disclosure::parse(json.to_string().as_bytes()).unwrap(), d);
    let mut other = json.clone();
    other["format"] = "prividium-disclosure/2".into();
    let e = Disclosure::parse(other.to_string().as_bytes()).unwrap_err();
    assert!(e.to_string().contains("this build reads"), "{e}");
    let mut extra = json.clone();
    extra["statement"]["note"] = "trust me".into();
    assert!(Disclosure::parse(extra.to_string().as_bytes()).is_err());
    assert!(Disclosure::parse(&vec![b' '; MAX_FILE_BYTES + 1]).is_err());
    assert!(Disclosure::parse(b"{}").is_err());
}

/// The version-1 file as written on 2026-12-05: this build must keep
/// reading and verifying it. Regenerate (only for a new format version)
/// with PRIVIDIUM_WRITE_FIXTURES=1.
#[test]
fn the_version_1_fixture_still_verifies() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/token-balance-v1.json"
    );
    let built = State::new().disclose(token_balance(HOLDER, 1_000_000));
    if std::env::var_os("PRIVIDIUM_WRITE_FIXTURES").is_some() {
        std::fs::write(path, serde_json::to_vec_pretty(&built).unwrap()).unwrap();
    }
    let d = Disclosure::parse(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(d, built);
    let fact = check(&d).unwrap();
    assert_eq!(fact.anchor.batch, 4);
}

#[test]
fn the_predicate_proves_true_bounds_only_and_reveals_no_balance() {
    use crate::{
        predicate::{evaluate, AT_LEAST},
        predicate_input, Comparison,
    };
    let s = State::new();
    let d = s.disclose(token_balance(HOLDER, 1_000_000));
    let at_least = |x: u64| predicate_input(&d, Comparison::AtLeast, U256::from(x)).unwrap();
    let at_most = |x: u64| predicate_input(&d, Comparison::AtMost, U256::from(x)).unwrap();
    let claim = evaluate(&at_least(999_999)).unwrap();
    assert_eq!(claim.comparison, AT_LEAST);
    assert_eq!(claim.state_commitment, d.anchor.commitment());
    assert_eq!(claim.code_hash, keccak256("token code"));
    evaluate(&at_least(1_000_000)).unwrap();
    evaluate(&at_most(1_000_000)).unwrap();
    for false_bound in [at_least(1_000_001), at_most(999_999)] {
        let e = evaluate(&false_bound).unwrap_err();
        assert!(e.contains("false"), "{e}");
    }
    // A lie about the value, or a proof of another holder, fails the trie.
    let mut lie = at_least(2_000_000);
    lie.value = U256::from(2_000_000);
    assert!(evaluate(&lie).is_err());
    let mut other = at_least(1);
    other.account = OTHER;
    assert!(evaluate(&other).is_err());
    // The claim is nine words; the balance is none of them, and every field
    // moves the digest.
    let words = claim.encode();
    assert_eq!(words.len(), 9 * 32);
    assert!(!words
        .chunks(32)
        .any(|w| w == B256::from(U256::from(1_000_000u64)).as_slice()));
    let mut changed = claim;
    changed.threshold += U256::from(1);
    assert_ne!(changed.digest(), claim.digest());
    let mut changed = claim;
    changed.batch += 1;
    assert_ne!(changed.digest(), claim.digest());
    // Only token balances have a predicate.
    let eth = s.disclose(Statement::Balance {
        account: HOLDER,
        value: U256::from(7_000),
    });
    assert!(predicate_input(&eth, Comparison::AtLeast, U256::from(1)).is_err());
}
