#!/usr/bin/env bash
# Forwarded-query throughput with the cap on forwards in flight, against the release binary, in
# one run: a loopback stand-in upstream (knotd serving NAMES distinct names of fwd.test) asked
# directly by dnsperf (the anchor), then picd forwarding distinct names to it for the cell
# itself (loopback source and interface: the internal view). Every name reaches picd once, so
# each answer is a real forward, never a cache hit. Two passes over picd, each over its own half
# of the names: UNDER queries in flight (below the cap, dns_forward_max_in_flight = CAP: the
# forwarding throughput), then OVER in flight (above it: what goes over is answered SERVFAIL at
# once). The anchor gets the first half with UNDER in flight. Reports qps and SERVFAIL of each
# pass, picd's forward counters from GET /api/dns/stats, and the most file descriptors picd
# held (bounded by the upstream socket pool, whatever the load).
set -euo pipefail
source "$(dirname "$0")/common.sh"

NAMES=${NAMES:-200000}
CAP=${CAP:-64}
UNDER=${UNDER:-32}
OVER=${OVER:-256}
CLIENTS=${CLIENTS:-4}
for n in "$NAMES" "$CAP" "$UNDER" "$OVER" "$CLIENTS"; do
    [[ $n =~ ^[0-9]+$ ]] || die "NAMES, CAP, UNDER, OVER and CLIENTS must be integers"
done
for tool in knotd dnsperf dig curl; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install knot dnsperf bind9-dnsutils curl)"
done
pin_server=() pin_client=()
if command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]]; then
    pin_server=(taskset -c 1) pin_client=(taskset -c 0)
fi

build_release
machine_note

# The stand-in upstream: knotd on a loopback port, one zone of NAMES names.
KNOT_PORT=$(free_port)
KNOT_DIR="$WORK/knot"
mkdir -p "$KNOT_DIR/db" "$KNOT_DIR/run"
{
    printf '$ORIGIN fwd.test.\n$TTL 300\n'
    printf '@ IN SOA ns.fwd.test. admin.fwd.test. 1 3600 600 86400 300\n@ IN NS ns\nns IN A 127.0.0.1\n'
    awk -v n="$NAMES" 'BEGIN { for (i = 0; i < n; i++) printf "h%d IN A 10.%d.%d.%d\n", i, int(i / 65536) % 256, int(i / 256) % 256, i % 256 }'
} >"$KNOT_DIR/fwd.test.zone"
awk -v n="$NAMES" 'BEGIN { for (i = 0; i < n / 2; i++) printf "h%d.fwd.test A\n", i }' >"$WORK/under.txt"
awk -v n="$NAMES" 'BEGIN { for (i = int(n / 2); i < n; i++) printf "h%d.fwd.test A\n", i }' >"$WORK/over.txt"
cat >"$KNOT_DIR/knot.conf" <<EOF
server:
    rundir: "$KNOT_DIR/run"
    listen: 127.0.0.1@$KNOT_PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$KNOT_DIR/db"
template:
  - id: default
    storage: "$KNOT_DIR"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: fwd.test.
    file: "$KNOT_DIR/fwd.test.zone"
EOF
"${pin_server[@]}" knotd -c "$KNOT_DIR/knot.conf" 2>"$WORK/knot.log" &
KNOT_PID=$!
stop_knot() {
    [[ -n ${KNOT_PID:-} ]] || return 0
    kill -TERM "$KNOT_PID" 2>/dev/null || true
    wait "$KNOT_PID" 2>/dev/null || true
    KNOT_PID=
}
trap 'stop_knot; cleanup' EXIT
ready=
for _ in $(seq 1 200); do
    if dig +time=1 +tries=1 +short @127.0.0.1 -p "$KNOT_PORT" h1.fwd.test A 2>/dev/null | grep -q '^10\.'; then
        ready=1
        break
    fi
    kill -0 "$KNOT_PID" 2>/dev/null || die "knotd exited: $(tail -5 "$WORK/knot.log")"
    sleep 0.1
done
[[ -n $ready ]] || die "knotd did not answer within 20 s"

# picd forwarding to it, its DNS server on loopback.
DNS_PORT=$(free_port)
cat >>"$WORK/picd.toml" <<TOML
dns_listen = ["127.0.0.1:$DNS_PORT"]
dns_forward_max_in_flight = $CAP
TOML
STATE="$WORK/state"
BENCH_UPSTREAMS="[\"127.0.0.1:$KNOT_PORT\"]" setup_state_dir "$STATE"
PORT=$(free_port)
start_picd "$STATE" "$PORT"
# start_picd ran picd under setpriv as root; that process execs picd, which re-executes itself
# once with its malloc tunables: the PID stays the same.
for _ in $(seq 1 100); do
    dig +time=1 +tries=1 @127.0.0.1 -p "$DNS_PORT" ns.fwd.test A 2>/dev/null | grep -q 'status: NOERROR' && break
    sleep 0.1
