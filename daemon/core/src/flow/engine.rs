//! The sequences themselves, written in the order of the user guide's §8.

use time::UtcOffset;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use torii_sdk::model::{
    DeviceClass, Door, DoorCommand, DoorState, Event, Light, Request, Response, Status, Zone,
};
use uuid::Uuid;

use super::{
    Alarm, AlarmKind, ChipCheck, DeviceFailure, FingerDecision, FlowConfig, GateDevices, GateInput,
    GateStatus, Interlock, LastTransaction, Mode, MrzIdentity, Ports, Referral,
};
use crate::card;
use crate::reason::ReasonCode;
use crate::record::{
    DeviceUse, Identification, Notice, Outcome, Step, StepTime, TransactionRecord, landing_line,
};
use crate::registry::{Registration, holder_key};
use crate::rules::{self, CARD_RECORD_CAPACITY, Facts, Lane, Phase, PresentedPassport};

/// Japan Standard Time: dates on cards and validity checks are Japanese dates.
const JST: UtcOffset = match UtcOffset::from_hms(9, 0, 0) {
    Ok(offset) => offset,
    Err(_) => UtcOffset::UTC,
};

/// How a transaction begins.
#[derive(Clone, Debug)]
enum Start {
    Passport,
    Qr(Vec<u8>),
}

type Flow<T> = Result<T, Referral>;

pub struct Engine<D: GateDevices> {
    config: FlowConfig,
    ports: Ports<D>,
    inputs: mpsc::Receiver<GateInput>,
    status: watch::Sender<GateStatus>,
    mode: Mode,
    /// Mode to return to when the fire alarm clears.
    mode_before_alarm: Mode,
    /// What the lane's events said last: inputs are never "lost" between steps, a step
    /// looks at the state first and waits only for what has not happened yet.
    lane: LaneState,
    /// Inputs that arrive at any time and are remembered rather than acted on at once.
    side: SideState,
}

/// Officer and system inputs that do not end a transaction (or, for a door command,
/// that must run after the transaction ended).
#[derive(Default)]
struct SideState {
    interlocks: std::collections::BTreeSet<Interlock>,
    stamp_requested: bool,
    alarm_acknowledged: bool,
    /// A door command that ended the transaction, run once the referral is handled.
    officer_door: Option<(Door, DoorCommand)>,
    /// The engine took the lane out of service because a door did not reach the
    /// position it was commanded to; the officer's acknowledgement of the alarm puts it
    /// back in service (and the doors are checked again).
    door_fault: bool,
    /// A reloaded flow configuration waiting for the transaction under way to end.
    new_config: Option<Box<FlowConfig>>,
}

impl SideState {
    /// Remembers a side input; false when it is not one.
    fn observe(&mut self, input: &GateInput) -> bool {
        match input {
            GateInput::Interlock { interlock, active } => {
                if *active {
                    self.interlocks.insert(*interlock);
                } else {
                    self.interlocks.remove(interlock);
                }
            }
            GateInput::StampRequested => self.stamp_requested = true,
            GateInput::AcknowledgeAlarm => self.alarm_acknowledged = true,
            GateInput::OfficerDoor { door, command } => {
                self.officer_door = Some((*door, *command));
            }
            GateInput::Reconfigure(config) => self.new_config = Some(config.clone()),
            _ => return false,
        }
        true
    }
}

#[derive(Default)]
struct LaneState {
    media_present: std::collections::HashSet<DeviceClass>,
    persons_in_lane: u32,
}

impl LaneState {
    fn observe(&mut self, input: &GateInput) {
        match input {
            GateInput::Device {
                class,
                event: Event::MediaPresent,
            } => {
                self.media_present.insert(*class);
            }
            GateInput::Device {
                class,
                event: Event::MediaRemoved,
            } => {
                self.media_present.remove(class);
            }
            // A device that went away (unplugged, its driver restarting) may have missed
            // the medium's removal; it says again what it holds when it is back. A
            // remembered card would otherwise be read at the next traveler's card step
            // before they laid theirs (CARD_UNREADABLE for everyone after).
            GateInput::Device {
                class,
                event: Event::StateChanged { state },
            } if *state == torii_sdk::model::DeviceState::Unavailable => {
                self.media_present.remove(class);
            }
            GateInput::Device {
                event:
                    Event::PersonCount {
                        zone: Zone::Lane,
                        count,
                    },
                ..
            } => {
                self.persons_in_lane = *count;
            }
            _ => {}
        }
    }
}

/// The transaction under way.
struct Tx {
    record: TransactionRecord,
    started: Instant,
    /// The record was committed (before the door opened); later steps do not change it.
    committed: bool,
    passport: Option<PresentedPassport>,
    registration: Option<Registration>,
    card: Option<card::CardData>,
}

impl<D: GateDevices> Engine<D> {
    pub fn new(
        config: FlowConfig,
        ports: Ports<D>,
        inputs: mpsc::Receiver<GateInput>,
    ) -> (Self, watch::Receiver<GateStatus>) {
        let (status, watcher) = watch::channel(GateStatus {
            mode: Mode::InService,
            lane: config.lane,
            step: Step::Idle,
            transaction: None,
            ed_card: None,
            ed_card_errors: Vec::new(),
            last: None,
            transactions: 0,
            interlocks: Vec::new(),
            alarm: None,
            nationality: None,
        });
        let engine = Engine {
            config,
            ports,
            inputs,
            status,
            mode: Mode::InService,
            mode_before_alarm: Mode::InService,
            lane: LaneState::default(),
            side: SideState::default(),
        };
        (engine, watcher)
    }

