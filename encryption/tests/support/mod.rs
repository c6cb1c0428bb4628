#![allow(unreachable_pub)]
pub mod bao;
