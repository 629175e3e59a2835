//! Runs the gate's flow engine (torii-core) inside the daemon: adapters from the
//! engine's interfaces to the daemon's real parts — devices through the device registry
//! and plugin host, the SQLite registry, torii-icao's MRZ checks, torii-matcher's
//! fingerprint verification — and the handle the API commands use.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use torii_core::flow::{
    ChipCheck, Clock, DeviceFailure, DocumentInspector, Engine, FingerDecision,
    FingerprintVerifier, GateDevices, GateInput, GateStatus, MrzChecker, MrzIdentity, Ports,
    SystemClock, Verification,
};
use torii_core::record::{Comparison, TransactionRecord};
use torii_core::registry::{EnrolledFinger, RegistryStore, mrz_name};
use torii_sdk::model::{DeviceClass, FingerSample, Request, Response, Status};
use uuid::Uuid;

use crate::config::Config;
use crate::registry::Registry as DeviceRegistry;

/// Inputs queued for the engine before events are dropped (with a warning).
const INPUT_QUEUE: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("registry database {path}: {source}")]
    Registry {
        path: String,
        source: torii_core::registry::RegistryError,
    },
    #[error("registry import {path}: {reason}")]
    Import { path: String, reason: String },
    #[error("card issuer key {path}: {reason}")]
    IssuerKey { path: String, reason: String },
    #[error("document trust store: {0}")]
    TrustStore(String),
    #[error("fingerprint matcher: {0}")]
    Matcher(String),
    #[error("{0}")]
    Outbox(crate::link::LinkError),
}

/// The running gate, for the API commands.
#[derive(Clone)]
pub struct GateHandle {
    inputs: mpsc::Sender<GateInput>,
    status: watch::Receiver<GateStatus>,
    records: Arc<crate::link::OutboxSink>,
    /// Device id → class, to route host events to the engine.
    classes: Arc<HashMap<String, DeviceClass>>,
    inspector: Arc<ChipInspector>,
    devices: Arc<DeviceRegistry>,
    document_reader: Option<String>,
}

impl GateHandle {
    pub fn status(&self) -> GateStatus {
        self.status.borrow().clone()
    }

    /// The engine's status, to follow its changes.
    pub fn watch_status(&self) -> watch::Receiver<GateStatus> {
        self.status.clone()
    }

    /// Queues an input; false when the engine is gone or swamped.
    pub fn send(&self, input: GateInput) -> bool {
        match self.inputs.try_send(input) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("gate input dropped: {e}");
                false
            }
        }
    }

    /// Forwards a device's event to the engine.
    pub fn device_event(&self, device: &str, event: &torii_sdk::model::Event) {
        if let Some(class) = self.classes.get(device) {
            self.send(GateInput::Device {
                class: *class,
                event: event.clone(),
            });
        }
    }

    /// Recent transactions, newest first, without personal data.
    pub fn recent(&self, limit: usize) -> Vec<TransactionRecord> {
        self.records.recent(limit)
    }

    /// A full record, while the outbox holds it (until central acknowledged it and
    /// the retention passed).
    pub fn record(&self, id: Uuid) -> Result<Option<TransactionRecord>, String> {
        self.records.record(id)
    }

    /// Inspects the passport on the reader (maintenance, `toriictl doc read`). Without
    /// `mrz_lines`, the reader's optical MRZ is used.
    pub async fn inspect_document(
        &self,
        mrz_lines: Option<Vec<String>>,
    ) -> Result<InspectionReport, String> {
        let lines = match mrz_lines {
            Some(lines) => lines,
            None => {
                let id = self
                    .document_reader
                    .as_deref()
                    .ok_or("no document reader configured")?;
                let device = self.devices.handle(id).map_err(|e| e.to_string())?;
                match device.call(Request::ReadMrz).await {
                    Ok(Response::Mrz { lines }) => lines,
                    Ok(_) => return Err("the reader answered without an MRZ".into()),
                    Err(e) => {
                        return Err(format!(
                            "the MRZ could not be read ({}): give it with --mrz",
                            e.status()
                        ));
                    }
                }
            }
        };
        Ok(self.inspector.inspect_report(&lines).await)
    }
}

