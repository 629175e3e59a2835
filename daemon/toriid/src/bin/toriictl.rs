//! `toriictl`: the command-line client of toriid's HTTP API, over the Unix socket
//! (default) or the loopback TCP address. `--token` (or `TORII_TOKEN`) authenticates
//! with an API token; without one, toriid takes root and its own user on the socket for
//! operators, and anyone else for a viewer.
//!
//! Exit codes: 0 ok, 1 the command failed (device error, unknown device), 2 usage or
//! connection error. `toriictl audit verify` reads the audit trail's files directly (no
//! daemon needed): 0 intact, 1 tampered or damaged, 2 cannot check (unreadable, no key).

use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Method, StatusCode, header};
use hyper_util::rt::TokioIo;
use torii_sdk::model::Request;
use toriid::api::json;
use toriid::command::{CallView, DeviceView, ErrorView, ResponseView, StatusView};

const DEFAULT_SOCKET: &str = "/run/torii/api.sock";
/// toriid's default `audit.path` (`paths.state_dir` + `audit.log`).
const DEFAULT_AUDIT_LOG: &str = "/var/lib/torii/audit.log";

#[derive(Parser)]
#[command(
    name = "toriictl",
    version,
    about = "Control and inspect a running toriid"
)]
struct Cli {
    /// toriid's API socket (every command).
    #[arg(long, env = "TORII_API_SOCKET", default_value = DEFAULT_SOCKET, value_name = "PATH")]
    socket: PathBuf,
    /// Use the loopback TCP API instead, e.g. http://127.0.0.1:8770 (without a token:
    /// read-only commands only).
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// An API token (`toriictl token new`), sent as `Authorization: Bearer`.
    #[arg(
        long,
        env = "TORII_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        global = true
    )]
    token: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Gate status: id, lane, in service, device counts.
    Status,
    /// Every configured device with its state.
    Devices,
    /// One device in detail, with its recent events.
    Device { id: String },
    /// Run one operation on a device (officer / maintenance access).
    ///
    /// OP is an operation name with optional KEY=VALUE arguments
    /// (`read-mrz`; `set-door door=entry command=open`; `capture-face timeout_ms=5000`)
    /// or a raw JSON request (`'{"op":"get-state"}'`).
    Call {
        id: String,
        op: String,
        args: Vec<String>,
    },
    /// The gate's live state: mode, current step, last outcome.
    Gate,
    /// Put the gate in service, out of service, or into maintenance (officer access).
    Mode {
        #[arg(value_parser = ["in-service", "out-of-service", "maintenance"])]
        mode: String,
    },
    /// Recent transactions, newest first (no personal data).
    Transactions {
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// One transaction's full record (personal data: socket only).
    Transaction { id: String },
    /// Command a door: open, close, lock or free (officer access; ends a transaction
    /// under way).
    Door {
        #[arg(value_parser = ["entry", "exit"])]
        door: String,
        #[arg(value_parser = ["open", "close", "lock", "free"])]
        command: String,
    },
    /// The lane's alarm (officer access).
    #[command(subcommand)]
    Alarm(AlarmCmd),
    /// Note the traveler's request for a passport stamp (officer access).
    Stamp,
    /// Follow the gate's events, one line per event (`--json`: the event's JSON).
    Events {
        /// Stop after N events.
        #[arg(long, value_name = "N")]
        count: Option<usize>,
    },
    /// Who toriid takes this caller for: role, name, credential.
    Whoami,
    /// API tokens (no daemon needed).
    #[command(subcommand)]
    Token(TokenCmd),
    /// Passports: check an MRZ here, or inspect the chip on the gate's reader.
    #[command(subcommand)]
    Doc(DocCmd),
    /// The tamper-evident audit trail, read from its files (no daemon needed).
    #[command(subcommand)]
    Audit(AuditCmd),
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Check the whole trail: detects any edited, deleted, reordered or cut-off entry
    /// and says where. Exit 0 intact, 1 tampered, 2 cannot check.
    Verify {
        #[command(flatten)]
        log: AuditLogArg,
        /// The log's HMAC key file (toriid's `audit.key_file`). Required for a keyed
        /// log; without a key a check proves only that the file is self-consistent.
        #[arg(long, env = "TORII_AUDIT_KEY", value_name = "PATH")]
        key: Option<PathBuf>,
    },
    /// Print the trail's entries, oldest first (no personal data by design). Does not
    /// check them: use `audit verify`.
    Show {
        #[command(flatten)]
        log: AuditLogArg,
        /// Only the last N entries.
        #[arg(long, value_name = "N")]
        last: Option<usize>,
    },
}

