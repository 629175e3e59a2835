//! The real PC/SC path end to end: a private `pcscd -f` with vsmartcard's vpcd reader
//! driver, the chip simulator inserted as a virtual card (`torii_chip_sim::vpcd`), the
//! torii-pcsc driver `.so` loaded through torii-plugin-host, and a full
//! `torii_icao::inspect` (PACE + EF.COM + DG1 + 20 KB DG2 + SOD + PA + DG14/CA +
//! DG15/AA) through it. Prints the wall time and APDU count next to the in-process read.
//!
//! Needs the Debian packages `pcscd` and `vsmartcard-vpcd` (and, to build the driver,
//! `pkgconf` and `libpcsclite-dev`); fails with a message naming them when missing.
//! pcscd's socket is fixed at build time (`/run/pcscd/pcscd.comm`; pcscd does not read
//! `PCSCLITE_CSOCK_NAME`, only the client library does), so no other pcscd may run;
//! vpcd listens on a free TCP port from a private reader.conf.d. The test stops its
//! pcscd with SIGTERM (pcscd then removes its socket and pid file).

use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use torii_chip_sim::pki::system_time;
use torii_chip_sim::{ChipConfig, ChipSim, TestPki, vpcd};
use torii_plugin_host::{CallError, Device, DeviceSpec, Isolation};
use torii_sdk::model::{DeviceClass, DeviceState, Request, Response, Status};

const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";

fn find_pcscd() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["/usr/sbin", "/sbin", "/usr/local/sbin"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join("pcscd"))
        .find(|p| p.is_file())
}

fn target_dir() -> PathBuf {
    // Integration tests run from target/<profile>/deps/.
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// A TCP port p on 127.0.0.1 with p + 1 free too (vpcd opens two slots).
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < 65535 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no free pair of TCP ports");
}

/// pcscd, killed when dropped (only this child, by its own handle).
struct Pcscd {
    child: Child,
    log: PathBuf,
}

