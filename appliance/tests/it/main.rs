//! End-to-end tests against the real `prividium` binary.
//!
//! Each test starts its own node on a free loopback port in a temporary data
//! directory and stops it afterwards.

mod access;
mod at_rest;
mod audit;
mod backup;
mod bad_input;
mod clients;
mod common;
mod console;
mod crash;
mod disclose;
mod idp;
mod insider;
mod legacy_env;
mod ops;
mod prover_cli;
mod roles;
mod settlement;
