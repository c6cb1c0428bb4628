//! Wallet binding by signature (EIP-4361, "Sign-In with Ethereum").
//!
//! The appliance issues a challenge: a complete SIWE message with a
//! single-use nonce, its own domain, the chain id and an expiry. The caller
//! signs it with the wallet (EIP-191 personal_sign) and sends message and
//! signature back; the wallet is bound only if every field matches what was
//! issued to that same principal and the signature recovers to the address.

use alloy_primitives::{Address, Signature};
use parking_lot::Mutex;
use std::{collections::HashMap, time::Duration};

/// How long a challenge may be answered.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(300);
/// Challenges one principal may have outstanding; a new one beyond this
/// replaces that principal's oldest (never anyone else's).
pub const MAX_PER_PRINCIPAL: usize = 8;
/// Challenges outstanding in all; beyond this new ones are refused until
/// some expire or are answered (outstanding ones are never cleared).
pub const MAX_OUTSTANDING: usize = 10_000;

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SiweError {
    /// Not an EIP-4361 message.
    #[error("malformed SIWE message: {0}")]
    Malformed(String),
    /// Nonce unknown, used, expired or issued to someone else.
    #[error("unknown, expired or already used nonce")]
    Nonce,
    /// Domain, chain id, address or expiry differ from the challenge.
    #[error("SIWE message does not match the challenge: {0}")]
    Mismatch(&'static str),
    /// Signature invalid or from another address.
    #[error("signature does not match the address in the message")]
    Signature,
    /// Too many challenges outstanding on this appliance.
    #[error("too many wallet-binding challenges outstanding; retry in a few minutes")]
    Busy,
}

#[derive(Debug, Clone)]
struct Issued {
    principal: String,
    address: Address,
    expiration: String,
    expires_unix: u64,
    /// The exact text issued: the signed one must equal it (statement and
    /// URI included).
    message: String,
    /// Issue order, to find a principal's oldest.
    seq: u64,
}

/// Outstanding challenges.
#[derive(Debug)]
pub struct SiweChallenges {
    domain: String,
    uri: String,
    chain_id: u64,
    issued: Mutex<HashMap<String, Issued>>,
    seq: std::sync::atomic::AtomicU64,
}

/// Formats unix seconds as RFC 3339 UTC.
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// The fields of a SIWE message this appliance checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiweMessage {
    /// Requesting domain.
    pub domain: String,
    /// Signing address.
    pub address: Address,
    /// Chain id.
    pub chain_id: u64,
    /// Nonce.
    pub nonce: String,
    /// Expiration time (RFC 3339), if present.
    pub expiration: Option<String>,
}

/// Parses the EIP-4361 text format.
pub fn parse(message: &str) -> Result<SiweMessage, SiweError> {
    let bad = |m: &str| SiweError::Malformed(m.to_owned());
    let mut lines = message.lines();
    let domain = lines
        .next()
        .and_then(|l| l.strip_suffix(" wants you to sign in with your Ethereum account:"))
        .ok_or_else(|| {
            bad("first line must be `<domain> wants you to sign in with your Ethereum account:`")
        })?
        .to_owned();
    let address: Address = lines
        .next()
        .ok_or_else(|| bad("missing address line"))?
        .trim()
        .parse()
        .map_err(|_| bad("invalid address"))?;
    let mut fields = HashMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(": ") {
            fields.insert(k.to_owned(), v.trim().to_owned());
        }
    }
    if fields.get("Version").map(String::as_str) != Some("1") {
        return Err(bad("Version must be 1"));
    }
    let chain_id = fields
        .get("Chain ID")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("missing or invalid Chain ID"))?;
    let nonce = fields
        .get("Nonce")
        .cloned()
        .filter(|n| n.len() >= 8 && n.chars().all(|c| c.is_ascii_alphanumeric()))
        .ok_or_else(|| bad("missing or invalid Nonce"))?;
    Ok(SiweMessage {
        domain,
        address,
        chain_id,
        nonce,
        expiration: fields.get("Expiration Time").cloned(),
    })
}