done

# run_dnsperf LABEL PORT QUERIES IN_FLIGHT: one pass through a file of distinct names; prints
# "qps servfail lost".
run_dnsperf() {
    "${pin_client[@]}" dnsperf -s 127.0.0.1 -p "$2" -d "$WORK/$3.txt" -n 1 -c "$CLIENTS" \
        -q "$4" -t 3 >"$WORK/$1.out" 2>&1 || die "dnsperf against $1 failed: $(tail -5 "$WORK/$1.out")"
    awk '
        /Queries per second:/ { qps = $4 }
        /Queries lost:/ { lost = $3 }
        /Response codes:/ { for (i = 3; i <= NF; i++) if ($i == "SERVFAIL") servfail = $(i + 1) }
        END { printf "%s %d %d\n", qps, servfail, lost }' "$WORK/$1.out"
}

stats() {
    curl -fsS -b "$WORK/cookies" "http://127.0.0.1:$PORT/api/dns/stats"
}
curl -fsS -c "$WORK/cookies" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$ADMIN_USER\",\"password\":\"$ADMIN_PASSWORD\"}" \
    "http://127.0.0.1:$PORT/api/auth/login" >/dev/null

fds() { find "/proc/$PICD_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
FDS_IDLE=$(fds)

read -r ANCHOR_QPS ANCHOR_SERVFAIL ANCHOR_LOST < <(run_dnsperf knot "$KNOT_PORT" under "$UNDER")

# Sample picd's descriptors while it forwards.
: >"$WORK/fds"
(
    while kill -0 "$PICD_PID" 2>/dev/null; do
        fds >>"$WORK/fds"
        sleep 0.05
    done
) &
SAMPLER=$!
read -r UNDER_QPS UNDER_SERVFAIL UNDER_LOST < <(run_dnsperf picd-under "$DNS_PORT" under "$UNDER")
STATS_UNDER=$(stats)
read -r OVER_QPS OVER_SERVFAIL OVER_LOST < <(run_dnsperf picd-over "$DNS_PORT" over "$OVER")
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
FDS_MAX=$(sort -n "$WORK/fds" | tail -1)
STATS=$(stats)

python3 - "$NAMES" "$CAP" "$UNDER" "$OVER" "$CLIENTS" "$ANCHOR_QPS $ANCHOR_SERVFAIL $ANCHOR_LOST" \
    "$UNDER_QPS $UNDER_SERVFAIL $UNDER_LOST" "$OVER_QPS $OVER_SERVFAIL $OVER_LOST" \
    "$FDS_IDLE" "$FDS_MAX" "$STATS_UNDER" "$STATS" <<'PY'
import json, sys
names, cap, under, over, clients = (int(v) for v in sys.argv[1:6])
runs = [[float(v) for v in arg.split()] for arg in sys.argv[6:9]]
fds_idle, fds_max = int(sys.argv[9]), int(sys.argv[10])
first, last = (json.loads(a)["forward"] for a in sys.argv[11:13])
half = names // 2
print(f"{names} distinct names (two halves of {half}), dnsperf -c {clients}, "
      f"picd's cap {cap} forwards in flight")
for label, (qps, servfail, lost) in zip(
        [f"knotd asked directly, {under} in flight (anchor)",
         f"picd forwarding, {under} in flight (under the cap)",
         f"picd forwarding, {over} in flight (over the cap)"], runs):
    answered = qps * (1 - servfail / half)
    print(f"{label}: {qps:,.0f} qps, {servfail:.0f} SERVFAIL ({100 * servfail / half:.1f}%), "
          f"{lost:.0f} lost, {answered:,.0f} answers/s from the upstream")
print(f"picd forward counters: under the cap {first['total']} forwarded, {first['over_cap']} over it; "
      f"over the cap {last['total'] - first['total']} forwarded, "
      f"{last['over_cap'] - first['over_cap']} over it; {last['in_flight']} in flight after")
print(f"picd open file descriptors: {fds_idle} idle, at most {fds_max} during the passes")
anchor, under_run, over_run = runs
print(f"RATIO picd-under-cap/knot qps={under_run[0] / anchor[0]:.3f} "
      f"picd-over-cap-answered/knot={over_run[0] * (1 - over_run[1] / half) / anchor[0]:.3f}")
PY
