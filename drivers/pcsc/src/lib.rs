//! PC/SC document reader driver: the contactless chip of a passport on any reader that
//! pcscd serves (PC/SC part 3 readers, CCID contactless readers, vpcd virtual readers).
//!
//! Config (the device's table, as JSON): `{"reader": "<substring of the reader name>"}`;
//! without `reader` the first reader is used. The match ignores case.
//!
//! - `chip_connect`: SCardConnect (exclusive, T=0 or T=1) → the ATR;
//! - `chip_transmit`: SCardTransmit, following `61xx` (GET RESPONSE) for T=0 readers;
//! - `chip_disconnect`: SCardDisconnect with a card reset (the SM session ends);
//! - `read_mrz`: `NOT_SUPPORTED` (a PC/SC reader has no optics);
//! - state: READY while pcscd runs and the configured reader exists, else UNAVAILABLE.
//!
//! A card-less reader is READY; `chip_connect` then answers `MEDIA_ABSENT`. Losing pcscd
//! or the reader makes the device UNAVAILABLE until they come back (the PC/SC context
//! is re-established on the next call). Logs carry reader names and PC/SC error names,
//! never APDUs.

use std::ffi::{CStr, CString};
use std::sync::{Mutex, MutexGuard};

use pcsc::{Card, Context, Disposition, Protocols, Scope, ShareMode};
use serde::Deserialize;
use torii_sdk::abi::{TORII_CAP_CHIP, TORII_CAP_THREAD_SAFE};
use torii_sdk::driver::{DocumentReader, Driver, Host, LogLevel};
use torii_sdk::model::{DeviceState, Status};

/// The device's config table.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// A substring of the PC/SC reader name (case-insensitive); `None`: the first reader.
    #[serde(default)]
    pub reader: Option<String>,
}

impl Config {
    /// Parses the JSON config; an empty string or `null` is the default config.
    pub fn parse(json: &str) -> Result<Config, Status> {
        let json = json.trim();
        if json.is_empty() || json == "null" {
            return Ok(Config::default());
        }
        serde_json::from_str(json).map_err(|_| Status::InvalidArgument)
    }
}

/// The first reader whose name contains `filter` (ignoring case).
pub fn pick_reader<'a>(names: &'a [CString], filter: Option<&str>) -> Option<&'a CStr> {
    let filter = filter.map(str::to_lowercase);
    names
        .iter()
        .find(|n| match &filter {
            None => true,
            Some(f) => n.to_string_lossy().to_lowercase().contains(f.as_str()),
        })
        .map(CString::as_c_str)
}

/// The torii status closest to a PC/SC error.
pub fn status_of(e: pcsc::Error) -> Status {
    use pcsc::Error as E;
    match e {
        E::NoSmartcard | E::RemovedCard | E::ResetCard | E::UnpoweredCard => Status::MediaAbsent,
        E::UnresponsiveCard | E::UnsupportedCard | E::CardUnsupported => Status::MediaDamaged,
        E::NoService
        | E::ServiceStopped
        | E::NoReadersAvailable
        | E::ReaderUnavailable
        | E::UnknownReader
        | E::InvalidHandle => Status::Unavailable,
        E::SharingViolation => Status::Busy,
        E::Timeout => Status::Timeout,
        E::Cancelled => Status::Cancelled,
        E::InsufficientBuffer => Status::BufferTooSmall,
        E::InvalidParameter | E::InvalidValue => Status::InvalidArgument,
        _ => Status::HardwareError,
    }
}

/// Whether an error means the PC/SC context itself is gone (pcscd restarted).
fn context_lost(e: pcsc::Error) -> bool {
    matches!(
        e,
        pcsc::Error::NoService | pcsc::Error::ServiceStopped | pcsc::Error::InvalidHandle
    )
}

/// Sends `apdu` and follows `61xx` with GET RESPONSE (T=0 readers), concatenating the
/// data; at most 64 rounds and 64 KiB, so that a hostile card cannot loop us forever.
pub fn transmit_with_get_response(
    apdu: &[u8],
    mut send: impl FnMut(&[u8]) -> Result<Vec<u8>, Status>,
) -> Result<Vec<u8>, Status> {
    let mut out = Vec::new();
    let mut resp = send(apdu)?;
    for _ in 0..64 {
        let n = resp.len();
        if n < 2 {
            return Err(Status::HardwareError);
        }
        let (data, sw) = resp.split_at(n - 2);
        if sw[0] != 0x61 || out.len() + data.len() > 65_536 {
            out.extend_from_slice(data);
            out.extend_from_slice(sw);
            return Ok(out);
        }
        out.extend_from_slice(data);
        let cla = apdu.first().copied().unwrap_or(0) & 0x03;
        resp = send(&[cla, 0xC0, 0x00, 0x00, sw[1]])?;
    }
    Err(Status::HardwareError)
}

