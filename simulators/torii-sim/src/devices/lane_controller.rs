//! Lane controller: entry and exit doors, person counts per zone, fire alarm, status
//! light.
//!
//! Both doors start `closed`, all zones empty, no alarm, light off.
//! - `SetDoor { door, command }` → `Done`: open → `open`, close → `closed`, lock →
//!   `locked`, free (unlocked, swings freely) → `open`; always emits `DoorState`.
//! - `GetDoor` → `DoorState`; `GetPersonCount { zone }` → `PersonCount`;
//!   `GetFireAlarm` → `FireAlarm`; `SetLight` → `Done`.
//! - Events: `DoorState`, `PersonCount` (whenever a zone's count changes), `FireAlarm`.
//!
//! People (control actions): `enter-lane` brings a person through the entry door into
//! the lane (when the entry door is closed they wait in the entry zone); `walk-through`
//! moves the person in the lane through the open exit door (exit zone, then gone) and
//! the exit door closes behind them; `second-person` puts one more person in the lane
//! (tailgating). The fire alarm only reports: doors stay as commanded.
//!
//! Technician fault (`door-stuck DOOR STATE`): the door jams `open` or `closed` — at
//! once if it is there, else as soon as a command brings it there (a door "stuck open"
//! opens, then fails to close). A command away from the jammed position is still
//! answered `Done` (the controller took it; the motor could not move the leaf) and the
//! door keeps its position, which `GetDoor` and the `DoorState` event report — what a
//! real controller's position sensors would say. `none` (or a reset) frees it.

use super::{Shared, World};
use crate::control::ActionError;
use serde::Serialize;
use serde_json::{Value, json};
use torii_sdk::model::{
    DeviceClass, Door, DoorCommand, DoorState, Event, Light, Request, Response, Status, Zone,
};

const CLASS: DeviceClass = DeviceClass::LaneController;

#[derive(Debug, Serialize)]
pub struct State {
    pub entry_door: DoorState,
    pub exit_door: DoorState,
    pub entry_zone: u32,
    pub lane_zone: u32,
    pub exit_zone: u32,
    pub fire_alarm: bool,
    pub light: Light,
    /// People who left through the exit door.
    pub passed: u32,
    /// A door jammed in this position (`door-stuck`): commands do not move it.
    pub entry_stuck: Option<DoorState>,
    pub exit_stuck: Option<DoorState>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            entry_door: DoorState::Closed,
            exit_door: DoorState::Closed,
            entry_zone: 0,
            lane_zone: 0,
            exit_zone: 0,
            fire_alarm: false,
            light: Light::Off,
            passed: 0,
            entry_stuck: None,
            exit_stuck: None,
        }
    }
}

impl State {
    fn door_mut(&mut self, door: Door) -> &mut DoorState {
        match door {
            Door::Entry => &mut self.entry_door,
            Door::Exit => &mut self.exit_door,
        }
    }

    fn stuck(&self, door: Door) -> Option<DoorState> {
        match door {
            Door::Entry => self.entry_stuck,
            Door::Exit => self.exit_stuck,
        }
    }

    fn count(&self, zone: Zone) -> u32 {
        match zone {
            Zone::Entry => self.entry_zone,
            Zone::Lane => self.lane_zone,
            Zone::Exit => self.exit_zone,
        }
    }

    fn count_mut(&mut self, zone: Zone) -> &mut u32 {
        match zone {
            Zone::Entry => &mut self.entry_zone,
            Zone::Lane => &mut self.lane_zone,
            Zone::Exit => &mut self.exit_zone,
        }
    }
}

pub(crate) fn presence(world: &World) -> Vec<Event> {
    let s = &world.lane_controller;
    let mut events = vec![
        Event::DoorState {
            door: Door::Entry,
            state: s.entry_door,
        },
        Event::DoorState {
            door: Door::Exit,
            state: s.exit_door,
        },
    ];
    for zone in [Zone::Entry, Zone::Lane, Zone::Exit] {
        events.push(Event::PersonCount {
            zone,
            count: s.count(zone),
        });
    }
    if s.fire_alarm {
        events.push(Event::FireAlarm { active: true });
    }
    events
}

pub(crate) async fn call(shared: &Shared, request: Request) -> Result<Response, Status> {
    let response = {
        let mut world = shared.world();
        let s = &mut world.lane_controller;
        match request {
            Request::SetDoor { door, command } => {
                let commanded = match command {
                    DoorCommand::Open | DoorCommand::Free => DoorState::Open,
                    DoorCommand::Close => DoorState::Closed,
                    DoorCommand::Lock => DoorState::Locked,
                };
                let current = *s.door_mut(door);
                let state = match s.stuck(door) {
                    Some(jam) if closed(jam) == closed(current) => current,
                    _ => commanded,
                };
                *s.door_mut(door) = state;
                shared.emit(CLASS, Event::DoorState { door, state });
                Response::Done
            }
            Request::GetDoor { door } => Response::DoorState {
                state: *s.door_mut(door),
            },
            Request::GetPersonCount { zone } => Response::PersonCount {
                count: s.count(zone),
            },
            Request::GetFireAlarm => Response::FireAlarm {
                active: s.fire_alarm,
            },
            Request::SetLight { light } => {
                s.light = light;
                Response::Done
            }
            _ => return Err(Status::NotSupported),
        }
    };
    shared.notify();
    Ok(response)
}

