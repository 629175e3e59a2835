//! A fixed workload for profilers: every pair of a small synthetic set, compared once.
//! `valgrind --tool=callgrind target/release/examples/compare_loop` counts instructions
//! repeatably on a shared machine; the printed checksum shows whether scores changed.
//!
//! `TORII_PROFILE_FINGERS` (default 60 fingers × 4 impressions).

use torii_matcher::record::FingerPosition;
use torii_matcher::synth::{Dataset, Params};
use torii_matcher::{PreparedTemplate, compare};

fn main() {
    let fingers: usize = std::env::var("TORII_PROFILE_FINGERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let data = Dataset::generate(&Params::default(), 0x7041_2026, fingers, 4);
    let prepared: Vec<PreparedTemplate> = data
        .impressions
        .iter()
        .flatten()
        .filter_map(|i| PreparedTemplate::from_iso(&i.to_iso(FingerPosition::RIGHT_INDEX), 0).ok())
        .collect();
    let start = std::time::Instant::now();
    let mut sum = 0.0f64;
    let mut count = 0usize;
    for (a, pa) in prepared.iter().enumerate() {
        for pb in &prepared[a + 1..] {
            sum += f64::from(compare(pa, pb));
            count += 1;
        }
    }
    let per_second = count as f64 / start.elapsed().as_secs_f64();
    println!("{count} comparisons, score sum {sum:.6}, {per_second:.0}/s");
}