/// The running gate and the stores the central link works on.
pub struct StartedGate {
    pub handle: GateHandle,
    pub registry: Arc<RegistryStore>,
    pub sink: Arc<crate::link::OutboxSink>,
}

/// Opens the registry (importing the configured export) and the outbox, builds the
/// adapters and starts the engine. `None` when the gate cannot take travelers (no card
/// issuer key, no outbox key).
pub fn start(
    config: &Config,
    devices: Arc<DeviceRegistry>,
) -> Result<Option<StartedGate>, GateError> {
    let Some(key_path) = &config.registry.card_issuer_key else {
        tracing::warn!(
            "no registry.card_issuer_key configured: cards cannot be verified, the gate takes no travelers"
        );
        return Ok(None);
    };
    let card_issuer = std::fs::read_to_string(key_path)
        .map_err(|e| e.to_string())
        .and_then(|pem| torii_core::card::issuer_key_from_pem(&pem))
        .map_err(|reason| GateError::IssuerKey {
            path: key_path.display().to_string(),
            reason,
        })?;
    let Some((outbox, registry_key)) =
        crate::link::open_outbox(config).map_err(GateError::Outbox)?
    else {
        tracing::warn!(
            "no outbox.key_file configured: records cannot be stored safely, the gate takes no travelers"
        );
        return Ok(None);
    };

    let registry = open_registry(
        &config.registry.database,
        registry_key,
        config.registry.import.as_deref(),
    )?;
    let classes: HashMap<String, DeviceClass> = config
        .devices
        .iter()
        .filter(|d| d.enabled)
        .map(|d| (d.id.clone(), d.class))
        .collect();
    let mut by_class = HashMap::new();
    for (id, class) in &classes {
        if by_class.insert(*class, id.clone()).is_some() {
            tracing::warn!(class = %class, "more than one enabled device of this class; the gate uses one of them");
        }
    }
    let trust = match &config.documents.trust_store {
        Some(dir) => {
            let store = torii_icao::TrustStore::from_dir(dir)
                .map_err(|e| GateError::TrustStore(e.to_string()))?;
            Some(Arc::new(store))
        }
        None => {
            tracing::warn!("no documents.trust_store configured: passport chips are not verified");
            None
        }
    };
    let document_reader = by_class.get(&DeviceClass::DocumentReader).cloned();
    let inspector = Arc::new(ChipInspector {
        devices: devices.clone(),
        document_reader: document_reader.clone(),
        trust,
    });
    let records = Arc::new(crate::link::OutboxSink::new(outbox));
    let ports = Ports {
        devices: LaneDevices {
            registry: devices.clone(),
            by_class,
        },
        registry: registry.clone(),
        verifier: Arc::new(crate::metrics::MeteredVerifier(
            MatcherVerifier::from_config(&config.matcher)?,
        )),
        mrz: Arc::new(IcaoMrz),
        inspector: inspector.clone(),
        clock: Arc::new(SystemClock) as Arc<dyn Clock>,
        sink: Arc::new(crate::metrics::MeteredSink(records.clone())),
        card_issuer,
    };
    let (inputs, receiver) = mpsc::channel(INPUT_QUEUE);
    let (engine, status) = Engine::new(config.flow.clone(), ports, receiver);
    tokio::spawn(engine.run());
    Ok(Some(StartedGate {
        handle: GateHandle {
            inputs,
            status,
            records: records.clone(),
            classes: Arc::new(classes),
            inspector,
            devices,
            document_reader,
        },
        registry,
        sink: records,
    }))
}

fn open_registry(
    database: &Path,
    key: torii_core::registry::RegistryKey,
    import: Option<&Path>,
) -> Result<Arc<RegistryStore>, GateError> {
    if let Some(dir) = database.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let store = RegistryStore::open(database, key).map_err(|source| GateError::Registry {
        path: database.display().to_string(),
        source,
    })?;
    if let Some(path) = import {
        let import_error = |reason: String| GateError::Import {
            path: path.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| import_error(e.to_string()))?;
        let registrations =
            torii_core::registry::import::parse(&bytes).map_err(|e| import_error(e.to_string()))?;
        let count = store
            .upsert_all(&registrations)
            .map_err(|source| GateError::Registry {
                path: database.display().to_string(),
                source,
            })?;
        tracing::info!(registrations = count, "registry imported");
    }
    Ok(Arc::new(store))
}

