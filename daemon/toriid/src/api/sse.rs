//! `GET /api/v1/events`: the gate's [`EventBus`](crate::events::EventBus) as
//! server-sent events. Each event is
//!
//! ```text
//! id: 42
//! event: transaction-finished
//! data: {"id":42,"type":"transaction-finished","record_id":"…","admitted":false,…}
//! ```
//!
//! A subscriber that fell behind (more than the bus keeps) gets `event: lagged` with
//! `data: {"missed": N}` and should re-read `GET /api/v1/gate`; ids have a gap then.
//! A comment line (`: keep-alive`) every [`KEEP_ALIVE`] keeps proxies and idle timers
//! from closing the stream. The stream ends when the server stops.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OwnedSemaphorePermit, watch};

use crate::events::Numbered;

pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Event streams open at once, at most (the console, the kiosk, a few followers);
/// more are refused with 503 rather than let a client exhaust the daemon.
pub const MAX_STREAMS: usize = 32;

/// Set by [`super::http::serve`] when the server begins to stop: open streams end then,
/// so they do not hold the graceful shutdown up.
#[derive(Clone, Debug)]
pub struct Stopping(pub watch::Receiver<bool>);

/// The SSE form of one bus event.
pub fn event(numbered: &Numbered) -> Event {
    Event::default()
        .id(numbered.id.to_string())
        .event(numbered.event.name())
        .data(serde_json::to_string(numbered).unwrap_or_else(|_| "{}".to_owned()))
}

/// What a lagging subscriber is told.
pub fn lagged(missed: u64) -> Event {
    Event::default()
        .event("lagged")
        .data(serde_json::json!({ "missed": missed }).to_string())
}

struct Follow {
    events: Receiver<Arc<Numbered>>,
    stopping: Option<watch::Receiver<bool>>,
    /// Held while the stream is open.
    _permit: Option<OwnedSemaphorePermit>,
}

async fn stopped(stopping: &mut Option<watch::Receiver<bool>>) {
    match stopping {
        // A dropped sender means the server is gone: stop too.
        Some(rx) => {
            let _ = rx.wait_for(|stop| *stop).await;
        }
        None => std::future::pending().await,
    }
}

/// The event stream of one subscriber; `permit` is released when it ends.
pub fn stream(
    events: Receiver<Arc<Numbered>>,
    stopping: Option<Stopping>,
    permit: Option<OwnedSemaphorePermit>,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    let follow = Follow {
        events,
        stopping: stopping.map(|s| s.0),
        _permit: permit,
    };
    futures_util::stream::unfold(follow, |mut follow| async move {
        let next = tokio::select! {
            biased;
            () = stopped(&mut follow.stopping) => return None,
            next = follow.events.recv() => next,
        };
        let event = match next {
            Ok(numbered) => event(&numbered),
            Err(RecvError::Lagged(missed)) => lagged(missed),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), follow))
    })
}

/// The response: the stream with keep-alive comments.
pub fn response(
    events: Receiver<Arc<Numbered>>,
    stopping: Option<Stopping>,
    permit: Option<OwnedSemaphorePermit>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
    Sse::new(stream(events, stopping, permit))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
}
