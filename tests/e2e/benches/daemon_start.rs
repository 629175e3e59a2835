//! Daemon start to ready (all seven sim drivers, two of them isolated) and idle memory,
//! through the real binaries. Prints figures; asserts nothing.
//!
//!     cargo build --release --workspace && cargo bench -p torii-e2e --bench daemon_start

use std::time::Duration;

use torii_e2e::{Gate, driver_hosts_of};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let runs = 5;
    let mut ready_ms = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let gate = Gate::start();
        let log = gate.daemon_log();
        let ms: u64 = log
            .lines()
            .find_map(|l| l.split("ready in ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("toriid logs `ready in N ms`");
        ready_ms.push(ms);
        std::thread::sleep(Duration::from_secs(2));
        let daemon = rss_kib(gate.daemon_pid());
        let hosts: Vec<u64> = driver_hosts_of(gate.daemon_pid())
            .into_iter()
            .map(rss_kib)
            .collect();
        rss.push((daemon, hosts));
    }
    ready_ms.sort();
    println!("toriid start to ready (process start → devices opened, API serving), {runs} runs:");
    println!(
        "  median {} ms, min {} ms, max {} ms",
        ready_ms[runs / 2],
        ready_ms[0],
        ready_ms[runs - 1]
    );
    let (daemon, hosts) = &rss[runs / 2];
    println!(
        "idle RSS after 2 s: toriid {:.1} MiB; each torii-driver-host {:?} MiB",
        *daemon as f64 / 1024.0,
        hosts
            .iter()
            .map(|h| format!("{:.1}", *h as f64 / 1024.0))
            .collect::<Vec<_>>()
    );
}