    /// Serves travelers until the input channel closes.
    pub async fn run(mut self) {
        self.prepare_idle().await;
        while let Some(start) = self.wait_for_traveler().await {
            let (record, committed) = self.transaction(start).await;
            if !committed && let Err(error) = self.ports.sink.commit(&record).await {
                // The traveler is already referred; the record stays in the logs' counts
                // only. Central misses it: the fault is the storage's, reported here.
                tracing::error!(record = %record.record_id, %error, "the referral's record could not be stored");
            }
            let guidance = match record.outcome {
                Outcome::Admitted => "Welcome to Japan.".to_owned(),
                Outcome::Referred(reason) => reason.guidance().english().to_owned(),
            };
            tracing::info!(record = %record.record_id, outcome = ?record.outcome, decided_by = ?record.decided_by, "transaction finished");
            self.status.send_modify(|s| {
                s.step = Step::Idle;
                s.transaction = None;
                s.ed_card = None;
                s.ed_card_errors.clear();
                s.nationality = None;
                s.last = Some(LastTransaction {
                    record_id: record.record_id,
                    outcome: record.outcome,
                    guidance,
                    guidance_kind: match record.outcome {
                        Outcome::Admitted => None,
                        Outcome::Referred(reason) => Some(reason.guidance()),
                    },
                    notices: record.notices.clone(),
                });
                s.transactions += 1;
            });
            self.apply_new_config();
            if let Some((door, command)) = self.side.officer_door.take() {
                self.officer_door(door, command).await;
            } else if self.accepting() {
                self.prepare_idle().await;
            }
        }
    }

    /// Takes a reloaded configuration, keeping the gate id and the lane (they name this
    /// gate and its doors' direction: changing them needs a restart).
    fn apply_new_config(&mut self) {
        if let Some(mut config) = self.side.new_config.take() {
            config.gate_id.clone_from(&self.config.gate_id);
            config.lane = self.config.lane;
            if *config != self.config {
                self.config = *config;
                tracing::info!("flow configuration reloaded");
            }
        }
    }

    /// Taking travelers: in service with no interlock active.
    fn accepting(&self) -> bool {
        self.mode == Mode::InService && self.side.interlocks.is_empty()
    }

    fn publish_side_state(&self) {
        let interlocks: Vec<Interlock> = self.side.interlocks.iter().copied().collect();
        self.status.send_if_modified(|s| {
            if s.interlocks == interlocks {
                false
            } else {
                s.interlocks = interlocks;
                true
            }
        });
    }

    /// An idle-time side input: interlocks move the doors, an acknowledgement clears the
    /// alarm, an officer's door command runs at once.
    async fn apply_side_input(&mut self, input: &GateInput) {
        let was_accepting = self.accepting();
        self.side.observe(input);
        self.publish_side_state();
        match input {
            GateInput::AcknowledgeAlarm => {
                self.side.alarm_acknowledged = false;
                self.status.send_modify(|s| s.alarm = None);
                if std::mem::take(&mut self.side.door_fault) && self.mode == Mode::OutOfService {
                    tracing::info!("door alarm acknowledged: back in service");
                    self.set_mode(Mode::InService).await;
                } else if self.accepting() {
                    self.prepare_idle().await;
                }
            }
            GateInput::OfficerDoor { door, command } => {
                self.side.officer_door = None;
                self.officer_door(*door, *command).await;
            }
            // Outside a transaction there is no record to note it on.
            GateInput::StampRequested => self.side.stamp_requested = false,
            GateInput::Reconfigure(_) => self.apply_new_config(),
            _ => {}
        }
        let accepting = self.accepting();
        if was_accepting && !accepting && self.mode != Mode::FireAlarm {
            tracing::warn!(interlocks = ?self.side.interlocks, "gate out of service: interlock active");
            let _ = self
                .lane_posture(DoorCommand::Close, DoorCommand::Lock, Light::Red)
                .await;
        } else if !was_accepting && accepting {
            tracing::info!("interlocks cleared: gate back in service");
            self.prepare_idle().await;
        }
    }

    async fn officer_door(&mut self, door: Door, command: DoorCommand) {
        tracing::info!(?door, ?command, "door commanded by an officer");
        let _ = self
            .call(
                DeviceClass::LaneController,
                Request::SetDoor { door, command },
            )
            .await;
    }

    // ------------------------------------------------------------------ idle

    /// Doors: entry open to let one traveler in, exit closed; light green; codes on.
    async fn prepare_idle(&mut self) {
        if let Err(door) = self
            .lane_posture(DoorCommand::Open, DoorCommand::Close, Light::Green)
            .await
        {
            self.door_fault(door, None).await;
            return;
        }
        let _ = self
            .call(
                DeviceClass::CodeReader,
                Request::SetCodeReaderEnabled { enabled: true },
            )
            .await;
    }

    /// Puts both doors and the light in one posture. The exit door goes first: it is the
    /// one that must never stand open by mistake. Failures are logged by `call`.
    ///
    /// Opening the entry (the idle posture) is a mantrap's move: it happens only once
    /// the controller reports the exit closed, and the entry is then checked open (a
    /// jammed entry leaves the lane unusable). `Err(door)`: that door is not where it
    /// was commanded; the light is red and the entry was not opened.
    async fn lane_posture(
        &self,
        entry: DoorCommand,
        exit: DoorCommand,
        light: Light,
    ) -> Result<(), Door> {
        let lane = DeviceClass::LaneController;
        let _ = self
            .call(
                lane,
                Request::SetDoor {
                    door: Door::Exit,
                    command: exit,
                },
            )
            .await;
        let opening = entry == DoorCommand::Open;
        let mut result = Ok(());
        if opening && !self.door_in_position(Door::Exit, DoorState::Closed).await {
            result = Err(Door::Exit);
        } else {
            let _ = self
                .call(
                    lane,
                    Request::SetDoor {
                        door: Door::Entry,
                        command: entry,
                    },
                )
                .await;
            if opening && !self.door_in_position(Door::Entry, DoorState::Open).await {
                result = Err(Door::Entry);
            }
        }
        let light = if result.is_ok() { light } else { Light::Red };
        let _ = self.call(lane, Request::SetLight { light }).await;
        result
    }