#[derive(clap::Args)]
struct AuditLogArg {
    /// The audit log (its head file is PATH.head, next to it).
    #[arg(long = "log", env = "TORII_AUDIT_LOG", default_value = DEFAULT_AUDIT_LOG, value_name = "PATH")]
    path: PathBuf,
}

#[derive(Subcommand)]
enum AlarmCmd {
    /// Acknowledge the alarm waiting for an officer.
    #[command(alias = "acknowledge")]
    Ack,
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Print a fresh random token and the entry to add to toriid's tokens file
    /// (`[http] tokens_file`), which holds only the token's SHA-256.
    New {
        /// The token's name in logs and the audit trail (e.g. console-1).
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["viewer", "kiosk", "operator"])]
        role: String,
    },
}

#[derive(Subcommand)]
enum DocCmd {
    /// Parse and check an MRZ (2 or 3 lines) locally: every check digit and field.
    Mrz {
        #[arg(num_args = 2..=3, required = true)]
        lines: Vec<String>,
    },
    /// Inspect the passport on the gate's document reader (PACE/BAC, passive, chip and
    /// active authentication) and print every check. The optical MRZ is used unless
    /// given with --mrz (readers without optics).
    Read {
        #[arg(long = "mrz", num_args = 2..=3)]
        mrz: Option<Vec<String>>,
    },
}

/// Where toriid is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Unix(PathBuf),
    /// `host:port` of an `http://` URL.
    Tcp(String),
}

impl Target {
    fn describe(&self) -> String {
        match self {
            Target::Unix(path) => path.display().to_string(),
            Target::Tcp(authority) => format!("http://{authority}"),
        }
    }
}

fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("unsupported URL {url:?}: expected http://HOST:PORT"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("URL {url:?} has no host"));
    }
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok(Target::Tcp(authority))
}

/// Builds a device request from `op` and `key=value` arguments (values are JSON when
/// they parse as JSON, strings otherwise), or takes `op` as raw JSON.
fn parse_call(op: &str, args: &[String]) -> Result<Request, String> {
    if op.trim_start().starts_with('{') {
        if !args.is_empty() {
            return Err("a raw JSON request takes no further arguments".to_owned());
        }
        return json::parse_request(op.as_bytes());
    }
    let value = {
        let mut map = serde_json::Map::new();
        map.insert("op".to_owned(), op.into());
        for arg in args {
            let (key, value) = arg
                .split_once('=')
                .ok_or_else(|| format!("argument {arg:?} is not KEY=VALUE"))?;
            let value =
                serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::from(value));
            map.insert(key.replace('-', "_"), value);
        }
        serde_json::Value::Object(map)
    };
    json::request_from_value(value)
}

#[derive(Debug)]
enum Failure {
    /// Usage or connection: exit 2.
    Usage(String),
    /// The command ran and failed: exit 1.
    Command(String),
}

async fn send(
    target: &Target,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<(StatusCode, Bytes), Failure> {
    let (host, io) = connect(target).await?;
    let request = build_request(&host, token, method, path, body)?;
    let protocol = |e: hyper::Error| {
        Failure::Usage(format!("HTTP error talking to {}: {e}", target.describe()))
    };
    let response = match io {
        Io::Unix(io) => exchange(io, request).await,
        Io::Tcp(io) => exchange(io, request).await,
    }
    .map_err(protocol)?;
    Ok(response)
}

fn build_request(
    host: &str,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<String>,
) -> Result<hyper::Request<Full<Bytes>>, Failure> {
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, host)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|_| {
            Failure::Usage("cannot build the request (is the token well-formed?)".to_owned())
        })
}

async fn connect(target: &Target) -> Result<(String, Io), Failure> {
    let unreachable = |e: std::io::Error| {
        Failure::Usage(format!(
            "cannot reach toriid at {}: {} — is toriid running?",
            target.describe(),
            io_message(&e)
        ))
    };
    Ok(match target {
        Target::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(unreachable)?;
            ("localhost".to_owned(), Io::Unix(TokioIo::new(stream)))
        }
        Target::Tcp(authority) => {
            let stream = tokio::net::TcpStream::connect(authority.as_str())
                .await
                .map_err(unreachable)?;
            (authority.clone(), Io::Tcp(TokioIo::new(stream)))
        }
    })
}

