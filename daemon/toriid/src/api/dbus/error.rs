//! [`CommandError`]s as D-Bus errors: `org.torii.Gate1.Error.<Kind>` with the core's
//! message. The mapping lives here, at the edge, and nowhere else.

use crate::command::CommandError;

/// The errors of `org.torii.Gate1` methods.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.torii.Gate1.Error")]
pub enum Error {
    /// A failure of the bus itself.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller's role does not allow the method (or the caller cannot be identified).
    Forbidden(String),
    /// An argument the gate does not understand (`SetMode("sideways")`), or a request
    /// that makes no sense (fire-alarm mode is set by the fire alarm only).
    BadRequest(String),
    /// The gate cannot take this now (no alarm to acknowledge, no traveler in the lane).
    Conflict(String),
    /// The gate flow is not running (start-up, no card issuer key, no registry), or it
    /// did not take the input.
    NotRunning(String),
    /// A device failed (unavailable, timed out, answered with an error status).
    Device(String),
}

impl From<CommandError> for Error {
    fn from(error: CommandError) -> Self {
        let message = error.to_string();
        match error {
            CommandError::Forbidden { .. } => Error::Forbidden(message),
            CommandError::BadRequest(_)
            | CommandError::UnknownDevice(_)
            | CommandError::UnknownTransaction(_)
            | CommandError::WrongClass { .. } => Error::BadRequest(message),
            CommandError::Conflict(_) => Error::Conflict(message),
            CommandError::GateNotRunning(_) => Error::NotRunning(message),
            CommandError::Unavailable { .. }
            | CommandError::Timeout { .. }
            | CommandError::DeviceStatus { .. } => Error::Device(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::DBusError as _;

    #[test]
    fn command_errors_keep_their_message_under_a_gate_error_name() {
        let cases = [
            (
                CommandError::Forbidden {
                    command: "set-mode",
                    required: "operator",
                    has: "viewer",
                },
                "org.torii.Gate1.Error.Forbidden",
            ),
            (
                CommandError::BadRequest("no".into()),
                "org.torii.Gate1.Error.BadRequest",
            ),
            (
                CommandError::Conflict("no alarm to acknowledge".into()),
                "org.torii.Gate1.Error.Conflict",
            ),
            (
                CommandError::GateNotRunning("starting".into()),
                "org.torii.Gate1.Error.NotRunning",
            ),
            (
                CommandError::Timeout {
                    id: "camera".into(),
                    after_ms: 5,
                },
                "org.torii.Gate1.Error.Device",
            ),
        ];
        for (command_error, name) in cases {
            let message = command_error.to_string();
            let error = Error::from(command_error);
            assert_eq!(error.name().as_str(), name);
            assert_eq!(error.description(), Some(message.as_str()));
        }
    }
}