/// The lane's devices through the device registry (and so the plugin host).
struct LaneDevices {
    registry: Arc<DeviceRegistry>,
    by_class: HashMap<DeviceClass, String>,
}

impl GateDevices for LaneDevices {
    async fn call(&self, class: DeviceClass, request: Request) -> Result<Response, DeviceFailure> {
        crate::metrics::device_request(&request);
        let unavailable = |detail: String| DeviceFailure {
            status: Status::Unavailable,
            detail,
        };
        let id = self
            .by_class
            .get(&class)
            .ok_or_else(|| unavailable(format!("no {class} configured")))?;
        let device = self
            .registry
            .handle(id)
            .map_err(|e| unavailable(e.to_string()))?;
        device.call(request).await.map_err(|e| DeviceFailure {
            // A device that did not answer within its call timeout is a device fault,
            // not a traveler who took too long (a driver's own TIMEOUT status says that).
            status: match e {
                torii_plugin_host::CallError::Timeout { .. } => Status::Unavailable,
                _ => e.status(),
            },
            detail: e.to_string(),
        })
    }

    fn cancel(&self, class: DeviceClass) {
        if let Some(device) = self
            .by_class
            .get(&class)
            .and_then(|id| self.registry.handle(id).ok())
        {
            device.cancel();
        }
    }

    fn driver(&self, class: DeviceClass) -> String {
        self.by_class
            .get(&class)
            .and_then(|id| self.registry.snapshot(id))
            .and_then(|s| s.info.map(|d| format!("{} {}", d.name, d.version)))
            .unwrap_or_else(|| "none".into())
    }

    fn capabilities(&self, class: DeviceClass) -> Option<u64> {
        self.by_class
            .get(&class)
            .and_then(|id| self.registry.snapshot(id))
            .and_then(|s| s.info.map(|d| d.capabilities))
    }
}

/// MRZ checks by torii-icao (every check digit, the composite, field formats).
pub struct IcaoMrz;

impl MrzChecker for IcaoMrz {
    fn check(&self, lines: &[String]) -> Result<MrzIdentity, String> {
        let mrz = torii_icao::mrz::parse(&lines.join("\n")).map_err(|e| e.to_string())?;
        let expiry = yymmdd(&mrz.date_of_expiry, 2000).ok_or("date of expiry is not a date")?;
        Ok(MrzIdentity {
            name: mrz_name(&mrz.primary_identifier, &mrz.secondary_identifier),
            document_number: mrz.document_number,
            nationality: mrz.nationality,
            birth_yymmdd: mrz.date_of_birth,
            expiry,
        })
    }
}

/// ICAO 9303 inspection of the chip (PACE or BAC, passive authentication, DG1 against
/// the printed MRZ) through the document reader's driver. torii-icao is synchronous, so
/// it runs on a blocking thread whose transport sends each APDU as a device call.
pub struct ChipInspector {
    devices: Arc<DeviceRegistry>,
    document_reader: Option<String>,
    trust: Option<Arc<torii_icao::TrustStore>>,
}

struct DeviceTransport {
    device: Arc<dyn crate::registry::DeviceHandle>,
    runtime: tokio::runtime::Handle,
}

impl torii_icao::ChipTransport for DeviceTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, torii_icao::TransportError> {
        let call = self.device.call(Request::ChipTransmit {
            apdu: apdu.to_vec(),
        });
        match self.runtime.block_on(call) {
            Ok(Response::Apdu { response }) => Ok(response),
            Ok(_) => Err(torii_icao::TransportError::Lost("unexpected answer".into())),
            Err(e) if e.status() == Status::MediaAbsent => Err(torii_icao::TransportError::NoCard),
            Err(e) => Err(torii_icao::TransportError::Lost(e.to_string())),
        }
    }
}

