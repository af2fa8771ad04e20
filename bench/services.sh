#!/usr/bin/env bash
# The service store on a private Docker engine (bridge off, host networking, loopback ports),
# against picd on 127.0.0.1, for every service of the catalog:
#   - the image: `picd services build-images` with the root filesystems cached (ROOTFS cold
#     builds take minutes: `COLD=1` builds them into an empty cache instead);
#   - install: POST /api/store/install until its `done` event (image check, folders, config,
#     container, first healthy answer, route, DNS name), ROUNDS times (remove in between);
#   - the anchor: a plain `docker run` of the same image, entrypoint, mounts and hardening
#     until it answers on its port, ROUNDS times, in the same run;
#   - an account: POST .../accounts for a peer until a client's first accepted login (curl);
#   - memory: each running service's container as `docker stats` reports it.
# Needs root (it starts and stops its own dockerd by PID). PICD_BINARY=FILE measures an
# existing binary instead of building the release one.
set -euo pipefail
source "$(dirname "$0")/common.sh"

ROUNDS=${ROUNDS:-3}
[[ $(id -u) -eq 0 ]] || die "run as root: the benchmark starts its own dockerd"
command -v dockerd >/dev/null || die "dockerd missing: packaging/install-test-deps"
if [[ -n ${PICD_BINARY:-} ]]; then
    PICD=$PICD_BINARY
    PICD_RUN=("${PICD_RUN[@]:0:${#PICD_RUN[@]}-1}" "$PICD")
else
    build_release
fi
machine_note

DOCKER_DIR="$WORK/docker"
mkdir -p "$DOCKER_DIR"
SOCK="$DOCKER_DIR/docker.sock"
dockerd --data-root="$DOCKER_DIR/data" --exec-root="$DOCKER_DIR/exec" \
    --pidfile="$DOCKER_DIR/dockerd.pid" --host="unix://$SOCK" \
    --bridge=none --iptables=false --ip6tables=false >"$DOCKER_DIR/dockerd.log" 2>&1 &
DOCKERD_PID=$!
stop_all() {
    stop_picd
    if [[ -S $SOCK ]]; then
        for id in $(docker -H "unix://$SOCK" ps -aq); do docker -H "unix://$SOCK" rm -f "$id" >/dev/null || true; done
    fi
    kill -TERM "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do running "$DOCKERD_PID" || break; sleep 0.1; done
    wait "$DOCKERD_PID" 2>/dev/null || true
    # The engine leaves its namespace mounts behind.
    awk -v dir="$DOCKER_DIR" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r mount; do umount -l "$mount" || true; done
    rm -rf "$WORK"
}
trap stop_all EXIT
for _ in $(seq 1 300); do docker -H "unix://$SOCK" version >/dev/null 2>&1 && break; sleep 0.2; done

STATE="$WORK/state"
setup_state_dir "$STATE"
CACHE="$ROOT/target/service-images"
[[ ${COLD:-0} == 1 ]] && CACHE="$WORK/cold-cache"
started=$(date +%s.%N)
PICD_DOCKER_SOCKET=$SOCK "$PICD" --config "$WORK/picd.toml" services build-images \
    --state-dir "$STATE" --cache "$CACHE" >"$WORK/build.log" 2>&1 || die "build-images: $(tail -5 "$WORK/build.log")"
ended=$(date +%s.%N)
say "build-images ($([[ ${COLD:-0} == 1 ]] && echo cold || echo 'cached root filesystems')): $(awk "BEGIN { printf \"%.2f\", $ended - $started }") s"
grep -E '^[a-z]+: image sha256:' "$WORK/build.log" >&2 || true

PORT=$(free_port)
PICD_DOCKER_SOCKET=$SOCK start_picd "$STATE" "$PORT"

python3 - "http://127.0.0.1:$PORT" "$ADMIN_USER" "$ADMIN_PASSWORD" "$SOCK" "$STATE" "$WORK" "$ROUNDS" <<'PY'
import http.client, json, os, shutil, socket, statistics, subprocess, sys, time, urllib.parse

base, user, password, sock, state, work, rounds = sys.argv[1:8]
rounds = int(rounds)
host = urllib.parse.urlparse(base).netloc

def connect():
    return http.client.HTTPConnection(host, timeout=300)

conn = connect()
conn.request("POST", "/api/auth/login", json.dumps({"username": user, "password": password}),
             {"Content-Type": "application/json"})
resp = conn.getresponse()
login = json.loads(resp.read())
cookie = "; ".join(c.split(";")[0] for c in resp.headers.get_all("Set-Cookie") or [])
headers = {"Content-Type": "application/json", "X-CSRF-Token": login["csrf_token"], "Cookie": cookie}

def call(method, path, body=None):
    c = connect()
    c.request(method, path, json.dumps(body) if body is not None else None, headers)
    r = c.getresponse()
    return r.status, r.read()

