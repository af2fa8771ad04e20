# Shared by the bench/ scripts: build picd in release mode, make a state dir that has
# completed setup, start and stop picd by PID. Everything stays on 127.0.0.1.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PICD="${CARGO_TARGET_DIR:-$ROOT/target}/release/picd"
ADMIN_USER=admin
ADMIN_PASSWORD='bench-password-0123'

say() { printf '%s\n' "$*" >&2; }
die() {
    say "ERROR: $*"
    exit 1
}

# BENCH_SKIP_BUILD=1 measures the release binary already built (say, while sources change).
build_release() {
    if [[ ${BENCH_SKIP_BUILD:-0} == 1 ]]; then
        [[ -x $PICD ]] || die "no binary at $PICD"
        say "using the release binary of $(date -u -r "$PICD" +%Y-%m-%dT%H:%M:%SZ) (BENCH_SKIP_BUILD)"
        return 0
    fi
    say "building picd (release)..."
    (cd "$ROOT" && cargo build --release --locked --quiet) || die "cargo build --release failed"
    [[ -x $PICD ]] || die "no binary at $PICD"
}

# How picd is started. As root, without CAP_NET_ADMIN: a benchmark must not create WireGuard
# interfaces or firewall rules on this machine, and those drivers then report `unavailable`.
PICD_RUN=("$PICD")
if [[ $(id -u) -eq 0 ]] && command -v setpriv >/dev/null; then
    PICD_RUN=(setpriv --bounding-set=-net_admin "$PICD")
fi

# A fresh working folder, removed on exit together with any picd this script started.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/picd-bench.XXXXXX")
PICD_PID=
cleanup() {
    stop_picd
    rm -rf "$WORK"
}
trap cleanup EXIT

# The settings file of every bench run: keeps /etc/picd/picd.toml out of the measurement.
cat >"$WORK/picd.toml" <<TOML
log_level = "warn"
TOML

# setup_state_dir DIR: completes the wizard unattended into DIR. BENCH_UPSTREAMS (a TOML list)
# replaces the default upstreams, which answer nothing (port 9, discard).
setup_state_dir() {
    local upstreams=${BENCH_UPSTREAMS:-'["127.0.0.1:9", "[::1]:9"]'}
    cat >"$WORK/answers.toml" <<TOML
[admin]
username = "$ADMIN_USER"
password = "$ADMIN_PASSWORD"
[cell]
name = "bench"
domain = "bench.example"
public_endpoint = "203.0.113.10"
wireguard_port = 51820
subnet_v4 = "10.77.0.0/24"
subnet_v6 = "fd77:77::/64"
[dns]
upstreams = $upstreams
split_horizon = true
TOML
    "$PICD" --config "$WORK/picd.toml" setup --answers "$WORK/answers.toml" --state-dir "$1" >/dev/null
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_picd STATE_DIR PORT: starts picd in the background, sets PICD_PID, waits for /health.
start_picd() {
    "${PICD_RUN[@]}" --config "$WORK/picd.toml" serve --state-dir "$1" --listen "127.0.0.1:$2" \
        2>>"$WORK/picd.log" &
    PICD_PID=$!
    for _ in $(seq 1 500); do
        curl -fsS -o /dev/null "http://127.0.0.1:$2/health" 2>/dev/null && return 0
        kill -0 "$PICD_PID" 2>/dev/null || die "picd exited: $(tail -5 "$WORK/picd.log")"
        sleep 0.01
    done
    die "picd did not answer /health within 5 s"
}

# running PID: true while the process exists and is not a zombie.
running() {
    [[ -r /proc/$1/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# stop_picd: SIGTERM to the picd this script started, SIGKILL if it is still there 10 s later.
stop_picd() {
    [[ -n $PICD_PID ]] || return 0
    kill -TERM "$PICD_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
        running "$PICD_PID" || break
        sleep 0.1
    done
    if running "$PICD_PID"; then
        say "WARNING: picd (pid $PICD_PID) did not stop within 10 s of SIGTERM; killing it"
        kill -KILL "$PICD_PID" 2>/dev/null || true
    fi
    wait "$PICD_PID" 2>/dev/null || true
    PICD_PID=
}

# median: the median of the numbers on standard input, one a line.
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

machine_note() {
    say "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
