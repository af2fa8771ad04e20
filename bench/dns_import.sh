#!/usr/bin/env bash
# Import of a 100,000-record zone file (POST /api/dns/zones/{zone}/import) against the release
# binary on 127.0.0.1: its wall time, and the p99 latency of concurrent mutating API calls
# (PUT /api/config, each a durable change with its audit entry, paced at about RATE/s) during
# the imports, against the same calls without an import, in ROUNDS alternating rounds of one run.
# Target: the import in seconds (not minutes), and other writes keep their latency (the
# import is written in short writer jobs, never one long transaction).
set -euo pipefail
source "$(dirname "$0")/common.sh"

RECORDS=${RECORDS:-100000}
RATE=${RATE:-50}
BASELINE_SECONDS=${BASELINE_SECONDS:-12}
ROUNDS=${ROUNDS:-3}

build_release
machine_note
# The DNS server on a loopback port of its own, so each change also rebuilds its snapshot.
DNS_PORT=$(free_port)
echo "dns_listen = [\"127.0.0.1:$DNS_PORT\"]" >>"$WORK/picd.toml"
STATE="$WORK/state"
setup_state_dir "$STATE"
PORT=$(free_port)
start_picd "$STATE" "$PORT"

python3 - "http://127.0.0.1:$PORT" "$ADMIN_USER" "$ADMIN_PASSWORD" "$RECORDS" "$RATE" "$BASELINE_SECONDS" "$ROUNDS" <<'PY'
import http.client, json, sys, threading, time, urllib.parse

base, user, password, records, rate, baseline_seconds, rounds = sys.argv[1:8]
records, rate, baseline_seconds, rounds = int(records), float(rate), float(baseline_seconds), int(rounds)
host = urllib.parse.urlparse(base).netloc

def connect():
    return http.client.HTTPConnection(host, timeout=600)

conn = connect()
conn.request("POST", "/api/auth/login", json.dumps({"username": user, "password": password}),
             {"Content-Type": "application/json"})
resp = conn.getresponse()
login = json.loads(resp.read())
cookie = "; ".join(c.split(";")[0] for c in resp.headers.get_all("Set-Cookie") or [])
headers = {"Content-Type": "application/json", "X-CSRF-Token": login["csrf_token"], "Cookie": cookie}

def call(c, method, path, body=None, extra=None):
    h = dict(headers, **(extra or {}))
    c.request(method, path, body, h)
    r = c.getresponse()
    return r.status, r.read()

status, body = call(conn, "GET", "/api/config")
config = json.loads(body)
bodies = []
for split in (True, False):
    config["dns"]["split_horizon"] = split
    bodies.append(json.dumps(config))

def mutate_for(stop, out):
    c = connect()
    i = 0
    while not stop():
        started = time.perf_counter()
        status, _ = call(c, "PUT", "/api/config", bodies[i % 2])
        out.append(time.perf_counter() - started)
        assert status == 200, status
        i += 1
        time.sleep(max(0.0, 1.0 / rate - (time.perf_counter() - started)))

def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] * 1000

# Rounds of quiet then import, so that whatever else the machine runs weighs on both sides.
zone = "".join(f"h{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n" for i in range(records))
quiet, busy, seconds = [], [], []
for r in range(rounds):
    deadline = time.monotonic() + baseline_seconds / rounds
    mutate_for(lambda: time.monotonic() > deadline, quiet)
    name = f"import{r}.example"
    status, body = call(conn, "POST", "/api/dns/zones", json.dumps({"name": name}))
    assert status == 201, (status, body)
    done = threading.Event()
    worker = threading.Thread(target=mutate_for, args=(done.is_set, busy))
    worker.start()
    started = time.perf_counter()
    status, body = call(connect(), "POST", f"/api/dns/zones/{name}/import", zone,
                        {"Content-Type": "text/plain"})
    seconds.append(time.perf_counter() - started)
    done.set()
    worker.join()
    result = json.loads(body)
    assert status == 200 and result["imported"] == records, (status, body[:300])

best = min(seconds)
print(f"import of {records} records, {rounds} rounds: best {best:.2f} s ({records / best:.0f} records/s), "
      f"worst {max(seconds):.2f} s, {len(zone) / 1e6:.1f} MB")
print(f"PUT /api/config without an import: p50 {pct(quiet, 0.5):.2f} ms, p99 {pct(quiet, 0.99):.2f} ms ({len(quiet)} calls)")
print(f"PUT /api/config during the imports: p50 {pct(busy, 0.5):.2f} ms, p99 {pct(busy, 0.99):.2f} ms ({len(busy)} calls), "
      f"max {max(busy) * 1000:.1f} ms")
print(f"ratio during/without: p50 {pct(busy, 0.5) / pct(quiet, 0.5):.2f}, p99 {pct(busy, 0.99) / pct(quiet, 0.99):.2f}")
PY
