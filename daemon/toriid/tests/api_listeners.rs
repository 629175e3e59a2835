//! The API on real listeners, through `toriictl`: the Unix socket identifies its peer
//! by `SO_PEERCRED` (this test runs as toriid's own user: operator), loopback TCP
//! callers without a token are viewers, tokens win over both, the event stream
//! follows the bus, and stopping the server ends open streams.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::watch;

use toriid::api::auth::{self, Auth};
use toriid::api::http::{self, Api};
use toriid::command::{Core, Role};
use toriid::config::{GateConfig, Lane};
use toriid::events::GateEvent;
use toriid::registry::Registry;

const OPERATOR: &str = "torii_listeners-operator";
const VIEWER: &str = "torii_listeners-viewer";
/// A guard against a hung test, not a timing assertion.
const GUARD: Duration = Duration::from_secs(60);

struct Daemon {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    url: String,
    core: Arc<Core>,
    stop: watch::Sender<bool>,
    servers: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

async fn daemon() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let gate = GateConfig {
        id: "NRT-T1-E01".to_owned(),
        lane: Lane::Entry,
        port: "NRT".to_owned(),
    };
    let core = Arc::new(Core::new(
        gate,
        Arc::new(Registry::new(&[])),
        Instant::now(),
    ));
    core.set_flow_missing("no card issuer key configured".to_owned());
    core.set_ready(true);
    let tokens = [
        ("console-1", Role::Operator, OPERATOR),
        ("wall", Role::Viewer, VIEWER),
    ]
    .map(|(name, role, token)| auth::token_entry_toml(name, role, token))
    .concat();
    // The real own user id: this process is "toriid's user" on the socket.
    let api = Api::with_auth(
        core.clone(),
        Auth::new(auth::parse_tokens(&tokens).unwrap()),
    );
    let (stop, stopping) = watch::channel(false);
    let stopped = move || {
        let mut stopping = stopping.clone();
        async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        }
    };
    let socket = dir.path().join("api.sock");
    let unix = toriid::api::socket::bind_unix(&socket).unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", tcp.local_addr().unwrap());
    let servers = vec![
        tokio::spawn(http::serve(unix, http::router(api.clone()), stopped())),
        tokio::spawn(http::serve(tcp, http::router(api), stopped())),
    ];
    Daemon {
        _dir: dir,
        socket,
        url,
        core,
        stop,
        servers,
    }
}

fn toriictl(socket: &Path, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_toriictl"));
    command
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("TORII_TOKEN")
        .env_remove("TORII_API_SOCKET")
        .kill_on_drop(true);
    command
}

