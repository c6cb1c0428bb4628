//! Whole small files sealed at rest (access documents, genesis, proofs).
//!
//! A sealed file is `PVDSEAL1` followed by one sealed record whose context is
//! the file's name, so two sealed files cannot be swapped unnoticed.

use crate::{CipherError, RecordCipher};
use std::borrow::Cow;

/// First bytes of every sealed file.
pub(crate) const MAGIC: &[u8; 8] = b"PVDSEAL1";

/// Seals `plaintext` as the contents of the file called `name`.
pub fn seal_file(
    cipher: &dyn RecordCipher,
    name: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, CipherError> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&cipher.seal(&context(name), plaintext)?);
    Ok(out)
}

/// Opens the contents of the sealed file called `name`.
pub fn open_file(
    cipher: &dyn RecordCipher,
    name: &str,
    bytes: &[u8],
) -> Result<Vec<u8>, CipherError> {
    let body = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| {
        CipherError::Malformed("not a sealed file (plaintext on an encrypted appliance?)".into())
    })?;
    cipher.open(&context(name), body)
}

/// Seals the file `name` when the appliance encrypts at rest (`cipher` is
/// given) and leaves it plain otherwise: the one rule every small file the
/// node writes follows.
pub fn seal_file_if<'a>(
    cipher: Option<&dyn RecordCipher>,
    name: &str,
    plaintext: &'a [u8],
) -> Result<Cow<'a, [u8]>, CipherError> {
    match cipher {
        Some(c) => seal_file(c, name, plaintext).map(Cow::Owned),
        None => Ok(Cow::Borrowed(plaintext)),
    }
}

/// Opens what [`seal_file_if`] wrote. A sealed file without keys is
/// [`CipherError::NoKeys`]; a plain file on an encrypted appliance is
/// refused too (`Malformed`), never read as it is: it was swapped in, or
/// written before encryption was configured.
pub fn open_file_if(
    cipher: Option<&dyn RecordCipher>,
    name: &str,
    bytes: &[u8],
) -> Result<Vec<u8>, CipherError> {
    match cipher {
        Some(c) => open_file(c, name, bytes),
        None if is_sealed(bytes) => Err(CipherError::NoKeys),
        None => Ok(bytes.to_vec()),
    }
}

/// The data-key version a sealed file's contents are under (None when
/// `bytes` is not a sealed file).
pub fn file_key_version(cipher: &dyn RecordCipher, bytes: &[u8]) -> Option<u32> {
    let body = bytes.strip_prefix(MAGIC.as_slice())?;
    cipher.key_version(body).ok()
}

/// True when `bytes` look like a sealed file.
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

fn context(name: &str) -> Vec<u8> {
    format!("file/{name}").into_bytes()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A toy cipher for this crate's tests: XOR plus a context checksum.
    /// The real one (AES-256-GCM) lives in the `encryption` crate.
    #[derive(Debug)]
    pub(crate) struct ToyCipher;

    impl RecordCipher for ToyCipher {
        fn seal(&self, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CipherError> {
            let mut out = vec![context.iter().fold(0u8, |a, b| a.wrapping_add(*b))];
            out.extend(plaintext.iter().map(|b| b ^ 0x5a));
            Ok(out)
        }
        fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CipherError> {
            let (sum, body) = sealed.split_first().ok_or(CipherError::Tampered)?;
            if *sum != context.iter().fold(0u8, |a, b| a.wrapping_add(*b)) {
                return Err(CipherError::Tampered);
            }
            Ok(body.iter().map(|b| b ^ 0x5a).collect())
        }
        fn key_version(&self, _: &[u8]) -> Result<u32, CipherError> {
            Ok(1)
        }
        fn current_version(&self) -> u32 {
            1
        }
        fn blind(&self, _: &[u8], key: &[u8]) -> [u8; 32] {
            let mut out = [0u8; 32];
            for (i, b) in key.iter().enumerate() {
                out[i % 32] ^= b ^ 0x5a;
            }
            out
        }
    }

    #[test]
    fn files_are_bound_to_their_name() {
        let c = ToyCipher;
        let sealed = seal_file(&c, "access/wallets.json", b"{}").unwrap();
        assert!(is_sealed(&sealed));
        assert_eq!(
            open_file(&c, "access/wallets.json", &sealed).unwrap(),
            b"{}"
        );
        assert_eq!(
            open_file(&c, "access/api_keys.json", &sealed),
            Err(CipherError::Tampered)
        );
        assert!(matches!(
            open_file(&c, "access/wallets.json", b"{}"),
            Err(CipherError::Malformed(_))
        ));
    }

    #[test]
    fn files_are_sealed_exactly_when_keys_are_given() {
        let c = ToyCipher;
        let keys: Option<&dyn RecordCipher> = Some(&c);
        let sealed = seal_file_if(keys, "audit/signing.key", b"k").unwrap();
        assert!(is_sealed(&sealed));
        assert_eq!(
            open_file_if(keys, "audit/signing.key", &sealed).unwrap(),
            b"k"
        );
        let plain = seal_file_if(None, "audit/signing.key", b"k").unwrap();
        assert_eq!(&*plain, b"k");
        assert_eq!(
            open_file_if(None, "audit/signing.key", &plain).unwrap(),
            b"k"
        );
        // Either file in the other kind of appliance is refused.
        assert_eq!(
            open_file_if(None, "audit/signing.key", &sealed),
            Err(CipherError::NoKeys)
        );
        assert!(matches!(
            open_file_if(keys, "audit/signing.key", &plain),
            Err(CipherError::Malformed(_))
        ));
    }
}
