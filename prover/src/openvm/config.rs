//! The OpenVM machine the batch program runs on.

/// RV32IM plus the extensions the guest's `openvm_init.rs` sets up, in the
/// same order: keccak-f for `keccak256`, and the secp256k1 coordinate and
/// scalar fields and curve for signature recovery.
pub(super) const VM_TOML: &str = r#"
[app_vm_config.rv32i]
[app_vm_config.rv32m]
[app_vm_config.io]
[app_vm_config.keccak]
[app_vm_config.modular]
supported_moduli = [
    "115792089237316195423570985008687907853269984665640564039457584007908834671663",
    "115792089237316195423570985008687907852837564279074904382605163141518161494337",
]
[[app_vm_config.ecc.supported_curves]]
struct_name = "Secp256k1Point"
modulus = "115792089237316195423570985008687907853269984665640564039457584007908834671663"
scalar = "115792089237316195423570985008687907852837564279074904382605163141518161494337"
a = "0"
b = "7"
"#;

/// The guest's hand-written init file; a test checks it matches [`VM_TOML`].
#[cfg(test)]
pub(super) const GUEST_INIT: &str = include_str!("../../guest/openvm_init.rs");