/// Largest response: an extended-length APDU's 65536 bytes plus the status word.
const MAX_RESPONSE: usize = pcsc::MAX_BUFFER_SIZE_EXTENDED;

pub struct PcscReader {
    host: Host,
    config: Config,
    context: Mutex<Option<Context>>,
    card: Mutex<Option<Card>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock poisons the driver anyway (the SDK's entry
    // points); the data (a PC/SC handle) stays usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PcscReader {
    /// The PC/SC context, established on first use and after pcscd went away.
    fn context(&self) -> Result<Context, Status> {
        let mut guard = lock(&self.context);
        if let Some(ctx) = guard.as_ref() {
            if ctx.is_valid().is_ok() {
                return Ok(ctx.clone());
            }
            *guard = None;
        }
        let ctx = Context::establish(Scope::User).map_err(status_of)?;
        *guard = Some(ctx.clone());
        Ok(ctx)
    }

    fn drop_context(&self) {
        *lock(&self.context) = None;
    }

    /// The configured reader's full name.
    fn reader(&self, ctx: &Context) -> Result<CString, Status> {
        let names = match ctx.list_readers_owned() {
            Ok(n) => n,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(e) => {
                if context_lost(e) {
                    self.drop_context();
                }
                return Err(status_of(e));
            }
        };
        pick_reader(&names, self.config.reader.as_deref())
            .map(CStr::to_owned)
            .ok_or(Status::Unavailable)
    }
}

impl Driver for PcscReader {
    const NAME: &'static CStr = c"torii-pcsc";
    const VERSION: &'static CStr = c"0.1.0";
    const VENDOR: &'static CStr = c"torii project";
    const CAPABILITIES: u64 = TORII_CAP_CHIP | TORII_CAP_THREAD_SAFE;

    fn open(host: Host, config: &str) -> Result<Self, Status> {
        let config = Config::parse(config)?;
        let driver = PcscReader {
            host,
            config,
            context: Mutex::new(None),
            card: Mutex::new(None),
        };
        // pcscd may start after the daemon: a missing service is UNAVAILABLE, not an error.
        match driver.context().and_then(|ctx| driver.reader(&ctx)) {
            Ok(name) => host.log(
                LogLevel::Info,
                &format!("PC/SC reader {}", name.to_string_lossy()),
            ),
            Err(status) => host.log(
                LogLevel::Warn,
                &format!("PC/SC reader not available yet ({status})"),
            ),
        }
        Ok(driver)
    }

    fn state(&self) -> DeviceState {
        // Must not block: a running transmit holds `card`, not `context`.
        if let Ok(card) = self.card.try_lock()
            && card.is_some()
        {
            return DeviceState::Ready;
        }
        match self.context().and_then(|ctx| self.reader(&ctx)) {
            Ok(_) => DeviceState::Ready,
            Err(_) => DeviceState::Unavailable,
        }
    }

    fn cancel(&self) {
        if let Some(ctx) = lock(&self.context).as_ref() {
            let _ = ctx.cancel();
        }
    }
}

impl DocumentReader for PcscReader {
    fn read_mrz(&self) -> Result<Vec<String>, Status> {
        Err(Status::NotSupported)
    }

    fn chip_connect(&self) -> Result<Vec<u8>, Status> {
        let mut card = lock(&self.card);
        if let Some(old) = card.take() {
            let _ = old.disconnect(Disposition::ResetCard);
        }
        let ctx = self.context()?;
        let reader = self.reader(&ctx)?;
        let c = ctx
            .connect(&reader, ShareMode::Exclusive, Protocols::ANY)
            .map_err(|e| {
                if context_lost(e) {
                    self.drop_context();
                }
                status_of(e)
            })?;
        let atr = c.status2_owned().map_err(status_of)?.atr().to_vec();
        self.host.log(
            LogLevel::Debug,
            &format!("chip connected on {}", reader.to_string_lossy()),
        );
        *card = Some(c);
        Ok(atr)
    }

