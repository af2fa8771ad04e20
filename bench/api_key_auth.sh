#!/usr/bin/env bash
# What API-key authentication costs per request, against a session: the same read route
# (GET ROUTE, default /api/config) with wrk at one connection, closed loop, for DURATION
# seconds (default 10) a run: with the admin's session cookie and with read-only API keys
# (Authorization: Bearer), ROUNDS times (default 2) in alternating order so that a drift of
# the machine's load favours neither. Reports each run's median latency, the median over the
# runs of each way, and the difference.
# Target: the key adds under 50 microseconds at the median.
# Bounded in time; traffic only to 127.0.0.1; stops only the picd it started, by PID.
set -euo pipefail
source "$(dirname "$0")/common.sh"

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
ROUTE=${ROUTE:-/api/config}
# Several keys share the load so that none reaches its limit (at most 100000 a minute).
KEYS=${KEYS:-4}
RATE_LIMIT=100000
command -v wrk >/dev/null || die "wrk is not installed (packaging/install-test-deps)"

build_release
machine_note
STATE="$WORK/state"
setup_state_dir "$STATE"
PORT=$(free_port)
start_picd "$STATE" "$PORT"
BASE="http://127.0.0.1:$PORT"
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# A session: the cookie from the jar, the CSRF token from the login's answer.
curl -fsS -c "$WORK/jar" -H 'Content-Type: application/json' \
    -d "{\"username\":\"$ADMIN_USER\",\"password\":\"$ADMIN_PASSWORD\"}" \
    "$BASE/api/auth/login" >"$WORK/login.json" || die "login failed"
CSRF=$(json_field "$WORK/login.json" csrf_token)
COOKIE="picd_session=$(awk '$6 == "picd_session" { print $7 }' "$WORK/jar")"
[[ $COOKIE != picd_session= ]] || die "no session cookie after login"

TOKENS=()
for i in $(seq 1 "$KEYS"); do
    code=$(curl -sS -o "$WORK/key.json" -w '%{http_code}' -b "$WORK/jar" -H "X-CSRF-Token: $CSRF" \
        -H 'Content-Type: application/json' \
        -d "{\"name\":\"bench-$i\",\"scopes\":[\"read-only\"],\"rate_limit_per_minute\":$RATE_LIMIT}" \
        "$BASE/api/keys")
    [[ $code == 200 ]] || die "creating an API key answered $code: $(cat "$WORK/key.json")"
    TOKENS+=("Bearer $(json_field "$WORK/key.json" token)")
done
KEY_VALUES=$(IFS=,; echo "${TOKENS[*]}")

# Both ways reach the route before anything is measured.
for auth in "Cookie: $COOKIE" "Authorization: ${TOKENS[0]}"; do
    code=$(curl -sS -o /dev/null -w '%{http_code}' -H "$auth" "$BASE$ROUTE")
    [[ $code == 200 ]] || die "GET $ROUTE with ${auth%%:*} answered $code"
done

# run_wrk SECONDS HEADER VALUES: prints wrk's RESULT line (see api_key_auth.lua).
run_wrk() {
    ROUTE=$ROUTE AUTH_HEADER=$2 AUTH_VALUES=$3 timeout $(($1 + 30)) \
        wrk -t1 -c1 -d"$1"s --timeout 5s -s "$ROOT/bench/api_key_auth.lua" "$BASE" \
        >"$WORK/wrk.out" 2>&1 || die "wrk failed: $(cat "$WORK/wrk.out")"
    grep '^RESULT' "$WORK/wrk.out"
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }

say "warming up (2 s each)..."
run_wrk 2 Cookie "$COOKIE" >/dev/null
run_wrk 2 Authorization "$KEY_VALUES" >/dev/null
sessions=()
keys=()
measure_session() {
    say "GET $ROUTE with the session cookie, 1 connection, ${DURATION} s..."
    sessions+=("$(run_wrk "$DURATION" Cookie "$COOKIE")")
    say "${sessions[-1]}"
}
measure_key() {
    say "GET $ROUTE with API keys (Bearer), 1 connection, ${DURATION} s..."
    keys+=("$(run_wrk "$DURATION" Authorization "$KEY_VALUES")")
    say "${keys[-1]}"
}
for round in $(seq 1 "$ROUNDS"); do
    if ((round % 2)); then
        measure_session
        measure_key
    else
        measure_key
        measure_session
    fi
done
stop_picd

for result in "${sessions[@]}" "${keys[@]}"; do
    [[ $(field non2xx "$result") == 0 && $(field socket_errors "$result") == 0 ]] ||
        die "some answers were not 200 (a rate limit reached?): $result"
done

python3 - "$ROUTE" "$ROUNDS" "${sessions[@]}" "${keys[@]}" <<'PY'
import statistics
import sys

def parse(line):
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}

route, rounds = sys.argv[1], int(sys.argv[2])
runs = [parse(line) for line in sys.argv[3:]]
ways = (("session cookie", runs[:rounds]), ("API key", runs[rounds:]))
p50 = {}
for name, results in ways:
    for r in results:
        print(f"GET {route} with {name}: {r['rate']:.0f} req/s, p50 {r['p50_us']:.0f} us, "
              f"p90 {r['p90_us']:.0f} us, p99 {r['p99_us']:.0f} us, mean {r['mean_us']:.1f} us")
    p50[name] = statistics.median(r["p50_us"] for r in results)
added = p50["API key"] - p50["session cookie"]
print(f"median latency over {rounds} run(s) of {route}: session {p50['session cookie']:.0f} us, "
      f"API key {p50['API key']:.0f} us")
print(f"API-key authentication adds {added:+.0f} us at the median against a session "
      f"[target < 50 us: {'met' if added < 50 else 'NOT met'}]")
PY
