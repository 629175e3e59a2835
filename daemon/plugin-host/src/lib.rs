mod device;
pub mod hotplug;
pub mod inproc;
pub mod isolated;
pub mod loader;
pub mod matcher;
pub mod probe;
pub mod protocol;

pub use device::{
    CallError, Device, DeviceHealth, DeviceSpec, DriverInfo, EventSink, HostEvent, Isolation,
    OpenError,
};
