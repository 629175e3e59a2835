//! torii-vpcd-card: a simulated ePassport chip as a virtual card in vpcd, so that a
//! real pcscd (and any PC/SC application, e.g. the torii-pcsc driver) reads it.
//!
//! ```text
//! torii-vpcd-card [--host 127.0.0.1] [--port 35963] [--mrz "<line1>\n<line2>"]
//!                 [--face-bytes 20000] [--dg14] [--dg15] [--bac-only]
//!                 [--trust-store DIR] [--once]
//! ```
//! `--trust-store DIR` writes the test CSCA (`csca-UT.der`) for the inspecting side.
//! Without `--once` the card reconnects after vpcd closes the connection.

use std::process::ExitCode;
use std::time::Duration;
use torii_chip_sim::{ChipConfig, ChipSim, Fault, TestPki, vpcd};

fn usage() -> ExitCode {
    eprintln!(
        "usage: torii-vpcd-card [--host H] [--port P] [--mrz TEXT] [--face-bytes N] \
         [--dg14] [--dg15] [--bac-only] [--trust-store DIR] [--once]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut host = "127.0.0.1".to_string();
    let mut port = vpcd::DEFAULT_PORT;
    let mut config = ChipConfig::default();
    let mut trust_dir = None;
    let mut once = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next();
        match a.as_str() {
            "--host" => match value() {
                Some(v) => host = v,
                None => return usage(),
            },
            "--port" => match value().and_then(|v| v.parse().ok()) {
                Some(v) => port = v,
                None => return usage(),
            },
            "--mrz" => match value() {
                Some(v) => config.mrz = v.replace("\\n", "\n"),
                None => return usage(),
            },
            "--face-bytes" => match value().and_then(|v| v.parse().ok()) {
                Some(v) => config.face_bytes = v,
                None => return usage(),
            },
            "--trust-store" => match value() {
                Some(v) => trust_dir = Some(v),
                None => return usage(),
            },
            "--dg14" => config.dg14 = true,
            "--dg15" => config.dg15 = true,
            "--bac-only" => config.faults.push(Fault::BacOnly),
            "--once" => once = true,
            _ => return usage(),
        }
    }
    let pki = match TestPki::generate("vpcd", "UT") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("torii-vpcd-card: test PKI: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = trust_dir {
        let written = pki.csca_der().map_err(|e| e.to_string()).and_then(|der| {
            std::fs::write(std::path::Path::new(&dir).join("csca-UT.der"), der)
                .map_err(|e| e.to_string())
        });
        if let Err(e) = written {
            eprintln!("torii-vpcd-card: trust store {dir}: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut chip = match ChipSim::new(&config, &pki) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("torii-vpcd-card: chip: {e}");
            return ExitCode::FAILURE;
        }
    };
    loop {
        let mut stream = match vpcd::connect((host.as_str(), port), Duration::from_secs(30)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("torii-vpcd-card: cannot reach vpcd at {host}:{port}: {e}");
                return ExitCode::FAILURE;
            }
        };
        eprintln!("torii-vpcd-card: inserted into vpcd at {host}:{port}");
        chip.reset();
        match vpcd::serve(&mut stream, &mut chip) {
            Ok(s) => eprintln!("torii-vpcd-card: vpcd closed ({} APDUs)", s.apdus),
            Err(e) => eprintln!("torii-vpcd-card: {e}"),
        }
        if once {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