/// Every check of one chip inspection, for `toriictl doc read` (no personal data: the
/// verdict lists checks and reasons, never the chip's contents).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InspectionReport {
    pub genuine: bool,
    /// "pace", "bac", "no-chip", or "not-checked".
    pub access: String,
    pub apdus: usize,
    pub checks: Vec<CheckView>,
    /// The first failed check's reason code.
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckView {
    pub check: String,
    /// "passed", "failed" or "not-performed".
    pub outcome: String,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

impl InspectionReport {
    fn without_chip(access: &str, why: &str, reason: Option<&str>) -> Self {
        InspectionReport {
            genuine: false,
            access: access.to_owned(),
            apdus: 0,
            checks: vec![CheckView {
                check: "ChipAccess".into(),
                outcome: if reason.is_some() {
                    "failed"
                } else {
                    "not-performed"
                }
                .into(),
                reason: reason.map(str::to_owned),
                detail: Some(why.to_owned()),
            }],
            reason: reason.map(str::to_owned),
        }
    }

    fn from_verdict(verdict: &torii_icao::DocumentVerdict) -> Self {
        use torii_icao::verdict::Outcome;
        let checks = verdict
            .checks
            .iter()
            .map(|(check, outcome)| match outcome {
                Outcome::Passed => CheckView {
                    check: format!("{check:?}"),
                    outcome: "passed".into(),
                    reason: None,
                    detail: None,
                },
                Outcome::Failed { reason, detail } => CheckView {
                    check: format!("{check:?}"),
                    outcome: "failed".into(),
                    reason: Some(reason.as_str().to_owned()),
                    detail: Some(detail.clone()),
                },
                Outcome::NotPerformed { why } => CheckView {
                    check: format!("{check:?}"),
                    outcome: "not-performed".into(),
                    reason: None,
                    detail: Some(why.clone()),
                },
            })
            .collect();
        InspectionReport {
            genuine: verdict.is_genuine(),
            access: verdict
                .access
                .map(|a| format!("{a:?}").to_lowercase())
                .unwrap_or_else(|| "none".into()),
            apdus: verdict.apdus,
            checks,
            reason: verdict.reasons().first().map(|r| r.as_str().to_owned()),
        }
    }
}

impl ChipInspector {
    /// Inspects the chip on the reader against `mrz_lines` (the printed MRZ).
    pub async fn inspect_report(&self, mrz_lines: &[String]) -> InspectionReport {
        let Some(trust) = self.trust.clone() else {
            return InspectionReport::without_chip(
                "not-checked",
                "no trust store configured",
                None,
            );
        };
        let device = match self
            .document_reader
            .as_deref()
            .map(|id| self.devices.handle(id))
        {
            Some(Ok(device)) => device,
            _ => {
                return InspectionReport::without_chip(
                    "none",
                    "no document reader",
                    Some("DOC_CHIP_ACCESS_FAILED"),
                );
            }
        };
        match device.call(Request::ChipConnect).await {
            Ok(_) => {}
            Err(e) if matches!(e.status(), Status::NotSupported) => {
                return InspectionReport::without_chip("no-chip", "the passport has no chip", None);
            }
            Err(e) => {
                tracing::warn!(status = %e.status(), "passport chip could not be powered");
                return InspectionReport::without_chip(
                    "none",
                    &e.to_string(),
                    Some("DOC_CHIP_ACCESS_FAILED"),
                );
            }
        }
        let lines = mrz_lines.to_vec();
        let transport = DeviceTransport {
            device: device.clone(),
            runtime: tokio::runtime::Handle::current(),
        };
        let verdict = tokio::task::spawn_blocking(move || {
            torii_icao::inspect(transport, &lines, &trust, std::time::SystemTime::now())
        })
        .await;
        let _ = device.call(Request::ChipDisconnect).await;
        match verdict {
            Ok(verdict) => {
                let report = InspectionReport::from_verdict(&verdict);
                if !report.genuine {
                    tracing::warn!(code = ?report.reason, apdus = report.apdus, "passport chip refused");
                }
                report
            }
            Err(_) => InspectionReport::without_chip(
                "none",
                "the inspection failed",
                Some("DOC_INSPECTION_FAILED"),
            ),
        }
    }
}

impl DocumentInspector for ChipInspector {
    fn inspect<'a>(
        &'a self,
        mrz_lines: &'a [String],
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ChipCheck> + Send + 'a>> {
        Box::pin(async move {
            let report = self.inspect_report(mrz_lines).await;
            match (report.genuine, report.access.as_str(), report.reason) {
                (true, access, _) => ChipCheck::Genuine {
                    access: access.to_owned(),
                },
                (false, "no-chip", None) => ChipCheck::NoChip,
                (false, "not-checked", None) => ChipCheck::NotChecked {
                    why: "no trust store configured".into(),
                },
                (false, _, reason) => ChipCheck::Refused {
                    code: reason.unwrap_or_else(|| "DOC_UNVERIFIED".into()),
                },
            }
        })
    }
}

