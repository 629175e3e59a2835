//! Sim driver: lane controller (doors, presence zones, fire alarm, light) backed by torii-sim.

use torii_sdk::driver::LaneController;
use torii_sdk::model::{
    DeviceClass, Door, DoorCommand, DoorState, Light, Request, Response, Status, Zone,
};

torii_sim_link::sim_driver!(
    SimLaneController,
    DeviceClass::LaneController,
    c"torii-sim-lane-controller",
    0
);

impl LaneController for SimLaneController {
    fn set_door(&self, door: Door, command: DoorCommand) -> Result<(), Status> {
        self.0.call_done(Request::SetDoor { door, command })
    }

    fn door_state(&self, door: Door) -> Result<DoorState, Status> {
        self.0.call_for(Request::GetDoor { door }, |r| match r {
            Response::DoorState { state } => Some(state),
            _ => None,
        })
    }

    fn person_count(&self, zone: Zone) -> Result<u32, Status> {
        self.0
            .call_for(Request::GetPersonCount { zone }, |r| match r {
                Response::PersonCount { count } => Some(count),
                _ => None,
            })
    }

    fn fire_alarm(&self) -> Result<bool, Status> {
        self.0.call_for(Request::GetFireAlarm, |r| match r {
            Response::FireAlarm { active } => Some(active),
            _ => None,
        })
    }

    fn set_light(&self, light: Light) -> Result<(), Status> {
        self.0.call_done(Request::SetLight { light })
    }
}

torii_sdk::export_driver!(LaneController => SimLaneController);