fn set_count(shared: &Shared, s: &mut State, zone: Zone, count: u32) {
    if s.count(zone) != count {
        *s.count_mut(zone) = count;
        shared.emit(CLASS, Event::PersonCount { zone, count });
    }
}

fn lane_json(s: &State) -> Value {
    json!({
        "entry_zone": s.entry_zone, "lane_zone": s.lane_zone, "exit_zone": s.exit_zone,
        "entry_door": s.entry_door, "exit_door": s.exit_door, "passed": s.passed,
    })
}

/// Closed and locked are one position for a jam (the leaf is shut).
fn closed(state: DoorState) -> bool {
    matches!(state, DoorState::Closed | DoorState::Locked)
}

/// A technician's fault: `door` jams in `state` (`Some(Open)` or `Some(Closed)`) once
/// it is there and stays there whatever it is commanded, or is freed (`None`, keeping
/// its position until the next command).
pub(crate) fn door_stuck(
    shared: &Shared,
    door: Door,
    state: Option<DoorState>,
) -> Result<Value, ActionError> {
    let result = {
        let mut world = shared.world();
        let s = &mut world.lane_controller;
        match door {
            Door::Entry => s.entry_stuck = state,
            Door::Exit => s.exit_stuck = state,
        }
        lane_json(s)
    };
    shared.notify();
    tracing::warn!(?door, ?state, "door stuck");
    Ok(result)
}

/// A person comes to the gate: into the lane if the entry door is open, else they wait
/// in the entry zone. Someone already waiting goes first.
pub(crate) fn enter_lane(shared: &Shared) -> Result<Value, ActionError> {
    let result = {
        let mut world = shared.world();
        let s = &mut world.lane_controller;
        if s.entry_door == DoorState::Open {
            if s.entry_zone > 0 {
                let n = s.entry_zone - 1;
                set_count(shared, s, Zone::Entry, n);
            }
            let n = s.lane_zone + 1;
            set_count(shared, s, Zone::Lane, n);
        } else if s.entry_zone == 0 {
            set_count(shared, s, Zone::Entry, 1);
        } else {
            return Err(ActionError::Conflict("the entry door is not open".into()));
        }
        lane_json(s)
    };
    shared.notify();
    Ok(result)
}

/// The person in the lane walks out through the exit door, which closes behind them.
pub(crate) fn walk_through(shared: &Shared) -> Result<Value, ActionError> {
    let result = {
        let mut world = shared.world();
        let s = &mut world.lane_controller;
        if s.lane_zone == 0 {
            return Err(ActionError::Conflict("nobody is in the lane".into()));
        }
        if s.exit_door != DoorState::Open {
            return Err(ActionError::Conflict("the exit door is not open".into()));
        }
        let n = s.lane_zone - 1;
        set_count(shared, s, Zone::Lane, n);
        let n = s.exit_zone + 1;
        set_count(shared, s, Zone::Exit, n);
        if s.exit_stuck != Some(DoorState::Open) {
            s.exit_door = DoorState::Closed;
            shared.emit(
                CLASS,
                Event::DoorState {
                    door: Door::Exit,
                    state: DoorState::Closed,
                },
            );
        }
        let n = s.exit_zone - 1;
        set_count(shared, s, Zone::Exit, n);
        s.passed += 1;
        lane_json(s)
    };
    shared.notify();
    tracing::info!("person walked through the exit door");
    Ok(result)
}

/// Someone else slips into the lane (tailgating).
pub(crate) fn second_person(shared: &Shared) -> Result<Value, ActionError> {
    let result = {
        let mut world = shared.world();
        let s = &mut world.lane_controller;
        let n = s.lane_zone + 1;
        set_count(shared, s, Zone::Lane, n);
        lane_json(s)
    };
    shared.notify();
    Ok(result)
}

/// Everybody leaves every zone (between scripted travelers).
pub(crate) fn empty_zones(shared: &Shared) {
    {
        let mut world = shared.world();
        let s = &mut world.lane_controller;
        for zone in [Zone::Entry, Zone::Lane, Zone::Exit] {
            set_count(shared, s, zone, 0);
        }
    }
    shared.notify();
}

pub(crate) fn fire_alarm(shared: &Shared, active: bool) -> Result<Value, ActionError> {
    {
        let mut world = shared.world();
        if world.lane_controller.fire_alarm != active {
            world.lane_controller.fire_alarm = active;
            shared.emit(CLASS, Event::FireAlarm { active });
        }
    }
    shared.notify();
    tracing::warn!(active, "fire alarm");
    Ok(json!({ "fire_alarm": active }))
}
