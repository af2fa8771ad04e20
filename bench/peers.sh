#!/usr/bin/env bash
# Peers on the userspace WireGuard interface, with PEERS (1,000) peers configured. picd runs
# in a network namespace this script creates (the machine's own namespace gets no interface):
#   (a) POST /api/peers for one more peer, end to end until `wg show IF peers` lists its key
#       (RUNS times; median and p90);
#   (b) a restart: exec of picd until the interface holds every peer again (full reconcile);
#   (c) picd's resident memory (VmRSS) with the peers configured.
# Anchors, measured in the same namespace on a wireguard-go interface: `wg set` adding one
# peer to an interface holding PEERS, and one `wg set` adding PEERS peers.
# Targets (issue 6): (a) under 5 ms, (b) under 250 ms, (c) under 40 MB. Needs root.
set -euo pipefail
source "$(dirname "$0")/common.sh"

PEERS=${PEERS:-1000}
RUNS=${RUNS:-20}
PORT=3000
NS="pcbench$$"
IFNAME="pwb$$"
ANCHOR_IF="pwa$$"
ANCHOR_PID=
# A /21: 2,045 peer addresses.
SUBNET_V4="10.80.0.0/21"

[[ $(id -u) -eq 0 ]] || die "needs root (it creates a network namespace); run packaging/install-test-deps first"
for tool in ip wg wireguard-go curl python3; do
    command -v "$tool" >/dev/null || die "$tool is missing: run packaging/install-test-deps"
done

bench_cleanup() {
    if [[ -n $ANCHOR_PID ]]; then
        kill "$ANCHOR_PID" 2>/dev/null || true
        wait "$ANCHOR_PID" 2>/dev/null || true
    fi
    cleanup # common.sh: stops the picd this script started, removes $WORK
    ip netns del "$NS" 2>/dev/null || true
    rm -f "/var/run/wireguard/$IFNAME.sock" "/var/run/wireguard/$ANCHOR_IF.sock"
}
trap bench_cleanup EXIT

in_ns() { ip netns exec "$NS" "$@"; }

# Settings: picd's own info lines (for the reconcile's timestamps), the libraries' at warn.
cat >"$WORK/picd-peers.toml" <<TOML
log_level = "warn,picd=info"
TOML

# start_in_ns: starts picd inside the namespace (sets PICD_PID), waits for /health.
start_in_ns() {
    PICD_WIREGUARD_MODE=userspace PICD_WIREGUARD_INTERFACE="$IFNAME" GLIBC_TUNABLES="$TUNABLES" \
        ip netns exec "$NS" "$PICD" --config "$WORK/picd-peers.toml" serve \
        --state-dir "$WORK/state" --listen "127.0.0.1:$PORT" 2>>"$WORK/picd.log" &
    PICD_PID=$!
    for _ in $(seq 1 500); do
        in_ns curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null && return 0
        running "$PICD_PID" || die "picd exited: $(tail -5 "$WORK/picd.log")"
        sleep 0.02
    done
    die "picd did not answer /health within 10 s"
}

# picd runs with the malloc setting its systemd unit gives it.
TUNABLES=$(sed -n 's/^Environment=GLIBC_TUNABLES=//p' "$ROOT/systemd/picd.service")

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$PICD_PID/status"; }

build_release
machine_note
ip netns add "$NS"
in_ns ip link set lo up
cat >"$WORK/answers.toml" <<TOML
[admin]
username = "$ADMIN_USER"
password = "$ADMIN_PASSWORD"
[cell]
name = "bench"
domain = "bench.example"
public_endpoint = "203.0.113.10"
wireguard_port = 51820
subnet_v4 = "$SUBNET_V4"
subnet_v6 = "fd77:77::/64"
[dns]
upstreams = ["127.0.0.1:9"]
split_horizon = true
TOML
"$PICD" --config "$WORK/picd.toml" setup --answers "$WORK/answers.toml" --state-dir "$WORK/state" >/dev/null
start_in_ns

say "creating $PEERS peers through the API..."
fill=$(timeout 600 ip netns exec "$NS" python3 "$ROOT/bench/peers.py" fill "$PORT" "$ADMIN_USER" "$ADMIN_PASSWORD" "$PEERS")
[[ $(in_ns wg show "$IFNAME" peers | wc -l) -eq $PEERS ]] || die "the interface does not hold $PEERS peers"
sleep 2
rss_filled=$(rss_kb)

say "(a) POST /api/peers with $PEERS configured, until wg lists the key ($RUNS runs)..."
add=$(timeout 300 ip netns exec "$NS" python3 "$ROOT/bench/peers.py" add "$PORT" "$ADMIN_USER" "$ADMIN_PASSWORD" "$IFNAME" "$RUNS")
total=$((PEERS + RUNS))
rss_added=$(rss_kb)

