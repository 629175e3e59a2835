//! A raw sim-driver client speaking `torii_sim_link::protocol` over the device socket.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use torii_sdk::model::{DeviceClass, DeviceState, Event, Request, Response, Status};
use torii_sim::scenario::Scenario;
use torii_sim::{Simulator, SimulatorConfig};
use torii_sim_link::protocol::{self, DriverToSim, FrameError, PROTOCOL_VERSION, SimToDriver};

/// A safety net so a broken test fails instead of hanging (never an assertion).
pub const GUARD: Duration = Duration::from_secs(30);

pub async fn start() -> (Simulator, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = SimulatorConfig::new(
        dir.path().join("sockets"),
        Scenario::default_scenario().unwrap(),
    );
    (Simulator::start(config).await.unwrap(), dir)
}

pub struct Client {
    rd: OwnedReadHalf,
    pub wr: OwnedWriteHalf,
    next_id: u64,
    pub events: VecDeque<Event>,
}

impl Client {
    pub async fn raw(sim: &Simulator, class: DeviceClass) -> Self {
        let stream = UnixStream::connect(sim.socket_path(class)).await.unwrap();
        let (rd, wr) = stream.into_split();
        Client {
            rd,
            wr,
            next_id: 0,
            events: VecDeque::new(),
        }
    }

    /// Connects, says Hello and returns the Welcome state.
    pub async fn connect(sim: &Simulator, class: DeviceClass) -> (Self, DeviceState) {
        let mut c = Self::raw(sim, class).await;
        c.send(&DriverToSim::Hello {
            protocol: PROTOCOL_VERSION,
            class,
        })
        .await;
        match c.recv().await.unwrap() {
            SimToDriver::Welcome { protocol, state } => {
                assert_eq!(protocol, PROTOCOL_VERSION);
                (c, state)
            }
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    pub async fn send(&mut self, message: &DriverToSim) {
        self.wr
            .write_all(&protocol::encode(message).unwrap())
            .await
            .unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.wr.write_all(bytes).await.unwrap();
    }

    /// The next message (`Err(Io)` at end of stream).
    pub async fn recv(&mut self) -> Result<SimToDriver, FrameError> {
        let mut len = [0u8; 4];
        self.rd.read_exact(&mut len).await?;
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.rd.read_exact(&mut body).await?;
        protocol::decode(&body)
    }

    /// Sends a call and returns its id.
    pub async fn start_call(&mut self, request: Request) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&DriverToSim::Call { id, request }).await;
        id
    }

    /// Waits for the reply to `id`, queueing events that arrive first.
    pub async fn reply(&mut self, id: u64) -> Result<Response, Status> {
        loop {
            match self
                .recv()
                .await
                .expect("connection closed before the reply")
            {
                SimToDriver::Reply { id: got, result } if got == id => return result,
                SimToDriver::Reply { id: other, .. } => {
                    panic!("reply to {other} while waiting for {id}")
                }
                SimToDriver::Event { event } => self.events.push_back(event),
                SimToDriver::Welcome { .. } => panic!("unexpected Welcome"),
            }
        }
    }

    pub async fn call(&mut self, request: Request) -> Result<Response, Status> {
        let id = self.start_call(request).await;
        tokio::time::timeout(GUARD, self.reply(id))
            .await
            .expect("no reply")
    }

    /// The next event (queued first).
    pub async fn event(&mut self) -> Event {
        if let Some(e) = self.events.pop_front() {
            return e;
        }
        let next = tokio::time::timeout(GUARD, self.recv())
            .await
            .expect("no event");
        match next.expect("connection closed while waiting for an event") {
            SimToDriver::Event { event } => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// True when the simulator closed the connection.
    pub async fn closed(&mut self) -> bool {
        loop {
            match tokio::time::timeout(GUARD, self.recv())
                .await
                .expect("still open")
            {
                Err(FrameError::Io(_)) => return true,
                Err(e) => panic!("{e}"),
                Ok(SimToDriver::Event { event }) => self.events.push_back(event),
                Ok(_) => {}
            }
        }
    }
}
