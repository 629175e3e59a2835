//! The gate's live events, one stream for every adapter: the HTTP server-sent events,
//! the D-Bus signals and the Prometheus counters all read this bus, so they can never
//! disagree about what happened.
//!
//! Events carry no personal data (steps, outcomes, reason codes, device ids and
//! states): they reach the officer console and the D-Bus system bus. The traveler's
//! own screen fetches the ED card it shows through the authorized API.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::{broadcast, watch};
use torii_core::flow::{Alarm, GateStatus, Interlock, Mode};
use torii_core::reason::ReasonCode;
use torii_core::record::{Outcome, Step};
use torii_sdk::model::DeviceState;
use uuid::Uuid;

/// Events kept for slow subscribers before they lag (and are told so).
const CAPACITY: usize = 1024;

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum GateEvent {
    /// The traveler's step changed (`idle` between travelers).
    StepChanged {
        step: Step,
        transaction: Option<Uuid>,
    },
    ModeChanged {
        mode: Mode,
    },
    /// The interlocks that keep the lane closed changed.
    InterlocksChanged {
        interlocks: Vec<Interlock>,
        accepting: bool,
    },
    TransactionFinished {
        record_id: Uuid,
        admitted: bool,
        /// The referral's reason code.
        reason: Option<ReasonCode>,
        /// What the traveler's screen says (never the grounds of a referral).
        guidance: String,
        /// Where a referred traveler goes (`see-officer`, `use-booth`, `evacuate`).
        guidance_kind: Option<torii_core::reason::Guidance>,
        /// Notices for the traveler (`rewrite-card`, `stamp-requested`).
        notices: Vec<torii_core::record::Notice>,
    },
    AlarmRaised {
        alarm: Alarm,
    },
    AlarmCleared,
    DeviceStateChanged {
        device: String,
        state: DeviceState,
        /// Why it is unavailable (a driver's own words, no personal data by contract).
        fault: Option<String>,
    },
}

impl GateEvent {
    /// The SSE event name / D-Bus signal it maps to.
    pub fn name(&self) -> &'static str {
        match self {
            GateEvent::StepChanged { .. } => "step-changed",
            GateEvent::ModeChanged { .. } => "mode-changed",
            GateEvent::InterlocksChanged { .. } => "interlocks-changed",
            GateEvent::TransactionFinished { .. } => "transaction-finished",
            GateEvent::AlarmRaised { .. } => "alarm-raised",
            GateEvent::AlarmCleared => "alarm-cleared",
            GateEvent::DeviceStateChanged { .. } => "device-state-changed",
        }
    }
}

/// An event with its sequence number (SSE `id:`, so a reconnecting page knows whether
/// it missed something).
#[derive(Debug, Clone, Serialize)]
pub struct Numbered {
    pub id: u64,
    #[serde(flatten)]
    pub event: GateEvent,
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<Numbered>>,
    next: Arc<AtomicU64>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        EventBus {
            sender,
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    pub fn publish(&self, event: GateEvent) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        // No subscriber is not an error.
        let _ = self.sender.send(Arc::new(Numbered { id, event }));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Numbered>> {
        self.sender.subscribe()
    }
}

/// The events that lead from one gate status to the next.
pub fn diff(old: &GateStatus, new: &GateStatus) -> Vec<GateEvent> {
    let mut events = Vec::new();
    if old.mode != new.mode {
        events.push(GateEvent::ModeChanged { mode: new.mode });
    }
    if old.interlocks != new.interlocks {
        events.push(GateEvent::InterlocksChanged {
            interlocks: new.interlocks.clone(),
            accepting: new.accepting(),
        });
    }
    // A finished transaction is announced before the step goes back to idle.
    if new.transactions != old.transactions
        && let Some(last) = &new.last
    {
        let reason = match last.outcome {
            Outcome::Admitted => None,
            Outcome::Referred(reason) => Some(reason),
        };
        events.push(GateEvent::TransactionFinished {
            record_id: last.record_id,
            admitted: reason.is_none(),
            reason,
            guidance: last.guidance.clone(),
            guidance_kind: last.guidance_kind,
            notices: last.notices.clone(),
        });
    }
    if old.step != new.step || old.transaction != new.transaction {
        events.push(GateEvent::StepChanged {
            step: new.step,
            transaction: new.transaction,
        });
    }
    if old.alarm != new.alarm {
        events.push(match &new.alarm {
            Some(alarm) => GateEvent::AlarmRaised {
                alarm: alarm.clone(),
            },
            None => GateEvent::AlarmCleared,
        });
    }
    events
}

/// Publishes the events of every change of the gate's status until the engine stops.
pub async fn watch_gate(mut status: watch::Receiver<GateStatus>, bus: EventBus) {
    let mut previous = status.borrow_and_update().clone();
    while status.changed().await.is_ok() {
        let current = status.borrow_and_update().clone();
        for event in diff(&previous, &current) {
            bus.publish(event);
        }
        previous = current;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use torii_core::flow::{AlarmKind, LastTransaction};
    use torii_core::rules::Lane;

    fn idle() -> GateStatus {
        GateStatus {
            mode: Mode::InService,
            lane: Lane::Entry,
            step: Step::Idle,
            transaction: None,
            ed_card: None,
            ed_card_errors: Vec::new(),
            last: None,
            transactions: 0,
            interlocks: Vec::new(),
            alarm: None,
            nationality: None,
        }
    }

    #[test]
    fn a_referral_is_announced_with_its_reason_then_the_step_returns_to_idle() {
        let id = Uuid::new_v4();
        let mut during = idle();
        during.step = Step::Passage;
        during.transaction = Some(id);
        let mut after = idle();
        after.transactions = 1;
        after.last = Some(LastTransaction {
            record_id: id,
            outcome: Outcome::Referred(ReasonCode::MultiplePersons),
            guidance: "Please see the officer.".into(),
            guidance_kind: Some(ReasonCode::MultiplePersons.guidance()),
            notices: Vec::new(),
        });
        after.alarm = Some(Alarm {
            kind: AlarmKind::Tailgating,
            record_id: Some(id),
        });
        let names: Vec<_> = diff(&during, &after).iter().map(GateEvent::name).collect();
        assert_eq!(
            names,
            ["transaction-finished", "step-changed", "alarm-raised"]
        );
        let GateEvent::TransactionFinished {
            reason, admitted, ..
        } = &diff(&during, &after)[0]
        else {
            panic!()
        };
        assert_eq!(
            (*reason, *admitted),
            (Some(ReasonCode::MultiplePersons), false)
        );
    }

    #[test]
    fn nothing_changed_means_no_event() {
        assert!(diff(&idle(), &idle()).is_empty());
    }

    #[tokio::test]
    async fn subscribers_see_numbered_events_in_order() {
        let bus = EventBus::new();
        let mut rx = bus.subscribe();
        bus.publish(GateEvent::AlarmCleared);
        bus.publish(GateEvent::ModeChanged {
            mode: Mode::Maintenance,
        });
        let a = rx.recv().await.unwrap();
        let b = rx.recv().await.unwrap();
        assert!(a.id < b.id);
        let json = serde_json::to_value(&*b).unwrap();
        assert_eq!(json["type"], "mode-changed");
        assert_eq!(json["mode"], "maintenance");
    }
}