def docker(*args):
    return subprocess.run(["docker", "-H", f"unix://{sock}", *args], capture_output=True, text=True)

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def http_status(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/")
        return c.getresponse().status
    except OSError:
        return None

def greeting(port, starts=b"* OK"):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            return s.recv(64).startswith(starts)
    except OSError:
        return False

def ready(active, ports):
    """How a service shows it answers, as picd's health check asks: its HTTP status, or
    (mail) both Dovecot's IMAP greeting and Postfix's submission greeting."""
    if active.get("http_port"):
        expected = http_status(active["http_port"])
        return lambda: http_status(ports["http"]) == expected
    return lambda: greeting(ports["imap"]) and greeting(ports["submission"], b"220")

def login_ok(active, user, secret):
    if active.get("http_port"):
        url = f"http://127.0.0.1:{active['http_port']}/"
        out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u",
                              f"{user}:{secret}", "-X", "PROPFIND", "-H", "Depth: 0", url],
                             capture_output=True, text=True)
        return out.stdout == "207"
    url = f"imap://127.0.0.1:{active['ports']['imap']}/"
    return subprocess.run(["curl", "-s", "-u", f"{user}:{secret}", url],
                          capture_output=True).returncode == 0

status, body = call("GET", "/api/store")
catalog = json.loads(body)["services"]
status, _ = call("POST", "/api/peers", {"name": "bench-peer"})
assert status == 201, status
ms = lambda t: f"{t * 1000:.0f} ms"

for service in catalog:
    sid = service["id"]
    installs, anchors = [], []
    for r in range(rounds):
        t0 = time.monotonic()
        status, stream = call("POST", "/api/store/install", {"id": sid})
        took = time.monotonic() - t0
        assert b'"step":"done"' in stream and b'"state":"failed"' not in stream, stream[-400:]
        installs.append(took)
        if r < rounds - 1:
            call("POST", "/api/store/remove", {"id": sid, "purge": False})
    # The anchor: the same container by hand, from picd's own spec, on another port.
    # By its labels: the container's name carries the cell's id.
    found = docker("ps", "-aq", "--filter", f"label=org.picd.service={sid}").stdout.split()
    inspect = json.loads(docker("inspect", found[0]).stdout)[0]
    image, config, hc = inspect["Image"], inspect["Config"], inspect["HostConfig"]
    status, body = call("GET", "/api/services/active")
    active = next(s for s in json.loads(body)["services"] if s["id"] == sid)
    picd_ports = active["ports"]
    for r in range(rounds):
        ports = {name: free_port() for name in picd_ports}
        answers = ready(active, ports)
        conf = os.path.join(work, f"anchor-{sid}-{r}")
        shutil.copytree(os.path.join(state, "services", sid, "config"), conf)
        for name in os.listdir(conf):
            path = os.path.join(conf, name)
            text = open(path).read()
            for endpoint, port in picd_ports.items():
                text = text.replace(str(port), str(ports[endpoint]))
            open(path, "w").write(text)
        binds = []
        for b in hc["Binds"]:
            src, dst = b.split(":")[:2]
            if src.endswith("/config"):
                binds += ["-v", f"{conf}:{dst}:ro"]
            else:
                data = os.path.join(work, f"anchor-{sid}-{r}-{os.path.basename(src)}")
                os.makedirs(data); os.chown(data, *map(int, config["User"].split(":")))
                binds += ["-v", f"{data}:{dst}"]
        tmpfs = sum((["--tmpfs", t] for t in hc.get("Tmpfs") or {}), [])
        caps = sum((["--cap-add", c] for c in hc.get("CapAdd") or []), [])
        t0 = time.monotonic()
        run = docker("run", "-d", "--name", f"anchor-{sid}-{r}", "--network", "host", "--read-only",
                     "--cap-drop", "ALL", *caps, "--security-opt", "no-new-privileges:true",
                     "--user", config["User"], "--memory", str(hc["Memory"]),
                     "--pids-limit", str(hc["PidsLimit"]), *tmpfs, *binds,
                     *sum((["-e", e] for e in config.get("Env") or []), []),
                     "--entrypoint", config["Entrypoint"][0], image, *config["Entrypoint"][1:])
        assert run.returncode == 0, run.stderr
        while not answers():
            if time.monotonic() - t0 > 60:
                logs = docker("logs", "--tail", "20", f"anchor-{sid}-{r}")
                raise AssertionError(f"anchor {sid} never answered:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.01)
        anchors.append(time.monotonic() - t0)
        docker("rm", "-f", f"anchor-{sid}-{r}")
    med_i, med_a = statistics.median(installs), statistics.median(anchors)
    print(f"{sid}: install median {ms(med_i)} ({', '.join(ms(t) for t in installs)}); "
          f"docker run median {ms(med_a)} ({', '.join(ms(t) for t in anchors)}); "
          f"RATIO install/docker run {med_i / med_a:.2f}")
    # An account: from the API call to a client's first accepted login.
    t0 = time.monotonic()
    status, body = call("POST", f"/api/services/catalog/{sid}/accounts", {"peer": "bench-peer"})
    api = time.monotonic() - t0
    account = json.loads(body)
    assert status == 201 and account["live"], body
    status, body = call("GET", f"/api/services/catalog/{sid}/accounts/bench-peer/credentials")
    secret = json.loads(body)["password"]
    while not login_ok(active, "bench-peer", secret):
        assert time.monotonic() - t0 < 30, f"{sid}: the new account never logged in"
    login = time.monotonic() - t0
    print(f"{sid}: account API answer {ms(api)} (its own probe waited {account['waited_ms']} ms), "
          f"first client login {ms(login)} after the call")

time.sleep(2)
stats = docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}").stdout
for line in sorted(stats.splitlines()):
    print(f"memory: {line}")
PY