say "(b) restart with $total peers..."
sigterm_ok=yes
kill -TERM "$PICD_PID"
for _ in $(seq 1 100); do
    running "$PICD_PID" || break
    sleep 0.1
done
if running "$PICD_PID"; then
    sigterm_ok=no
fi
stop_picd # kills it if SIGTERM did not
# The watcher polls `wg show` from before the exec, so its own start-up is not measured.
timeout 60 ip netns exec "$NS" python3 "$ROOT/bench/peers.py" wait-peers "$IFNAME" "$total" 30 >"$WORK/restart.out" &
watcher=$!
sleep 1
start_ns=$(date +%s%N)
start_in_ns
wait "$watcher" || die "the interface did not get its $total peers back"
restart="ms=$(python3 -c 'import sys; print(f"{(int(sys.argv[1]) - int(sys.argv[2])) / 1e6:.1f}")' "$(cat "$WORK/restart.out")" "$start_ns")"
# picd's own view: from "listening" to "interface up" (both logged at start-up).
reconcile=$(python3 - "$WORK/picd.log" <<'PY'
import re, sys, datetime
lines = open(sys.argv[1], errors="replace").read().split("\n")
stamp = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")
def last(marker):
    for line in reversed(lines):
        if marker in line and (m := stamp.search(line)):
            return datetime.datetime.fromisoformat(m.group(1))
listening, up = last("picd is listening"), last("WireGuard interface up")
print(f"{(up - listening).total_seconds() * 1000:.1f}" if listening and up and up >= listening else "n/a")
PY
)
sleep 2
rss_restarted=$(rss_kb)
stop_picd

say "anchors: wireguard-go with $PEERS peers..."
ip netns exec "$NS" env WG_PROCESS_FOREGROUND=1 wireguard-go "$ANCHOR_IF" >>"$WORK/wireguard-go.log" 2>&1 &
ANCHOR_PID=$!
for _ in $(seq 1 100); do
    [[ -S /var/run/wireguard/$ANCHOR_IF.sock ]] && break
    sleep 0.1
done
[[ -S /var/run/wireguard/$ANCHOR_IF.sock ]] || die "wireguard-go did not start"
anchors=$(timeout 300 ip netns exec "$NS" python3 "$ROOT/bench/peers.py" anchors "$ANCHOR_IF" "$PEERS" "$RUNS")

python3 - "$fill" "$add" "$restart" "$reconcile" "$rss_filled" "$rss_added" "$rss_restarted" "$anchors" "$PEERS" "$sigterm_ok" <<'PY'
import sys

def kv(text):
    return {k: float(v) for k, v in (p.split("=") for p in text.split())}

fill, add, restart = kv(sys.argv[1]), kv(sys.argv[2]), kv(sys.argv[3])
reconcile = sys.argv[4]
rss = [int(x) / 1024 for x in sys.argv[5:8]]
anchors, peers, sigterm_ok = kv(sys.argv[8]), int(sys.argv[9]), sys.argv[10]
met = lambda ok: "met" if ok else "NOT met"
print(f"{peers} peers created through the API in {fill['seconds']:.1f} s")
print(f"(a) POST /api/peers with {peers} configured, until picd answers (the peer is on the interface by "
      f"then): median {add['post_median']:.2f} ms, p90 {add['post_p90']:.2f} ms "
      f"[target < 5 ms: {met(add['post_median'] < 5)}]")
print(f"    the first `wg show IF peers` after the answer listed the key in {add['listed_at_once']:.0f} of "
      f"{add['runs']:.0f} runs (one `wg show` of {peers}+ peers takes {add['wg_show_median']:.2f} ms)")
print(f"    anchor `wg set` adding one peer to wireguard-go holding {peers}: median {anchors['single_median']:.2f} ms, "
      f"p90 {anchors['single_p90']:.2f} ms; ratio picd/anchor {add['post_median'] / anchors['single_median']:.1f}x")
print(f"(b) restart: exec of picd until the interface holds every peer: {restart['ms']:.1f} ms "
      f"[target < 250 ms: {met(restart['ms'] < 250)}]")
print(f"    picd's log, 'listening' to 'interface up': {reconcile} ms")
print(f"    anchor: one `wg set` adding {peers} peers to wireguard-go: {anchors['bulk_ms']:.1f} ms; "
      f"ratio picd restart/anchor {restart['ms'] / anchors['bulk_ms']:.1f}x")
print(f"(c) VmRSS: {rss[0]:.1f} MB with {peers} peers, {rss[1]:.1f} MB after (a) and its `wg show` polls, "
      f"{rss[2]:.1f} MB after the restart [target < 40 MB: {met(max(rss) < 40)}]")
print(f"SIGTERM stopped picd with its interface up: {sigterm_ok}")
PY
