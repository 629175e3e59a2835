//! Writing: [`AuditLog`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::event::{self, AuditEvent, AuditKind};
use crate::format::{self, Decoded, GENESIS, Head, MAX_LINE};
use crate::hex;
use crate::key::{AuditKey, SealCheck};
use crate::verify::{self, VerifyError};

/// Why the log could not be opened or appended to.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// Another process (or another `AuditLog` in this one) has the log open for
    /// writing: two writers would fork the chain.
    #[error("audit log {}: already open for writing by another process", path.display())]
    Locked { path: PathBuf },
    /// The log's end and its head disagree, or the last entry does not check: the log
    /// was tampered with or damaged (or the key is not the one it was written with).
    /// Nothing was written. What to do is the daemon's decision (refuse to run, or
    /// move both files aside and start a new log, keeping the old one as evidence).
    #[error("refusing to open audit log {}: {source}", path.display())]
    Refused { path: PathBuf, source: VerifyError },
    /// An earlier append failed part-way; nothing more is written until the log is
    /// reopened (which repairs what the failure left).
    #[error("audit log {}: an earlier write failed; reopen the log", path.display())]
    Failed { path: PathBuf },
    /// The last entry's seq is the largest there is (only a forged unkeyed log gets
    /// there): start a new log.
    #[error("audit log {}: sequence numbers exhausted", path.display())]
    Exhausted { path: PathBuf },
    #[error("audit log: cannot format the time: {0}")]
    Clock(String),
}

/// The latest entry of a log: its seq and seal. Handing it to something outside the
/// machine (the journal, central) is what makes deleting the whole log detectable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    /// The entry's seal, hex (64 zeros before the first entry).
    pub mac: String,
}

