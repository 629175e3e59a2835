//! Checking a log end to end, and reading its entries.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read as _};
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use crate::event::AuditEntry;
use crate::format::{Decoded, GENESIS, Head, MAX_HEAD, MAX_LINE};
use crate::key::{AuditKey, SealCheck};

/// A log that verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Entries in the log (its last seq: they are numbered from 1 without gaps).
    pub entries: u64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub first_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_at: Option<OffsetDateTime>,
    /// The seq the head file names. One less than `entries` when the writer was
    /// interrupted between writing an entry and replacing the head (the next
    /// [`AuditLog::open`](crate::AuditLog::open) rolls it forward); more than `entries`
    /// only when the writer appended while the log was being read.
    pub head_seq: u64,
    /// Whether every seal was checked with the key. Without a key the chain proves only
    /// that the file is self-consistent: anyone able to write it could have rebuilt it.
    pub keyed: bool,
}

/// Why a log did not verify: what, and where. Line numbers count from 1.
///
/// [`VerifyError::is_tampering`] tells the evidence of tampering (or damage) apart
/// from "could not check" (I/O, missing key).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Could not read the log or its head (not evidence either way).
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// The log is sealed with a key and none was given (not evidence either way).
    #[error("the log is sealed with a key (HMAC-SHA256): checking it needs that key")]
    KeyRequired,
    /// A line that is not a well-formed entry (garbage, a torn or unterminated last
    /// line, a field out of its rules).
    #[error("line {line}: malformed entry: {problem}")]
    Malformed { line: u64, problem: String },
    /// The entry's seal does not match its content: edited, or forged without the key.
    /// `seq` is the one written on the line, which may itself be the edited field.
    #[error("line {line} (seq {seq}): entry edited (its seal does not match its content)")]
    Edited { line: u64, seq: u64 },
    /// A key was given but the entry carries a plain SHA-256: forged by someone without
    /// the key, or the log was written without a key.
    #[error(
        "line {line} (seq {seq}): entry not sealed with the key (plain SHA-256): forged, \
         or the log was written without a key"
    )]
    NotKeyed { line: u64, seq: u64 },
    /// Entries `expected_seq..found_seq` are missing at this line.
    #[error("line {line}: entries deleted: expected seq {expected_seq}, found seq {found_seq}")]
    Deleted {
        line: u64,
        expected_seq: u64,
        found_seq: u64,
    },
    /// The expected entry is elsewhere in the file (lines moved, swapped, duplicated).
    #[error(
        "line {line}: entries out of order: expected seq {expected_seq}, found seq {found_seq}"
    )]
    OutOfOrder {
        line: u64,
        expected_seq: u64,
        found_seq: u64,
    },
    /// A sealed entry whose `prev` is not the previous entry's seal: spliced in from
    /// another log, or (without a key) an edit whose seal was recomputed.
    #[error(
        "line {line} (seq {seq}): chain broken: it does not follow the entry before it \
         (spliced, or an edited entry re-sealed)"
    )]
    ChainBroken { line: u64, seq: u64 },
    /// The head names a later entry than the log holds: entries were cut off the end.
    #[error("truncated: log ends at seq {last_seq} but head says {head_seq}")]
    Truncated { last_seq: u64, head_seq: u64 },
    /// The log file is gone but its head is still there.
    #[error("the log is missing but its head file is there: the log was deleted")]
    LogMissing,
    /// The head file is gone: truncation can no longer be ruled out.
    #[error("the head file is missing: truncation cannot be ruled out")]
    HeadMissing,
    #[error("head file malformed: {problem}")]
    HeadMalformed { problem: String },
    /// The head's seal does not match its content (or is a plain hash under a key).
    #[error("head file forged: its seal does not match")]
    HeadForged,
    /// The head is genuine but names an entry the log does not hold at that seq: the
    /// log's tail was replaced.
    #[error("the head names seq {head_seq}, but not the entry the log holds there")]
    HeadMismatch { head_seq: u64 },
    /// The head is genuine but older than the log: restored from an old copy.
    #[error(
        "the head is stale: it names seq {head_seq} but the log goes on to seq {last_seq} \
         (restored from an old copy?)"
    )]
    HeadStale { head_seq: u64, last_seq: u64 },
}

