//! Settle only proofs and minimal commitments on the public settlement chain (issue 7; not started).
