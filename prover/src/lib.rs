//! Prove every batch with a RISC-V zkVM running the state-transition program (issue 6; not started).
