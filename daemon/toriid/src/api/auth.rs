//! Who is calling: the HTTP adapter establishes a [`Caller`] (a role and a non-personal
//! name) from the request's credentials; the core decides what that caller may do.
//!
//! In order of precedence:
//! 1. `Authorization: Bearer <token>`: a token from `[http] tokens_file`, which holds
//!    only SHA-256 hashes of the tokens. A presented token is hashed and compared with
//!    every entry in constant time.
//! 2. The `torii_session` cookie set by `POST /api/v1/session` (the kiosk and console
//!    pages): an opaque random id mapped in memory to the caller of the token it was
//!    opened with, forgotten after [`SESSION_IDLE`] without use. A cookie-authenticated
//!    request that changes state must carry `X-Torii-Request: 1` ([`CSRF_HEADER`]):
//!    a page of another origin cannot set that header without a CORS preflight, which
//!    toriid never grants.
//! 3. No credential: callers over loopback TCP are viewers; callers over the Unix
//!    socket are identified by their peer credentials (`SO_PEERCRED`): root and the
//!    daemon's own user are operators, anyone else who may open the socket (group
//!    `torii`) is a viewer.
//!
//! A credential that is presented and wrong is refused (401), never downgraded to the
//! default: a client with a stale token should learn so at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use axum::http::{HeaderMap, Method, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::time::Instant;

use crate::command::{Caller, Role};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "torii_session";
/// The header every cookie-authenticated state-changing request must carry (value `1`).
pub const CSRF_HEADER: &str = "x-torii-request";
/// A session unused for this long is forgotten.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// Open sessions kept at most (the least recently used one goes first).
const MAX_SESSIONS: usize = 256;
/// Tokens made by [`new_token`] start with this, so they are recognisable in a
/// secret scanner.
pub const TOKEN_PREFIX: &str = "torii_";

/// One `[[token]]` of the tokens file: only the hash of the token is kept.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenEntry {
    /// Names the token in logs and the audit trail (`token:console-1`); not personal.
    pub name: String,
    pub role: Role,
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEntry")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    token: Vec<RawToken>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    role: String,
    sha256: String,
}

/// A fresh random token (256 bits): `torii_` and 43 URL-safe base64 characters.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The SHA-256 of a token, as written in the tokens file (lower-case hex).
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `[[token]]` entry for a token, to append to the tokens file.
pub fn token_entry_toml(name: &str, role: Role, token: &str) -> String {
    format!(
        "[[token]]\nname = \"{name}\"\nrole = \"{}\"\nsha256 = \"{}\"\n",
        role.name(),
        hash_token(token)
    )
}

/// Token names appear in audit entries and log lines: short, plain, no spaces.
pub fn valid_token_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub fn parse_role(text: &str) -> Option<Role> {
    [Role::Viewer, Role::Kiosk, Role::Operator]
        .into_iter()
        .find(|role| role.name() == text)
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(text.as_bytes().chunks(2)) {
        *slot = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// Reads the tokens file: refused when others may read or write it (it grants access
/// to the gate even though it holds hashes only), and every entry must be complete,
/// named uniquely and hash a distinct token.
pub fn load_tokens(path: &Path) -> Result<Vec<TokenEntry>, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a file"));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Err(format!(
            "{shown} has mode {mode:04o}: a tokens file must not be accessible to others (chmod 0640, owner root, group torii)"
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    parse_tokens(&text).map_err(|e| format!("{shown}: {e}"))
}

/// Parses the text of a tokens file (see [`load_tokens`]).
pub fn parse_tokens(text: &str) -> Result<Vec<TokenEntry>, String> {
    let file: TokenFile =
        toml::from_str(text).map_err(|e| format!("invalid tokens file: {}", e.message()))?;
    let mut entries: Vec<TokenEntry> = Vec::with_capacity(file.token.len());
    for (index, raw) in file.token.into_iter().enumerate() {
        let which = format!("token {} ({:?})", index + 1, raw.name);
        if !valid_token_name(&raw.name) {
            return Err(format!(
                "{which}: the name must be 1 to 64 letters, digits, '-', '_' or '.'"
            ));
        }
        let role = parse_role(&raw.role).ok_or_else(|| {
            format!(
                "{which}: unknown role {:?}, expected one of viewer, kiosk, operator",
                raw.role
            )
        })?;
        let sha256 = parse_hex32(&raw.sha256).ok_or_else(|| {
            format!("{which}: sha256 must be 64 hex digits (the SHA-256 of the token)")
        })?;
        if entries.iter().any(|e| e.name == raw.name) {
            return Err(format!("{which}: the name is used twice"));
        }
        if entries.iter().any(|e| e.sha256 == sha256) {
            return Err(format!("{which}: the same token is listed twice"));
        }
        entries.push(TokenEntry {
            name: raw.name,
            role,
            sha256,
        });
    }
    Ok(entries)
}

/// The connection a request came in on (axum connect info, see [`super::http::serve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Loopback TCP.
    Tcp(SocketAddr),
    /// The Unix socket, with the peer's user id when the kernel told it.
    Unix { uid: Option<u32> },
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Peer::Tcp(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, tokio::net::UnixListener>,
    > for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        Peer::Unix {
            uid: stream.io().peer_cred().ok().map(|cred| cred.uid()),
        }
    }
}

