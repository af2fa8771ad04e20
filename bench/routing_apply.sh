#!/usr/bin/env bash
# Applying the cell's nftables table with ENTRIES (10,000) block-list entries (a tenth of them
# with an expiry) and RULES (100) firewall rules. picd runs in a network namespace this script
# creates (the machine's own ruleset is never touched):
#   (a) start: exec of picd until `nft list table inet picd` holds every entry;
#   (b) one more rule through the API with the full table in place, until the rule is
#       `active` (its table applied and read back), RUNS times: median and max;
# Anchor in the same namespace: `nft -f` of the very table picd applied (read back with
# `nft list table`, replaced whole the way picd does), RUNS times.
# Needs root. PICD_BINARY=FILE measures an existing binary instead of the release build.
set -euo pipefail
source "$(dirname "$0")/common.sh"

ENTRIES=${ENTRIES:-10000}
RULES=${RULES:-100}
RUNS=${RUNS:-5}
PORT=3000
NS="prbench$$"

[[ $(id -u) -eq 0 ]] || die "needs root (it creates a network namespace)"
for tool in ip nft python3 curl; do
    command -v "$tool" >/dev/null || die "$tool is missing: run packaging/install-test-deps"
done
if [[ -n ${PICD_BINARY:-} ]]; then PICD=$PICD_BINARY; else build_release; fi
bench_cleanup() {
    cleanup
    ip netns del "$NS" 2>/dev/null || true
}
trap bench_cleanup EXIT
in_ns() { ip netns exec "$NS" "$@"; }
machine_note
ip netns add "$NS"
in_ns ip link set lo up

STATE="$WORK/state"
setup_state_dir "$STATE"
python3 - "$STATE/picd.db" "$ENTRIES" "$RULES" <<'PY'
import sqlite3, sys, uuid
db, entries, rules = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conn = sqlite3.connect(db)
now = "2026-12-07T00:00:00Z"
with conn:
    for i in range(rules):
        conn.execute(
            "INSERT INTO routing_firewall_rules (id, name, chain, protocol, port_start, port_end,"
            " action, position, created_at) VALUES (?, ?, 'input', 'tcp', ?, ?, 'drop', ?, ?)",
            (str(uuid.uuid4()), f"bench {i}", 10000 + i, 10000 + i, 100 + i, now))
    for i in range(entries):
        # Every other address: neighbours would be merged into one interval (auto-merge).
        n = 2 * i
        address = f"198.{18 + n // 65536}.{(n // 256) % 256}.{n % 256}"
        expires = "2099-01-01T00:00:00Z" if i % 10 == 0 else None
        conn.execute(
            "INSERT INTO routing_ip_list (id, list_type, ip_address, reason, expires_at, created_at)"
            " VALUES (?, 'blacklist', ?, 'bench', ?, ?)",
            (str(uuid.uuid4()), address, expires, now))
PY

count_entries() {
    in_ns nft -j list set inet picd block4 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin)["nftables"]; print(sum(len(x["set"].get("elem", [])) for x in d if "set" in x))' 2>/dev/null || echo 0
}

started=$(date +%s.%N)
PICD_WIREGUARD_MODE=off PICD_RECONCILE_INTERVAL_SECONDS=3600 \
    ip netns exec "$NS" "$PICD" --config "$WORK/picd.toml" serve --state-dir "$STATE" \
    --listen "127.0.0.1:$PORT" 2>>"$WORK/picd.log" &
PICD_PID=$!
for _ in $(seq 1 3000); do
    [[ $(count_entries) -ge $ENTRIES ]] && break
    running "$PICD_PID" || die "picd exited: $(tail -5 "$WORK/picd.log")"
    sleep 0.01
done
ended=$(date +%s.%N)
[[ $(count_entries) -ge $ENTRIES ]] || die "the table never held $ENTRIES entries: $(tail -5 "$WORK/picd.log")"
say "(a) start until the table holds $ENTRIES entries and $RULES rules: $(awk "BEGIN { printf \"%.0f ms\", ($ended - $started) * 1000 }")"

say "(b) one more rule through the API, until it is active ($RUNS runs)..."
ip netns exec "$NS" python3 - "$PORT" "$ADMIN_USER" "$ADMIN_PASSWORD" "$RUNS" <<'PY'
import http.client, json, statistics, sys, time
port, user, password, runs = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
conn.request("POST", "/api/auth/login", json.dumps({"username": user, "password": password}),
             {"Content-Type": "application/json"})
resp = conn.getresponse()
login = json.loads(resp.read())
cookie = "; ".join(c.split(";")[0] for c in resp.headers.get_all("Set-Cookie") or [])
headers = {"Content-Type": "application/json", "X-CSRF-Token": login["csrf_token"], "Cookie": cookie}
times = []
for i in range(runs):
    body = {"name": f"late {i}", "chain": "input", "protocol": "udp", "port_start": 20000 + i,
            "action": "drop"}
    t0 = time.monotonic()
    conn.request("POST", "/api/routing/firewall", json.dumps(body), headers)
    r = conn.getresponse(); created = json.loads(r.read())
    assert r.status == 201, created
    while True:
        conn.request("GET", "/api/routing/firewall", None, headers)
        rules = json.loads(conn.getresponse().read())["rules"]
        if any(x["id"] == created["id"] and x["status"] == "active" for x in rules):
            break
        assert time.monotonic() - t0 < 60, "the rule never became active"
    times.append(time.monotonic() - t0)
print(f"(b) median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
      f"({', '.join(f'{t * 1000:.0f}' for t in times)})")
PY

# The anchor: the same table by hand, replaced whole as picd does it.
{
    echo "table inet picd {}"
    echo "delete table inet picd"
    in_ns nft list table inet picd
} >"$WORK/table.nft"
times=()
for _ in $(seq 1 "$RUNS"); do
    t0=$(date +%s.%N)
    in_ns nft -f "$WORK/table.nft"
    t1=$(date +%s.%N)
    times+=("$(awk "BEGIN { printf \"%.0f\", ($t1 - $t0) * 1000 }")")
done
say "anchor: nft -f of the same table ($(wc -c <"$WORK/table.nft") bytes): median $(printf '%s\n' "${times[@]}" | median) ms (${times[*]})"