async fn run(socket: &Path, args: &[&str]) -> Output {
    tokio::time::timeout(GUARD, toriictl(socket, args).output())
        .await
        .expect("toriictl finished")
        .unwrap()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn own_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    // The owner of a file this process just created.
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().metadata().unwrap().uid()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_are_identified_by_socket_peer_token_or_as_tcp_viewers() {
    let d = daemon().await;
    let socket = d.socket.as_path();

    let me = json(&run(socket, &["--json", "whoami"]).await);
    assert_eq!(me["role"], "operator", "{me}");
    assert_eq!(me["credential"], "socket-peer");
    assert_eq!(me["name"], format!("socket:uid={}", own_uid()));

    let tcp = json(&run(socket, &["--url", &d.url, "--json", "whoami"]).await);
    assert_eq!(
        (tcp["role"].as_str(), tcp["name"].as_str()),
        (Some("viewer"), Some("tcp:anonymous"))
    );
    let token = json(
        &run(
            socket,
            &["--url", &d.url, "--token", OPERATOR, "--json", "whoami"],
        )
        .await,
    );
    assert_eq!(
        (token["role"].as_str(), token["name"].as_str()),
        (Some("operator"), Some("token:console-1"))
    );
    // A token wins on the socket too, even a weaker one.
    let mut command = toriictl(socket, &["--json", "whoami"]);
    command.env("TORII_TOKEN", VIEWER);
    let viewer = json(&command.output().await.unwrap());
    assert_eq!(viewer["role"], "viewer");

    // Control without a credential over TCP: refused, with a hint.
    let refused = run(socket, &["--url", &d.url, "door", "exit", "open"]).await;
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("needs the operator role") && stderr.contains("--token"),
        "{stderr}"
    );
    // A wrong token: refused and said so.
    let wrong = run(
        socket,
        &["--url", &d.url, "--token", "torii_nope", "status"],
    )
    .await;
    assert_eq!(wrong.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("not in toriid's tokens file") && !stderr.contains("torii_nope"),
        "{stderr}"
    );
    // Allowed, and answered by the core (no gate flow here).
    for args in [
        &["door", "entry", "lock"][..],
        &["alarm", "ack"],
        &["stamp"],
        &["mode", "maintenance"],
    ] {
        let output = run(socket, args).await;
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("the gate is not running"),
            "{args:?}: {stderr}"
        );
    }
    let _ = d.stop.send(true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toriictl_follows_events_and_the_stream_ends_when_the_server_stops() {
    let d = daemon().await;
    let socket = d.socket.as_path();

    // `--count 2`: the follower prints two events and exits. Events are published
    // until it has them (it subscribes at some point after it starts).
    let follower = toriictl(socket, &["--json", "events", "--count", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let publisher = {
        let core = d.core.clone();
        tokio::spawn(async move {
            loop {
                core.events().publish(GateEvent::ModeChanged {
                    mode: torii_core::flow::Mode::Maintenance,
                });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let output = tokio::time::timeout(GUARD, follower.wait_with_output())
        .await
        .expect("the follower got its events")
        .unwrap();
    publisher.abort();
    assert!(output.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|l| l["type"] == "mode-changed" && l["mode"] == "maintenance")
    );
    assert!(lines[0]["id"].as_u64() < lines[1]["id"].as_u64());

    // An open stream does not hold up the graceful shutdown: once the follower
    // printed an event (it is subscribed), the server is stopped.
    let mut open = toriictl(socket, &["--json", "events"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(open.stdout.take().unwrap()).lines();
    let publisher = {
        let core = d.core.clone();
        tokio::spawn(async move {
            loop {
                core.events().publish(GateEvent::AlarmCleared);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let first = tokio::time::timeout(GUARD, lines.next_line())
        .await
        .expect("an event")
        .unwrap()
        .unwrap();
    publisher.abort();
    assert!(first.contains("alarm-cleared"), "{first}");
    let _ = d.stop.send(true);
    for server in d.servers {
        tokio::time::timeout(GUARD, server)
            .await
            .expect("the server stopped")
            .unwrap()
            .unwrap();
    }
    while let Ok(Some(_)) = tokio::time::timeout(GUARD, lines.next_line())
        .await
        .expect("the stream ended")
    {}
    let status = tokio::time::timeout(GUARD, open.wait())
        .await
        .expect("the follower stopped with the server")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn token_new_prints_a_token_and_its_entry() {
    let output = run(
        Path::new("/nonexistent"),
        &[
            "--json",
            "token",
            "new",
            "--name",
            "console-2",
            "--role",
            "kiosk",
        ],
    )
    .await;
    assert!(output.status.success());
    let view = json(&output);
    let token = view["token"].as_str().unwrap();
    assert!(token.starts_with(auth::TOKEN_PREFIX));
    assert_eq!(view["sha256"], auth::hash_token(token));
    let entries = auth::parse_tokens(view["entry"].as_str().unwrap()).unwrap();
    assert_eq!(
        (entries[0].name.as_str(), entries[0].role),
        ("console-2", Role::Kiosk)
    );
    let auth = Auth::with_uid(entries, 0);
    assert_eq!(auth.token_caller(token).unwrap().name, "token:console-2");

    // Human form: the token alone on stdout's first line, then the entry.
    let output = run(
        Path::new("/nonexistent"),
        &["token", "new", "--name", "ops", "--role", "operator"],
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let token = stdout.lines().next().unwrap();
    assert!(stdout.contains(&format!("sha256 = \"{}\"", auth::hash_token(token))));
    let bad = run(
        Path::new("/nonexistent"),
        &["token", "new", "--name", "has space", "--role", "operator"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
}