impl VerifyError {
    /// Evidence that the log or its head was changed (or damaged), as opposed to
    /// "could not check" ([`VerifyError::Io`], [`VerifyError::KeyRequired`]).
    pub fn is_tampering(&self) -> bool {
        !matches!(self, VerifyError::Io { .. } | VerifyError::KeyRequired)
    }

    /// A stable kebab-case name for machines.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Io { .. } => "io",
            VerifyError::KeyRequired => "key-required",
            VerifyError::Malformed { .. } => "malformed",
            VerifyError::Edited { .. } => "edited",
            VerifyError::NotKeyed { .. } => "not-keyed",
            VerifyError::Deleted { .. } => "deleted",
            VerifyError::OutOfOrder { .. } => "out-of-order",
            VerifyError::ChainBroken { .. } => "chain-broken",
            VerifyError::Truncated { .. } => "truncated",
            VerifyError::LogMissing => "log-missing",
            VerifyError::HeadMissing => "head-missing",
            VerifyError::HeadMalformed { .. } => "head-malformed",
            VerifyError::HeadForged => "head-forged",
            VerifyError::HeadMismatch { .. } => "head-mismatch",
            VerifyError::HeadStale { .. } => "head-stale",
        }
    }

    /// The line of the log the problem is on, if it is on one.
    pub fn line(&self) -> Option<u64> {
        match self {
            VerifyError::Malformed { line, .. }
            | VerifyError::Edited { line, .. }
            | VerifyError::NotKeyed { line, .. }
            | VerifyError::Deleted { line, .. }
            | VerifyError::OutOfOrder { line, .. }
            | VerifyError::ChainBroken { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The error as a JSON object: `error` (the [code](Self::code)), `message`,
    /// `tampered`, and the variant's fields.
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::json!({
            "error": self.code(),
            "message": self.to_string(),
            "tampered": self.is_tampering(),
        });
        let fields: &[(&str, serde_json::Value)] = match self {
            VerifyError::Io { path, .. } => &[("path", path.display().to_string().into())],
            VerifyError::Malformed { line, problem } => &[
                ("line", (*line).into()),
                ("problem", problem.as_str().into()),
            ],
            VerifyError::Edited { line, seq }
            | VerifyError::NotKeyed { line, seq }
            | VerifyError::ChainBroken { line, seq } => {
                &[("line", (*line).into()), ("seq", (*seq).into())]
            }
            VerifyError::Deleted {
                line,
                expected_seq,
                found_seq,
            }
            | VerifyError::OutOfOrder {
                line,
                expected_seq,
                found_seq,
            } => &[
                ("line", (*line).into()),
                ("expected_seq", (*expected_seq).into()),
                ("found_seq", (*found_seq).into()),
            ],
            VerifyError::Truncated { last_seq, head_seq }
            | VerifyError::HeadStale { head_seq, last_seq } => &[
                ("last_seq", (*last_seq).into()),
                ("head_seq", (*head_seq).into()),
            ],
            VerifyError::HeadMismatch { head_seq } => &[("head_seq", (*head_seq).into())],
            VerifyError::HeadMalformed { problem } => &[("problem", problem.as_str().into())],
            VerifyError::KeyRequired
            | VerifyError::LogMissing
            | VerifyError::HeadMissing
            | VerifyError::HeadForged => &[],
        };
        if let Some(map) = object.as_object_mut() {
            for (name, value) in fields {
                map.insert((*name).to_owned(), value.clone());
            }
        }
        object
    }
}

/// `<log>.head`: the head file of the log at `log`.
pub fn head_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".head");
    PathBuf::from(name)
}

