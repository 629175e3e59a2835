//! The durable, encrypted record outbox (SQLite WAL, group commit).