    fn chip_transmit(&self, command: &[u8]) -> Result<Vec<u8>, Status> {
        if command.len() < 4 {
            return Err(Status::InvalidArgument);
        }
        let mut guard = lock(&self.card);
        let card = guard.as_ref().ok_or(Status::MediaAbsent)?;
        let mut buf = vec![0u8; MAX_RESPONSE];
        let result = transmit_with_get_response(command, |apdu| {
            card.transmit(apdu, &mut buf)
                .map(<[u8]>::to_vec)
                .map_err(|e| {
                    if context_lost(e) {
                        self.drop_context();
                    }
                    status_of(e)
                })
        });
        if matches!(result, Err(Status::MediaAbsent | Status::Unavailable)) {
            // The card left the field (or pcscd went away): the handle is useless now.
            *guard = None;
        }
        result
    }

    fn chip_disconnect(&self) -> Result<(), Status> {
        if let Some(card) = lock(&self.card).take() {
            card.disconnect(Disposition::ResetCard)
                .map_err(|(_, e)| status_of(e))
                .or_else(|s| {
                    // Already gone is as good as disconnected.
                    if s == Status::MediaAbsent || s == Status::Unavailable {
                        Ok(())
                    } else {
                        Err(s)
                    }
                })?;
        }
        Ok(())
    }
}

torii_sdk::export_driver!(DocumentReader => PcscReader);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_and_rejects_unknown_keys() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        assert_eq!(Config::parse("null").unwrap(), Config::default());
        assert_eq!(
            Config::parse(r#"{"reader": "ACS"}"#)
                .unwrap()
                .reader
                .as_deref(),
            Some("ACS")
        );
        assert_eq!(
            Config::parse(r#"{"raeder": "x"}"#),
            Err(Status::InvalidArgument)
        );
        assert_eq!(Config::parse("[1"), Err(Status::InvalidArgument));
    }

    #[test]
    fn reader_is_picked_by_case_insensitive_substring() {
        let names = vec![
            CString::new("ACS ACR122U PICC Interface 00 00").unwrap(),
            CString::new("Virtual PCD 00 00").unwrap(),
        ];
        assert_eq!(
            pick_reader(&names, Some("virtual pcd"))
                .unwrap()
                .to_str()
                .unwrap(),
            "Virtual PCD 00 00"
        );
        assert_eq!(
            pick_reader(&names, None).unwrap().to_str().unwrap(),
            "ACS ACR122U PICC Interface 00 00"
        );
        assert!(pick_reader(&names, Some("Omnikey")).is_none());
        assert!(pick_reader(&[], None).is_none());
    }

    #[test]
    fn pcsc_errors_map_to_cuss_statuses() {
        assert_eq!(status_of(pcsc::Error::NoSmartcard), Status::MediaAbsent);
        assert_eq!(status_of(pcsc::Error::RemovedCard), Status::MediaAbsent);
        assert_eq!(status_of(pcsc::Error::NoService), Status::Unavailable);
        assert_eq!(status_of(pcsc::Error::UnknownReader), Status::Unavailable);
        assert_eq!(status_of(pcsc::Error::SharingViolation), Status::Busy);
        assert_eq!(
            status_of(pcsc::Error::UnresponsiveCard),
            Status::MediaDamaged
        );
        assert_eq!(status_of(pcsc::Error::CommError), Status::HardwareError);
    }

    #[test]
    fn get_response_is_followed_and_bounded() {
        let mut sent = Vec::new();
        let mut answers = vec![vec![1, 2, 0x61, 0x02], vec![3, 4, 0x90, 0x00]].into_iter();
        let r = transmit_with_get_response(&[0x0C, 0xB0, 0, 0, 0], |a| {
            sent.push(a.to_vec());
            answers.next().ok_or(Status::HardwareError)
        })
        .unwrap();
        assert_eq!(r, vec![1, 2, 3, 4, 0x90, 0x00]);
        assert_eq!(sent[1], vec![0x00, 0xC0, 0, 0, 2]);
        // A card answering 61xx forever is an error, not a hang.
        let r = transmit_with_get_response(&[0, 0xB0, 0, 0, 0], |_| Ok(vec![0x61, 0x10]));
        assert_eq!(r, Err(Status::HardwareError));
        assert_eq!(
            transmit_with_get_response(&[0, 0xB0, 0, 0, 0], |_| Ok(vec![0x90])),
            Err(Status::HardwareError)
        );
    }
}