/// An audit log open for appending. Thread-safe: share it (`Arc<AuditLog>`) and call
/// [`append`](Self::append) from anywhere; appends are serialized.
pub struct AuditLog {
    path: PathBuf,
    head_path: PathBuf,
    temp_path: PathBuf,
    key: Option<AuditKey>,
    state: Mutex<State>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .field("keyed", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

struct State {
    /// Opened with O_APPEND, and flock'ed for as long as the log is open.
    file: Flock<File>,
    /// The log's directory, to fsync renames of the head.
    dir: File,
    seq: u64,
    last: [u8; 32],
    failed: bool,
}

/// Where the last complete line and an unterminated tail sit in the file.
struct Tail {
    /// Offset and bytes (without `\n`) of the last complete line.
    last: Option<(u64, Vec<u8>)>,
    /// Offset and bytes of what follows the last `\n`, if anything does.
    torn: Option<(u64, Vec<u8>)>,
}

impl AuditLog {
    /// Opens the log at `path` for appending, creating it (mode 0600) and its head if
    /// neither exists, and appends an `audit-opened` entry.
    ///
    /// Checks, cheaply (the last entry only; [`verify`](crate::verify) reads it all),
    /// that the log's end agrees with its head and that the last entry is sealed with
    /// `key`, and refuses with [`AuditError::Refused`] otherwise. Two states left by a
    /// crash are repaired, and the repair is recorded in an `audit-recovered` entry:
    /// the head one entry behind the log (crash between writing an entry and its head),
    /// and an unterminated last line the head does not cover (crash during the write):
    /// completed if it is the whole next entry, cut off otherwise.
    pub fn open(path: impl AsRef<Path>, key: Option<AuditKey>) -> Result<AuditLog, AuditError> {
        let path = path.as_ref().to_owned();
        let head_path = verify::head_path(&path);
        let temp_path = {
            let mut name = head_path.clone().into_os_string();
            name.push(".tmp");
            PathBuf::from(name)
        };
        let io = |source| AuditError::Io {
            path: path.clone(),
            source,
        };
        let refused = |source| AuditError::Refused {
            path: path.clone(),
            source,
        };
        let read_head = || -> Result<Option<Vec<u8>>, AuditError> {
            verify::read_head_file(&head_path).map_err(|e| match e {
                VerifyError::Io { path, source } => AuditError::Io { path, source },
                other => AuditError::Refused {
                    path: path.clone(),
                    source: other,
                },
            })
        };

        let mut options = OpenOptions::new();
        options.read(true).append(true);
        let (file, created) = match options.open(&path) {
            Ok(file) => (file, false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if read_head()?.is_some() {
                    return Err(refused(VerifyError::LogMissing));
                }
                let file = options
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                (file, true)
            }
            Err(e) => return Err(io(e)),
        };
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => file,
            Err((_, Errno::EWOULDBLOCK)) => return Err(AuditError::Locked { path }),
            Err((_, errno)) => return Err(io(io::Error::from(errno))),
        };
        let dir = {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            File::open(parent.unwrap_or(Path::new("."))).map_err(io)?
        };
        if created {
            dir.sync_all().map_err(io)?;
        }

        // Read the head after taking the lock: nobody else replaces it now.
        let head_bytes = read_head()?;
        let len = file.metadata().map_err(io)?.len();
        let tail = match read_tail(&file, len).map_err(io)? {
            Ok(tail) => tail,
            Err(end) => {
                return Err(refused(VerifyError::Malformed {
                    line: count_lines(&file, end).map_err(io)?,
                    problem: format!("longer than {MAX_LINE} bytes"),
                }));
            }
        };

        // The last complete entry: it must check with this key.
        let (mut seq, mut last, last_prev) = match &tail.last {
            None => (0, GENESIS, GENESIS),
            Some((offset, bytes)) => {
                let line = || count_lines(&file, *offset).map_err(io);
                let decoded = match Decoded::parse(bytes) {
                    Ok(decoded) => decoded,
                    Err(problem) => {
                        return Err(refused(VerifyError::Malformed {
                            line: line()?,
                            problem,
                        }));
                    }
                };
                let seq = decoded.seq();
                match decoded.check(key.as_ref()) {
                    SealCheck::Valid => {}
                    SealCheck::Mismatch => {
                        return Err(refused(VerifyError::Edited { line: line()?, seq }));
                    }
                    SealCheck::NotKeyed => {
                        return Err(refused(VerifyError::NotKeyed { line: line()?, seq }));
                    }
                    SealCheck::KeyRequired => return Err(refused(VerifyError::KeyRequired)),
                }
                (seq, decoded.seal, decoded.prev)
            }
        };

        // The head must name that entry, or the one before it (crash between the two
        // writes). No head at all is fine only for a log with nothing in it yet.
        let mut notes = Vec::new();
        let mut write_head = false;
        if head_bytes.is_none() && len == 0 {
            write_head = true;
        } else {
            let head = verify::parse_head(head_bytes.as_deref(), key.as_ref()).map_err(refused)?;
            if head.seq > seq {
                return Err(refused(VerifyError::Truncated {
                    last_seq: seq,
                    head_seq: head.seq,
                }));
            }
            if head.seq == seq {
                if head.last != last {
                    return Err(refused(VerifyError::HeadMismatch { head_seq: head.seq }));
                }
            } else if head.seq + 1 == seq {
                if head.last != last_prev {
                    return Err(refused(VerifyError::HeadMismatch { head_seq: head.seq }));
                }
                write_head = true;
                notes.push(format!(
                    "head rolled forward from seq {} to {seq} (interrupted before the head \
                     was replaced)",
                    head.seq
                ));
            } else {
                return Err(refused(VerifyError::HeadStale {
                    head_seq: head.seq,
                    last_seq: seq,
                }));
            }
        }

        // An unterminated tail was never acknowledged (its head was not written).
        if let Some((offset, bytes)) = &tail.torn {
            let next = Decoded::parse(bytes).ok().filter(|d| {
                seq.checked_add(1) == Some(d.seq())
                    && d.prev == last
                    && d.check(key.as_ref()) == SealCheck::Valid
            });
            match next {
                Some(decoded) => {
                    file.write_all(b"\n").map_err(io)?;
                    seq = decoded.seq();
                    last = decoded.seal;
                    notes.push(format!(
                        "completed entry seq {seq}, interrupted before its end of line"
                    ));
                }
                None => {
                    file.set_len(*offset).map_err(io)?;
                    notes.push(format!(
                        "cut {} bytes of an interrupted write after seq {seq}",
                        bytes.len()
                    ));
                }
            }
            file.sync_all().map_err(io)?;
            write_head = true;
        }

        let log = AuditLog {
            path,
            head_path,
            temp_path,
            key,
            state: Mutex::new(State {
                file,
                dir,
                seq,
                last,
                failed: false,
            }),
        };
        if write_head {
            let state = log.state.lock().unwrap_or_else(PoisonError::into_inner);
            log.write_head(&state).map_err(|e| log.io(e))?;
        }
        if !notes.is_empty() {
            log.append(AuditEvent::new(AuditKind::AuditRecovered, notes.join("; ")).by("system"))?;
        }
        let sealing = if log.key.is_some() {
            "sealed with HMAC-SHA256"
        } else {
            "NOT keyed: plain SHA-256 chain"
        };
        let detail = if seq == 0 {
            format!("new audit log ({sealing})")
        } else {
            format!("continuing after seq {seq} ({sealing})")
        };
        log.append(AuditEvent::new(AuditKind::AuditOpened, detail).by("system"))?;
        Ok(log)
    }

    /// Appends `event` and returns its seq once it is on disk: the line is written with
    /// O_APPEND and fsync'ed, then the head is replaced atomically (temp file, fsync,
    /// rename, fsync of the directory). About three fsyncs: fine for tens of events a
    /// second; from async code, call it in `spawn_blocking` or accept a ~ms block.
    ///
    /// After an I/O error the log refuses further appends ([`AuditError::Failed`])
    /// until it is reopened.
    pub fn append(&self, event: AuditEvent) -> Result<u64, AuditError> {
        let actor = event::clean_actor(event.actor.as_deref());
        let detail = event::clean_detail(&event.detail);
        let now = OffsetDateTime::now_utc();
        let now = now.replace_microsecond(now.microsecond()).unwrap_or(now);
        let at = now
            .format(&Rfc3339)
            .map_err(|e| AuditError::Clock(e.to_string()))?;

        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.failed {
            return Err(AuditError::Failed {
                path: self.path.clone(),
            });
        }
        let Some(seq) = state.seq.checked_add(1) else {
            return Err(AuditError::Exhausted {
                path: self.path.clone(),
            });
        };
        let (line, seal) = format::encode_entry(
            seq,
            &at,
            event.kind.as_str(),
            actor.as_deref(),
            &detail,
            &state.last,
            self.key.as_ref(),
        );
        // One write call per line: with O_APPEND it lands whole at the end.
        let written = state
            .file
            .write_all(&line)
            .and_then(|()| state.file.sync_data());
        if let Err(e) = written {
            state.failed = true;
            return Err(self.io(e));
        }
        state.seq = seq;
        state.last = seal;
        if let Err(e) = self.write_head(&state) {
            state.failed = true;
            return Err(self.io(e));
        }
        Ok(seq)
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether entries are sealed with a key.
    pub fn is_keyed(&self) -> bool {
        self.key.is_some()
    }

    /// The latest entry's seq and seal, for anchoring outside the machine.
    pub fn anchor(&self) -> Anchor {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        Anchor {
            seq: state.seq,
            mac: hex::encode(&state.last),
        }
    }

    fn io(&self, source: io::Error) -> AuditError {
        AuditError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Replaces the head with one naming the state's last entry.
    fn write_head(&self, state: &State) -> io::Result<()> {
        let bytes = Head::encode(state.seq, &state.last, self.key.as_ref());
        let mut temp = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.temp_path)?;
        temp.write_all(&bytes)?;
        temp.sync_data()?;
        drop(temp);
        fs::rename(&self.temp_path, &self.head_path)?;
        state.dir.sync_all()
    }
}

/// The last complete line and the unterminated tail, read from the end of the file.
/// `Err(end)`: the line ending at `end` is longer than [`MAX_LINE`].
fn read_tail(file: &File, len: u64) -> io::Result<Result<Tail, u64>> {
    let mut tail = Tail {
        last: None,
        torn: None,
    };
    if len == 0 {
        return Ok(Ok(tail));
    }
    let mut last_byte = [0u8];
    file.read_exact_at(&mut last_byte, len - 1)?;
    let complete_end = if last_byte[0] == b'\n' {
        len - 1
    } else {
        let Some((start, bytes)) = line_ending_at(file, len)? else {
            return Ok(Err(len));
        };
        tail.torn = Some((start, bytes));
        if start == 0 {
            return Ok(Ok(tail));
        }
        start - 1
    };
    match line_ending_at(file, complete_end)? {
        Some(line) => tail.last = Some(line),
        None => return Ok(Err(complete_end)),
    }
    Ok(Ok(tail))
}

/// The line that ends at `end` (exclusive; `end` is a `\n` or the end of the file):
/// its offset and bytes; `None` if it is longer than [`MAX_LINE`].
fn line_ending_at(file: &File, end: u64) -> io::Result<Option<(u64, Vec<u8>)>> {
    let window = end.min(MAX_LINE as u64 + 1);
    let start = end - window;
    let mut buf = vec![0u8; usize::try_from(window).unwrap_or(MAX_LINE + 1)];
    file.read_exact_at(&mut buf, start)?;
    Ok(match buf.iter().rposition(|&b| b == b'\n') {
        Some(at) => Some((start + at as u64 + 1, buf.split_off(at + 1))),
        None if start == 0 => Some((0, buf)),
        None => None,
    })
}

/// The line number of the line starting at `offset`.
fn count_lines(file: &File, offset: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0u64;
    let mut lines = 1u64;
    while at < offset {
        let want = usize::try_from(offset - at)
            .unwrap_or(buf.len())
            .min(buf.len());
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        at += n as u64;
    }
    Ok(lines)
}
