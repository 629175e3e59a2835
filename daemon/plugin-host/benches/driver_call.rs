//! Driver call cost: the same operation on the same C driver, in-process and through an
//! isolated `torii-driver-host`, measured in one run. Prints figures; asserts nothing.
//!
//!     cargo bench -p torii-plugin-host --bench driver_call

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use torii_plugin_host::{Device, DeviceSpec, Isolation};
use torii_sdk::model::Request;

fn spec(isolation: Isolation) -> DeviceSpec {
    DeviceSpec {
        id: "camera".into(),
        driver: torii_c_drivers::FIXTURE_CRASHY_CAMERA.into(),
        expected_class: None,
        isolation,
        config_json: "{}".into(),
        call_timeout: Duration::from_secs(5),
        driver_host_exe: env!("CARGO_BIN_EXE_torii-driver-host").into(),
    }
}

struct Figures {
    median_us: f64,
    p99_us: f64,
    mean_us: f64,
}

async fn measure(device: &Device, request: &Request, iterations: usize) -> Figures {
    for _ in 0..iterations / 10 {
        device.call(request.clone()).await.expect("warm-up call");
    }
    let mut samples = Vec::with_capacity(iterations);
    let start = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        device.call(request.clone()).await.expect("call");
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let total = start.elapsed().as_secs_f64() * 1e6;
    samples.sort_by(f64::total_cmp);
    Figures {
        median_us: samples[samples.len() / 2],
        p99_us: samples[samples.len() * 99 / 100],
        mean_us: total / iterations as f64,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (tx, _rx) = mpsc::unbounded_channel();
        let in_process = Device::open(spec(Isolation::InProcess), tx.clone())
            .await
            .unwrap();
        let isolated = Device::open(spec(Isolation::Process), tx).await.unwrap();
        println!("driver call cost (C camera driver, 4-byte JPEG answer), same run:");
        println!(
            "{:<34} {:>10} {:>10} {:>10}",
            "path", "median µs", "p99 µs", "mean µs"
        );
        let requests = [
            ("get-state", Request::GetState),
            ("capture-face", Request::CaptureFace { timeout_ms: 100 }),
        ];
        for (name, request) in requests {
            let a = measure(&in_process, &request, 20_000).await;
            let b = measure(&isolated, &request, 5_000).await;
            println!(
                "{:<34} {:>10.1} {:>10.1} {:>10.1}",
                format!("{name}, in-process"),
                a.median_us,
                a.p99_us,
                a.mean_us
            );
            println!(
                "{:<34} {:>10.1} {:>10.1} {:>10.1}",
                format!("{name}, isolated"),
                b.median_us,
                b.p99_us,
                b.mean_us
            );
            println!(
                "{:<34} {:>10.1}x",
                format!("{name}, isolated / in-process"),
                b.median_us / a.median_us
            );
        }
        in_process.shutdown().await;
        isolated.shutdown().await;
    });
}
