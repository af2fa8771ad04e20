#!/usr/bin/env bash
# Response-rate limiting on against off, against the release binary, in one run. RRL applies
# to the world's view only, so the queries come from a network namespace this script makes
# (a veth pair on 198.18.77.0/30, the benchmarking range of RFC 2544: a source that is neither
# loopback nor WireGuard). dnsperf there offers OFFERED queries/s of the cell's own SOA and NS
# (what the world may ask) for DURATION s, from one /24, to picd listening on the root side;
# picd runs with dns_rrl_responses_per_second = 0 (off) and = RATE (on), ROUNDS times
# alternating. Reports the responses/s dnsperf got (full answers and slips), the queries lost
# (dropped by RRL), picd's CPU per query received, and the passed/slipped/dropped counters of
# GET /api/dns/stats. Needs root (ip netns); removes the namespace and the veth pair on exit.
set -euo pipefail
source "$(dirname "$0")/common.sh"

OFFERED=${OFFERED:-20000}
DURATION=${DURATION:-5}
RATE=${RATE:-20}
ROUNDS=${ROUNDS:-2}
for n in "$OFFERED" "$DURATION" "$RATE" "$ROUNDS"; do
    [[ $n =~ ^[0-9]+$ ]] || die "OFFERED, DURATION, RATE and ROUNDS must be integers"
done
[[ $(id -u) -eq 0 ]] || die "run as root: the queries come from a network namespace (ip netns)"
for tool in ip dnsperf dig curl; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install iproute2 dnsperf bind9-dnsutils curl)"
done

HOST_ADDR=198.18.77.1
NS_ADDR=198.18.77.2
ip -o addr show | grep -q "inet 198\.18\.77\." && die "198.18.77.0/30 is already in use on this machine"
NS="picd-bench-rrl-$$"
HOST_IF="pbr$$h"
NS_IF="pbr$$n"
remove_namespace() {
    ip link del "$HOST_IF" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
}
trap 'remove_namespace; cleanup' EXIT

build_release
machine_note

ip netns add "$NS"
ip link add "$HOST_IF" type veth peer name "$NS_IF" netns "$NS"
ip addr add "$HOST_ADDR/30" dev "$HOST_IF"
ip link set "$HOST_IF" up
ip -n "$NS" addr add "$NS_ADDR/30" dev "$NS_IF"
ip -n "$NS" link set "$NS_IF" up
ip -n "$NS" link set lo up

DNS_PORT=$(free_port)
STATE="$WORK/state"
cp "$WORK/picd.toml" "$WORK/picd.base.toml"
setup_state_dir "$STATE"
printf 'bench.example SOA\nbench.example NS\n' >"$WORK/queries.txt"

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PICD_PID/stat"; }

# round RRL_RATE LABEL: one picd with that rate, one dnsperf pass from the namespace; appends
# "label answers_per_s lost sent cpu_seconds passed slipped dropped" to $WORK/results.
round() {
    { cat "$WORK/picd.base.toml"; echo "dns_listen = [\"$HOST_ADDR:$DNS_PORT\"]"; echo "dns_rrl_responses_per_second = $1"; } >"$WORK/picd.toml"
    local port
    port=$(free_port)
    start_picd "$STATE" "$port"
    for _ in $(seq 1 100); do
        ip netns exec "$NS" dig +time=1 +tries=1 @"$HOST_ADDR" -p "$DNS_PORT" bench.example SOA 2>/dev/null |
            grep -q 'status: NOERROR' && break
        sleep 0.1
    done
    curl -fsS -c "$WORK/cookies" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$ADMIN_USER\",\"password\":\"$ADMIN_PASSWORD\"}" \
        "http://127.0.0.1:$port/api/auth/login" >/dev/null
    local before after
    before=$(cpu_ticks)
    ip netns exec "$NS" dnsperf -s "$HOST_ADDR" -p "$DNS_PORT" -d "$WORK/queries.txt" -l "$DURATION" \
        -Q "$OFFERED" -q "$OFFERED" -c 1 -t 1 >"$WORK/$2.out" 2>&1 ||
        die "dnsperf failed: $(tail -5 "$WORK/$2.out")"
    after=$(cpu_ticks)
    local stats
    stats=$(curl -fsS -b "$WORK/cookies" "http://127.0.0.1:$port/api/dns/stats")
    stop_picd
    awk -v label="$2" -v ticks="$((after - before))" -v hz="$(getconf CLK_TCK)" -v stats="$stats" '
        /Queries sent:/ { sent = $3 }
        /Queries lost:/ { lost = $3 }
        /Queries per second:/ { qps = $4 }
        END {
            n = split(stats, parts, /[^a-z0-9_]+/)
            for (i = 1; i < n; i++) if (parts[i] ~ /^(passed|slipped|dropped)$/ && !(parts[i] in c)) c[parts[i]] = parts[i + 1]
            printf "%s %s %d %d %.3f %d %d %d\n", label, qps, lost, sent, ticks / hz, c["passed"], c["slipped"], c["dropped"]
        }' "$WORK/$2.out" >>"$WORK/results"
}

: >"$WORK/results"
for r in $(seq 1 "$ROUNDS"); do
    round 0 "off-$r"
    round "$RATE" "on-$r"
done

python3 - "$WORK/results" "$OFFERED" "$DURATION" "$RATE" <<'PY'
import sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
offered, duration, rate = sys.argv[2:5]
print(f"dnsperf in a namespace, {offered} queries/s offered for {duration} s from one address "
      f"(the cell's SOA and NS), RRL at {rate} answers/s per /24 and kind when on")
sums = {"off": [0.0, 0.0], "on": [0.0, 0.0]}
for label, qps, lost, sent, cpu, passed, slipped, dropped in rows:
    qps, lost, sent, cpu = float(qps), int(lost), int(sent), float(cpu)
    per_query = cpu / sent * 1e6 if sent else 0.0
    print(f"RRL {label:6}: {qps:9,.0f} responses/s (full or slipped), {sent} sent, {lost} lost ({100 * lost / max(sent, 1):.1f}%), "
          f"picd CPU {cpu:.2f} s ({per_query:.2f} us a query); counters passed {passed}, "
          f"slipped {slipped}, dropped {dropped}")
    kind = label.split("-")[0]
    sums[kind][0] += qps
    sums[kind][1] += per_query
n = len(rows) // 2
off_qps, off_cpu = (v / n for v in sums["off"])
on_qps, on_cpu = (v / n for v in sums["on"])
print(f"RATIO on/off responses/s={on_qps / off_qps:.4f} cpu-per-query={on_cpu / off_cpu:.3f}")
PY
