//! `cargo run --release -p drydock-bench-dashboard [RENDERS]`: the overview of a stack
//! of 50 sources (one per service) x 2 copies with 90 days of daily backups, built
//! and rendered RENDERS times (default 200) as a request would: the state database
//! opened, read, the data built, the HTML rendered. Prints the p50 / p95 / max of the
//! whole and of the render alone, and the page's size, against the targets (p95 <=
//! 200 ms, page <= 150 KB).

use std::time::{Duration, Instant};

use drydock_dashboard::pages::overview::{build, render_data};
use drydock_dashboard::sample::Sample;
use drydock_dashboard::Inputs;
use drydock_state::StateDb;

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

fn main() {
    let renders: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let now = "2026-12-01T06:00:00Z".parse().expect("a time");
    let sample = Sample::new(50, 90, now);
    let config = sample.config(dir.path());
    let mut state = StateDb::open(&config.stack.state_dir).expect("the state database");
    sample.fill_state(&mut state).expect("state filled");
    drop(state);
    let (mut whole, mut render_only) = (Vec::new(), Vec::new());
    let mut size = 0;
    for _ in 0..renders {
        let t0 = Instant::now();
        let state = StateDb::open(&config.stack.state_dir).expect("the state database");
        let inputs = Inputs {
            config: &config,
            state: &state,
            daemon: &sample.daemon,
            now,
        };
        let data = build(&inputs).expect("the overview's data");
        let t1 = Instant::now();
        let page = render_data(&data).expect("the overview");
        let t2 = Instant::now();
        whole.push(t2 - t0);
        render_only.push(t2 - t1);
        size = page.html.len();
    }
    let sources = sample.daemon.backups.first().map_or(0, |b| b.sources.len());
    println!(
        "dashboard overview: {} services, 2 copies, {} backups ({sources} sources in the newest), {renders} renders",
        50,
        sample.daemon.backups.len()
    );
    println!(
        "request (open state db + build + render): p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms (target p95 <= 200 ms)",
        pct(&mut whole, 0.5),
        pct(&mut whole, 0.95),
        pct(&mut whole, 1.0)
    );
    println!(
        "render alone: p50 {:.2} ms, p95 {:.2} ms",
        pct(&mut render_only, 0.5),
        pct(&mut render_only, 0.95)
    );
    println!(
        "page: {size} bytes ({:.1} KB; target <= 150 KB)",
        size as f64 / 1000.0
    );
}