    /// False only when the lane controller reports `door` somewhere else than `wanted`
    /// (closed also accepts locked). A failed or unanswered query is the call's own
    /// fault, handled where the call is; it is not taken for a stuck door.
    async fn door_in_position(&self, door: Door, wanted: DoorState) -> bool {
        match self
            .call(DeviceClass::LaneController, Request::GetDoor { door })
            .await
        {
            Ok(Response::DoorState { state }) => {
                state == wanted || (wanted == DoorState::Closed && state == DoorState::Locked)
            }
            _ => true,
        }
    }

    /// The lane controller counts nobody in the lane. After the exit was commanded open
    /// and reads closed, this tells a traveler quick enough to be through already (the
    /// door opened and closed behind them before the position query) from a door that
    /// never opened; a failed query counts as not empty (fail closed).
    async fn lane_is_empty(&self) -> bool {
        matches!(
            self.call(
                DeviceClass::LaneController,
                Request::GetPersonCount { zone: Zone::Lane }
            )
            .await,
            Ok(Response::PersonCount { count: 0 })
        )
    }

    /// A door did not reach the position it was commanded to: the lane's alarm (for an
    /// officer to acknowledge) and out of service until then, both doors commanded shut.
    /// Fail closed: a lane whose doors do not obey is no lane to let anyone through.
    async fn door_fault(&mut self, door: Door, record_id: Option<Uuid>) {
        tracing::error!(
            ?door,
            "door not in its commanded position: lane out of service until an officer acknowledges the alarm"
        );
        self.status.send_modify(|s| {
            s.alarm = Some(Alarm {
                kind: AlarmKind::DeviceFault,
                record_id,
            })
        });
        if self.mode == Mode::InService {
            self.side.door_fault = true;
            self.mode = Mode::OutOfService;
            self.status.send_modify(|s| s.mode = Mode::OutOfService);
        }
        let _ = self
            .lane_posture(DoorCommand::Close, DoorCommand::Lock, Light::Red)
            .await;
    }

    async fn set_mode(&mut self, mode: Mode) {
        if mode == self.mode {
            return;
        }
        tracing::info!(from = ?self.mode, to = ?mode, "gate mode changed");
        self.mode = mode;
        self.status.send_modify(|s| s.mode = mode);
        match mode {
            Mode::InService if self.accepting() => self.prepare_idle().await,
            Mode::InService => {
                let _ = self
                    .lane_posture(DoorCommand::Close, DoorCommand::Lock, Light::Red)
                    .await;
            }
            Mode::FireAlarm => self.release_all_doors().await,
            Mode::OutOfService | Mode::Maintenance => {
                let _ = self
                    .lane_posture(DoorCommand::Close, DoorCommand::Lock, Light::Red)
                    .await;
            }
        }
    }

    /// Fail safe for egress: every door free.
    async fn release_all_doors(&mut self) {
        let _ = self
            .lane_posture(DoorCommand::Free, DoorCommand::Free, Light::Amber)
            .await;
    }

    /// Idles until a passport or QR code arrives while in service. `None`: shutting down.
    async fn wait_for_traveler(&mut self) -> Option<Start> {
        loop {
            let input = self.inputs.recv().await?;
            if let Some(start) = self.idle_input(input).await {
                return Some(start);
            }
        }
    }

    async fn idle_input(&mut self, input: GateInput) -> Option<Start> {
        self.lane.observe(&input);
        match input {
            GateInput::Device {
                class: DeviceClass::LaneController,
                event: Event::FireAlarm { active },
            } => {
                self.fire_alarm(active).await;
                None
            }
            GateInput::SetMode(mode) if mode != Mode::FireAlarm && self.mode != Mode::FireAlarm => {
                self.set_mode(mode).await;
                None
            }
            GateInput::Interlock { .. }
            | GateInput::OfficerDoor { .. }
            | GateInput::AcknowledgeAlarm
            | GateInput::StampRequested
            | GateInput::Reconfigure(_) => {
                self.apply_side_input(&input).await;
                None
            }
            _ if !self.accepting() => None,
            GateInput::Device {
                class: DeviceClass::DocumentReader,
                event: Event::MediaPresent,
            } => Some(Start::Passport),
            GateInput::Device {
                class: DeviceClass::CodeReader,
                event: Event::CodeRead { payload, .. },
            } => Some(Start::Qr(payload)),
            _ => None,
        }
    }

    async fn fire_alarm(&mut self, active: bool) {
        if active && self.mode != Mode::FireAlarm {
            self.mode_before_alarm = self.mode;
            self.set_mode(Mode::FireAlarm).await;
        } else if !active && self.mode == Mode::FireAlarm {
            let back = self.mode_before_alarm;
            self.set_mode(back).await;
        }
    }

    // ------------------------------------------------------------------ a transaction