/// How the caller was identified (`GET /api/v1/whoami`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Credential {
    /// `Authorization: Bearer`.
    Token,
    /// The session cookie.
    Session,
    /// Unix socket peer credentials.
    SocketPeer,
    /// Nothing: the loopback TCP default.
    None,
}

/// An identified caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identified {
    pub caller: Caller,
    pub credential: Credential,
}

impl Identified {
    /// No token or session was presented: a refusal is answered 401 (a credential
    /// might help), not 403.
    pub fn anonymous(&self) -> bool {
        matches!(self.credential, Credential::SocketPeer | Credential::None)
    }
}

/// Why a request's credentials were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 401 (bad credentials) or 403 (a cookie without the CSRF header).
    pub csrf: bool,
    /// Where it came from, for the audit trail (`http:tcp`, `http:uid=1000`).
    pub adapter: String,
    /// What was wrong (never the credential itself).
    pub why: &'static str,
}

struct Session {
    caller: Caller,
    last_used: Instant,
    /// The SHA-256 of the token the session was opened with: a session lives only as
    /// long as its token (see [`Auth::replace_tokens`]).
    token: [u8; 32],
}

/// The tokens and the open browser sessions.
pub struct Auth {
    tokens: RwLock<Vec<TokenEntry>>,
    /// Keyed by the SHA-256 of the session id: the ids themselves are not kept.
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    /// The daemon's effective user id: socket peers with it are operators.
    own_uid: u32,
}

impl Auth {
    pub fn new(tokens: Vec<TokenEntry>) -> Self {
        Self::with_uid(tokens, nix::unistd::geteuid().as_raw())
    }

    /// As [`Auth::new`], as if the daemon ran as `own_uid` (tests).
    pub fn with_uid(tokens: Vec<TokenEntry>, own_uid: u32) -> Self {
        Auth {
            tokens: RwLock::new(tokens),
            sessions: Mutex::new(HashMap::new()),
            own_uid,
        }
    }

    /// The caller a token stands for. Every entry is compared, in constant time.
    pub fn token_caller(&self, token: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.caller_of_digest(&digest)
    }

    fn caller_of_digest(&self, digest: &[u8; 32]) -> Option<Caller> {
        let tokens = self.tokens.read().unwrap_or_else(|e| e.into_inner());
        let mut found = None;
        for entry in tokens.iter() {
            if bool::from(entry.sha256.ct_eq(digest)) {
                found = Some(entry);
            }
        }
        found.map(|entry| Caller::new(entry.role, format!("token:{}", entry.name)))
    }

    /// Takes a reloaded tokens file. Sessions opened with a token that is gone, or whose
    /// role changed, end now: removing a leaked token from the file must lock its
    /// holder out without a restart. Returns how many sessions ended.
    pub fn replace_tokens(&self, tokens: Vec<TokenEntry>) -> usize {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let before = sessions.len();
        sessions.retain(|_, session| {
            tokens
                .iter()
                .any(|t| t.sha256 == session.token && t.role == session.caller.role)
        });
        *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = tokens;
        before - sessions.len()
    }