enum Io {
    Unix(TokioIo<tokio::net::UnixStream>),
    Tcp(TokioIo<tokio::net::TcpStream>),
}

async fn exchange<T>(
    io: T,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), hyper::Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    driver.abort();
    Ok((status, body))
}

/// `No such file or directory`, without the `(os error 2)` suffix.
fn io_message(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body)
        .map_err(|e| Failure::Usage(format!("unexpected answer from toriid: {e}")))
}

/// `toriictl doc mrz`: no daemon needed.
fn check_mrz(lines: &[String], json_out: bool) -> Result<(), Failure> {
    match torii_icao::mrz::parse(&lines.join("\n")) {
        Ok(mrz) => {
            let view = serde_json::json!({
                "valid": true,
                "format": format!("{:?}", mrz.format),
                "document_code": mrz.document_code,
                "issuing_state": mrz.issuing_state,
                "document_number": mrz.document_number,
                "nationality": mrz.nationality,
                "date_of_birth": mrz.date_of_birth,
                "sex": mrz.sex.to_string(),
                "date_of_expiry": mrz.date_of_expiry,
                "primary_identifier": mrz.primary_identifier,
                "secondary_identifier": mrz.secondary_identifier,
            });
            if json_out {
                println!("{view}");
            } else {
                println!(
                    "MRZ valid ({:?}): every check digit and the composite agree",
                    mrz.format
                );
                for key in [
                    "document_code",
                    "issuing_state",
                    "document_number",
                    "nationality",
                    "date_of_birth",
                    "sex",
                    "date_of_expiry",
                    "primary_identifier",
                    "secondary_identifier",
                ] {
                    println!("  {key:<22} {}", view[key].as_str().unwrap_or_default());
                }
            }
            Ok(())
        }
        Err(error) => {
            if json_out {
                println!(
                    "{}",
                    serde_json::json!({ "valid": false, "error": error.to_string() })
                );
            }
            Err(Failure::Command(format!("MRZ invalid: {error}")))
        }
    }
}

/// `toriictl audit`: reads the files, no daemon needed.
fn audit(command: &AuditCmd, json_out: bool) -> Result<(), Failure> {
    match command {
        AuditCmd::Verify { log, key } => verify_audit(&log.path, key.as_deref(), json_out),
        AuditCmd::Show { log, last } => show_audit(&log.path, *last, json_out),
    }
}

fn verify_audit(
    path: &std::path::Path,
    key: Option<&std::path::Path>,
    json_out: bool,
) -> Result<(), Failure> {
    let key = key
        .map(torii_audit::AuditKey::from_file)
        .transpose()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let shown = path.display();
    match torii_audit::verify(path, key.as_ref()) {
        Ok(report) => {
            if json_out {
                let mut view = serde_json::to_value(&report).unwrap_or_default();
                if let Some(map) = view.as_object_mut() {
                    map.insert("log".to_owned(), shown.to_string().into());
                    map.insert("status".to_owned(), "intact".into());
                    map.insert("valid".to_owned(), true.into());
                }
                println!("{view}");
            } else {
                println!(
                    "audit log {shown}: {} entries, chain intact, head seq {}",
                    report.entries, report.head_seq
                );
                if !report.keyed {
                    eprintln!(
                        "toriictl: checked without a key: this proves only that the file is \
                         self-consistent (anyone able to write it could have rebuilt it)"
                    );
                }
            }
            Ok(())
        }
        Err(error) => {
            let tampered = error.is_tampering();
            if json_out {
                let mut view = error.to_json();
                if let Some(map) = view.as_object_mut() {
                    map.insert("log".to_owned(), shown.to_string().into());
                    let status = if tampered { "tampered" } else { "unverifiable" };
                    map.insert("status".to_owned(), status.into());
                    map.insert("valid".to_owned(), false.into());
                }
                println!("{view}");
            }
            match error {
                torii_audit::VerifyError::KeyRequired => Err(Failure::Usage(format!(
                    "audit log {shown}: {error} (--key PATH)"
                ))),
                torii_audit::VerifyError::Io { path, source } => Err(Failure::Usage(format!(
                    "cannot read {}: {}",
                    path.display(),
                    io_message(&source)
                ))),
                _ if !tampered => Err(Failure::Usage(format!("audit log {shown}: {error}"))),
                _ if error.line().is_some() => Err(Failure::Command(format!(
                    "audit log {shown}: TAMPERED at {error}"
                ))),
                _ => Err(Failure::Command(format!(
                    "audit log {shown}: TAMPERED: {error}"
                ))),
            }
        }
    }
}