fn yymmdd(text: &str, century: i32) -> Option<time::Date> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<u8>().ok();
    let month = time::Month::try_from(number(2..4)?).ok()?;
    time::Date::from_calendar_date(century + i32::from(number(0..2)?), month, number(4..6)?).ok()
}

/// Two-finger verification with the configured matcher (a vendor plugin, or
/// torii-matcher's built-in one) under torii-matcher's policy (calibrated target FMR).
pub struct MatcherVerifier {
    matcher: Arc<dyn torii_sdk::matcher::DynMatcher>,
    policy: torii_matcher::policy::Policy,
}

impl MatcherVerifier {
    /// The built-in matcher with the default policy.
    pub fn builtin() -> Self {
        MatcherVerifier {
            matcher: torii_matcher::builtin::builtin(),
            policy: Default::default(),
        }
    }

    fn from_config(settings: &crate::config::MatcherSettings) -> Result<Self, GateError> {
        let matcher = torii_plugin_host::matcher::configured_or(
            &torii_plugin_host::matcher::MatcherConfig {
                plugin: settings.plugin.clone(),
                config_json: settings.config_json.clone(),
            },
            torii_sdk::matcher::Modality::Finger,
            torii_matcher::builtin::builtin,
        )
        .map_err(|e| GateError::Matcher(e.to_string()))?;
        let info = matcher.info();
        tracing::info!(matcher = %info.name, version = %info.version, target_fmr = settings.target_fmr, "fingerprint matcher");
        let policy = torii_matcher::policy::Policy {
            mode: settings.mode,
            target_fmr: settings.target_fmr,
            ..Default::default()
        };
        Ok(MatcherVerifier { matcher, policy })
    }
}

