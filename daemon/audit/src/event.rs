//! What goes into the trail: the kinds of event, the event a caller appends, and the
//! entry a reader gets back.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Longest `actor`, in bytes.
pub const MAX_ACTOR_LEN: usize = 128;
/// Longest `detail`, in bytes; longer details are cut (see [`AuditEvent::detail`]).
pub const MAX_DETAIL_LEN: usize = 4096;
/// Longest `kind` a reader accepts, in bytes.
pub(crate) const MAX_KIND_LEN: usize = 64;

macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// The kind of a security-relevant event. Closed: a caller cannot invent a kind
        /// (nor smuggle free text through one); adding one is a change to this crate.
        ///
        /// Readers ([`verify`](crate::verify), [`Entries`](crate::Entries)) accept any
        /// well-formed kind name, not only these: a log written by a newer toriid must
        /// still verify, and still open, after a downgrade.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum AuditKind {
            $($(#[$doc])* $variant,)*
        }

        impl AuditKind {
            /// Every kind, in declaration order.
            pub const ALL: &[AuditKind] = &[$(AuditKind::$variant,)*];

            /// The kebab-case name written in the log.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditKind::$variant => $name,)*
                }
            }
        }

        impl FromStr for AuditKind {
            type Err = UnknownKind;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(AuditKind::$variant),)*
                    _ => Err(UnknownKind(s.to_owned())),
                }
            }
        }
    };
}

kinds! {
    /// The gate was put in service, out of service, or into maintenance.
    ModeChanged => "mode-changed",
    /// An officer opened a door by hand (console, API).
    DoorOpenedByOfficer => "door-opened-by-officer",
    /// An officer closed a door by hand.
    DoorClosedByOfficer => "door-closed-by-officer",
    /// An officer acknowledged an alarm.
    AlarmAcknowledged => "alarm-acknowledged",
    /// Another audited command run through an API (a device call, a record read).
    OperatorCommand => "operator-command",
    /// A device driver reported a fault or died.
    DriverFault => "driver-fault",
    /// A device driver was restarted.
    DriverRestarted => "driver-restarted",
    /// The configuration was loaded at start.
    ConfigLoaded => "config-loaded",
    /// The configuration was reloaded while running.
    ConfigReloaded => "config-reloaded",
    /// A reload was asked for but the files do not validate: nothing changed.
    ConfigReloadRefused => "config-reload-refused",
    /// A TLS or signing certificate (or trust store) was reloaded.
    CertificateReloaded => "certificate-reloaded",
    /// One record was acknowledged by central.
    RecordForwarded => "record-forwarded",
    /// A batch of records was acknowledged by central.
    RecordsForwarded => "records-forwarded",
    /// The registered-user registry was updated from central.
    RegistryUpdated => "registry-updated",
    /// A registration was erased (expiry, request, central).
    RegistrationErased => "registration-erased",
    /// A revocation list from central was applied.
    RevocationApplied => "revocation-applied",
    /// A request to an API failed authentication.
    ApiAuthFailed => "api-auth-failed",
    /// An authenticated API caller was refused an operation.
    ApiForbidden => "api-forbidden",
    /// Central immigration's TLS handshake failed: its certificate is not from the
    /// configured CA, or it refused the gate's client certificate (expired, revoked).
    CentralRefused => "central-refused",
    /// The record outbox raised or cleared its capacity alarm.
    OutboxAlarm => "outbox-alarm",
    /// The audit log was opened for writing (written by [`AuditLog::open`](crate::AuditLog::open)).
    AuditOpened => "audit-opened",
    /// Opening the log repaired an interrupted write (written by `AuditLog::open`).
    AuditRecovered => "audit-recovered",
    /// toriid started.
    DaemonStarted => "daemon-started",
    /// toriid stopped cleanly.
    DaemonStopped => "daemon-stopped",
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name that is not one of [`AuditKind`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown audit event kind {0:?}")]
pub struct UnknownKind(pub String);

/// An event to append. Its time and sequence number are the log's to assign.
///
/// **No personal data**, in any field: the audit trail outlives the records (it is kept
/// for as long as the gate's security history matters, and it cannot be edited to
/// erase one traveller), so it must never hold anything that identifies a traveller or
/// an officer by name: no names, document numbers, MRZs, biometric data, registration
/// numbers, IP addresses of travellers' devices. Refer to things by non-personal
/// identifiers (device id, transaction id, a count, a token's label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub kind: AuditKind,
    /// Who caused it, as a non-personal label: `"token:console-1"`, `"uid:1001"`,
    /// `"system"`. Written as 1 to [`MAX_ACTOR_LEN`] printable ASCII characters: others
    /// (spaces included) become `_`, a longer label is cut, an empty one is no actor.
    pub actor: Option<String>,
    /// Free text for people: what happened, to what, and why. The caller promises it
    /// holds no personal data. Control characters (newlines included) become spaces
    /// and a detail longer than [`MAX_DETAIL_LEN`] bytes is cut.
    ///
    /// Both fields are cleaned rather than the event refused: an audit entry must not be
    /// lost to a driver's verbose message or an odd token name.
    pub detail: String,
}

impl AuditEvent {
    /// An event with no actor.
    pub fn new(kind: AuditKind, detail: impl Into<String>) -> Self {
        AuditEvent {
            kind,
            actor: None,
            detail: detail.into(),
        }
    }

    /// The same event, caused by `actor`.
    pub fn by(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }
}

/// An entry as read back from a log (see [`Entries`](crate::Entries)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Position in the log, from 1, contiguous.
    pub seq: u64,
    /// When it was appended (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The kind's name; [`AuditEntry::known_kind`] for the enum.
    pub kind: String,
    pub actor: Option<String>,
    pub detail: String,
    /// The previous entry's seal, hex (64 zeros for the first entry).
    pub prev: String,
    /// This entry's seal, `hmac-sha256:<hex>` or `sha256:<hex>`.
    pub mac: String,
}

