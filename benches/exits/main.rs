//! Benchmarks of a `wireguard_ext` exit, in the namespace lab of the connectivity tests (run
//! by bench/exits.sh, as root):
//! 1. TCP throughput of a peer through the exit (iperf3, `IPERF_SECONDS` each, `RUNS` runs,
//!    median), alternating with the anchor: the same namespaces, picd and exit interface with
//!    picd's nftables table and `ip rule`s replaced by a hand-made rule and masquerade.
//!    picd keeps running in the anchor: its userspace WireGuard carries both the peer's tunnel
//!    and the exit, so pausing it would stop the very path measured. It has no periodic pass
//!    meanwhile (a reconcile interval of an hour), and each anchor run is checked afterwards
//!    to have ended with none of picd's rules back.
//! 2. The kill switch: from the provider's `wireguard-go` stopped by its PID to the peer's
//!    first refused connection and to `down` in /api/connectivity/status; from the provider's
//!    restart to the first answer through the exit and to `up` (`CUTOFF_RUNS` cycles).

#[path = "../../tests/common/mod.rs"]
mod common;
mod cutoff;
mod lab;
mod throughput;

fn setting(name: &str, default: u32) -> u32 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n % 2 {
        1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn listed(values: &[f64]) -> String {
    let shown: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
    shown.join(", ")
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let (runs, seconds) = (setting("RUNS", 5), setting("IPERF_SECONDS", 5));
    let cutoff_runs = setting("CUTOFF_RUNS", 3);
    assert!(
        runs > 0 && cutoff_runs > 0,
        "RUNS and CUTOFF_RUNS must be at least 1"
    );
    eprintln!("starting the lab...");
    let mut bench = lab::ExitBench::start().await;
    throughput::start_server(&mut bench);
    let ratio = throughputs(&bench, runs, seconds).await;
    kill_switch(&mut bench, cutoff_runs).await;
    println!("RATIO throughput picd/anchor={ratio:.3}");
}

/// iperf3 through picd's rules and through the anchor's, alternating; prints both and
/// returns the ratio of the medians.
async fn throughputs(bench: &lab::ExitBench, runs: u32, seconds: u32) -> f64 {
    let (mut through_picd, mut anchor) = (Vec::new(), Vec::new());
    for i in 1..=runs {
        through_picd.push(throughput::run_iperf(bench, seconds));
        let picd_rules = throughput::install_anchor(bench);
        anchor.push(throughput::run_iperf(bench, seconds));
        assert!(
            throughput::anchor_untouched(bench),
            "picd applied its rules during anchor run {i}: the run is void"
        );
        throughput::restore_picd(bench, picd_rules).await;
        eprintln!(
            "run {i}: through picd {:.0} Mbit/s, anchor {:.0} Mbit/s",
            through_picd[through_picd.len() - 1],
            anchor[anchor.len() - 1]
        );
    }
    let (picd_median, anchor_median) = (median(&through_picd), median(&anchor));
    println!(
        "throughput through the exit, iperf3 {seconds} s x {runs}: with picd's rules median \
         {picd_median:.0} Mbit/s ({}); anchor (hand-made rule and masquerade) median \
         {anchor_median:.0} Mbit/s ({})",
        listed(&through_picd),
        listed(&anchor)
    );
    picd_median / anchor_median
}

/// Down-and-back cycles of the provider; prints the medians.
async fn kill_switch(bench: &mut lab::ExitBench, cycles_wanted: u32) {
    let mut cycles = Vec::new();
    for i in 1..=cycles_wanted {
        eprintln!("cycle {i}: the provider stopped...");
        cycles.push(cutoff::cycle(bench).await);
    }
    let field = |f: fn(&cutoff::Cycle) -> f64| cycles.iter().map(f).collect::<Vec<f64>>();
    let (refused, down) = (field(|c| c.refused_ms), field(|c| c.down_ms));
    let (back, up) = (field(|c| c.back_ms), field(|c| c.up_ms));
    println!(
        "provider stopped -> first refusal median {:.0} ms ({}), status down median {:.0} ms ({})",
        median(&refused),
        listed(&refused),
        median(&down),
        listed(&down)
    );
    println!(
        "provider restarted -> first answer through the exit median {:.0} ms ({}), status up \
         median {:.0} ms ({})",
        median(&back),
        listed(&back),
        median(&up),
        listed(&up)
    );
    // picd's own constants (connectivity's PROBE_INTERVAL, PROBE_WAIT_SECONDS, DOWN_AFTER,
    // UP_AFTER), which no setting changes: the figures above hold for these.
    println!(
        "health settings: a ping through the exit every 2 s (1 s timeout), down after 3 \
         failures in a row, up after 2 successes"
    );
}
