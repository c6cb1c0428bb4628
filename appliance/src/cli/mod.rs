//! One module per subcommand.
pub mod audit;
pub mod backup;
pub mod bench;
pub mod dev;
pub mod disclose;
pub mod doctor;
mod gpu;
pub mod keys;
pub mod legacy_env;
pub mod policies;
pub mod profile;
pub mod prove;
pub mod prover;
pub mod replay;
pub mod settlement;
pub mod up;
pub mod verify;
pub mod verify_disclosure;
