//! Privacy check run by every end-to-end test: when a [`Gate`](crate::Gate) stops, what the
//! gate wrote about its travelers — the daemon's debug-level log, the audit trail, the
//! outbox database (which must hold personal data only sealed) — is searched for every
//! scenario traveler's name, passport number and card number. A hit fails the test that
//! ran the gate, so the whole suite, faults and attacks included, is scanned, not one
//! happy path.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use torii_sim::scenario::Scenario;

/// One piece of personal data to look for, with the traveler it belongs to (the id is a
/// scenario handle such as `alice`, safe to print; the secret itself never is).
#[derive(Clone)]
pub struct Secret {
    pub traveler: String,
    pub what: &'static str,
    pub value: String,
}

/// Every traveler's surname, given names (longer than 3 letters: shorter ones occur in
/// ordinary words), passport number, card number, and the ED card's address and phone.
pub fn secrets_of(scenario: &Scenario) -> Vec<Secret> {
    let mut secrets = Vec::new();
    for traveler in &scenario.travelers {
        let mut push = |what, value: &str| {
            secrets.push(Secret {
                traveler: traveler.id.clone(),
                what,
                value: value.to_owned(),
            });
        };
        push("passport number", &traveler.passport.number);
        push("surname", &traveler.surname);
        for name in traveler
            .given_names
            .split_whitespace()
            .filter(|n| n.len() > 3)
        {
            push("given name", name);
        }
        if let Some(registration) = &traveler.registration {
            push("card number", &registration.card_number);
        }
        if let Some(ed_card) = &traveler.ed_card {
            push("address in Japan", &ed_card.address_in_japan);
            if let Some(phone) = &ed_card.phone_in_japan {
                push("phone in Japan", phone);
            }
        }
    }
    secrets
}

/// A hit: which traveler's what, in which file (never the value).
#[derive(Debug, PartialEq, Eq)]
pub struct Leak {
    pub file: PathBuf,
    pub traveler: String,
    pub what: &'static str,
}

/// Searches `files` (missing ones are skipped: not every test starts every part) for
/// every secret, as bytes, so binary files such as SQLite databases are covered too.
pub fn scan(files: &[PathBuf], secrets: &[Secret]) -> Vec<Leak> {
    let mut leaks = Vec::new();
    for file in files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        for secret in secrets {
            if contains(&bytes, secret.value.as_bytes()) {
                leaks.push(Leak {
                    file: file.clone(),
                    traveler: secret.traveler.clone(),
                    what: secret.what,
                });
            }
        }
    }
    leaks
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The files a gate writes about travelers that must never hold personal data in clear:
/// the daemon's log, the audit trail (and any set-aside trail), the outbox and registry
/// databases with their WALs (both sealed), the last metrics scrape.
pub fn gate_files(work_dir: &Path, state_dir: &Path, daemon_log: &Path) -> Vec<PathBuf> {
    let mut files = vec![daemon_log.to_path_buf()];
    for dir in [state_dir, work_dir] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let watched = name.starts_with("audit")
                || name.starts_with("outbox")
                || name.starts_with("registry.db")
                || name == SCRAPE_FILE;
            if watched && entry.path().is_file() && !files.contains(&entry.path()) {
                files.push(entry.path());
            }
        }
    }
    files
}

/// Where [`keep_scrape`] puts the last `/metrics` scrape, in the gate's work directory.
pub const SCRAPE_FILE: &str = "metrics-at-stop.txt";

/// Fetches `/metrics` from the daemon's loopback listener and keeps it for [`scan`]. Best
/// effort: a daemon a test left hung or half-stopped simply leaves no scrape.
pub fn keep_scrape(http: SocketAddr, work_dir: &Path) {
    let scrape = || -> std::io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect_timeout(&http, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        Ok(answer)
    };
    if let Ok(answer) = scrape() {
        let _ = std::fs::write(work_dir.join(SCRAPE_FILE), answer);
    }
}

/// The failure message: enough to find the leak (file, traveler handle, kind of data),
/// nothing of the data itself.
pub fn describe(leaks: &[Leak]) -> String {
    let mut message = String::from("personal data found where the gate must not keep it:\n");
    for leak in leaks {
        message.push_str(&format!(
            "  {} of traveler {} in {}\n",
            leak.what,
            leak.traveler,
            leak.file.display()
        ));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_secret_is_found_and_named_without_its_value() {
        let dir = tempfile::tempdir().unwrap();
        let scenario = Scenario::default_scenario().unwrap();
        let secrets = secrets_of(&scenario);
        let first = &secrets[0];
        let clean = dir.path().join("toriid.log");
        std::fs::write(&clean, "transaction finished outcome=admitted\n").unwrap();
        let leaky = dir.path().join("audit.log");
        std::fs::write(&leaky, format!("{{\"x\":\"{}\"}}", first.value)).unwrap();
        let files = gate_files(dir.path(), dir.path(), &clean);
        assert!(files.contains(&leaky), "{files:?}");
        let leaks = scan(&files, &secrets);
        assert_eq!(leaks.len(), 1, "{leaks:?}");
        assert_eq!(leaks[0].traveler, first.traveler);
        let message = describe(&leaks);
        assert!(!message.contains(&first.value), "{message}");
        assert!(scan(&[clean], &secrets).is_empty());
    }
}
