use crate::device::*;
use torii_sdk::model::*;
pub struct IsolatedDevice;
impl IsolatedDevice {
    pub async fn open(_spec: &DeviceSpec, _events: EventSink) -> Result<Self, OpenError> { todo!() }
    pub fn info(&self) -> &DriverInfo { todo!() }
    pub async fn call(&self, _r: Request) -> Result<Response, CallError> { todo!() }
    pub fn cancel(&self) {}
    pub fn health(&self) -> DeviceHealth { todo!() }
    pub async fn shutdown(&self) {}
}