/// Checks the log at `path` and its head file, end to end, with the key it was written
/// with (or without, for a log written without one).
///
/// Every line must be a well-formed entry sealed with the key, numbered from 1 without
/// gaps, each naming the previous one's seal; the head must be genuine and name the
/// last entry. The first problem found is returned, with its line. Safe to run while
/// toriid appends (the head is read before and after the log). Never panics, whatever
/// the files hold.
pub fn verify(path: impl AsRef<Path>, key: Option<&AuditKey>) -> Result<VerifyReport, VerifyError> {
    let path = path.as_ref();
    let head_file = head_path(path);
    // The head first: every entry it names was on disk before it was written, so the
    // log read afterwards holds at least those.
    let before = read_head_file(&head_file)?;
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound && before.is_some() => {
            return Err(VerifyError::LogMissing);
        }
        Err(source) => {
            return Err(VerifyError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    check(
        BufReader::new(file),
        path,
        before,
        || read_head_file(&head_file),
        key,
    )
}

/// [`verify`] on a log and head already in memory (`None`: no head file).
pub fn verify_bytes(
    log: &[u8],
    head: Option<&[u8]>,
    key: Option<&AuditKey>,
) -> Result<VerifyReport, VerifyError> {
    let head = head.map(<[u8]>::to_vec);
    check(log, Path::new("<memory>"), head.clone(), || Ok(head), key)
}

pub(crate) fn read_head_file(path: &Path) -> Result<Option<Vec<u8>>, VerifyError> {
    let io = |source| VerifyError::Io {
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_HEAD as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(Some(bytes))
}

/// A head file's content, parsed and its seal checked.
pub(crate) fn parse_head(
    bytes: Option<&[u8]>,
    key: Option<&AuditKey>,
) -> Result<Head, VerifyError> {
    let bytes = bytes.ok_or(VerifyError::HeadMissing)?;
    let head = Head::parse(bytes).map_err(|problem| VerifyError::HeadMalformed { problem })?;
    match head.check(key) {
        SealCheck::Valid => Ok(head),
        SealCheck::KeyRequired => Err(VerifyError::KeyRequired),
        SealCheck::Mismatch | SealCheck::NotKeyed => Err(VerifyError::HeadForged),
    }
}

/// The outcome of reading one line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    Eof,
    /// A `\n`-terminated line (the `\n` removed).
    Complete,
    /// The last bytes of the file, without a `\n`.
    Unterminated,
    /// Longer than [`MAX_LINE`]; the rest of it was skipped.
    TooLong,
}

pub(crate) fn next_line<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>) -> io::Result<Line> {
    buf.clear();
    let n = reader
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Line::Complete);
    }
    if buf.len() <= MAX_LINE {
        return Ok(Line::Unterminated);
    }
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        if let Some(at) = available.iter().position(|&b| b == b'\n') {
            reader.consume(at + 1);
            break;
        }
        let len = available.len();
        reader.consume(len);
    }
    Ok(Line::TooLong)
}

/// Whether an entry numbered `seq` appears in the rest of the log (only read once a gap
/// is found, to tell a deletion from a reordering).
fn appears_later<R: BufRead>(reader: &mut R, seq: u64) -> bool {
    #[derive(serde::Deserialize)]
    struct SeqOnly {
        seq: u64,
    }
    let mut buf = Vec::new();
    loop {
        match next_line(reader, &mut buf) {
            Ok(Line::Complete | Line::Unterminated) => {
                if serde_json::from_slice::<SeqOnly>(&buf).is_ok_and(|e| e.seq == seq) {
                    return true;
                }
            }
            Ok(Line::TooLong) => {}
            Ok(Line::Eof) | Err(_) => return false,
        }
    }
}