impl AuditEntry {
    /// The kind, if this build knows it.
    pub fn known_kind(&self) -> Option<AuditKind> {
        self.kind.parse().ok()
    }
}

/// A well-formed actor label.
pub(crate) fn valid_actor(actor: &str) -> bool {
    !actor.is_empty() && actor.len() <= MAX_ACTOR_LEN && actor.bytes().all(|b| b.is_ascii_graphic())
}

/// A well-formed kind name: 1 to 64 of `a-z`, `0-9`, `-`.
pub(crate) fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= MAX_KIND_LEN
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The actor as written (see [`AuditEvent::actor`]).
pub(crate) fn clean_actor(actor: Option<&str>) -> Option<String> {
    let mut out: String = actor?
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    out.truncate(MAX_ACTOR_LEN);
    (!out.is_empty()).then_some(out)
}

/// The detail as written: control characters as spaces, cut at [`MAX_DETAIL_LEN`] bytes
/// (on a character boundary, marked with "…").
pub(crate) fn clean_detail(detail: &str) -> String {
    const CUT: &str = "…";
    let mut out: String = detail
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if out.len() > MAX_DETAIL_LEN {
        let mut end = MAX_DETAIL_LEN - CUT.len();
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push_str(CUT);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_agree_with_serde_and_parse_back() {
        for &kind in AuditKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(kind.as_str().parse::<AuditKind>(), Ok(kind));
            assert!(valid_kind(kind.as_str()), "{kind}");
        }
        assert!("door-opened".parse::<AuditKind>().is_err());
    }

    #[test]
    fn actors_are_short_printable_labels() {
        for good in ["system", "uid:1001", "officer-token:console-1"] {
            assert!(valid_actor(good), "{good}");
        }
        let long = "a".repeat(MAX_ACTOR_LEN + 1);
        for bad in ["", "officer one", "uid:1\n", "é", long.as_str()] {
            assert!(!valid_actor(bad), "{bad:?}");
        }
    }

    #[test]
    fn actors_are_cleaned_into_labels() {
        assert_eq!(clean_actor(None), None);
        assert_eq!(clean_actor(Some("")), None);
        assert_eq!(clean_actor(Some("uid:1001")).as_deref(), Some("uid:1001"));
        assert_eq!(
            clean_actor(Some("token:officer one\n")).as_deref(),
            Some("token:officer_one_")
        );
        assert_eq!(clean_actor(Some("é")).as_deref(), Some("_"));
        let long = "a".repeat(300);
        let cut = clean_actor(Some(&long)).unwrap();
        assert_eq!(cut.len(), MAX_ACTOR_LEN);
        assert!(valid_actor(&cut));
    }

    #[test]
    fn details_lose_control_characters_and_excess_length() {
        assert_eq!(clean_detail("a\nb\tc\u{1b}[31m"), "a b c [31m");
        let long = "é".repeat(MAX_DETAIL_LEN);
        let cut = clean_detail(&long);
        assert!(cut.len() <= MAX_DETAIL_LEN);
        assert!(cut.ends_with('…'));
        assert_eq!(clean_detail("ok"), "ok");
    }
}
