//! The kill switch timed: the provider's `wireguard-go` is stopped by its PID (SIGTERM, so its
//! interface goes with it), and alice, trying a TCP connection every 50 ms, is timed to her
//! first refusal; /api/connectivity/status to `down`. Then the provider is started again with
//! the same keys, and alice is timed to her first answer from the provider's address;
//! the status to `up`.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::netns::*;
use crate::lab::ExitBench;
use serde_json::Value;

const WG_RUN_DIR: &str = "/var/run/wireguard";
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Linux answers one host with a burst of six ICMP errors, then one a second: the first
/// refusal timed must not fall past that budget (it would look like a timeout).
const ICMP_BUDGET_REFILL: Duration = Duration::from_secs(7);

/// alice's side: waits for a line on stdin (the moment to count from), then tries every 50 ms
/// until the wanted outcome. `refused`: a TCP connect that fails at once (an ICMP error, not a
/// timeout); `via`: an HTTP answer naming the provider's address. Prints one JSON line.
const POLLER: &str = r#"
import http.client, json, socket, sys, time
mode, host, port, want = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.stdin.readline()
t0 = time.monotonic()
attempts = 0
def done(**fields):
    print(json.dumps(dict(ms=(time.monotonic() - t0) * 1000, attempts=attempts, **fields)), flush=True)
    sys.exit(0)
while time.monotonic() - t0 < 120:
    attempts += 1
    started = time.monotonic()
    try:
        if mode == "refused":
            socket.create_connection((host, port), timeout=0.25).close()
        else:
            c = http.client.HTTPConnection(host, port, timeout=0.5)
            c.request("GET", "/")
            body = c.getresponse().read().decode()
            c.close()
            if body == want:
                done()
    except socket.timeout:
        pass
    except OSError as e:
        if mode == "refused":
            done(errno=e.errno, attempt_ms=(time.monotonic() - started) * 1000)
    except Exception:
        pass
    time.sleep(max(0.0, 0.05 - (time.monotonic() - started)))
print(json.dumps(dict(ms=None, attempts=attempts)), flush=True)
"#;

/// One down-and-back cycle, in milliseconds from the stop (and from the restart).
pub struct Cycle {
    pub refused_ms: f64,
    pub down_ms: f64,
    pub back_ms: f64,
    pub up_ms: f64,
}

struct Poller {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Poller {
    fn start(b: &ExitBench, mode: &str) -> Poller {
        let port = HTTP_PORT.to_string();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &b.alice.ns, "python3", "-c", POLLER, mode])
            .args([INTERNET_SERVER, &port, PROVIDER_ADDR])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Poller { child, out }
    }

    fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").expect("poller's stdin");
        stdin.flush().expect("poller's stdin");
    }

    /// The poller's result (blocking until it has one).
    fn result(mut self) -> Value {
        let mut line = String::new();
        self.out.read_line(&mut line).expect("poller's answer");
        let _ = self.child.wait();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("poller printed {line:?}"))
    }
}

fn running(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    !status.is_empty() && !status.contains("State:\tZ")
}

/// The PID of the provider's `wireguard-go` (the lab's, or the one this benchmark restarted).
fn provider_wireguard_pid(b: &ExitBench) -> u32 {
    let pids = run(&format!("ip netns pids {}", b.provider.ns));
    pids.split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .find(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            comm.trim() == "wireguard-go" && running(*pid)
        })
        .expect("the provider's wireguard-go is running")
}

/// Starts the provider's WireGuard again as the lab built it: the same interface name, keys
/// (the lab's key files), peer and address.
fn restart_provider(b: &mut ExitBench) {
    let (ns, ifname) = (b.provider.ns.clone(), b.provider.ifname.clone());
    let socket = Path::new(WG_RUN_DIR).join(format!("{ifname}.sock"));
    let _ = std::fs::remove_file(&socket);
    let child = Command::new("ip")
        .args(["netns", "exec", &ns, "wireguard-go", &ifname])
        .env("WG_PROCESS_FOREGROUND", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning wireguard-go");
    b.children.push(child);
    assert!(
        eventually(STOP_TIMEOUT, || socket.exists()),
        "wireguard-go did not create {}",
        socket.display()
    );
    let files = b.lab.state_dir().join("..");
    let file = |name: &str| files.join(format!("{ifname}.{name}")).display().to_string();
    run(&format!(
        "ip netns exec {ns} wg set {ifname} listen-port {PROVIDER_PORT} private-key {} \
         peer {} preshared-key {} allowed-ips {CELL_TUNNEL_ADDR}/32",
        file("key"),
        customer_public_key(b),
        file("psk"),
    ));
    run(&format!(
        "ip -n {ns} addr add {PROVIDER_TUNNEL_ADDR}/24 dev {ifname}"
    ));
    run(&format!("ip -n {ns} link set {ifname} up"));
}

/// The public key of the cell's side of the provider's tunnel, from the file it was given.
fn customer_public_key(b: &ExitBench) -> String {
    let private = b
        .provider
        .customer_config
        .lines()
        .find_map(|l| l.strip_prefix("PrivateKey = "))
        .expect("PrivateKey");
    let mut wg = Command::new("wg")
        .arg("pubkey")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wg");
    let mut stdin = wg.stdin.take().expect("stdin");
    stdin.write_all(private.as_bytes()).expect("wg pubkey");
    drop(stdin);
    let out = wg.wait_with_output().expect("wg pubkey");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ms(value: &Value, what: &str) -> f64 {
    value["ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: never seen ({value})"))
}

/// Stops the provider, times the cut-off, starts it again, times the way back.
pub async fn cycle(b: &mut ExitBench) -> Cycle {
    tokio::time::sleep(ICMP_BUDGET_REFILL).await;
    let pid = provider_wireguard_pid(b);
    let mut poller = Poller::start(b, "refused");
    run(&format!("kill -TERM {pid}"));
    let stopped = Instant::now();
    poller.go();
    let down = b.state_seen_after("down", stopped).await;
    let refused = tokio::task::spawn_blocking(move || poller.result())
        .await
        .expect("poller");
    eprintln!("  cut off: {refused}, status down after {down:?}");
    assert!(
        eventually(STOP_TIMEOUT, || !running(pid)),
        "wireguard-go {pid} did not stop"
    );

    let mut poller = Poller::start(b, "via");
    restart_provider(b);
    let restarted = Instant::now();
    poller.go();
    let up = b.state_seen_after("up", restarted).await;
    let back = tokio::task::spawn_blocking(move || poller.result())
        .await
        .expect("poller");
    eprintln!("  back: {back}, status up after {up:?}");
    Cycle {
        refused_ms: ms(&refused, "the first refusal"),
        down_ms: down.as_secs_f64() * 1000.0,
        back_ms: ms(&back, "the first answer through the exit"),
        up_ms: up.as_secs_f64() * 1000.0,
    }
}
