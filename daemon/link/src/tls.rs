//! The gate's TLS client configuration for the central link, reloaded from disk.
//!
//! TLS 1.3 only, ring provider. Central's server certificate is verified against the
//! configured CA only (never the system roots); the gate authenticates with its client
//! certificate and key.
//!
//! **Rotation without restart**: [`ClientTls::current`] (called before each request)
//! looks at the three files' size, modification time and inode; when one changed it
//! rebuilds the configuration. If the new files are not usable (a half-written rotation:
//! the new certificate already there, the key not yet), the previous configuration stays
//! in use, the failure is reported once per state of the files (log, [`LinkEvent`],
//! [`ClientTls::reload_failures`], [`ClientTls::last_error`]), and the next change of the
//! files is tried again.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::{EventHook, LinkEvent};

/// Where the PEM files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA (one or more certificates) central's server certificate must chain to.
    pub ca: PathBuf,
    /// The gate's client certificate (the end-entity certificate first, then any
    /// intermediates).
    pub client_certificate: PathBuf,
    /// The client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub client_key: PathBuf,
}

/// Why the TLS configuration could not be built. Names the file and the problem, never
/// the file's content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("{role} file {}: {problem}", path.display())]
    File {
        role: FileRole,
        path: PathBuf,
        problem: String,
    },
    #[error("client key {} does not match client certificate {}", key.display(), certificate.display())]
    KeyMismatch { certificate: PathBuf, key: PathBuf },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Which of the three files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRole {
    Ca,
    ClientCertificate,
    ClientKey,
}

impl fmt::Display for FileRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileRole::Ca => "CA certificate",
            FileRole::ClientCertificate => "client certificate",
            FileRole::ClientKey => "client key",
        })
    }
}

/// What identifies a state of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

type Stamps = [Option<FileStamp>; 3];

fn stamp(path: &Path) -> Option<FileStamp> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some(FileStamp {
        len: metadata.len(),
        modified: metadata.modified().ok(),
        inode,
    })
}

struct State {
    config: Arc<ClientConfig>,
    /// Bumped at each successful (re)load: connections made with an older generation
    /// are not reused.
    generation: u64,
    /// The files' state the current configuration was built from.
    loaded: Stamps,
    /// The files' state last tried (equal to `loaded` unless a reload failed).
    attempted: Stamps,
    last_error: Option<TlsError>,
    /// The loaded client certificate's notAfter (`None` if it could not be read, which
    /// rustls accepting it makes unlikely).
    not_after: Option<SystemTime>,
}

/// The client TLS configuration, reloaded when its files change.
pub struct ClientTls {
    files: TlsFiles,
    state: Mutex<State>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    hook: Mutex<Option<EventHook>>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("files", &self.files)
            .field("generation", &self.generation())
            .field("reloads", &self.reloads())
            .field("reload_failures", &self.reload_failures())
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Loads the three files; fails if any is missing or unusable.
    pub fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let stamps = files.stamps();
        let (config, not_after) = build(&files)?;
        Ok(ClientTls {
            files,
            state: Mutex::new(State {
                config: Arc::new(config),
                generation: 1,
                loaded: stamps,
                attempted: stamps,
                last_error: None,
                not_after,
            }),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            hook: Mutex::new(None),
        })
    }

    /// Where reloads and failed reloads are reported ([`LinkEvent::CertificateReloaded`],
    /// [`LinkEvent::CertificateReloadFailed`]).
    pub fn set_hook(&self, hook: EventHook) {
        *self.hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The configuration to connect with, and its generation: rebuilt first if the files
    /// changed since the last look (see the module documentation).
    pub fn current(&self) -> (u64, Arc<ClientConfig>) {
        let stamps = self.files.stamps();
        let mut event = None;
        let current = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if stamps != state.attempted {
                state.attempted = stamps;
                match build(&self.files) {
                    Ok((config, not_after)) => {
                        state.config = Arc::new(config);
                        state.not_after = not_after;
                        state.generation += 1;
                        state.loaded = stamps;
                        state.last_error = None;
                        let reloads = self.reloads.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::info!(reloads, "central link: TLS certificate reloaded");
                        event = Some(LinkEvent::CertificateReloaded { reloads });
                    }
                    Err(error) => {
                        self.reload_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, "central link: new TLS files not usable, keeping the previous ones");
                        state.last_error = Some(error.clone());
                        event = Some(LinkEvent::CertificateReloadFailed {
                            error: error.to_string(),
                        });
                    }
                }
            }
            (state.generation, state.config.clone())
        };
        if let Some(event) = event {
            self.emit(&event);
        }
        current
    }

    fn emit(&self, event: &LinkEvent) {
        let hook = self.hook.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(hook) = hook {
            hook(event);
        }
    }

    /// Bumped at each successful load (1 after [`ClientTls::new`]).
    pub fn generation(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .generation
    }

    /// Successful reloads since start.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Reloads refused since start (one per state of the files).
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// When the client certificate in use expires (its notAfter): an operator renews it
    /// before, or central starts refusing the gate.
    pub fn client_certificate_not_after(&self) -> Option<SystemTime> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .not_after
    }

    /// Why the files on disk are not the ones in use, if they are not.
    pub fn last_error(&self) -> Option<TlsError> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_error
            .clone()
    }
}