    /// One traveler, start to end. `true` with the record when it was already committed
    /// (admissions are committed before the door opens).
    async fn transaction(&mut self, start: Start) -> (TransactionRecord, bool) {
        self.side.stamp_requested = false;
        self.side.officer_door = None;
        let now = self.ports.clock.now();
        let mut tx = Tx {
            record: TransactionRecord {
                record_id: Uuid::new_v4(),
                gate_id: self.config.gate_id.clone(),
                lane: self.config.lane,
                started_at: now,
                finished_at: now,
                outcome: Outcome::Admitted,
                decided_by: None,
                identification: None,
                chip: None,
                nationality: None,
                passport_number: None,
                card_number: None,
                steps: Vec::new(),
                comparisons: Vec::new(),
                devices: Vec::new(),
                ed_card: None,
                printed_line: None,
                period_of_stay_days: None,
                notices: Vec::new(),
                face_jpeg: None,
            },
            started: Instant::now(),
            committed: false,
            passport: None,
            registration: None,
            card: None,
        };
        self.status
            .send_modify(|s| s.transaction = Some(tx.record.record_id));
        let result = match self.config.lane {
            Lane::Entry => self.entry(&mut tx, start).await,
            Lane::Exit => self.exit(&mut tx, start).await,
        };
        let committed = tx.committed;
        if let Err(referral) = result {
            tx.record.outcome = Outcome::Referred(referral.reason);
            tx.record.decided_by = Some(referral.by);
            self.enter_step(&mut tx, Step::Referred);
            self.note_side_requests(&mut tx);
            let alarm = match referral.reason {
                ReasonCode::MultiplePersons => Some(AlarmKind::Tailgating),
                ReasonCode::DeviceFault => Some(AlarmKind::DeviceFault),
                _ => None,
            };
            if let Some(kind) = alarm {
                let record_id = Some(tx.record.record_id);
                self.status
                    .send_modify(|s| s.alarm = Some(Alarm { kind, record_id }));
            }
            self.after_referral(&tx, referral.reason).await;
        } else {
            self.enter_step(&mut tx, Step::Done);
        }
        if !committed {
            tx.record.finished_at = self.ports.clock.now();
        }
        self.publish_side_state();
        (tx.record, committed)
    }

    fn note_side_requests(&mut self, tx: &mut Tx) {
        if std::mem::take(&mut self.side.stamp_requested)
            && !tx.record.notices.contains(&Notice::StampRequested)
        {
            tx.record.notices.push(Notice::StampRequested);
        }
    }

    /// Commits the admission's record durably; the door opens only after this.
    async fn commit_before_passage(&mut self, tx: &mut Tx) -> Flow<()> {
        self.note_side_requests(tx);
        tx.record.finished_at = self.ports.clock.now();
        match self.ports.sink.commit(&tx.record).await {
            Ok(()) => {
                tx.committed = true;
                Ok(())
            }
            Err(error) => {
                tracing::error!(record = %tx.record.record_id, %error, "record not stored: the door stays closed");
                Err(Referral::new(ReasonCode::RecordNotStored, "record-commit"))
            }
        }
    }

    /// Entry (landing examination), §8(1).
    async fn entry(&mut self, tx: &mut Tx, start: Start) -> Flow<()> {
        self.identify(tx, start).await?;
        self.check_registration(tx)?;
        self.read_card(tx, DeviceClass::CardPrinter).await?;
        self.confirm_ed_card(tx).await?;
        self.verify_fingers(tx).await?;
        self.take_face_photo(tx).await?;
        self.print_landing_record(tx).await?;
        self.take_card_back(tx, DeviceClass::CardPrinter).await?;
        self.open_for_passage(tx).await
    }

    /// Exit (departure examination), §8(2).
    async fn exit(&mut self, tx: &mut Tx, start: Start) -> Flow<()> {
        self.identify(tx, start).await?;
        self.check_registration(tx)?;
        self.read_card(tx, DeviceClass::CardReader).await?;
        self.verify_fingers(tx).await?;
        self.take_card_back(tx, DeviceClass::CardReader).await?;
        self.open_for_passage(tx).await
    }

    fn enter_step(&self, tx: &mut Tx, step: Step) {
        let at_ms = tx.started.elapsed().as_millis() as u64;
        tx.record.steps.push(StepTime { step, at_ms });
        self.status.send_modify(|s| s.step = step);
    }

    fn use_device(&self, tx: &mut Tx, class: DeviceClass) {
        if !tx.record.devices.iter().any(|d| d.class == class) {
            tx.record.devices.push(DeviceUse {
                class,
                driver: self.ports.devices.driver(class),
            });
        }
    }

    fn today(&self) -> time::Date {
        self.ports.clock.now().to_offset(JST).date()
    }

    // ------------------------------------------------------------------ steps

    /// Step 1: the passport's data page (or the QR code) identifies the traveler.
    async fn identify(&mut self, tx: &mut Tx, start: Start) -> Flow<()> {
        self.enter_step(tx, Step::Document);
        let passport = match start {
            Start::Passport => {
                self.use_device(tx, DeviceClass::DocumentReader);
                tx.record.identification = Some(Identification::Passport);
                let lines = match self
                    .call(DeviceClass::DocumentReader, Request::ReadMrz)
                    .await
                {
                    Ok(Response::Mrz { lines }) => lines,
                    // The reader failing (hung, unplugged, crashed) is maintenance's,
                    // not the passport's.
                    Err(failure) if is_device_fault(failure.status) => {
                        return Err(Referral::new(ReasonCode::DeviceFault, "read-mrz"));
                    }
                    Ok(_) | Err(_) => {
                        return Err(Referral::new(ReasonCode::DocumentUnreadable, "read-mrz"));
                    }
                };
                let identity: MrzIdentity = self.ports.mrz.check(&lines).map_err(|why| {
                    tracing::info!(problem = %why, "MRZ refused");
                    Referral::new(ReasonCode::DocumentUnreadable, "mrz-check")
                })?;
                // The chip is not genuine until passive authentication succeeds; a chip
                // that fails any check refers the traveler, whatever the MRZ says.
                let chip = self.inspect_chip(&lines).await?;
                tracing::info!(chip = ?chip, "passport chip inspected");
                tx.record.chip = Some(chip.clone());
                if let ChipCheck::Refused { code } = chip {
                    return Err(Referral::new(ReasonCode::DocumentChipInvalid, code));
                }
                PresentedPassport {
                    holder_key: Some(holder_key(
                        &identity.nationality,
                        &identity.birth_yymmdd,
                        &identity.name,
                    )),
                    number: identity.document_number,
                    nationality: identity.nationality,
                    expiry: Some(identity.expiry),
                }
            }
            Start::Qr(payload) => {
                self.use_device(tx, DeviceClass::CodeReader);
                tx.record.identification = Some(Identification::QrCode);
                parse_registration_qr(&payload)
                    .ok_or_else(|| Referral::new(ReasonCode::QrCodeInvalid, "qr-format"))?
            }
        };
        tx.record.nationality = Some(passport.nationality.clone());
        let nationality = passport.nationality.clone();
        self.status
            .send_modify(|s| s.nationality = Some(nationality));
        tx.record.passport_number = Some(passport.number.clone());
        let registry = &self.ports.registry;
        let lookup_failed = |_| Referral::new(ReasonCode::InternalError, "registry-lookup");
        tx.registration = registry
            .lookup(&passport.number, &passport.nationality)
            .map_err(lookup_failed)?;
        tx.passport = Some(passport);
        Ok(())
    }

