//! The gate's flow engine, rules, registry and records (no I/O)
