#!/usr/bin/env bash
# Latency of a mutating API call with its audit entry, durably committed: PUT /api/config
# (each request really changes a field) against the release binary on 127.0.0.1, at about
# RATE requests/s (default 500) for DURATION seconds, with wrk. Anchor: a plain durable SQLite
# commit (WAL, synchronous=FULL) on the same disk.
# Target: p99 under 2 ms at 500 requests/s.
set -euo pipefail
source "$(dirname "$0")/common.sh"

RATE=${RATE:-500}
DURATION=${DURATION:-30}
CONNS=${CONNS:-10}
command -v wrk >/dev/null || die "wrk is not installed (packaging/install-test-deps)"

build_release
machine_note
STATE="$WORK/state"
setup_state_dir "$STATE"
PORT=$(free_port)
start_picd "$STATE" "$PORT"
BASE="http://127.0.0.1:$PORT"

# Log in: the session cookie comes back in the jar, the CSRF token in the body.
curl -fsS -c "$WORK/jar" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$ADMIN_USER\",\"password\":\"$ADMIN_PASSWORD\"}" \
    "$BASE/api/auth/login" >"$WORK/login.json" || die "login failed"
CSRF=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf_token"])' "$WORK/login.json")
COOKIE="picd_session=$(awk '$6 == "picd_session" { print $7 }' "$WORK/jar")"
[[ $COOKIE != picd_session= ]] || die "no session cookie after login"

# Two bodies that differ in one field, both exactly what GET /api/config returns.
curl -fsS -b "$WORK/jar" "$BASE/api/config" >"$WORK/config.json" || die "GET /api/config failed"
BODY_A=$(cat "$WORK/config.json")
BODY_B=$(python3 -c 'import json,sys; c = json.load(open(sys.argv[1])); c["dns"]["split_horizon"] = not c["dns"]["split_horizon"]; print(json.dumps(c))' "$WORK/config.json")
code=$(curl -sS -o "$WORK/put.json" -w '%{http_code}' -X PUT -b "$WORK/jar" -H "X-CSRF-Token: $CSRF" \
    -H 'Content-Type: application/json' -d "$BODY_B" "$BASE/api/config")
[[ $code == 200 ]] || die "PUT /api/config answered $code: $(cat "$WORK/put.json")"
export CSRF COOKIE BODY_A BODY_B

audit_count() {
    python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM audit_log").fetchone()[0])' "$STATE/picd.db"
}

# run_wrk SECONDS CONNECTIONS DELAY_MS: prints wrk's RESULT line (see put_config.lua).
run_wrk() {
    DELAY_MS=$3 timeout $(($1 + 30)) wrk -t1 -c"$2" -d"$1"s --timeout 5s \
        -s "$ROOT/bench/put_config.lua" "$BASE" >"$WORK/wrk.out" 2>&1 || die "wrk failed: $(cat "$WORK/wrk.out")"
    grep '^RESULT' "$WORK/wrk.out"
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }

say "warming up..."
run_wrk 3 1 0 >/dev/null

before=$(audit_count)
say "closed loop, one connection, as fast as it answers (10 s)..."
closed=$(run_wrk 10 1 0)
say "$closed"

# Pace each connection so that CONNS of them offer about RATE requests/s, given the latency
# just measured: after each answer a connection pauses for a random time with that mean (as
# independent clients do; see bench/put_config.lua).
mean_ms=$(python3 -c "print($(field mean_us "$closed") / 1000)")
delay_ms=$(python3 -c "print(max(0, round($CONNS * 1000 / $RATE - $mean_ms)))")
say "paced: $CONNS connections, pauses of ${delay_ms} ms on average after each answer, ${DURATION} s..."
paced=$(run_wrk "$DURATION" "$CONNS" "$delay_ms")
say "$paced"
after=$(audit_count)
say "anchor: GET /health with the same connections and pacing, ${DURATION} s..."
health=$(GET_HEALTH=1 run_wrk "$DURATION" "$CONNS" "$delay_ms")
say "$health"
stop_picd

# wrk counts the answers it read; requests still in flight when a run ends (at most one per
# connection) were served and audited too.
requests=$(($(field requests "$closed") + $(field requests "$paced")))
written=$((after - before))
say "audit entries written during the two runs: $written for $requests answered requests"
((written >= requests && written <= requests + CONNS + 2)) ||
    say "WARNING: not one audit entry per request ($written entries, $requests requests)"
[[ $(field non2xx "$paced") == 0 && $(field non2xx "$closed") == 0 ]] || say "WARNING: some answers were not 2xx"
"$PICD" --config "$WORK/picd.toml" audit verify --state-dir "$STATE" >"$WORK/verify.json" ||
    die "the audit chain does not verify after the run: $(cat "$WORK/verify.json")"

say "anchor: durable SQLite commits (WAL, synchronous=FULL) on the same disk..."
anchor=$(timeout 300 python3 "$ROOT/bench/sqlite_commit.py" "$WORK/anchor.db" 5000)
say "$anchor"

python3 - "$closed" "$paced" "$anchor" "$RATE" "$health" <<'PY'
import sys

def parse(line):
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}

closed, paced, anchor, rate = parse(sys.argv[1]), parse(sys.argv[2]), parse(sys.argv[3]), sys.argv[4]
health = parse(sys.argv[5])
ms = lambda us: f"{us / 1000:.2f} ms"
print(f"PUT /api/config closed loop (1 connection): {closed['rate']:.0f} req/s, "
      f"p50 {ms(closed['p50_us'])}, p99 {ms(closed['p99_us'])}, max {ms(closed['max_us'])}")
print(f"PUT /api/config paced at {paced['rate']:.0f} req/s (target {rate}): p50 {ms(paced['p50_us'])}, "
      f"p90 {ms(paced['p90_us'])}, p99 {ms(paced['p99_us'])}, p99.9 {ms(paced['p999_us'])}, "
      f"max {ms(paced['max_us'])} [target p99 < 2 ms: {'met' if paced['p99_us'] < 2000 else 'NOT met'}]")
print(f"anchor durable SQLite commit: p50 {ms(anchor['p50_us'])}, p99 {ms(anchor['p99_us'])}")
print(f"anchor GET /health paced the same way at {health['rate']:.0f} req/s: p50 {ms(health['p50_us'])}, "
      f"p90 {ms(health['p90_us'])}, p99 {ms(health['p99_us'])}")
print(f"ratio picd p99 / SQLite commit p99: {paced['p99_us'] / anchor['p99_us']:.1f}; "
      f"p99 / GET /health p99: {paced['p99_us'] / health['p99_us']:.1f}")
PY