    fn facts<'a>(&self, tx: &'a Tx, holder: Option<&'a Registration>) -> Option<Facts<'a>> {
        Some(Facts {
            today: self.today(),
            lane: self.config.lane,
            passport: tx.passport.as_ref()?,
            registration: tx.registration.as_ref(),
            registration_of_holder: holder,
            card: tx.card.as_ref(),
        })
    }

    fn check_registration(&self, tx: &mut Tx) -> Flow<()> {
        let of_holder = match (
            &tx.registration,
            tx.passport.as_ref().and_then(|p| p.holder_key.as_ref()),
        ) {
            (None, Some(key)) => {
                let others = self
                    .ports
                    .registry
                    .lookup_holder(key)
                    .map_err(|_| Referral::new(ReasonCode::InternalError, "registry-lookup"))?;
                others.into_iter().next()
            }
            _ => None,
        };
        let facts = self
            .facts(tx, of_holder.as_ref())
            .ok_or_else(|| Referral::new(ReasonCode::InternalError, "no-passport"))?;
        rules::evaluate(Phase::Registration, &facts)
            .map_err(|(reason, rule)| Referral::new(reason, rule))
    }

    /// Step 2: the card into the printer (entry) or on the reader (exit); its chip's
    /// signed data must belong to this registration.
    async fn read_card(&mut self, tx: &mut Tx, device: DeviceClass) -> Flow<()> {
        self.enter_step(tx, Step::Card);
        self.use_device(tx, device);
        if !self.lane.media_present.contains(&device) {
            let deadline = Instant::now() + FlowConfig::ms(self.config.card_timeout_ms);
            self.wait(deadline, ReasonCode::CardMissing, |input| {
                matches!(input, GateInput::Device { class, event: Event::MediaPresent } if *class == device)
            })
            .await?;
        }
        let data = match self.call(device, Request::ReadCardChip).await {
            Ok(Response::CardChip { data }) => data,
            // The card itself (no chip answer, damaged) — or the printer/reader failing,
            // which maintenance must hear about rather than the card being blamed.
            Err(failure) if is_device_fault(failure.status) => {
                return Err(Referral::new(ReasonCode::DeviceFault, "read-card-chip"));
            }
            Ok(_) | Err(_) => {
                return Err(Referral::new(ReasonCode::CardUnreadable, "read-card-chip"));
            }
        };
        let card = card::decode_verified(&data, &self.ports.card_issuer).map_err(|e| {
            tracing::warn!(problem = %e, "card data refused");
            Referral::new(e.reason(), "card-signature")
        })?;
        tx.record.card_number = Some(card.card_number.clone());
        tx.card = Some(card);
        let facts = self
            .facts(tx, None)
            .ok_or_else(|| Referral::new(ReasonCode::InternalError, "no-passport"))?;
        rules::evaluate(Phase::Card, &facts).map_err(|(reason, rule)| Referral::new(reason, rule))
    }

    /// Step 3 (entry): the pre-entered ED card is shown; the traveler corrects or
    /// completes it and confirms.
    async fn confirm_ed_card(&mut self, tx: &mut Tx) -> Flow<()> {
        self.enter_step(tx, Step::EdCard);
        let pre_entered = tx
            .registration
            .as_ref()
            .and_then(|r| r.ed_card.clone())
            .unwrap_or_default();
        self.status.send_modify(|s| {
            s.ed_card = Some(pre_entered);
            s.ed_card_errors.clear();
        });
        let deadline = Instant::now() + FlowConfig::ms(self.config.ed_card_timeout_ms);
        let confirmed = loop {
            let card = self
                .wait_map(
                    deadline,
                    ReasonCode::EdCardIncomplete,
                    |input| match input {
                        GateInput::EdCardConfirmed(card) => Some(card.clone()),
                        _ => None,
                    },
                )
                .await?;
            let errors = card.validate();
            if errors.is_empty() {
                break card;
            }
            // Stay on the step: the screen marks the fields to fix.
            self.status.send_modify(|s| {
                s.ed_card = Some(card);
                s.ed_card_errors = errors;
            });
        };
        self.status.send_modify(|s| {
            s.ed_card = None;
            s.ed_card_errors.clear();
        });
        let needs_examination = confirmed.needs_examination();
        tx.record.ed_card = Some(confirmed);
        if needs_examination {
            return Err(Referral::new(
                ReasonCode::EdCardDeclaration,
                "ed-card-questions",
            ));
        }
        Ok(())
    }

