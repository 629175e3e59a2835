//! Soak: one gate (real toriid, real `.so` sim drivers, the simulators, the mTLS central)
//! serves the entry suite round after round. Measured: toriid's RSS and open file
//! descriptors (and those of its `torii-driver-host` children) after a warm-up round and
//! at the end; checked: every traveler meets their expectation every round, every record
//! the daemon finished is at central exactly once with rising seqs, and the exit door
//! was commanded open exactly once per admission (never for a referral).
//!
//! The suite's admitted travelers fill their cards (15 records); each round the test
//! keeps four admissions by using travelers whose card still has room, drawing on clones
//! of alice (fresh passports and cards, added to the gate's scenario at start: the
//! registry is imported at daemon start only). Referred travelers are stable and run
//! every round.
//!
//! Bounded (CI, default): `cargo nextest run -p torii-e2e --test soak` — 4 rounds,
//! 112 travelers, well under a minute.
//!
//! Long (opt-in, hours; the daemon's debug log in /tmp grows with every traveler):
//! `TORII_SOAK_TRAVELERS=100000 cargo nextest run -p torii-e2e --test soak
//! --run-ignored only --no-capture` (100 000 travelers unless the variable says
//! otherwise; figures every ~5 % of the rounds).

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use torii_e2e::{Gate, GateOptions, PATIENCE, driver_hosts_of};

/// A card holds this many records; an admission prints one.
const CARD_CAPACITY: u32 = 15;
/// Admissions per round (the suite has four admitted travelers).
const ADMISSIONS_PER_ROUND: usize = 4;
/// Allowed growth of open fds between the warm-up round and the end.
const FD_SLACK: i64 = 8;
/// Allowed RSS growth of toriid between the warm-up round and the end (generous: the
/// figures are reported, this only catches a gross leak).
const RSS_SLACK_KIB: i64 = 30 * 1024;

fn suite() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../simulators/torii-sim/scenarios/suite.toml")
}

/// One `[[traveler]]` block of the suite, as text.
#[derive(Clone)]
struct Block {
    id: String,
    text: String,
    admitted: bool,
    records_on_card: u32,
}

/// The suite split into its header (`[gate]`…) and traveler blocks.
fn split_suite(text: &str) -> (String, Vec<Block>) {
    let mut parts = text.split("\n[[traveler]]\n");
    let header = parts.next().unwrap().to_owned();
    let blocks = parts
        .map(|part| {
            // Comments after the block belong to the next traveler: harmless either way.
            let field = |key: &str| {
                part.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(|v| v.trim().trim_matches('"').to_owned())
            };
            Block {
                id: field("id = ").expect("every traveler has an id"),
                text: format!("[[traveler]]\n{part}"),
                admitted: part.contains("outcome = \"admitted\""),
                records_on_card: field("records_on_card = ")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            }
        })
        .collect();
    (header, blocks)
}

/// Alice with a fresh identity: id, passport number and card number changed.
fn clone_of(alice: &Block, n: usize) -> Block {
    let id = format!("soak{n:05}");
    let text = alice
        .text
        .replacen("id = \"alice\"", &format!("id = \"{id}\""), 1)
        .replacen("\"TW1000017\"", &format!("\"SK{n:07}\""), 1)
        .replacen("\"TTP0000001001\"", &format!("\"TTPSOAK{n:07}\""), 1);
    assert!(text.contains(&id) && text.contains(&format!("SK{n:07}")));
    Block {
        id,
        text,
        ..alice.clone()
    }
}

/// Which travelers run in each round, and the scenario the gate starts with.
struct Plan {
    header: String,
    referred: Vec<Block>,
    /// Admitted travelers (suite ones, then clones) with their records so far.
    admitted: Vec<(Block, u32)>,
}