    /// Opens a session for a token's caller; returns the session id (the cookie value)
    /// and the session's caller (`session:NAME`).
    pub fn open_session(&self, token: &str) -> Option<(String, Caller)> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let caller = self.caller_of_digest(&digest)?;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let id = URL_SAFE_NO_PAD.encode(bytes);
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| now.duration_since(s.last_used) < SESSION_IDLE);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(key, _)| *key)
        {
            sessions.remove(&oldest);
        }
        let caller = Caller::new(caller.role, caller.name.replacen("token:", "session:", 1));
        sessions.insert(
            session_key(&id),
            Session {
                caller: caller.clone(),
                last_used: now,
                token: digest,
            },
        );
        Some((id, caller))
    }

    /// The caller of a live session (and marks it used).
    pub fn session_caller(&self, id: &str) -> Option<Caller> {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let key = session_key(id);
        let session = sessions.get_mut(&key)?;
        if now.duration_since(session.last_used) >= SESSION_IDLE {
            sessions.remove(&key);
            return None;
        }
        session.last_used = now;
        Some(session.caller.clone())
    }

    /// Forgets a session (logout); false when there was none.
    pub fn close_session(&self, id: &str) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&session_key(id))
            .is_some()
    }

    /// The default caller of a connection that presented no credential.
    pub fn peer_caller(&self, peer: Option<&Peer>) -> Identified {
        match peer {
            Some(Peer::Unix { uid: Some(uid) }) => {
                let role = if *uid == 0 || *uid == self.own_uid {
                    Role::Operator
                } else {
                    Role::Viewer
                };
                Identified {
                    caller: Caller::new(role, format!("socket:uid={uid}")),
                    credential: Credential::SocketPeer,
                }
            }
            Some(Peer::Unix { uid: None }) => Identified {
                caller: Caller::new(Role::Viewer, "socket:unknown"),
                credential: Credential::SocketPeer,
            },
            Some(Peer::Tcp(_)) | None => Identified {
                caller: Caller::new(Role::Viewer, "tcp:anonymous"),
                credential: Credential::None,
            },
        }
    }

    /// Establishes the caller of a request from its headers and connection.
    pub fn identify(
        &self,
        peer: Option<&Peer>,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Identified, Refusal> {
        let refuse = |why: &'static str, csrf: bool| Refusal {
            csrf,
            adapter: adapter_name(peer),
            why,
        };
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let token = bearer(value.as_bytes())
                .ok_or_else(|| refuse("malformed Authorization header (expected Bearer)", false))?;
            let caller = self
                .token_caller(token)
                .ok_or_else(|| refuse("unknown token", false))?;
            return Ok(Identified {
                caller,
                credential: Credential::Token,
            });
        }
        if let Some(id) = session_cookie(headers) {
            let caller = self
                .session_caller(id)
                .ok_or_else(|| refuse("unknown or expired session", false))?;
            if changes_state(method) && !has_csrf_header(headers) {
                return Err(refuse(
                    "cookie-authenticated request without X-Torii-Request: 1",
                    true,
                ));
            }
            return Ok(Identified {
                caller,
                credential: Credential::Session,
            });
        }
        Ok(self.peer_caller(peer))
    }
}

fn session_key(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// `http:tcp`, `http:uid=1000`: the connection, for audit entries of refused requests.
pub fn adapter_name(peer: Option<&Peer>) -> String {
    match peer {
        Some(Peer::Unix { uid: Some(uid) }) => format!("http:uid={uid}"),
        Some(Peer::Unix { uid: None }) => "http:socket".to_owned(),
        Some(Peer::Tcp(_)) | None => "http:tcp".to_owned(),
    }
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn has_csrf_header(headers: &HeaderMap) -> bool {
    headers
        .get(CSRF_HEADER)
        .is_some_and(|value| value.as_bytes() == b"1")
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 6750 token characters).
fn bearer(value: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)))
    .then_some(token)
}

