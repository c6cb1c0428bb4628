//! The node's data keys, from unsealing to retirement:
//!
//! ```text
//! at_rest   which provider, unlock it, unwrap the data keys (start-up, CLI)
//!    │
//! upkeep    in the running node, named steps on one timer: pick up a rotation
//!    │      made by the CLI, rotate before a key's usage limit, record usage,
//!    ▼      then re-seal
//! reseal    one sweep moves every holding (derived stores, audit rows, the
//!           proving queue, the block log, sealed files) onto the current
//!           key, then the older keys are retired
//! status    where the keys stand (versions, use, re-encryption progress)
//! probe     is the provider still reachable (`/readyz`, metrics)
//! ```

pub mod at_rest;
pub mod probe;
pub mod reseal;
pub mod status;
pub mod upkeep;