/// Checks the entries one by one, then the head read before them and the head read
/// after.
fn check<R: BufRead>(
    mut reader: R,
    path: &Path,
    before: Option<Vec<u8>>,
    head_after: impl FnOnce() -> Result<Option<Vec<u8>>, VerifyError>,
    key: Option<&AuditKey>,
) -> Result<VerifyReport, VerifyError> {
    let head_before = parse_head(before.as_deref(), key);
    let wanted = head_before.as_ref().ok().map(|h| h.seq);
    let mut seal_at_wanted = (wanted == Some(0)).then_some(GENESIS);

    let mut buf = Vec::new();
    let mut line: u64 = 0;
    let mut last_seq: u64 = 0;
    let mut last_seal = GENESIS;
    // The seal of entry last_seq - 1.
    let mut last_prev = GENESIS;
    let mut first_at = None;
    let mut last_at = None;
    loop {
        let read = next_line(&mut reader, &mut buf).map_err(|source| VerifyError::Io {
            path: path.to_owned(),
            source,
        })?;
        line += 1;
        let malformed = |problem: &str| VerifyError::Malformed {
            line,
            problem: problem.to_owned(),
        };
        match read {
            Line::Eof => break,
            Line::Complete => {}
            Line::TooLong => return Err(malformed(&format!("longer than {MAX_LINE} bytes"))),
            Line::Unterminated => {
                return Err(malformed(
                    "unterminated last line (an interrupted write: toriid repairs it when it \
                     next opens the log)",
                ));
            }
        }
        let decoded =
            Decoded::parse(&buf).map_err(|problem| VerifyError::Malformed { line, problem })?;
        let seq = decoded.seq();
        match decoded.check(key) {
            SealCheck::Valid => {}
            SealCheck::Mismatch => return Err(VerifyError::Edited { line, seq }),
            SealCheck::KeyRequired => return Err(VerifyError::KeyRequired),
            SealCheck::NotKeyed => return Err(VerifyError::NotKeyed { line, seq }),
        }
        let expected_seq = last_seq + 1;
        if seq != expected_seq {
            let found_seq = seq;
            return Err(
                if seq < expected_seq || appears_later(&mut reader, expected_seq) {
                    VerifyError::OutOfOrder {
                        line,
                        expected_seq,
                        found_seq,
                    }
                } else {
                    VerifyError::Deleted {
                        line,
                        expected_seq,
                        found_seq,
                    }
                },
            );
        }
        if decoded.prev != last_seal {
            return Err(VerifyError::ChainBroken { line, seq });
        }
        let seal = decoded.seal;
        let entry = decoded
            .into_entry()
            .map_err(|problem| VerifyError::Malformed { line, problem })?;
        first_at.get_or_insert(entry.at);
        last_at = Some(entry.at);
        if wanted == Some(seq) {
            seal_at_wanted = Some(seal);
        }
        last_seq = seq;
        last_prev = last_seal;
        last_seal = seal;
    }
    let head = head_before?;
    if head.seq > last_seq {
        return Err(VerifyError::Truncated {
            last_seq,
            head_seq: head.seq,
        });
    }
    if seal_at_wanted != Some(head.last) {
        return Err(VerifyError::HeadMismatch { head_seq: head.seq });
    }
    // The head again: the writer replaces it after every entry, so unless it was put
    // back from an old copy it now names at least the entry before the last one read
    // (one behind: an entry written, its head not yet; ahead: entries appended since).
    let after = parse_head(head_after()?.as_deref(), key)?;
    if after.seq < head.seq || after.seq.saturating_add(1) < last_seq {
        return Err(VerifyError::HeadStale {
            head_seq: after.seq,
            last_seq,
        });
    }
    let names = if after.seq == last_seq {
        Some(last_seal)
    } else if after.seq.checked_add(1) == Some(last_seq) {
        Some(last_prev)
    } else {
        None
    };
    if names.is_some_and(|seal| seal != after.last) {
        return Err(VerifyError::HeadMismatch {
            head_seq: after.seq,
        });
    }
    Ok(VerifyReport {
        entries: last_seq,
        first_at,
        last_at,
        head_seq: after.seq,
        keyed: key.is_some(),
    })
}

/// The entries of a log, in file order, parsed but **not** verified (use [`verify`]
/// for that). A line that is not a well-formed entry is yielded as
/// [`VerifyError::Malformed`] and reading goes on; an I/O error ends the iteration.
#[derive(Debug)]
pub struct Entries<R> {
    reader: R,
    /// For I/O errors.
    path: PathBuf,
    buf: Vec<u8>,
    line: u64,
    done: bool,
}

impl<R: BufRead> Entries<R> {
    pub fn new(reader: R) -> Self {
        Entries {
            reader,
            path: PathBuf::from("<memory>"),
            buf: Vec::new(),
            line: 0,
            done: false,
        }
    }
}

/// The entries of the log at `path` (see [`Entries`]).
pub fn read_entries(path: impl AsRef<Path>) -> Result<Entries<BufReader<File>>, VerifyError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| VerifyError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut entries = Entries::new(BufReader::new(file));
    entries.path = path.to_owned();
    Ok(entries)
}

impl<R: BufRead> Iterator for Entries<R> {
    type Item = Result<AuditEntry, VerifyError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let read = match next_line(&mut self.reader, &mut self.buf) {
            Ok(read) => read,
            Err(source) => {
                self.done = true;
                return Some(Err(VerifyError::Io {
                    path: self.path.clone(),
                    source,
                }));
            }
        };
        self.line += 1;
        let line = self.line;
        let problem = match read {
            Line::Eof => {
                self.done = true;
                return None;
            }
            Line::TooLong => format!("longer than {MAX_LINE} bytes"),
            Line::Complete | Line::Unterminated => {
                match Decoded::parse(&self.buf).and_then(Decoded::into_entry) {
                    Ok(entry) => return Some(Ok(entry)),
                    Err(problem) => problem,
                }
            }
        };
        Some(Err(VerifyError::Malformed { line, problem }))
    }
}