/// The value of the session cookie, from any `Cookie` header.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// The `Set-Cookie` value opening a session.
pub fn session_set_cookie(id: &str) -> String {
    // No `Secure`: the pages are served over loopback plain HTTP only.
    format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value removing the session cookie.
pub fn session_clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const OPERATOR: &str = "torii_operator-token";
    const VIEWER: &str = "torii_viewer-token";

    fn auth() -> Auth {
        let file = format!(
            "{}\n{}",
            token_entry_toml("console-1", Role::Operator, OPERATOR),
            token_entry_toml("wall", Role::Viewer, VIEWER)
        );
        Auth::with_uid(parse_tokens(&file).unwrap(), 1234)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn new_tokens_are_random_and_hash_to_their_entry() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 43);
        let entries = parse_tokens(&token_entry_toml("ops", Role::Operator, &a)).unwrap();
        let auth = Auth::with_uid(entries, 1);
        assert_eq!(
            auth.token_caller(&a),
            Some(Caller::new(Role::Operator, "token:ops"))
        );
        assert_eq!(auth.token_caller(&b), None);
        // The known SHA-256 of "abc".
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bad_token_files_say_which_entry_is_wrong() {
        let hash = hash_token("x");
        let cases = [
            (
                "[[token]]\nname = \"a\"\nrole = \"admin\"\nsha256 = \"{H}\"",
                "unknown role \"admin\"",
            ),
            (
                "[[token]]\nname = \"a b\"\nrole = \"viewer\"\nsha256 = \"{H}\"",
                "the name must be",
            ),
            (
                "[[token]]\nname = \"a\"\nrole = \"viewer\"\nsha256 = \"abc\"",
                "64 hex digits",
            ),
            (
                "[[token]]\nname = \"a\"\nrole = \"viewer\"",
                "missing field `sha256`",
            ),
            (
                "[[token]]\nname = \"a\"\nrole = \"viewer\"\nsha256 = \"{H}\"\ntoken = \"x\"",
                "unknown field `token`",
            ),
            (
                "[[token]]\nname = \"a\"\nrole = \"viewer\"\nsha256 = \"{H}\"\n[[token]]\nname = \"a\"\nrole = \"viewer\"\nsha256 = \"{H2}\"",
                "token 2 (\"a\"): the name is used twice",
            ),
            (
                "[[token]]\nname = \"a\"\nrole = \"viewer\"\nsha256 = \"{H}\"\n[[token]]\nname = \"b\"\nrole = \"viewer\"\nsha256 = \"{H}\"",
                "the same token is listed twice",
            ),
        ];
        for (text, says) in cases {
            let text = text.replace("{H2}", &hash_token("y")).replace("{H}", &hash);
            let error = parse_tokens(&text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
        assert_eq!(parse_tokens("").unwrap(), vec![]);
    }

    #[test]
    fn a_tokens_file_others_can_read_is_refused_naming_path_and_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        std::fs::write(&path, token_entry_toml("a", Role::Viewer, "t")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = load_tokens(&path).unwrap_err();
        assert!(
            error.contains(&path.display().to_string()) && error.contains("mode 0644"),
            "{error}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(load_tokens(&path).unwrap().len(), 1);
    }

    #[test]
    fn a_token_wins_over_the_connection_default() {
        let auth = auth();
        let tcp = Peer::Tcp("127.0.0.1:5000".parse().unwrap());
        let root = Peer::Unix { uid: Some(0) };
        let own = Peer::Unix { uid: Some(1234) };
        let other = Peer::Unix { uid: Some(1000) };
        let none = HeaderMap::new();
        let role = |peer: &Peer, headers: &HeaderMap| {
            auth.identify(Some(peer), &Method::GET, headers)
                .map(|who| (who.caller.role, who.credential))
        };
        assert_eq!(role(&tcp, &none), Ok((Role::Viewer, Credential::None)));
        assert_eq!(
            role(&root, &none),
            Ok((Role::Operator, Credential::SocketPeer))
        );
        assert_eq!(
            role(&own, &none),
            Ok((Role::Operator, Credential::SocketPeer))
        );
        assert_eq!(
            role(&other, &none),
            Ok((Role::Viewer, Credential::SocketPeer))
        );
        assert_eq!(
            auth.identify(None, &Method::GET, &none)
                .unwrap()
                .caller
                .role,
            Role::Viewer
        );
        let operator = headers(&[("authorization", &format!("Bearer {OPERATOR}"))]);
        let viewer = headers(&[("authorization", &format!("bearer {VIEWER}"))]);
        assert_eq!(
            role(&tcp, &operator),
            Ok((Role::Operator, Credential::Token))
        );
        assert_eq!(
            role(&other, &operator),
            Ok((Role::Operator, Credential::Token))
        );
        // Even a weaker one: the caller said who they are.
        assert_eq!(role(&own, &viewer), Ok((Role::Viewer, Credential::Token)));
        let who = auth.identify(Some(&tcp), &Method::GET, &operator).unwrap();
        assert_eq!(who.caller.name, "token:console-1");
    }

    #[test]
    fn a_wrong_credential_is_refused_not_downgraded() {
        let auth = auth();
        let own = Peer::Unix { uid: Some(1234) };
        for value in [
            "Bearer torii_nope",
            "Basic dXNlcjpwdw==",
            "Bearer",
            "Bearer a b",
        ] {
            let refusal = auth
                .identify(
                    Some(&own),
                    &Method::GET,
                    &headers(&[("authorization", value)]),
                )
                .unwrap_err();
            assert!(!refusal.csrf);
            assert_eq!(refusal.adapter, "http:uid=1234");
            assert!(!refusal.why.contains("nope"), "{refusal:?}");
        }
        let refusal = auth
            .identify(
                None,
                &Method::GET,
                &headers(&[("cookie", "torii_session=forged")]),
            )
            .unwrap_err();
        assert_eq!(refusal.why, "unknown or expired session");
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_need_the_csrf_header_to_change_state_and_expire_when_idle() {
        let auth = auth();
        assert!(auth.open_session("torii_wrong").is_none());
        let (id, caller) = auth.open_session(OPERATOR).unwrap();
        assert_eq!(caller.name, "session:console-1");
        let cookie = format!("theme=dark; {SESSION_COOKIE}={id}");
        let plain = headers(&[("cookie", &cookie)]);
        let with_header = headers(&[("cookie", &cookie), (CSRF_HEADER, "1")]);
        let who = auth.identify(None, &Method::GET, &plain).unwrap();
        assert_eq!(
            (who.caller.role, who.caller.name.as_str(), who.credential),
            (Role::Operator, "session:console-1", Credential::Session)
        );
        let refusal = auth.identify(None, &Method::POST, &plain).unwrap_err();
        assert!(refusal.csrf);
        assert!(auth.identify(None, &Method::POST, &with_header).is_ok());

        // Use keeps it alive; idleness ends it.
        tokio::time::advance(SESSION_IDLE - Duration::from_secs(1)).await;
        assert!(auth.identify(None, &Method::GET, &plain).is_ok());
        tokio::time::advance(SESSION_IDLE - Duration::from_secs(1)).await;
        assert!(auth.identify(None, &Method::GET, &plain).is_ok());
        tokio::time::advance(SESSION_IDLE).await;
        assert!(auth.identify(None, &Method::GET, &plain).is_err());

        let (id, _) = auth.open_session(VIEWER).unwrap();
        assert!(auth.close_session(&id));
        assert!(!auth.close_session(&id));
        assert!(auth.session_caller(&id).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_session_table_is_bounded() {
        let auth = auth();
        let (first, _) = auth.open_session(VIEWER).unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..MAX_SESSIONS {
            auth.open_session(VIEWER).unwrap();
        }
        assert!(
            auth.session_caller(&first).is_none(),
            "the oldest went first"
        );
        assert_eq!(auth.sessions.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[tokio::test(start_paused = true)]
    async fn reloaded_tokens_end_the_sessions_of_removed_or_demoted_tokens() {
        let auth = auth();
        let (operator, _) = auth.open_session(OPERATOR).unwrap();
        let (viewer, _) = auth.open_session(VIEWER).unwrap();
        // The operator token is removed (leaked), the viewer's kept, a new one added.
        let fresh = new_token();
        let file = format!(
            "{}\n{}",
            token_entry_toml("wall", Role::Viewer, VIEWER),
            token_entry_toml("console-2", Role::Operator, &fresh)
        );
        assert_eq!(auth.replace_tokens(parse_tokens(&file).unwrap()), 1);
        assert_eq!(auth.token_caller(OPERATOR), None);
        assert!(auth.session_caller(&operator).is_none());
        assert_eq!(
            auth.session_caller(&viewer),
            Some(Caller::new(Role::Viewer, "session:wall"))
        );
        assert_eq!(
            auth.token_caller(&fresh),
            Some(Caller::new(Role::Operator, "token:console-2"))
        );
        // The same token given another role: its sessions end too.
        let demoted = token_entry_toml("console-2", Role::Viewer, &fresh);
        let (session, _) = auth.open_session(&fresh).unwrap();
        auth.replace_tokens(parse_tokens(&demoted).unwrap());
        assert!(auth.session_caller(&session).is_none());
        assert!(auth.session_caller(&viewer).is_none(), "wall is gone too");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let map = headers(&[("cookie", "a=1"), ("cookie", "b=2; torii_session=\"xyz\"")]);
        assert_eq!(session_cookie(&map), Some("xyz"));
        assert_eq!(
            session_cookie(&headers(&[("cookie", "torii_session=")])),
            None
        );
        assert!(session_set_cookie("x").contains("HttpOnly; SameSite=Strict"));
    }
}
