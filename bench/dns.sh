#!/usr/bin/env bash
# bench/dns.sh - picd's DNS engine beside Knot DNS and NSD under the same dnsperf workload.
#
# usage: bench/dns.sh [PORT]        (PORT for picd, default 5390; Knot and NSD take
#                                    ANCHOR_PORT_BASE and +1, default 5391 and 5392)
#
# Builds picd in release mode, then runs the shared anchor script
# (../shared/bench/dns_anchor.sh, or $DNS_ANCHOR) with picd's standalone server as the server
# under test: `picd dns serve --zone-file cell.test.zone --origin cell.test`. The anchor script
# starts Knot and NSD itself, checks that all three give the same answers, pins the servers to
# one core and dnsperf to the other, and prints per-core and total ratios (its last line is
# `RATIO picd/knot=... picd/nsd=...`). Every variable dns_anchor.sh reads passes through
# (DURATION, RUNS, CLIENTS, OUTSTANDING, LAT_QPS, ANCHORS, ...). The output is also kept in
# bench/out/dns-<UTC time>.txt.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PORT=${1:-5390}
SHARED=$(cd "$ROOT/.." && pwd)/shared/bench
ANCHOR=${DNS_ANCHOR:-$SHARED/dns_anchor.sh}
ZONE=${DNS_ZONE:-$(dirname "$ANCHOR")/cell.test.zone}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

[[ $PORT =~ ^[0-9]+$ ]] || { echo "dns.sh: PORT must be a number" >&2; exit 2; }
[ -x "$ANCHOR" ] || [ -r "$ANCHOR" ] || { echo "dns.sh: no anchor script at $ANCHOR (set DNS_ANCHOR)" >&2; exit 2; }
[ -r "$ZONE" ] || { echo "dns.sh: cannot read the zone $ZONE" >&2; exit 2; }

(cd "$ROOT" && cargo build --release --bin picd)
BIN="$TARGET/release/picd"
[ -x "$BIN" ] || { echo "dns.sh: no binary at $BIN" >&2; exit 2; }

mkdir -p "$HERE/out"
OUT="$HERE/out/dns-$(date -u +%Y%m%dT%H%M%SZ).txt"
export UT_NAME=picd
# picd logs only warnings here: the benchmark measures answering, not logging.
export UT_CMD="env PICD_LOG_LEVEL=warn $BIN dns serve --zone-file $ZONE --origin cell.test --listen 127.0.0.1:$PORT"
{
  echo "# picd $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -srm)"
  bash "$ANCHOR" "$PORT" "$ZONE"
} 2>&1 | tee "$OUT"
echo "# kept in $OUT"