impl Pcscd {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        // SIGTERM to our own child, by its pid: pcscd cleans /run/pcscd up on it.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const RUN_DIR: &str = "/run/pcscd";

/// Refuses to run next to another pcscd; removes the socket and pid file a killed
/// pcscd left behind (pcscd refuses to start while they exist).
fn check_no_other_pcscd() {
    let run = Path::new(RUN_DIR);
    let pid_file = run.join("pcscd.pid");
    let pid = std::fs::read_to_string(&pid_file).ok().and_then(|s| {
        s.trim_matches(|c: char| c.is_whitespace() || c == '\0')
            .parse::<u32>()
            .ok()
    });
    if let Some(pid) = pid
        && Path::new(&format!("/proc/{pid}")).exists()
    {
        panic!(
            "another pcscd runs (pid {pid}, {}): this test starts its own pcscd with a \
             vpcd reader; stop the other one first",
            pid_file.display()
        );
    }
    for stale in ["pcscd.comm", "pcscd.pid"] {
        let _ = std::fs::remove_file(run.join(stale));
    }
}

struct DeviceTransport {
    device: Device,
    runtime: tokio::runtime::Handle,
}

impl torii_icao::ChipTransport for DeviceTransport {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, torii_icao::TransportError> {
        let call = self.device.call(Request::ChipTransmit {
            apdu: apdu.to_vec(),
        });
        match self.runtime.block_on(call) {
            Ok(Response::Apdu { response }) => Ok(response),
            Ok(_) => Err(torii_icao::TransportError::Lost("unexpected answer".into())),
            Err(e) if e.status() == Status::MediaAbsent => Err(torii_icao::TransportError::NoCard),
            Err(e) => Err(torii_icao::TransportError::Lost(e.to_string())),
        }
    }
}

fn chip_config() -> ChipConfig {
    ChipConfig {
        face_bytes: 20_000,
        dg14: true,
        dg15: true,
        ..ChipConfig::default()
    }
}

fn spec(driver: &Path, config_json: &str) -> DeviceSpec {
    DeviceSpec {
        id: "document-reader".into(),
        driver: driver.into(),
        expected_class: Some(DeviceClass::DocumentReader),
        isolation: Isolation::InProcess,
        config_json: config_json.into(),
        call_timeout: Duration::from_secs(10),
        driver_host_exe: PathBuf::new(),
    }
}

#[test]
fn full_inspection_through_pcscd_and_vpcd() {
    let pcscd = find_pcscd().unwrap_or_else(|| {
        panic!(
            "pcscd is not installed. This test drives the real PC/SC stack: install the \
             Debian packages with `apt-get install -y pcscd vsmartcard-vpcd` \
             (building the driver needs `pkgconf libpcsclite-dev`)"
        )
    });
    assert!(
        Path::new(VPCD_DRIVER).exists(),
        "{VPCD_DRIVER} is missing: install the Debian package vsmartcard-vpcd \
         (`apt-get install -y vsmartcard-vpcd`)"
    );
    let driver = target_dir().join("libtorii_pcsc_driver.so");
    assert!(
        driver.exists(),
        "{} is missing: run `cargo build -p torii-pcsc-driver` (or --workspace) first",
        driver.display()
    );

    // A private pcscd: its own reader.conf.d (vpcd on a free port) and socket.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("reader.conf.d");
    std::fs::create_dir(&conf).unwrap();
    let port = free_port_pair();
    std::fs::write(
        conf.join("vpcd"),
        format!(
            "FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME   /dev/null:0x{port:X}\n\
             LIBPATH      {VPCD_DRIVER}\nCHANNELID    0x{port:X}\n"
        ),
    )
    .unwrap();
    check_no_other_pcscd();
    let socket = Path::new(RUN_DIR).join("pcscd.comm");
    let log = dir.path().join("pcscd.log");
    let child = Command::new(&pcscd)
        .args(["-f", "-c"])
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", pcscd.display()));
    let mut pcscd = Pcscd { child, log };
    let start = Instant::now();
    while !socket.exists() {
        if let Ok(Some(status)) = pcscd.child.try_wait() {
            panic!(
                "pcscd exited ({status}) before it was ready (another pcscd running?):\n{}",
                pcscd.log()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pcscd did not create its socket within 10 s:\n{}",
            pcscd.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The virtual card: the chip simulator inserted into vpcd's first slot.
    let pki = TestPki::generate("vpcd", "UT").unwrap();
    let trust = pki.trust_store();
    let mut chip = ChipSim::new(&chip_config(), &pki).unwrap();
    let stream = vpcd::connect(("127.0.0.1", port), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("vpcd does not listen on {port}: {e}\n{}", pcscd.log()));
    let card_socket: TcpStream = stream.try_clone().unwrap();
    let bridge = std::thread::spawn(move || {
        let mut stream = stream;
        vpcd::serve(&mut stream, &mut chip)
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (events, _events_rx) = tokio::sync::mpsc::unbounded_channel();
    let device = runtime
        .block_on(Device::open(
            spec(&driver, r#"{"reader": "virtual pcd 00 00"}"#),
            events.clone(),
        ))
        .unwrap_or_else(|e| panic!("driver does not open: {e}\n{}", pcscd.log()));
    assert_eq!(device.info().name, "torii-pcsc");

    // The reader sees the card once pcscd polled vpcd.
    let start = Instant::now();
    let atr = loop {
        match runtime.block_on(device.call(Request::ChipConnect)) {
            Ok(Response::Atr { atr }) => break atr,
            Err(CallError::Status(Status::MediaAbsent))
                if start.elapsed() < Duration::from_secs(10) =>
            {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => panic!("chip-connect: {other:?}\n{}", pcscd.log()),
        }
    };
    assert_eq!(atr, vpcd::ATR);
    assert_eq!(
        runtime.block_on(device.call(Request::GetState)).unwrap(),
        Response::State {
            state: DeviceState::Ready
        }
    );
    let mrz = runtime.block_on(device.call(Request::ReadMrz));
    assert!(
        matches!(
            mrz,
            Err(CallError::NotSupported | CallError::Status(Status::NotSupported))
        ),
        "{mrz:?}"
    );

    // The full inspection through pcscd.
    let transport = DeviceTransport {
        device: device.clone(),
        runtime: runtime.handle().clone(),
    };
    let optical = torii_icao::mrz::parse(torii_chip_sim::SPECIMEN_TD3).unwrap();
    let trust = Arc::new(trust);
    let (verdict, wall) = {
        let trust = trust.clone();
        let optical = optical.clone();
        runtime
            .block_on(runtime.spawn_blocking(move || {
                let t0 = Instant::now();
                let v = torii_icao::inspect(transport, &optical, &trust, system_time(2026));
                (v, t0.elapsed())
            }))
            .unwrap()
    };
    assert!(verdict.is_genuine(), "{:?}", verdict.checks);
    assert_eq!(verdict.access, Some(torii_icao::AccessProtocol::Pace));
    for (check, outcome) in &verdict.checks {
        assert_eq!(outcome, &torii_icao::Outcome::Passed, "{check:?}");
    }
    assert_eq!(
        runtime.block_on(device.call(Request::ChipDisconnect)),
        Ok(Response::Done)
    );

    // The same read in-process, for comparison.
    let mut local = ChipSim::new(&chip_config(), &pki).unwrap();
    let t0 = Instant::now();
    let v = torii_icao::inspect(&mut local, &optical, &trust, system_time(2026));
    let in_process = t0.elapsed();
    assert!(v.is_genuine());
    assert_eq!(v.apdus, verdict.apdus);
    println!(
        "full read (PACE + EF.COM + DG1 + 20 KB DG2 + SOD + PA + CA + AA): {} APDUs; \
         pcscd + vpcd: {:.0} ms wall ({:.1} ms/APDU); in-process: {:.1} ms wall",
        verdict.apdus,
        wall.as_secs_f64() * 1e3,
        wall.as_secs_f64() * 1e3 / verdict.apdus as f64,
        in_process.as_secs_f64() * 1e3,
    );

    // A reader name that matches nothing: UNAVAILABLE, and chip-connect says so.
    let missing = runtime
        .block_on(Device::open(
            spec(&driver, r#"{"reader": "no such reader"}"#),
            events,
        ))
        .unwrap();
    assert_eq!(
        runtime.block_on(missing.call(Request::GetState)).unwrap(),
        Response::State {
            state: DeviceState::Unavailable
        }
    );
    assert_eq!(
        runtime.block_on(missing.call(Request::ChipConnect)),
        Err(CallError::Status(Status::Unavailable))
    );

    // The card leaves the field: chip-connect answers MEDIA_ABSENT.
    card_socket.shutdown(Shutdown::Both).unwrap();
    let served = bridge.join().unwrap().unwrap();
    assert_eq!(served.apdus, verdict.apdus);
    let start = Instant::now();
    loop {
        match runtime.block_on(device.call(Request::ChipConnect)) {
            Err(CallError::Status(Status::MediaAbsent)) => break,
            Ok(_) if start.elapsed() < Duration::from_secs(10) => {
                let _ = runtime.block_on(device.call(Request::ChipDisconnect));
                std::thread::sleep(Duration::from_millis(50));
            }
            other => panic!("chip-connect without a card: {other:?}"),
        }
    }
    runtime.block_on(device.shutdown());
    runtime.block_on(missing.shutdown());
    drop(pcscd);
}
