//! Central immigration simulator: the other end of the gate's link (`torii-link`'s
//! [`protocol`](torii_link::protocol)) over HTTPS with mutual TLS, with fault modes and a
//! loopback control API, and the test PKI tooling ([`pki`]).
//!
//! The TLS server is TLS 1.3 only and requires a client certificate issued by the
//! configured CA (not revoked by its CRL); the certificate's subject CN is the gate id,
//! and a gate may post records for itself only.
//!
//! | call (HTTPS, mTLS) | |
//! |---|---|
//! | `POST /v1/records` | [`RecordBatch`](torii_link::protocol::RecordBatch) → 200 ack, 409 out-of-order or conflict, 403 another gate's batch, 400 malformed or over [`MAX_BATCH`](torii_link::protocol::MAX_BATCH) |
//! | `GET /v1/registry/changes?after=&limit=` | the registry's changes: the initial entries are upserts 1..n |
//! | `GET /v1/revocations?after=&limit=` | the revocation feed |
//! | `GET /health` | `{"status":"ok"}` |
//!
//! The control API (plain HTTP, loopback only) is described in [`control`]. Fault modes
//! are [`FaultMode`]. Logs carry counts, gate ids and record ids only, never a record's
//! body, a name, a passport or card number.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use torii_central::{Central, CentralConfig, pki};
//! let pki = pki::generate("/tmp/pki".as_ref(), "NRT-T1-E01", false)?;
//! let config = CentralConfig::from_pki(&pki, "127.0.0.1:0".parse()?, "127.0.0.1:0".parse()?);
//! let central = Central::start(config).await?;
//! println!("{} (control {})", central.url(), central.control_url());
//! central.shutdown().await;
//! # Ok(()) }
//! ```

pub mod control;
pub mod pki;
mod server;
pub mod store;
pub mod tls;

pub use server::{
    Central, CentralConfig, CentralHandle, Fault, FaultError, FaultMode, StartError, Stats,
    registry_from_export,
};
pub use store::StoredRecord;

/// Waits for SIGINT or SIGTERM: how the simulators' command-line servers are stopped.
/// An error when the handlers cannot be installed.
pub async fn stop_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}