impl Plan {
    fn new(rounds: usize) -> Plan {
        let text = std::fs::read_to_string(suite()).unwrap();
        let (header, blocks) = split_suite(&text);
        let (admitted, referred): (Vec<Block>, Vec<Block>) =
            blocks.into_iter().partition(|b| b.admitted);
        assert_eq!(admitted.len(), ADMISSIONS_PER_ROUND, "the suite changed");
        let alice = admitted.iter().find(|b| b.id == "alice").unwrap().clone();
        let capacity = |b: &Block| (CARD_CAPACITY - b.records_on_card) as usize;
        let have: usize = admitted.iter().map(capacity).sum();
        let need = rounds * ADMISSIONS_PER_ROUND;
        let clones = need.saturating_sub(have).div_ceil(capacity(&alice)) + 1;
        let mut all: Vec<(Block, u32)> = admitted
            .into_iter()
            .map(|b| {
                let r = b.records_on_card;
                (b, r)
            })
            .collect();
        all.extend((0..clones).map(|n| (clone_of(&alice, n), alice.records_on_card)));
        Plan {
            header,
            referred,
            admitted: all,
        }
    }

    /// The gate's scenario: every traveler the rounds may use.
    fn full_scenario(&self) -> String {
        let mut text = self.header.clone();
        for block in self
            .referred
            .iter()
            .chain(self.admitted.iter().map(|(b, _)| b))
        {
            text.push('\n');
            text.push_str(&block.text);
        }
        text
    }

    /// The next round's scenario for the runner: every referred traveler and four
    /// admissions from cards that still have room. Returns the text and the count of
    /// admissions.
    fn next_round(&mut self) -> (String, usize, usize) {
        let mut text = self.header.clone();
        let mut travelers = 0;
        for block in &self.referred {
            text.push('\n');
            text.push_str(&block.text);
            travelers += 1;
        }
        let mut admissions = 0;
        let mut played = HashSet::new();
        for (block, records) in &mut self.admitted {
            if admissions == ADMISSIONS_PER_ROUND {
                break;
            }
            if *records < CARD_CAPACITY {
                played.insert(block.id.clone());
                *records += 1;
                admissions += 1;
                text.push('\n');
                text.push_str(&block.text);
                travelers += 1;
            }
        }
        // A full card's holder stays in the file without a script (the runner does not
        // play them): omar's script inserts alice's card.
        for (block, records) in &self.admitted {
            if *records >= CARD_CAPACITY
                && !block.id.starts_with("soak")
                && !played.contains(&block.id)
            {
                let (person, _script) = block
                    .text
                    .split_once("\n[traveler.script]")
                    .expect("a scripted traveler");
                text.push('\n');
                text.push_str(person);
                text.push('\n');
            }
        }
        assert_eq!(
            admissions, ADMISSIONS_PER_ROUND,
            "the plan ran out of cards"
        );
        (text, travelers, admissions)
    }

    fn travelers_per_round(&self) -> usize {
        self.referred.len() + ADMISSIONS_PER_ROUND
    }
}

/// Memory and descriptors of one process.
#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    rss_kib: i64,
    fds: i64,
}

fn usage_of(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as i64)
        .unwrap_or(0);
    Usage { rss_kib, fds }
}

/// toriid and the sum over its driver hosts (and how many there are).
#[derive(Clone, Copy, Debug)]
struct Snapshot {
    daemon: Usage,
    hosts: Usage,
    host_count: usize,
}

fn snapshot(gate: &Gate) -> Snapshot {
    let pid = gate.daemon_pid();
    let pids = driver_hosts_of(pid);
    let mut hosts = Usage::default();
    for host in &pids {
        let u = usage_of(*host);
        hosts.rss_kib += u.rss_kib;
        hosts.fds += u.fds;
    }
    Snapshot {
        daemon: usage_of(pid),
        hosts,
        host_count: pids.len(),
    }
}

fn describe(s: &Snapshot) -> String {
    format!(
        "toriid RSS {:.1} MiB, {} fds; {} driver hosts RSS {:.1} MiB, {} fds",
        s.daemon.rss_kib as f64 / 1024.0,
        s.daemon.fds,
        s.host_count,
        s.hosts.rss_kib as f64 / 1024.0,
        s.hosts.fds
    )
}

/// Reads the daemon's log as it grows (the long soak's log is too big to reread).
struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: String,
}

impl LogTail {
    fn new(path: PathBuf) -> LogTail {
        LogTail {
            path,
            offset: 0,
            partial: String::new(),
        }
    }

