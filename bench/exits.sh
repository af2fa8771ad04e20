#!/usr/bin/env bash
# A peer through a `wireguard_ext` exit (benches/exits/, the connectivity tests' namespace lab:
# the cell running picd, a peer on wireguard-go, a WireGuard provider and the "internet",
# every one a namespace the benchmark creates and removes; the machine's own ruleset is never
# touched):
#   (a) TCP throughput with iperf3 (IPERF_SECONDS, 5, each run; RUNS, 5, runs; median)
#       through picd's rules, alternating with the anchor: the same namespaces, picd and exit
#       interface with picd's nftables table and `ip rule`s replaced by one hand-made rule
#       into the exit's table and a hand-made masquerade;
#   (b) the provider's wireguard-go stopped by its PID: time to the peer's first refused
#       connection and to `down` in /api/connectivity/status; its restart: time to the first
#       answer through the exit and to `up` (CUTOFF_RUNS, 3, cycles).
# Needs root. The release build of picd and of the benchmark (`cargo bench --no-run`).
set -euo pipefail
source "$(dirname "$0")/common.sh"

[[ $(id -u) -eq 0 ]] || die "needs root (it creates network namespaces)"
for tool in ip nft wg wireguard-go iperf3 python3 curl ping conntrack; do
    command -v "$tool" >/dev/null || die "$tool is missing: run packaging/install-test-deps"
done
say "building picd and the benchmark (release)..."
bench_binary=$(cd "$ROOT" && cargo bench --locked --bench exits --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "exits" and m.get("executable"):
        print(m["executable"])')
[[ -x $bench_binary ]] || die "cargo bench --no-run built no benchmark binary"
machine_note
RUNS=${RUNS:-5} IPERF_SECONDS=${IPERF_SECONDS:-5} CUTOFF_RUNS=${CUTOFF_RUNS:-3} "$bench_binary" --bench
machine_note