    /// Step 4: exactly the two registered fingers, with retries.
    async fn verify_fingers(&mut self, tx: &mut Tx) -> Flow<()> {
        self.enter_step(tx, Step::Fingerprints);
        self.use_device(tx, DeviceClass::FingerprintSensor);
        let enrolled = tx
            .registration
            .as_ref()
            .map(|r| r.fingers.clone())
            .unwrap_or_default();
        if enrolled.len() < 2 {
            return Err(Referral::new(
                ReasonCode::FingersUnusable,
                "two-registered-fingers",
            ));
        }
        let fingers: Vec<_> = enrolled.iter().map(|f| f.position).collect();
        let mut last = FingerDecision::NoMatch;
        for attempt in 1..=self.config.finger_attempts {
            let (want_template, want_image) = super::finger_capture_formats(
                self.ports
                    .devices
                    .capabilities(DeviceClass::FingerprintSensor),
            );
            let request = Request::CaptureFingers {
                fingers: fingers.clone(),
                timeout_ms: u32::try_from(self.config.finger_timeout_ms).unwrap_or(u32::MAX),
                want_template,
                want_image,
            };
            let samples = match self
                .call_watching(DeviceClass::FingerprintSensor, request)
                .await?
            {
                Ok(Response::Fingers { samples }) => samples,
                Ok(_) => return Err(Referral::new(ReasonCode::DeviceFault, "capture-fingers")),
                Err(failure) if failure.status == Status::Timeout => {
                    return Err(Referral::new(ReasonCode::Timeout, "capture-fingers"));
                }
                Err(_) => return Err(Referral::new(ReasonCode::DeviceFault, "capture-fingers")),
            };
            let verification = self.ports.verifier.verify(&enrolled, &samples);
            for mut comparison in verification.comparisons {
                comparison.attempt = attempt;
                tracing::info!(attempt, finger = ?comparison.finger, score = comparison.score, threshold = comparison.threshold, "fingerprint comparison");
                tx.record.comparisons.push(comparison);
            }
            last = verification.decision;
            if last == FingerDecision::Match {
                return Ok(());
            }
        }
        let reason = match last {
            FingerDecision::Retry => ReasonCode::FingerprintQuality,
            _ => ReasonCode::FingerprintMismatch,
        };
        Err(Referral::new(reason, "fingerprint-attempts"))
    }

    /// Step 4b (entry): the face photo, kept in the record.
    async fn take_face_photo(&mut self, tx: &mut Tx) -> Flow<()> {
        self.enter_step(tx, Step::Face);
        self.use_device(tx, DeviceClass::Camera);
        let request = Request::CaptureFace {
            timeout_ms: u32::try_from(self.config.face_timeout_ms).unwrap_or(u32::MAX),
        };
        match self.call_watching(DeviceClass::Camera, request).await? {
            Ok(Response::Face { jpeg }) if !jpeg.is_empty() => {
                tx.record.face_jpeg = Some(jpeg);
                Ok(())
            }
            Err(failure) if is_device_fault(failure.status) => {
                Err(Referral::new(ReasonCode::DeviceFault, "capture-face"))
            }
            _ => Err(Referral::new(ReasonCode::FaceCaptureFailed, "capture-face")),
        }
    }

    /// Step 5 (entry): this landing's record on the card's back, then eject.
    async fn print_landing_record(&mut self, tx: &mut Tx) -> Flow<()> {
        self.enter_step(tx, Step::Printing);
        let (nationality, card_number) = match (&tx.passport, &tx.card) {
            (Some(p), Some(c)) => (p.nationality.clone(), c.card_number.clone()),
            _ => {
                return Err(Referral::new(
                    ReasonCode::InternalError,
                    "print-without-card",
                ));
            }
        };
        let days = self.config.stay.days_for(&nationality);
        let line = landing_line(
            self.today(),
            &self.config.port,
            &self.config.stay.status_for(&nationality),
            &self.config.gate_id,
        );
        match self
            .call_watching(
                DeviceClass::CardPrinter,
                Request::PrintLine { line: line.clone() },
            )
            .await?
        {
            Ok(_) => {}
            // The card pulled out mid-print is the traveler's doing; a jam is the
            // printer's (maintenance must hear of it, as at the card step).
            Err(failure) if failure.status == Status::MediaAbsent => {
                return Err(Referral::new(ReasonCode::CardRemovedEarly, "print-line"));
            }
            Err(_) => return Err(Referral::new(ReasonCode::DeviceFault, "print-line")),
        }
        tx.record.printed_line = Some(line);
        tx.record.period_of_stay_days = Some(days);
        let records = self
            .ports
            .registry
            .record_landing(&card_number)
            .map_err(|_| Referral::new(ReasonCode::InternalError, "registry-record-landing"))?;
        if records >= CARD_RECORD_CAPACITY {
            // §10(2): the gate tells the traveler when the card must be rewritten.
            tx.record.notices.push(Notice::RewriteCard);
        }
        match self
            .call(DeviceClass::CardPrinter, Request::EjectCard)
            .await
        {
            Ok(_) => Ok(()),
            Err(_) => Err(Referral::new(ReasonCode::DeviceFault, "eject-card")),
        }
    }

    /// The traveler takes the card (from the printer's slot, or off the reader).
    async fn take_card_back(&mut self, tx: &mut Tx, device: DeviceClass) -> Flow<()> {
        self.enter_step(tx, Step::TakeCard);
        if !self.lane.media_present.contains(&device) {
            return Ok(());
        }
        let deadline = Instant::now() + FlowConfig::ms(self.config.take_card_timeout_ms);
        self.wait(deadline, ReasonCode::Timeout, |input| {
            matches!(input, GateInput::Device { class, event: Event::MediaRemoved } if *class == device)
        })
        .await
    }