    /// Record ids of the transactions finished since the last call.
    fn finished_ids(&mut self) -> Vec<String> {
        let mut file = std::fs::File::open(&self.path).unwrap();
        file.seek(SeekFrom::Start(self.offset)).unwrap();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let complete = self.partial.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let text: String = self.partial.drain(..complete).collect();
        text.lines()
            .filter(|l| l.contains("transaction finished"))
            .filter_map(|l| {
                let start = l.find("record=")? + "record=".len();
                Some(l[start..].chars().take(36).collect())
            })
            .collect()
    }
}

/// `GET /metrics` on toriid's loopback port.
fn scrape(gate: &Gate) -> String {
    let mut stream =
        std::net::TcpStream::connect(gate.layout.http).expect("toriid's loopback port");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("headers and a body");
    assert!(head.contains(" 200 "), "{head}");
    body.to_owned()
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Sum of every series of `name` whose labels contain `label`.
fn metric_sum(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")) && line.contains(label))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

const EXIT_OPEN: &str = r#"torii_door_commands_total{door="exit",command="open"}"#;

fn tail(log_path: &Path) -> String {
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

fn soak(travelers: usize) {
    let per_round = Plan::new(1).travelers_per_round();
    let rounds = travelers.div_ceil(per_round).max(2);
    let mut plan = Plan::new(rounds);
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("soak-gate.toml");
    std::fs::write(&full, plan.full_scenario()).unwrap();
    let round_file = dir.path().join("soak-round.toml");

    let gate = Gate::start_with(GateOptions {
        scenario: Some(full.clone()),
        ..GateOptions::default()
    });
    let log_path = gate.layout.work_dir.join("toriid.log");
    let mut log = LogTail::new(log_path.clone());
    let start = snapshot(&gate);
    eprintln!(
        "soak: {rounds} rounds of {per_round} travelers; at start: {}",
        describe(&start)
    );

    let report_every = (rounds / 20).max(1);
    let mut finished: Vec<String> = Vec::new();
    let mut served = 0usize;
    let mut admitted = 0usize;
    let mut warm = None;
    let mut warm_served = 0;
    let mut warm_at = Instant::now();
    let began = Instant::now();
    for round in 0..rounds {
        let (text, count, admissions) = plan.next_round();
        std::fs::write(&round_file, text).unwrap();
        let (passed, output) = gate.run_scenario(&round_file);
        assert!(
            passed && output.contains(&format!("{count} passed, 0 failed")),
            "round {round}: not every traveler met their expectation\n{output}\n--- toriid log (tail) ---\n{}",
            tail(&log_path)
        );
        served += count;
        admitted += admissions;
        // Per round: the exit door opened once per admission, never more (the metrics
        // task follows the gate's events, so it may lag a little).
        let deadline = Instant::now() + PATIENCE;
        loop {
            let opens = metric(&scrape(&gate), EXIT_OPEN) as usize;
            assert!(
                opens <= admitted,
                "round {round}: exit door opened {opens} times for {admitted} admissions"
            );
            if opens == admitted {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: exit door opened {opens} times for {admitted} admissions"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        finished.extend(log.finished_ids());
        if round == 0 {
            let s = snapshot(&gate);
            eprintln!("soak: after the warm-up round: {}", describe(&s));
            warm = Some(s);
            warm_served = served;
            warm_at = Instant::now();
        } else if round % report_every == 0 {
            let rate = (served - warm_served) as f64 / warm_at.elapsed().as_secs_f64();
            eprintln!(
                "soak: round {round}/{rounds}, {served} travelers, {rate:.1} travelers/s: {}",
                describe(&snapshot(&gate))
            );
        }
    }
    let elapsed = began.elapsed();
    let rate = (served - warm_served) as f64 / warm_at.elapsed().as_secs_f64();
    let end = snapshot(&gate);
    let warm = warm.unwrap();
    eprintln!(
        "soak: {served} travelers ({admitted} admitted) in {:.1} s, {rate:.1} travelers/s after warm-up",
        elapsed.as_secs_f64()
    );
    eprintln!("soak: warm-up: {}", describe(&warm));
    eprintln!("soak: end:     {}", describe(&end));
    eprintln!(
        "soak: growth: toriid RSS {:+} KiB, fds {:+}; driver hosts RSS {:+} KiB, fds {:+}",
        end.daemon.rss_kib - warm.daemon.rss_kib,
        end.daemon.fds - warm.daemon.fds,
        end.hosts.rss_kib - warm.hosts.rss_kib,
        end.hosts.fds - warm.hosts.fds
    );

    // One transaction per traveler, each finished once.
    assert_eq!(
        finished.len(),
        served,
        "one finished transaction per traveler"
    );
    let unique: HashSet<&String> = finished.iter().collect();
    assert_eq!(unique.len(), finished.len(), "a record id finished twice");

    // Exactly once at central, seqs rising.
    let deadline = Instant::now() + PATIENCE * 2;
    let records = loop {
        let records = gate.central_records();
        let held: HashSet<&str> = records
            .iter()
            .filter_map(|r| r["record_id"].as_str())
            .collect();
        if finished.iter().all(|id| held.contains(id.as_str())) {
            break records;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} finished records reached central; link: {}",
            held.len(),
            finished.len(),
            gate.link()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut ids = HashSet::new();
    let mut last = 0;
    for record in &records {
        let id = record["record_id"].as_str().unwrap();
        assert!(ids.insert(id), "record {id} stored twice at central");
        let seq = record["seq"].as_u64().unwrap();
        assert!(seq > last, "record {id}: seq {seq} after {last}");
        last = seq;
    }
    assert_eq!(
        records.len(),
        finished.len(),
        "central holds a record the daemon never finished"
    );
    let outcomes: HashMap<String, usize> =
        records.iter().fold(HashMap::new(), |mut counts, record| {
            let outcome = record_outcome(record);
            *counts.entry(outcome).or_default() += 1;
            counts
        });
    eprintln!(
        "soak: central holds {} records, outcomes {outcomes:?}; central stats {}",
        records.len(),
        gate.central(&["stats"])
    );

    // The exit door opened exactly once per admission, never for a referral.
    let metrics = scrape(&gate);
    let opens = metric(&metrics, EXIT_OPEN);
    let admitted_metric = metric_sum(&metrics, "torii_transactions_total", "outcome=\"admitted\"");
    eprintln!(
        "soak: exit door opened {opens} times; {admitted_metric} admitted transactions counted"
    );
    assert_eq!(opens as usize, admitted, "exit door openings vs admissions");
    assert_eq!(admitted_metric as usize, admitted);
    assert_eq!(outcomes.get("admitted").copied().unwrap_or(0), admitted);
    assert_eq!(
        outcomes.get("referred").copied().unwrap_or(0),
        served - admitted
    );

    // Resources: no fd growth beyond a small slack, RSS growth bounded.
    assert_eq!(end.host_count, warm.host_count, "driver hosts came or went");
    assert!(
        end.daemon.fds - warm.daemon.fds <= FD_SLACK,
        "toriid's fds grew: {} -> {}",
        warm.daemon.fds,
        end.daemon.fds
    );
    assert!(
        end.hosts.fds - warm.hosts.fds <= FD_SLACK,
        "driver hosts' fds grew: {} -> {}",
        warm.hosts.fds,
        end.hosts.fds
    );
    assert!(
        end.daemon.rss_kib - warm.daemon.rss_kib < RSS_SLACK_KIB,
        "toriid's RSS grew: {} KiB -> {} KiB",
        warm.daemon.rss_kib,
        end.daemon.rss_kib
    );
    assert!(
        end.hosts.rss_kib - warm.hosts.rss_kib < RSS_SLACK_KIB,
        "driver hosts' RSS grew: {} KiB -> {} KiB",
        warm.hosts.rss_kib,
        end.hosts.rss_kib
    );
}

/// A central record's outcome (`record.outcome` is `{"outcome": …, "reason": …}`).
fn record_outcome(stored: &Value) -> String {
    let outcome = &stored["record"]["outcome"];
    outcome["outcome"]
        .as_str()
        .or_else(|| outcome.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| outcome.to_string())
}

fn travelers_from_env(default: usize) -> usize {
    std::env::var("TORII_SOAK_TRAVELERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn a_bounded_soak_leaks_nothing_and_loses_no_record() {
    soak(4 * 28);
}

#[test]
#[ignore = "hours: opt in with --run-ignored all (see the module docs)"]
fn a_long_soak() {
    soak(travelers_from_env(100_000));
}
