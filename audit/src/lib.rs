//! Tamper-evident audit log and compliance queries (issue 5; not started).