    /// The door opens for one person; it closes behind them.
    async fn open_for_passage(&mut self, tx: &mut Tx) -> Flow<()> {
        self.enter_step(tx, Step::Passage);
        let lane = DeviceClass::LaneController;
        self.use_device(tx, lane);
        match self
            .call(lane, Request::GetPersonCount { zone: Zone::Lane })
            .await
        {
            Ok(Response::PersonCount { count }) if count > 1 => {
                return Err(Referral::new(ReasonCode::MultiplePersons, "person-count"));
            }
            Ok(_) => {}
            Err(_) => return Err(Referral::new(ReasonCode::DeviceFault, "person-count")),
        }
        let _ = self
            .call(
                lane,
                Request::SetDoor {
                    door: Door::Entry,
                    command: DoorCommand::Close,
                },
            )
            .await;
        // Never both doors open: a jammed entry would make the lane a corridor.
        if !self.door_in_position(Door::Entry, DoorState::Closed).await {
            self.door_fault(Door::Entry, Some(tx.record.record_id))
                .await;
            return Err(Referral::new(ReasonCode::DeviceFault, "entry-door-stuck"));
        }
        // Durable before the door opens: a power cut after this loses nothing.
        self.commit_before_passage(tx).await?;
        if self
            .call(
                lane,
                Request::SetDoor {
                    door: Door::Exit,
                    command: DoorCommand::Open,
                },
            )
            .await
            .is_err()
        {
            return Err(Referral::new(ReasonCode::DeviceFault, "open-exit-door"));
        }
        if !self.door_in_position(Door::Exit, DoorState::Open).await && !self.lane_is_empty().await
        {
            self.door_fault(Door::Exit, Some(tx.record.record_id)).await;
            return Err(Referral::new(ReasonCode::DeviceFault, "exit-door-stuck"));
        }
        let deadline = Instant::now() + FlowConfig::ms(self.config.passage_timeout_ms);
        // Passed once the lane is empty again; if they linger the door closes anyway.
        let passed = self
            .wait(deadline, ReasonCode::Timeout, |input| {
                matches!(
                    input,
                    GateInput::Device {
                        class: DeviceClass::LaneController,
                        event: Event::PersonCount {
                            zone: Zone::Lane,
                            count: 0
                        } | Event::PersonCount {
                            zone: Zone::Exit,
                            count: 1..
                        }
                    }
                )
            })
            .await;
        let _ = self
            .call(
                lane,
                Request::SetDoor {
                    door: Door::Exit,
                    command: DoorCommand::Close,
                },
            )
            .await;
        // The traveler is through (the record stands); a door left open behind them is
        // the lane's alarm, not their referral.
        if !self.door_in_position(Door::Exit, DoorState::Closed).await {
            self.door_fault(Door::Exit, Some(tx.record.record_id)).await;
        }
        match passed {
            Ok(())
            | Err(Referral {
                reason: ReasonCode::Timeout,
                ..
            }) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Fail closed: the exit stays shut, the entry opens so the traveler can go back to
    /// the booth; the card goes back to them unless it must be kept.
    async fn after_referral(&mut self, tx: &Tx, reason: ReasonCode) {
        let lane = DeviceClass::LaneController;
        if reason == ReasonCode::FireAlarm || self.mode == Mode::FireAlarm {
            self.release_all_doors().await;
            return;
        }
        let _ = self
            .call(
                lane,
                Request::SetDoor {
                    door: Door::Exit,
                    command: DoorCommand::Close,
                },
            )
            .await;
        let _ = self
            .call(lane, Request::SetLight { light: Light::Red })
            .await;
        let card_inside =
            tx.record.steps.iter().any(|s| s.step == Step::Card) && self.config.lane == Lane::Entry;
        if card_inside
            && !matches!(
                reason,
                ReasonCode::CardRemovedEarly | ReasonCode::CardMissing
            )
        {
            let command = if reason == ReasonCode::CardForged {
                Request::RetainCard
            } else {
                Request::EjectCard
            };
            let _ = self.call(DeviceClass::CardPrinter, command).await;
        }
        if self.accepting() {
            // The entry opens (back to the booth) only on an exit reported shut.
            if !self.door_in_position(Door::Exit, DoorState::Closed).await {
                self.door_fault(Door::Exit, Some(tx.record.record_id)).await;
                return;
            }
            let _ = self
                .call(
                    lane,
                    Request::SetDoor {
                        door: Door::Entry,
                        command: DoorCommand::Open,
                    },
                )
                .await;
        }
    }

    // ------------------------------------------------------------------ inputs

    async fn call(&self, class: DeviceClass, request: Request) -> Result<Response, DeviceFailure> {
        let name = request.name();
        let result = self.ports.devices.call(class, request).await;
        if let Err(failure) = &result {
            tracing::warn!(device = %class, op = name, status = %failure.status, detail = %failure.detail, "device call failed");
        }
        result
    }

    /// A device call during which the lane keeps being watched: a fire alarm, a second
    /// person or an officer taking the gate out of service abort it (and the call).
    async fn call_watching(
        &mut self,
        class: DeviceClass,
        request: Request,
    ) -> Flow<Result<Response, DeviceFailure>> {
        let call = self.ports.devices.call(class, request);
        let watched = watch_lane(
            &mut self.inputs,
            &mut self.lane,
            &mut self.side,
            self.mode,
            call,
        )
        .await;
        self.after_watch(watched, class).await
    }

    /// Runs the chip inspection while the lane keeps being watched.
    async fn inspect_chip(&mut self, lines: &[String]) -> Flow<ChipCheck> {
        let inspection = self.ports.inspector.inspect(lines);
        let watched = watch_lane(
            &mut self.inputs,
            &mut self.lane,
            &mut self.side,
            self.mode,
            inspection,
        )
        .await;
        self.after_watch(watched, DeviceClass::DocumentReader).await
    }

    /// On an abort, the abandoned operation's device is told to stop, and the abort's
    /// own consequences (doors, light, mode) follow.
    async fn after_watch<T>(&mut self, watched: Watched<T>, device: DeviceClass) -> Flow<T> {
        match watched {
            Watched::Done(value) => Ok(value),
            Watched::Closed => Err(Referral::new(ReasonCode::OutOfService, "shutdown")),
            Watched::Aborted(input, referral) => {
                self.ports.devices.cancel(device);
                self.apply_abort_side_effects(&input).await;
                Err(referral)
            }
        }
    }

    /// Waits for an input `accept`s, handling abort conditions; `timeout` is the reason
    /// when the deadline passes.
    async fn wait(
        &mut self,
        deadline: Instant,
        timeout: ReasonCode,
        accept: impl Fn(&GateInput) -> bool,
    ) -> Flow<()> {
        self.wait_map(deadline, timeout, |input| accept(input).then_some(()))
            .await
    }

    async fn wait_map<T>(
        &mut self,
        deadline: Instant,
        timeout: ReasonCode,
        accept: impl Fn(&GateInput) -> Option<T>,
    ) -> Flow<T> {
        loop {
            let input = match tokio::time::timeout_at(deadline, self.inputs.recv()).await {
                Err(_) => return Err(Referral::new(timeout, "timeout")),
                Ok(None) => return Err(Referral::new(ReasonCode::OutOfService, "shutdown")),
                Ok(Some(input)) => input,
            };
            self.lane.observe(&input);
            self.side.observe(&input);
            self.publish_side_state();
            if let Some(referral) = abort_reason(&input, self.mode) {
                self.apply_abort_side_effects(&input).await;
                return Err(referral);
            }
            if let Some(value) = accept(&input) {
                return Ok(value);
            }
        }
    }

    async fn apply_abort_side_effects(&mut self, input: &GateInput) {
        match input {
            GateInput::Device {
                event: Event::FireAlarm { active: true },
                ..
            } => self.fire_alarm(true).await,
            GateInput::SetMode(mode) => self.set_mode(*mode).await,
            GateInput::Device {
                event: Event::PersonCount { .. },
                ..
            } => {
                // Tailgating alarm: red light, exit stays closed.
                let _ = self
                    .call(
                        DeviceClass::LaneController,
                        Request::SetLight { light: Light::Red },
                    )
                    .await;
            }
            _ => {}
        }
    }
}

enum Watched<T> {
    Done(T),
    /// The input channel closed (shutdown).
    Closed,
    /// An input that ends the transaction arrived first.
    Aborted(GateInput, Referral),
}

/// Drives `operation` to completion while still reading the lane's inputs, so a fire
/// alarm or a second person is acted on at once rather than after a long operation.
async fn watch_lane<T>(
    inputs: &mut mpsc::Receiver<GateInput>,
    lane: &mut LaneState,
    side: &mut SideState,
    mode: Mode,
    operation: impl std::future::Future<Output = T>,
) -> Watched<T> {
    tokio::pin!(operation);
    loop {
        tokio::select! {
            value = &mut operation => return Watched::Done(value),
            input = inputs.recv() => {
                let Some(input) = input else { return Watched::Closed };
                lane.observe(&input);
                side.observe(&input);
                if let Some(referral) = abort_reason(&input, mode) {
                    // Returning drops the operation: it is abandoned.
                    return Watched::Aborted(input, referral);
                }
            }
        }
    }
}

/// Inputs that end any transaction at once.
fn abort_reason(input: &GateInput, mode: Mode) -> Option<Referral> {
    match input {
        GateInput::Device {
            class: DeviceClass::LaneController,
            event: Event::FireAlarm { active: true },
        } => Some(Referral::new(ReasonCode::FireAlarm, "fire-alarm")),
        GateInput::Device {
            class: DeviceClass::LaneController,
            event:
                Event::PersonCount {
                    zone: Zone::Lane,
                    count,
                },
        } if *count > 1 => Some(Referral::new(ReasonCode::MultiplePersons, "person-count")),
        GateInput::SetMode(Mode::OutOfService | Mode::Maintenance) if mode == Mode::InService => {
            Some(Referral::new(ReasonCode::OutOfService, "mode-change"))
        }
        GateInput::OfficerDoor { .. } => Some(Referral::new(
            ReasonCode::OfficerIntervention,
            "officer-door",
        )),
        _ => None,
    }
}

/// A status that says the device failed (as opposed to the traveler or the medium):
/// such referrals are `DEVICE_FAULT`, so maintenance hears about them.
fn is_device_fault(status: Status) -> bool {
    matches!(
        status,
        Status::HardwareError
            | Status::MediaJammed
            | Status::Unavailable
            | Status::InternalError
            | Status::Busy
            | Status::Unknown(_)
    )
}

/// `TTP1:<card number>:<registered passport number>:<nationality>`: the QR sticker next
/// to the "registered" stamp. Anything else is not a torii registration code.
pub fn parse_registration_qr(payload: &[u8]) -> Option<PresentedPassport> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.split(':');
    let (tag, card, passport, nationality) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let alnum = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    if tag != "TTP1" || parts.next().is_some() || !alnum(card, 20) || !alnum(passport, 9) {
        return None;
    }
    if nationality.len() != 3 || !nationality.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    Some(PresentedPassport {
        number: passport.to_owned(),
        nationality: nationality.to_owned(),
        expiry: None,
        holder_key: None,
    })
}
