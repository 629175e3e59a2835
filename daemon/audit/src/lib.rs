//! The append-only, hash-chained, tamper-evident audit trail, and its verifier.
//!
//! Every security-relevant thing the gate does goes here: a mode change, a door opened
//! by an officer, a driver fault, a configuration or certificate reload, records
//! forwarded to central, a registry update, a failed or refused API call, an alarm
//! acknowledged ([`AuditKind`] lists them). The point is not logging (the journal does
//! that) but evidence: afterwards, `toriictl audit verify` says whether anything in the
//! trail was **edited, deleted, reordered or cut off**, and where.
//!
//! # How
//!
//! - **Append-only lines.** One JSON line per entry, written with `O_APPEND` and
//!   fsync'ed before [`AuditLog::append`] returns its seq (see [Formats](#formats)).
//! - **Numbered.** `seq` counts from 1 without gaps: a deleted line leaves a gap, a
//!   moved one is out of place.
//! - **Chained.** Each entry carries `prev`, the seal of the entry before it (64 zeros
//!   for the first), and `mac`, its own seal over all its other fields. Changing any
//!   entry changes its seal, which no longer matches the next entry's `prev`.
//! - **Sealed with a key.** With an [`AuditKey`] the seal is HMAC-SHA256; without, a
//!   plain SHA-256. *Why the key matters:* without it the chain only proves the file is
//!   self-consistent. Anyone who can write the file can edit an entry and recompute
//!   every hash after it (and the head), and the result verifies. With the key they
//!   cannot, as long as the key is kept where the log is not (a separate file private to
//!   the daemon's user, better on another medium or as a systemd credential). toriid
//!   should always run with a key; the unkeyed mode exists for development and says so
//!   in every `audit-opened` entry.
//! - **Anchored at the end.** A chain cannot show that its *last* entries were cut off:
//!   what remains is a valid, shorter chain. So next to `audit.log` sits
//!   `audit.log.head`, naming the last entry's seq and seal, itself sealed, and replaced
//!   atomically (temp file, fsync, rename, fsync of the directory) after every append.
//!   A log that ends before its head is *truncated*.
//! - **One writer.** The log is `flock`ed while open: a second writer would fork the
//!   chain.
//!
//! Crashes: an entry is written and fsync'ed before its head, so a crash can leave the
//! head one entry behind, or a torn last line. Both are told apart from tampering by the
//! head (a torn line is one the head never covered) and repaired by the next
//! [`AuditLog::open`], which records the repair in an `audit-recovered` entry. [`verify`]
//! accepts a head one entry behind (it is also what a reader sees while toriid is
//! between the two writes) and reports a torn line as malformed until then.
//!
//! # Formats
//!
//! `audit.log`, one line per entry, fields in this order (`actor` may be `null`):
//!
//! ```text
//! {"seq":17,"at":"2026-05-01T08:00:00.123456Z","kind":"mode-changed","actor":"token:console-1","detail":"in-service -> maintenance","prev":"<64 hex>","mac":"hmac-sha256:<64 hex>"}
//! ```
//!
//! `audit.log.head`, one line:
//!
//! ```text
//! {"seq":17,"last":"<64 hex: entry 17's seal>","mac":"hmac-sha256:<64 hex>"}
//! ```
//!
//! The `mac` names its algorithm (`hmac-sha256:` or `sha256:`), so that a reader without
//! the key says "this log needs its key" rather than "every entry is forged", and a
//! reader with the key rejects plain hashes. Seals cover a length-prefixed binary
//! encoding of the field values with a domain string (`torii-audit/v1 entry`, `…head`),
//! not the JSON text: see `format.rs`. Re-spelling a JSON string (an escape for a
//! letter, spacing) therefore goes unnoticed, but it changes no value; every change of
//! a value is caught. Hex is lower-case only, unknown fields are refused.
//!
//! # No personal data
//!
//! The trail is kept for as long as the gate's security history matters and cannot be
//! edited to remove one person, so it must hold none: [`AuditEvent`]'s `actor` is a
//! non-personal label (`"token:console-1"`, `"socket:uid=1000"`, `"system"`), and its
//! `detail` is free text that the **caller promises** holds no names, document numbers,
//! MRZs, biometrics or registration numbers. This crate cannot check that promise; it
//! only bounds the fields (see [`AuditEvent`]).
//!
//! # Limits
//!
//! - **Deleting both files** (log and head) leaves nothing to compare with: the next
//!   start creates a fresh log whose first entry says "new audit log". Detecting that
//!   needs an anchor off the machine. Cheap ones: toriid writes [`AuditLog::anchor`]
//!   (seq and seal) to the journal at start and now and then, and, later, sends it to
//!   central with the records it forwards, which would also catch a truncation whose
//!   author kept an old head (below). Deleting the log alone, or the head alone, is
//!   detected.
//! - **Restoring an old head together with the log truncated to match it** is not
//!   detectable locally either: someone who copied `audit.log.head` earlier can later
//!   cut the log back to that point. Central anchoring closes this too.
//! - **Without a key**, nothing resists someone who can write the files (see above).
//! - **A stolen key** lets its holder forge anything after the fact; keep it off the log's
//!   medium, and rotate it by starting a new log (below).
//! - **No rotation.** The log grows for ever (a few hundred bytes an entry; at tens of
//!   events a second at peak, and far fewer on average, it is a small file by disk
//!   standards). To rotate or change the key: stop toriid, move `audit.log` and
//!   `audit.log.head` aside *together* (they verify as a pair), start toriid; it starts a
//!   new log at seq 1. Verifying an archived log needs both files and its key.
//! - Timestamps are the system clock's: they are recorded, not checked for order.
//! - [`AuditLog::open`] checks only the end of the log, so that starting is instant
//!   whatever its size; `toriictl audit verify` (or [`verify`]) checks all of it.

mod event;
mod format;
mod hex;
mod key;
mod log;
mod verify;

pub use event::{AuditEntry, AuditEvent, AuditKind, MAX_ACTOR_LEN, MAX_DETAIL_LEN, UnknownKind};
pub use key::{AuditKey, KEY_LEN, KeyError};
pub use log::{Anchor, AuditError, AuditLog};
pub use verify::{
    Entries, VerifyError, VerifyReport, head_path, read_entries, verify, verify_bytes,
};

/// The log's file name in toriid's state directory (`/var/lib/torii/audit.log` by
/// default); its head is [`head_path`] of it.
pub const FILE_NAME: &str = "audit.log";
