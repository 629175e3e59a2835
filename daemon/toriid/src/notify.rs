//! systemd notifications (`Type=notify`). Each is a no-op when `NOTIFY_SOCKET` is not
//! set (run by hand, in tests); a failure to notify is logged, never fatal.
//!
//! The watchdog (`WatchdogSec=` in the unit, `WATCHDOG_USEC` in the environment): a task
//! on the daemon's tokio runtime sends `WATCHDOG=1` every half period while
//!  - the runtime runs it: its timer fires and a worker thread polls the task, which a
//!    runtime whose workers are all blocked or deadlocked does not; and
//!  - the gate flow engine's task is alive (its status channel still has its sender;
//!    the channel closes when the task ends or panics), when a flow was started.
//!
//! It does not prove that a driver call or an API request finishes: those have their
//! own time limits and show up as device health and errors, not as a hung daemon.
//! When a check fails the pings stop, and systemd kills (SIGABRT) and restarts toriid.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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

/// A configuration reload began (`systemctl reload`; with `Type=notify-reload` systemd
/// waits for the `READY=1` of [`reloaded`]).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The reload finished (applied or refused): ready again, with the outcome as status.
pub fn reloaded(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Shutdown began.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Starts the watchdog task when systemd asked for one (`WATCHDOG_USEC` set for this
/// process); `None` otherwise. `flow` is the running gate flow's status channel, if
/// any. Abort the task when shutdown begins.
pub fn watchdog<T: Send + Sync + 'static>(
    flow: Option<watch::Receiver<T>>,
) -> Option<JoinHandle<()>> {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    let period = Duration::from_micros(usec) / 2;
    tracing::info!(
        interval_ms = period.as_millis() as u64,
        "systemd watchdog enabled"
    );
    Some(tokio::spawn(watchdog_loop(period, flow, || {
        send(&[NotifyState::Watchdog])
    })))
}

/// Calls `ping` every `period` while the checks above hold; returns once the flow
/// engine is gone (the pings stop for good: only a restart brings the flow back).
async fn watchdog_loop<T, P: FnMut()>(
    period: Duration,
    flow: Option<watch::Receiver<T>>,
    mut ping: P,
) {
    let mut tick = tokio::time::interval(period);
    // After a stall, ping once and go on: never a burst that hides the stall.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(flow) = &flow
            && flow.has_changed().is_err()
        {
            tracing::error!("the gate flow engine stopped: no more watchdog pings");
            return;
        }
        ping();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counter() -> (Arc<AtomicUsize>, impl FnMut() + Send + 'static) {
        let count = Arc::new(AtomicUsize::new(0));
        let counted = count.clone();
        (count, move || {
            counted.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[tokio::test(start_paused = true)]
    async fn pings_every_period_without_a_flow() {
        let (count, ping) = counter();
        let task = tokio::spawn(watchdog_loop::<(), _>(Duration::from_secs(15), None, ping));
        tokio::time::sleep(Duration::from_secs(46)).await;
        // At 0, 15, 30 and 45 s.
        assert_eq!(count.load(Ordering::SeqCst), 4);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn stops_pinging_once_the_flow_engine_is_gone() {
        let (count, ping) = counter();
        let (engine, status) = watch::channel(());
        let task = tokio::spawn(watchdog_loop(Duration::from_secs(15), Some(status), ping));
        tokio::time::sleep(Duration::from_secs(16)).await;
        assert_eq!(count.load(Ordering::SeqCst), 2);
        // The engine task ends (or panics): its status sender is dropped.
        drop(engine);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(count.load(Ordering::SeqCst), 2);
        assert!(task.is_finished());
    }

    #[test]
    fn no_watchdog_without_watchdog_usec() {
        // The test runner is not a systemd service with WatchdogSec=.
        if std::env::var_os("WATCHDOG_USEC").is_none() {
            assert!(watchdog::<()>(None).is_none());
        }
    }
}