impl TlsFiles {
    fn stamps(&self) -> Stamps {
        [
            stamp(&self.ca),
            stamp(&self.client_certificate),
            stamp(&self.client_key),
        ]
    }
}

fn read(role: FileRole, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        role,
        path: path.to_owned(),
        problem: match e.kind() {
            io::ErrorKind::NotFound => "missing".into(),
            _ => format!("cannot be read ({e})"),
        },
    })
}

/// A PEM error in words, without quoting the file.
fn pem_problem(error: &pem::Error) -> String {
    match error {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".into(),
        pem::Error::Io(e) => format!("cannot be read ({e})"),
        pem::Error::SectionTooLarge => "a PEM section is too large".into(),
        _ => "not valid PEM".into(),
    }
}

fn certificates(role: FileRole, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(role, path)?;
    let problem = |problem: String| TlsError::File {
        role,
        path: path.to_owned(),
        problem,
    };
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| problem(pem_problem(&e)))?;
    if certs.is_empty() {
        return Err(problem("no certificate in PEM".into()));
    }
    Ok(certs)
}

/// The notAfter of a DER certificate.
fn not_after(certificate: &CertificateDer<'_>) -> Option<SystemTime> {
    use x509_cert::der::Decode as _;
    let parsed = x509_cert::Certificate::from_der(certificate.as_ref()).ok()?;
    let after = parsed
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration();
    SystemTime::UNIX_EPOCH.checked_add(after)
}

fn build(files: &TlsFiles) -> Result<(ClientConfig, Option<SystemTime>), TlsError> {
    let ca = certificates(FileRole::Ca, &files.ca)?;
    let mut roots = RootCertStore::empty();
    for cert in ca {
        roots.add(cert).map_err(|e| TlsError::File {
            role: FileRole::Ca,
            path: files.ca.clone(),
            problem: format!("not a usable CA certificate ({e})"),
        })?;
    }
    let chain = certificates(FileRole::ClientCertificate, &files.client_certificate)?;
    let expires = chain.first().and_then(not_after);
    let key_bytes = read(FileRole::ClientKey, &files.client_key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| TlsError::File {
        role: FileRole::ClientKey,
        path: files.client_key.clone(),
        problem: match e {
            pem::Error::NoItemsFound => "no private key in PEM".into(),
            other => pem_problem(&other),
        },
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots);
    builder
        .with_client_auth_cert(chain, key)
        .map(|config| (config, expires))
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                certificate: files.client_certificate.clone(),
                key: files.client_key.clone(),
            },
            rustls::Error::General(_) | rustls::Error::Other(_) => TlsError::File {
                role: FileRole::ClientKey,
                path: files.client_key.clone(),
                problem: "not a usable private key".into(),
            },
            other => TlsError::File {
                role: FileRole::ClientCertificate,
                path: files.client_certificate.clone(),
                problem: format!("not usable with its key ({other})"),
            },
        })
}