impl SiweChallenges {
    /// Challenges for `domain` (the RPC host) on `chain_id`.
    pub fn new(domain: impl Into<String>, chain_id: u64) -> Self {
        let domain = domain.into();
        Self {
            uri: format!("https://{domain}"),
            domain,
            chain_id,
            issued: Mutex::new(HashMap::new()),
            seq: Default::default(),
        }
    }

    /// Issues a challenge for `principal` to prove control of `address`;
    /// returns the exact message to sign. Refused while the appliance holds
    /// [`MAX_OUTSTANDING`] unexpired challenges.
    pub fn challenge(&self, principal: &str, address: Address) -> Result<String, SiweError> {
        let now = crate::store::unix_now();
        let expires_unix = now + CHALLENGE_TTL.as_secs();
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let expiration = rfc3339(expires_unix);
        let message = format!(
            "{domain} wants you to sign in with your Ethereum account:\n{address}\n\nBind this wallet to {principal} on the Prividium appliance.\n\nURI: {uri}\nVersion: 1\nChain ID: {chain}\nNonce: {nonce}\nIssued At: {issued}\nExpiration Time: {expiration}",
            domain = self.domain,
            address = address.to_checksum(None),
            uri = self.uri,
            chain = self.chain_id,
            issued = rfc3339(now),
        );
        let mut issued = self.issued.lock();
        // Each challenge expires on its own.
        issued.retain(|_, i| i.expires_unix > now);
        let mine: Vec<(&String, u64)> = issued
            .iter()
            .filter(|(_, i)| i.principal == principal)
            .map(|(n, i)| (n, i.seq))
            .collect();
        if mine.len() >= MAX_PER_PRINCIPAL {
            let oldest = mine
                .iter()
                .min_by_key(|(_, seq)| *seq)
                .map(|(n, _)| (*n).clone());
            if let Some(n) = oldest {
                issued.remove(&n);
            }
        } else if issued.len() >= MAX_OUTSTANDING {
            return Err(SiweError::Busy);
        }
        issued.insert(
            nonce,
            Issued {
                principal: principal.to_owned(),
                address,
                expiration,
                expires_unix,
                message: message.clone(),
                seq: self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            },
        );
        Ok(message)
    }

    /// Outstanding (unexpired, unanswered) challenges of `principal`.
    pub fn outstanding(&self, principal: &str) -> usize {
        let now = crate::store::unix_now();
        self.issued
            .lock()
            .values()
            .filter(|i| i.principal == principal && i.expires_unix > now)
            .count()
    }

