//! `/org/torii/Gate1/devices/<id>`, interface `org.torii.Device1`.

use std::collections::HashMap;
use std::sync::Arc;

use zbus::zvariant::Value;

use super::gate::property_reader;
use crate::command::{Command, CommandOutput, Core};

pub(super) struct DeviceObject {
    core: Arc<Core>,
    id: String,
}

impl DeviceObject {
    pub(super) fn new(core: Arc<Core>, id: String) -> Self {
        DeviceObject { core, id }
    }

    async fn props(&self) -> DeviceProps {
        DeviceProps::read(&self.core, &self.id).await
    }
}

/// What a device object shows: the device view without its event history.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct DeviceProps {
    pub class: String,
    pub state: String,
    pub fault: String,
    pub restarts: u32,
    pub driver: String,
}

impl DeviceProps {
    pub(super) async fn read(core: &Core, id: &str) -> DeviceProps {
        match core
            .execute(&property_reader(), Command::GetDevice { id: id.to_owned() })
            .await
        {
            Ok(CommandOutput::Device(view)) => DeviceProps {
                class: view.class,
                state: view.state.name().to_owned(),
                fault: view.fault.unwrap_or_default(),
                restarts: view.restarts,
                driver: view
                    .driver
                    .map(|driver| format!("{} {}", driver.name, driver.version))
                    .unwrap_or_default(),
            },
            // Devices are configured, not added at run time; a missing one is unavailable.
            _ => DeviceProps {
                class: String::new(),
                state: torii_sdk::model::DeviceState::Unavailable.name().to_owned(),
                fault: "unknown device".to_owned(),
                restarts: 0,
                driver: String::new(),
            },
        }
    }

    /// The properties that differ from `old`, by their D-Bus names.
    pub(super) fn changed_since(&self, old: &DeviceProps) -> HashMap<&'static str, Value<'static>> {
        let mut changed = HashMap::new();
        if self.state != old.state {
            changed.insert("State", Value::from(self.state.clone()));
        }
        if self.fault != old.fault {
            changed.insert("Fault", Value::from(self.fault.clone()));
        }
        if self.restarts != old.restarts {
            changed.insert("Restarts", Value::from(self.restarts));
        }
        if self.driver != old.driver {
            changed.insert("Driver", Value::from(self.driver.clone()));
        }
        changed
    }
}

/// One device of the lane.
#[zbus::interface(name = "org.torii.Device1")]
impl DeviceObject {
    /// The device's id in the configuration (document-reader, camera, ...).
    #[zbus(property(emits_changed_signal = "const"))]
    async fn id(&self) -> String {
        self.id.clone()
    }

    /// The device class: document-reader, code-reader, card-printer, card-reader,
    /// fingerprint-sensor, camera or lane-controller.
    #[zbus(property(emits_changed_signal = "const"))]
    async fn class(&self) -> String {
        self.props().await.class
    }

    /// The CUSS state: READY, BUSY or UNAVAILABLE.
    #[zbus(property)]
    async fn state(&self) -> String {
        self.props().await.state
    }

    /// Why the device is unavailable (the driver's or the host's words); "" when it
    /// is not.
    #[zbus(property)]
    async fn fault(&self) -> String {
        self.props().await.fault
    }

    /// How often the device's isolated driver host was restarted.
    #[zbus(property)]
    async fn restarts(&self) -> u32 {
        self.props().await.restarts
    }

    /// The driver's name and version as it reports them; "" until it was opened.
    #[zbus(property)]
    async fn driver(&self) -> String {
        self.props().await.driver
    }
}
