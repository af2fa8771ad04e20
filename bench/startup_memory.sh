#!/usr/bin/env bash
# Start-up time (exec to the first answer of GET /health, median of RUNS runs) and idle
# resident memory (VmRSS after setup and a few requests) of the release binary.
# Targets: start-up under 100 ms; idle RSS under 20 MB.
set -euo pipefail
source "$(dirname "$0")/common.sh"

RUNS=${RUNS:-20}

build_release
machine_note
STATE="$WORK/state"
setup_state_dir "$STATE"
PORT=$(free_port)

say "start-up, state dir already set up ($RUNS runs)..."
existing=$(timeout 300 python3 "$ROOT/bench/startup.py" "$RUNS" "$PORT" "$STATE" "${PICD_RUN[@]}" --config "$WORK/picd.toml")
say "$existing"
say "start-up, fresh state dir: migrations included ($RUNS runs)..."
fresh=$(timeout 300 python3 "$ROOT/bench/startup.py" "$RUNS" "$PORT" "" "${PICD_RUN[@]}" --config "$WORK/picd.toml")
say "$fresh"

# idle_memory: starts picd on the set-up state dir, logs in, makes a few requests, waits, and
# prints "VmRSS VmHWM Threads" (kB, kB, count).
idle_memory() {
    start_picd "$STATE" "$PORT"
    local base="http://127.0.0.1:$PORT" csrf path
    curl -fsS -c "$WORK/jar" -H 'Content-Type: application/json' \
        -d "{\"username\":\"$ADMIN_USER\",\"password\":\"$ADMIN_PASSWORD\"}" \
        "$base/api/auth/login" >"$WORK/login.json" || die "login failed"
    csrf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf_token"])' "$WORK/login.json")
    for path in /api/auth/me /api/status /api/config /api/audit /api/audit/verify "/api/audit/export?format=csv" / /setup; do
        curl -fsS -o /dev/null -b "$WORK/jar" "$base$path" || die "GET $path failed"
    done
    curl -fsS -b "$WORK/jar" "$base/api/config" -o "$WORK/config.json" || die "GET /api/config failed"
    curl -fsS -o /dev/null -X PUT -b "$WORK/jar" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
        --data-binary @"$WORK/config.json" "$base/api/config" || die "PUT /api/config failed"
    sleep 3
    awk '/^(VmRSS|VmHWM|Threads):/ { v[$1] = $2 } END { print v["VmRSS:"], v["VmHWM:"], v["Threads:"] }' \
        "/proc/$PICD_PID/status"
    stop_picd
}

say "idle memory after setup, a login and a few requests (GLIBC_TUNABLES unset)..."
idle_memory >"$WORK/mem_default"
say "the same with glibc's malloc tunables as systemd/picd.service sets them..."
TUNABLES=$(sed -n 's/^Environment=GLIBC_TUNABLES=//p' "$ROOT/systemd/picd.service")
GLIBC_TUNABLES="$TUNABLES" idle_memory >"$WORK/mem_tuned"

python3 - "$existing" "$fresh" "$(cat "$WORK/mem_default")" "$(cat "$WORK/mem_tuned")" <<'PY'
import sys

def parse(line):
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}

existing, fresh = parse(sys.argv[1]), parse(sys.argv[2])
for name, r in [("set-up state dir", existing), ("fresh state dir", fresh)]:
    print(f"start-up to /health ({name}): median {r['median_ms']:.1f} ms over {r['runs']:.0f} runs "
          f"(min {r['min_ms']:.1f}, max {r['max_ms']:.1f}) [target < 100 ms: {'met' if r['median_ms'] < 100 else 'NOT met'}]")
for name, mem in [("plain start, picd sets its tunables", sys.argv[3]), ("picd.service tunables", sys.argv[4])]:
    rss, hwm, threads = mem.split()
    rss, hwm = int(rss) / 1024, int(hwm) / 1024
    print(f"idle RSS after login and requests ({name}): {rss:.1f} MB (peak {hwm:.1f} MB, {threads} threads) "
          f"[target < 20 MB: {'met' if rss < 20 else 'NOT met'}]")
PY