fn show_audit(path: &std::path::Path, last: Option<usize>, json_out: bool) -> Result<(), Failure> {
    let shown = path.display();
    let entries = torii_audit::read_entries(path)
        .map_err(|e| Failure::Usage(format!("audit log {shown}: {e}")))?;
    let mut kept = std::collections::VecDeque::new();
    let mut malformed = 0usize;
    for entry in entries {
        match entry {
            Ok(entry) => {
                if last.is_some_and(|n| kept.len() == n) {
                    kept.pop_front();
                }
                if last != Some(0) {
                    kept.push_back(entry);
                }
            }
            Err(torii_audit::VerifyError::Io { source, .. }) => {
                return Err(Failure::Usage(format!(
                    "audit log {shown}: {}",
                    io_message(&source)
                )));
            }
            Err(e) => {
                eprintln!("toriictl: audit log {shown}: {e}");
                malformed += 1;
            }
        }
    }
    if json_out {
        println!(
            "{}",
            serde_json::to_string(&kept).unwrap_or_else(|_| "[]".to_owned())
        );
    } else {
        for entry in &kept {
            let at = entry
                .at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            // The file is not verified here: keep its text from driving the terminal.
            let detail: String = entry
                .detail
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            println!(
                "{:>6}  {at}  {:<24} {:<24} {detail}",
                entry.seq,
                entry.kind,
                entry.actor.as_deref().unwrap_or("-")
            );
        }
    }
    if malformed > 0 {
        return Err(Failure::Command(format!(
            "audit log {shown}: {malformed} malformed line(s): run `toriictl audit verify`"
        )));
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let target = match &cli.url {
        Some(url) => parse_url(url).map_err(Failure::Usage)?,
        None => Target::Unix(cli.socket.clone()),
    };
    let (method, path, body) = match &cli.command {
        Cmd::Status => (Method::GET, "/api/v1/status".to_owned(), None),
        Cmd::Devices => (Method::GET, "/api/v1/devices".to_owned(), None),
        Cmd::Device { id } => (
            Method::GET,
            format!("/api/v1/devices/{}", path_segment(id)?),
            None,
        ),
        Cmd::Call { id, op, args } => {
            let request = parse_call(op, args).map_err(Failure::Usage)?;
            let body = json::request_to_value(&request).to_string();
            (
                Method::POST,
                format!("/api/v1/devices/{}/call", path_segment(id)?),
                Some(body),
            )
        }
        Cmd::Gate => (Method::GET, "/api/v1/gate".to_owned(), None),
        Cmd::Mode { mode } => (
            Method::POST,
            "/api/v1/gate/mode".to_owned(),
            Some(serde_json::json!({ "mode": mode }).to_string()),
        ),
        Cmd::Transactions { limit } => (
            Method::GET,
            format!("/api/v1/transactions?limit={limit}"),
            None,
        ),
        Cmd::Transaction { id } => (
            Method::GET,
            format!("/api/v1/transactions/{}", path_segment(id)?),
            None,
        ),
        Cmd::Doc(DocCmd::Read { mrz }) => (
            Method::POST,
            "/api/v1/documents/inspect".to_owned(),
            Some(serde_json::json!({ "mrz": mrz }).to_string()),
        ),
        Cmd::Door { door, command } => (
            Method::POST,
            "/api/v1/gate/doors".to_owned(),
            Some(serde_json::json!({ "door": door, "command": command }).to_string()),
        ),
        Cmd::Alarm(AlarmCmd::Ack) => (
            Method::POST,
            "/api/v1/gate/alarm/acknowledge".to_owned(),
            None,
        ),
        Cmd::Stamp => (Method::POST, "/api/v1/gate/stamp-request".to_owned(), None),
        Cmd::Whoami => (Method::GET, "/api/v1/whoami".to_owned(), None),
        Cmd::Events { count } => {
            return follow_events(&target, cli.token.as_deref(), *count, cli.json).await;
        }
        Cmd::Token(TokenCmd::New { name, role }) => return new_token(name, role, cli.json),
        Cmd::Doc(DocCmd::Mrz { lines }) => return check_mrz(lines, cli.json),
        Cmd::Audit(command) => return audit(command, cli.json),
    };
    let (status, body) = send(&target, cli.token.as_deref(), method, &path, body).await?;

    if !status.is_success() {
        if cli.json {
            println!("{}", String::from_utf8_lossy(&body));
        }
        return Err(refusal(status, &body, cli.token.is_some()));
    }
    if cli.json {
        println!("{}", String::from_utf8_lossy(&body));
        // Scripts rely on the exit code: a document that is not verified is a failure.
        if let Cmd::Doc(_) = &cli.command {
            let report: toriid::gate::InspectionReport = decode(&body)?;
            if !report.genuine {
                return Err(Failure::Command(format!(
                    "document not verified: {}",
                    report.reason.as_deref().unwrap_or("see the checks")
                )));
            }
        }
        return Ok(());
    }
    match &cli.command {
        Cmd::Status => print_status(&decode(&body)?),
        Cmd::Devices => print_devices(&decode::<Vec<DeviceView>>(&body)?),
        Cmd::Device { .. } => print_device(&decode(&body)?),
        Cmd::Call { .. } => print_call(&decode(&body)?),
        // Line-oriented JSON is the clearest human form of these views for now.
        Cmd::Doc(_) => print_inspection(&decode(&body)?)?,
        Cmd::Audit(_) => unreachable!("answered from the files above"),
        Cmd::Events { .. } | Cmd::Token(_) => unreachable!("answered above"),
        Cmd::Gate
        | Cmd::Mode { .. }
        | Cmd::Transactions { .. }
        | Cmd::Transaction { .. }
        | Cmd::Door { .. }
        | Cmd::Alarm(_)
        | Cmd::Stamp
        | Cmd::Whoami => {
            let value: serde_json::Value = decode(&body)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// An error answer as a failure, with a hint when a credential would help.
fn refusal(status: StatusCode, body: &[u8], had_token: bool) -> Failure {
    let error: ErrorView = decode(body).unwrap_or_else(|_| ErrorView {
        error: "http".to_owned(),
        message: format!("HTTP {status}"),
        code: None,
    });
    let code = error.code.map(|c| format!(" [{c}]")).unwrap_or_default();
    let hint = match (error.error.as_str(), had_token) {
        ("unauthorized", false) => {
            " (give a token with --token or TORII_TOKEN, or use the API socket as root or toriid's user)"
        }
        ("unauthorized", true) => " (the token is not in toriid's tokens file)",
        _ => "",
    };
    Failure::Command(format!("{}{code}{hint}", error.message))
}

/// `toriictl token new`: no daemon needed.
fn new_token(name: &str, role: &str, json_out: bool) -> Result<(), Failure> {
    use toriid::api::auth;
    if !auth::valid_token_name(name) {
        return Err(Failure::Usage(format!(
            "invalid token name {name:?}: 1 to 64 letters, digits, '-', '_' or '.'"
        )));
    }
    let role =
        auth::parse_role(role).ok_or_else(|| Failure::Usage(format!("unknown role {role:?}")))?;
    let token = auth::new_token();
    let entry = auth::token_entry_toml(name, role, &token);
    if json_out {
        let view = serde_json::json!({
            "name": name,
            "role": role,
            "token": token,
            "sha256": auth::hash_token(&token),
            "entry": entry,
        });
        println!("{view}");
    } else {
        println!("{token}");
        eprintln!(
            "toriictl: the token above is shown only now: give it to the client (toriictl --token \
             or TORII_TOKEN, or the console's login). Add this entry to toriid's tokens file \
             ([http] tokens_file, not readable by others) and run `systemctl reload toriid`:"
        );
        print!("\n{entry}");
    }
    Ok(())
}

/// One server-sent event as received.
#[derive(Debug, Default, PartialEq, Eq)]
struct SseEvent {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// Splits a server-sent event stream into events; keeps a partial event between chunks.
#[derive(Default)]
struct SseParser {
    buffer: String,
    current: SseEvent,
}

impl SseParser {
    fn push(&mut self, chunk: &str) -> Vec<SseEvent> {
        self.buffer.push_str(chunk);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find('\n') {
            let line: String = self.buffer.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let event = std::mem::take(&mut self.current);
                if event.event.is_some() || !event.data.is_empty() {
                    events.push(event);
                }
                continue;
            }
            // `: keep-alive` and other comments.
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => self.current.id = Some(value.to_owned()),
                "event" => self.current.event = Some(value.to_owned()),
                "data" => {
                    if !self.current.data.is_empty() {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(value);
                }
                _ => {}
            }
        }
        events
    }
}

/// One line per event: the JSON (`--json`, with `type` for `lagged` too) or
/// `ID  TYPE  key=value ...`.
fn event_line(event: &SseEvent, json_out: bool) -> String {
    let name = event.event.as_deref().unwrap_or("message");
    let mut value: serde_json::Value = serde_json::from_str(&event.data)
        .unwrap_or_else(|_| serde_json::Value::from(event.data.clone()));
    if let Some(map) = value.as_object_mut() {
        map.entry("type").or_insert_with(|| name.into());
    }
    if json_out {
        return value.to_string();
    }
    let fields: Vec<String> = value
        .as_object()
        .map(|map| {
            map.iter()
                .filter(|(key, _)| !matches!(key.as_str(), "id" | "type"))
                .map(|(key, value)| match value {
                    serde_json::Value::String(text) => format!("{key}={text}"),
                    other => format!("{key}={other}"),
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{:>6}  {name:<22} {}",
        event.id.as_deref().unwrap_or("-"),
        fields.join(" ")
    )
    .trim_end()
    .to_owned()
}

/// `toriictl events`: follows `GET /api/v1/events` until toriid stops (or `count`).
async fn follow_events(
    target: &Target,
    token: Option<&str>,
    count: Option<usize>,
    json_out: bool,
) -> Result<(), Failure> {
    let (host, io) = connect(target).await?;
    let request = build_request(&host, token, Method::GET, "/api/v1/events", None)?;
    let protocol = |e: hyper::Error| {
        Failure::Usage(format!("HTTP error talking to {}: {e}", target.describe()))
    };
    let print = |event: &SseEvent| println!("{}", event_line(event, json_out));
    match io {
        Io::Unix(io) => stream_events(io, request, count, print).await,
        Io::Tcp(io) => stream_events(io, request, count, print).await,
    }
    .map_err(|e| match e {
        StreamError::Http(e) => protocol(e),
        StreamError::Refused(status, body) => refusal(status, &body, token.is_some()),
    })
}

enum StreamError {
    Http(hyper::Error),
    Refused(StatusCode, Bytes),
}

async fn stream_events<T>(
    io: T,
    request: hyper::Request<Full<Bytes>>,
    count: Option<usize>,
    mut print: impl FnMut(&SseEvent),
) -> Result<(), StreamError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    use std::io::Write as _;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(StreamError::Http)?;
    let driver = tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(StreamError::Http)?;
    let status = response.status();
    let mut body = response.into_body();
    if !status.is_success() {
        let bytes = body.collect().await.map_err(StreamError::Http)?.to_bytes();
        driver.abort();
        return Err(StreamError::Refused(status, bytes));
    }
    let mut parser = SseParser::default();
    let mut seen = 0usize;
    while count.is_none_or(|n| seen < n) {
        let Some(frame) = body.frame().await else {
            break;
        };
        let Ok(data) = frame.map_err(StreamError::Http)?.into_data() else {
            continue;
        };
        for event in parser.push(&String::from_utf8_lossy(&data)) {
            if count.is_some_and(|n| seen >= n) {
                break;
            }
            print(&event);
            seen += 1;
        }
        let _ = std::io::stdout().flush();
    }
    driver.abort();
    Ok(())
}

fn print_inspection(report: &toriid::gate::InspectionReport) -> Result<(), Failure> {
    println!(
        "{} (access {}, {} APDUs)",
        if report.genuine {
            "GENUINE"
        } else {
            "NOT VERIFIED"
        },
        report.access,
        report.apdus
    );
    for check in &report.checks {
        let reason = check
            .reason
            .as_deref()
            .map(|r| format!(" [{r}]"))
            .unwrap_or_default();
        let detail = check
            .detail
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        println!("  {:<22} {}{reason}{detail}", check.check, check.outcome);
    }
    if report.genuine {
        Ok(())
    } else {
        Err(Failure::Command(format!(
            "document not verified: {}",
            report.reason.as_deref().unwrap_or("see the checks above")
        )))
    }
}

/// Device ids are restricted by the config to URL-safe characters; refuse anything
/// else rather than build a different path.
fn path_segment(id: &str) -> Result<&str, Failure> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(id)
    } else {
        Err(Failure::Usage(format!("invalid device id {id:?}")))
    }
}

fn print_status(status: &StatusView) {
    let service = match (status.ready, status.in_service) {
        (false, _) => "STARTING",
        (true, true) => "IN SERVICE",
        (true, false) => "OUT OF SERVICE",
    };
    let d = &status.devices;
    println!("gate     {} ({} lane)", status.gate_id, status.lane.name());
    println!("service  {service}");
    println!(
        "toriid   {}, up {}",
        status.version,
        uptime(status.uptime_ms)
    );
    println!(
        "devices  {} total: {} ready, {} busy, {} unavailable, {} disabled",
        d.total, d.ready, d.busy, d.unavailable, d.disabled
    );
}

fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    match (s / 86400, s % 86400 / 3600, s % 3600 / 60) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {}s", s % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

fn state_text(device: &DeviceView) -> String {
    if device.enabled {
        device.state.name().to_owned()
    } else {
        "DISABLED".to_owned()
    }
}

fn driver_text(device: &DeviceView) -> String {
    device
        .driver
        .as_ref()
        .map_or_else(|| "-".to_owned(), |d| format!("{} {}", d.name, d.version))
}

fn print_devices(devices: &[DeviceView]) {
    let rows: Vec<[String; 6]> = devices
        .iter()
        .map(|d| {
            [
                d.id.clone(),
                d.class.clone(),
                state_text(d),
                driver_text(d),
                toriid::config::isolation_name(d.isolation).to_owned(),
                d.fault.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["ID", "CLASS", "STATE", "DRIVER", "ISOLATION", "FAULT"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

fn print_device(device: &DeviceView) {
    println!("id          {}", device.id);
    println!("class       {}", device.class);
    println!("state       {}", state_text(device));
    if let Some(fault) = &device.fault {
        println!("fault       {fault}");
    }
    println!(
        "driver      {} ({})",
        driver_text(device),
        device.driver_path
    );
    if let Some(driver) = &device.driver {
        println!("vendor      {}", driver.vendor);
        println!("abi         {}", driver.abi);
    }
    println!(
        "isolation   {}",
        toriid::config::isolation_name(device.isolation)
    );
    println!("restarts    {}", device.restarts);
    let media = device.media_present.map_or(
        "unknown",
        |present| if present { "present" } else { "absent" },
    );
    println!("media       {media}");
    if !device.events.is_empty() {
        println!("events (oldest first):");
        for event in &device.events {
            println!("  {:>15}  {}", event.at_unix_ms, event.kind);
        }
    }
}

/// Short byte fields as hex, long ones (images, templates) as a length.
fn bytes_text(b64: &str) -> String {
    match BASE64.decode(b64) {
        Ok(bytes) if bytes.len() <= 64 => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Ok(bytes) => format!("<{} bytes>", bytes.len()),
        Err(_) => "<undecodable>".to_owned(),
    }
}

fn print_call(call: &CallView) {
    let kind = serde_json::to_value(&call.response)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str().map(str::to_owned)))
        .unwrap_or_default();
    println!(
        "{} {}: {kind} ({} ms)",
        call.device, call.op, call.elapsed_ms
    );
    match &call.response {
        ResponseView::Done => {}
        ResponseView::State { state } => println!("  state {state}"),
        ResponseView::Mrz { lines } => lines.iter().for_each(|line| println!("  {line}")),
        ResponseView::Atr { atr } => println!("  atr {}", bytes_text(atr)),
        ResponseView::Apdu { response } => println!("  response {}", bytes_text(response)),
        ResponseView::CardChip { data } => println!("  data {}", bytes_text(data)),
        ResponseView::Fingers { samples } => {
            for s in samples {
                let quality = s.quality.map_or("-".to_owned(), |q| q.to_string());
                println!(
                    "  {:?} quality {quality} template {} image {}",
                    s.position,
                    bytes_text(&s.template),
                    bytes_text(&s.image)
                );
            }
        }
        ResponseView::Face { jpeg } => println!("  jpeg {}", bytes_text(jpeg)),
        ResponseView::DoorState { state } => println!("  door {state:?}"),
        ResponseView::PersonCount { count } => println!("  count {count}"),
        ResponseView::FireAlarm { active } => {
            println!("  fire alarm {}", if *active { "ACTIVE" } else { "off" })
        }
    }
}

fn main() -> ExitCode {
    // clap exits 2 on usage errors by itself.
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("toriictl: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Command(message)) => {
            eprintln!("toriictl: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("toriictl: {message}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use torii_sdk::model::{Door, DoorCommand};

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        assert!(Cli::try_parse_from(["toriictl", "mode", "maintenance"]).is_ok());
        assert!(Cli::try_parse_from(["toriictl", "mode", "party"]).is_err());
        assert!(Cli::try_parse_from(["toriictl", "doc", "mrz", "A", "B"]).is_ok());
        assert!(Cli::try_parse_from(["toriictl", "doc", "mrz", "A"]).is_err());
        assert!(Cli::try_parse_from(["toriictl", "doc", "read", "--mrz", "A", "B"]).is_ok());
        assert!(Cli::try_parse_from(["toriictl", "audit", "verify"]).is_ok());
        assert!(
            Cli::try_parse_from(["toriictl", "audit", "verify", "--log", "/x", "--key", "/k"])
                .is_ok()
        );
        assert!(
            Cli::try_parse_from(["toriictl", "--json", "audit", "show", "--last", "5"]).is_ok()
        );
        assert!(Cli::try_parse_from(["toriictl", "audit", "show", "--last", "x"]).is_err());
        assert!(Cli::try_parse_from(["toriictl", "door", "exit", "open"]).is_ok());
        assert!(Cli::try_parse_from(["toriictl", "door", "side", "open"]).is_err());
        assert!(Cli::try_parse_from(["toriictl", "door", "entry", "smash"]).is_err());
        assert!(Cli::try_parse_from(["toriictl", "alarm", "ack"]).is_ok());
        assert!(Cli::try_parse_from(["toriictl", "alarm", "acknowledge"]).is_ok());
        assert!(Cli::try_parse_from(["toriictl", "stamp"]).is_ok());
        assert!(Cli::try_parse_from(["toriictl", "events", "--json", "--count", "3"]).is_ok());
        assert!(
            Cli::try_parse_from([
                "toriictl", "token", "new", "--name", "a", "--role", "operator"
            ])
            .is_ok()
        );
        assert!(
            Cli::try_parse_from(["toriictl", "token", "new", "--name", "a", "--role", "root"])
                .is_err()
        );
        let cli = Cli::try_parse_from(["toriictl", "status", "--token", "torii_x"]).unwrap();
        assert_eq!(cli.token.as_deref(), Some("torii_x"));
    }

    #[test]
    fn event_streams_split_into_events_across_chunks() {
        let mut parser = SseParser::default();
        assert!(
            parser
                .push(": keep-alive\n\nid: 7\nevent: mode-ch")
                .is_empty()
        );
        let events = parser
            .push("anged\ndata: {\"id\":7,\"type\":\"mode-changed\",\"mode\":\"maintenance\"}\n\n");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id.as_deref(), Some("7"));
        assert_eq!(
            event_line(&events[0], false),
            "     7  mode-changed           mode=maintenance"
        );
        assert_eq!(
            event_line(&events[0], true),
            r#"{"id":7,"mode":"maintenance","type":"mode-changed"}"#
        );
        let lagged = parser.push("event: lagged\r\ndata: {\"missed\":3}\r\n\r\n");
        assert_eq!(
            event_line(&lagged[0], true),
            r#"{"missed":3,"type":"lagged"}"#
        );
    }

    #[test]
    fn shorthand_and_raw_json_make_the_same_request() {
        assert_eq!(parse_call("read-mrz", &[]), Ok(Request::ReadMrz));
        assert_eq!(
            parse_call(r#"{"op":"read-mrz"}"#, &[]),
            Ok(Request::ReadMrz)
        );
        let args = ["door=entry".to_owned(), "command=open".to_owned()];
        assert_eq!(
            parse_call("set-door", &args),
            Ok(Request::SetDoor {
                door: Door::Entry,
                command: DoorCommand::Open
            })
        );
        assert_eq!(
            parse_call("capture-face", &["timeout-ms=5000".to_owned()]),
            Ok(Request::CaptureFace { timeout_ms: 5000 })
        );
        assert!(
            parse_call("read-mzr", &[])
                .unwrap_err()
                .contains("read-mzr")
        );
        assert!(parse_call("set-door", &["door".to_owned()]).is_err());
    }

    #[test]
    fn urls_name_a_tcp_authority() {
        assert_eq!(
            parse_url("http://127.0.0.1:8770"),
            Ok(Target::Tcp("127.0.0.1:8770".into()))
        );
        assert_eq!(
            parse_url("http://localhost/"),
            Ok(Target::Tcp("localhost:80".into()))
        );
        assert!(parse_url("https://127.0.0.1:8770").is_err());
    }

    #[test]
    fn os_error_suffix_is_dropped() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(io_message(&e), "No such file or directory");
    }
}
