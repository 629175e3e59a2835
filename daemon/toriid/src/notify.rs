//! systemd notifications (`Type=notify`). Each is a no-op when `NOTIFY_SOCKET` is not
//! set (run by hand, in tests); a failure to notify is logged, never fatal.

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    // `false`: keep NOTIFY_SOCKET so later notifications (STATUS=, STOPPING=1) work.
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// Start-up finished: systemd considers the unit started.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// The one-line status shown by `systemctl status toriid`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// Shutdown began.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}