    /// Checks a signed challenge; consumes the nonce; returns the wallet.
    pub fn verify(
        &self,
        principal: &str,
        message: &str,
        signature: &[u8],
    ) -> Result<Address, SiweError> {
        let msg = parse(message)?;
        let issued = {
            let mut map = self.issued.lock();
            match map.get(&msg.nonce) {
                Some(i) if i.principal == principal => map.remove(&msg.nonce),
                _ => None,
            }
        }
        .ok_or(SiweError::Nonce)?;
        if issued.expires_unix <= crate::store::unix_now() {
            return Err(SiweError::Nonce);
        }
        if msg.domain != self.domain {
            return Err(SiweError::Mismatch("domain"));
        }
        if msg.chain_id != self.chain_id {
            return Err(SiweError::Mismatch("chain id"));
        }
        if msg.address != issued.address {
            return Err(SiweError::Mismatch("address"));
        }
        if msg.expiration.as_deref() != Some(issued.expiration.as_str()) {
            return Err(SiweError::Mismatch("expiration time"));
        }
        // Every other line (statement, URI, issue time) as issued.
        if message != issued.message {
            return Err(SiweError::Mismatch("statement or URI"));
        }
        let sig = Signature::try_from(signature).map_err(|_| SiweError::Signature)?;
        let signer = sig
            .recover_address_from_msg(message.as_bytes())
            .map_err(|_| SiweError::Signature)?;
        if signer != msg.address {
            return Err(SiweError::Signature);
        }
        Ok(signer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{eip191_hash_message, B256};
    use k256::ecdsa::SigningKey;

    fn sign(key: &SigningKey, message: &str) -> Vec<u8> {
        let hash: B256 = eip191_hash_message(message.as_bytes());
        let (sig, recid) = key.sign_prehash_recoverable(hash.as_slice()).unwrap();
        let mut out = sig.to_bytes().to_vec();
        out.push(27 + recid.to_byte());
        out
    }

    fn wallet() -> (SigningKey, Address) {
        let key = SigningKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
        let addr = Address::from_public_key(key.verifying_key());
        (key, addr)
    }

    #[test]
    fn a_signed_challenge_binds_once_and_only_for_its_principal() {
        let s = SiweChallenges::new("node.bank.test", 7777);
        let (key, addr) = wallet();
        let msg = s.challenge("User:idp:alice", addr).unwrap();
        let sig = sign(&key, &msg);
        assert_eq!(s.verify("User:idp:bob", &msg, &sig), Err(SiweError::Nonce));
        assert_eq!(s.verify("User:idp:alice", &msg, &sig), Ok(addr));
        // Single use.
        assert_eq!(
            s.verify("User:idp:alice", &msg, &sig),
            Err(SiweError::Nonce)
        );
    }

    /// One principal's flood of challenges evicts only its own oldest; the
    /// appliance-wide bound refuses new ones instead of clearing anyone's.
    #[test]
    fn challenges_are_bounded_per_principal_and_never_cleared_by_others() {
        let s = SiweChallenges::new("node.bank.test", 7777);
        let (key, addr) = wallet();
        let victim = s.challenge("victim", addr).unwrap();
        let (flooder_key, flooder) = wallet();
        let first = s.challenge("p0", flooder).unwrap();
        for _ in 1..MAX_PER_PRINCIPAL {
            s.challenge("p0", Address::ZERO).unwrap();
        }
        for i in 0..MAX_OUTSTANDING - 1 - MAX_PER_PRINCIPAL {
            s.challenge(&format!("p{}", 1 + i), Address::ZERO).unwrap();
        }
        assert_eq!(s.challenge("another", Address::ZERO), Err(SiweError::Busy));
        // A principal at its own bound replaces its oldest, even when full.
        s.challenge("p0", Address::ZERO).unwrap();
        assert_eq!(s.outstanding("p0"), MAX_PER_PRINCIPAL);
        assert_eq!(
            s.verify("p0", &first, &sign(&flooder_key, &first)),
            Err(SiweError::Nonce)
        );
        // The victim's challenge survived it all.
        assert_eq!(s.verify("victim", &victim, &sign(&key, &victim)), Ok(addr));
    }

    #[test]
    fn tampered_messages_and_foreign_signatures_fail() {
        let s = SiweChallenges::new("node.bank.test", 7777);
        let (key, addr) = wallet();
        let (other, _) = wallet();
        let msg = s.challenge("p", addr).unwrap();
        assert_eq!(
            s.verify("p", &msg, &sign(&other, &msg)),
            Err(SiweError::Signature)
        );
        let msg = s.challenge("p", addr).unwrap();
        let evil = msg.replace("node.bank.test wants", "evil.test wants");
        assert_eq!(
            s.verify("p", &evil, &sign(&key, &evil)),
            Err(SiweError::Mismatch("domain"))
        );
        let msg = s.challenge("p", addr).unwrap();
        let other_chain = msg.replace("Chain ID: 7777", "Chain ID: 1");
        assert_eq!(
            s.verify("p", &other_chain, &sign(&key, &other_chain)),
            Err(SiweError::Mismatch("chain id"))
        );
        let msg = s.challenge("p", addr).unwrap();
        let phished = msg.replace(
            "Bind this wallet to p on the Prividium appliance.",
            "Approve a payment.",
        );
        assert_eq!(
            s.verify("p", &phished, &sign(&key, &phished)),
            Err(SiweError::Mismatch("statement or URI"))
        );
        let msg = s.challenge("p", addr).unwrap();
        let other_uri = msg.replace("URI: https://node.bank.test", "URI: https://evil.test");
        assert_eq!(
            s.verify("p", &other_uri, &sign(&key, &other_uri)),
            Err(SiweError::Mismatch("statement or URI"))
        );
        assert!(matches!(parse("hello"), Err(SiweError::Malformed(_))));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_261_433), "2026-11-21T11:43:53Z");
    }
}