impl FingerprintVerifier for MatcherVerifier {
    fn verify(&self, enrolled: &[EnrolledFinger], captured: &[FingerSample]) -> Verification {
        use torii_matcher::builtin::{TemplatePair, verify_with};
        use torii_matcher::policy::Decision;
        use torii_sdk::matcher::Template;
        let mut probes = Vec::with_capacity(enrolled.len());
        let mut pairs = Vec::with_capacity(enrolled.len());
        for finger in enrolled {
            let code = finger.position.code();
            // A finger not captured is a bad capture: try again.
            let Some(sample) = captured.iter().find(|s| s.position == finger.position) else {
                return Verification {
                    decision: FingerDecision::Retry,
                    comparisons: Vec::new(),
                };
            };
            let Some(position) = torii_matcher::record::FingerPosition::new(code as u8) else {
                return Verification {
                    decision: FingerDecision::NoMatch,
                    comparisons: Vec::new(),
                };
            };
            // A sensor that sends an ISO/IEC 19794-4 image but no template: the built-in
            // extractor makes the probe. No probe at all is a bad capture (retry): the
            // empty template fails to prepare, which the policy treats as a retry.
            let probe = torii_matcher::extract::probe_template(
                &sample.template,
                &sample.image,
                position.code(),
            )
            .unwrap_or_else(|error| {
                tracing::warn!(%error, finger = code, "no fingerprint probe from the capture");
                std::borrow::Cow::Borrowed(&[][..])
            });
            probes.push((position, probe, code));
        }
        for (finger, (position, probe, code)) in enrolled.iter().zip(&probes) {
            pairs.push(TemplatePair {
                position: *position,
                reference: Template::iso19794_2(&finger.template, *code),
                probe: Template::iso19794_2(probe, *code),
            });
        }
        match verify_with(self.matcher.as_ref(), &self.policy, &pairs) {
            Ok(result) => Verification {
                decision: match result.decision {
                    Decision::Match => FingerDecision::Match,
                    Decision::NoMatch => FingerDecision::NoMatch,
                    Decision::Retry => FingerDecision::Retry,
                },
                comparisons: result
                    .comparisons
                    .iter()
                    .zip(enrolled)
                    .map(|(c, finger)| Comparison {
                        finger: finger.position,
                        attempt: 0,
                        score: c.score,
                        threshold: c.threshold,
                        quality: Some(c.probe_quality),
                    })
                    .collect(),
            },
            Err(error) => {
                // Malformed templates never match.
                tracing::warn!(%error, "fingerprint verification could not decide");
                Verification {
                    decision: FingerDecision::NoMatch,
                    comparisons: Vec::new(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sensor that sends images only: the verifier extracts the probes (built-in
    /// extractor), matches the right traveler, refuses another, and asks for a retry
    /// when a capture has neither image nor template.
    #[test]
    fn image_only_samples_are_extracted_and_matched() {
        use torii_matcher::synth_image::{ImageFinger, ImageParams};
        use torii_sdk::model::FingerPosition as Finger;
        let params = ImageParams::default();
        let seed = 0x6A7E;
        // Fingers 0, 1: the traveler's right and left index; 2, 3: someone else's.
        let images: Vec<Vec<Vec<u8>>> = (0..4)
            .map(|id| {
                let finger = ImageFinger::new(&params, seed, id);
                (0..2)
                    .map(|n| {
                        let image = finger.impression(&params, seed, id, n).image;
                        torii_matcher::iso19794_4::FirRecord::from_gray(&image, 0, 80)
                            .unwrap()
                            .to_bytes()
                            .unwrap()
                    })
                    .collect()
            })
            .collect();
        let positions = [Finger::RightIndex, Finger::LeftIndex];
        let enrolled: Vec<EnrolledFinger> = positions
            .iter()
            .zip(&images)
            .map(|(&position, imgs)| EnrolledFinger {
                position,
                template: torii_matcher::extract::probe_template(
                    &[],
                    &imgs[0],
                    position.code() as u8,
                )
                .unwrap()
                .into_owned(),
            })
            .collect();
        let samples = |first: usize| -> Vec<FingerSample> {
            positions
                .iter()
                .enumerate()
                .map(|(k, &position)| FingerSample {
                    position,
                    quality: Some(80),
                    template: Vec::new(),
                    image: images[first + k][1].clone(),
                })
                .collect()
        };
        let verifier = MatcherVerifier::builtin();
        let same = verifier.verify(&enrolled, &samples(0));
        assert_eq!(same.decision, FingerDecision::Match);
        assert_eq!(same.comparisons.len(), 2);
        let other = verifier.verify(&enrolled, &samples(2));
        assert_eq!(other.decision, FingerDecision::NoMatch);
        let mut nothing = samples(0);
        nothing[1].image.clear();
        assert_eq!(
            verifier.verify(&enrolled, &nothing).decision,
            FingerDecision::Retry
        );
    }

    #[test]
    fn mrz_dates_become_calendar_dates() {
        assert_eq!(
            yymmdd("330930", 2000),
            Some(time::macros::date!(2033 - 09 - 30))
        );
        assert_eq!(yymmdd("331332", 2000), None);
        assert_eq!(yymmdd("33", 2000), None);
    }

    #[test]
    fn the_icao_checker_refuses_a_bad_check_digit_and_names_the_field() {
        let good = [
            "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<".to_owned(),
            "L898902C36UTO7408122F1204159ZE184226B<<<<<10".to_owned(),
        ];
        let identity = IcaoMrz.check(&good).unwrap();
        assert_eq!(identity.name, "ERIKSSON<<ANNA<MARIA");
        assert_eq!(identity.birth_yymmdd, "740812");
        let mut bad = good.clone();
        bad[1] = bad[1].replacen("C36", "C35", 1);
        let error = IcaoMrz.check(&bad).unwrap_err();
        assert!(error.contains("check digit"), "{error}");
    }
}
