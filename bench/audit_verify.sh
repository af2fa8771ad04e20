#!/usr/bin/env bash
# Times `picd audit verify` (offline, on the state dir) over an audit log of ENTRIES entries
# (default 1,000,000), and sha256sum over the same number of bytes as an anchor.
# Target: under 1 s for 1,000,000 entries.
set -euo pipefail
source "$(dirname "$0")/common.sh"

ENTRIES=${ENTRIES:-1000000}
RUNS=${RUNS:-10}

build_release
machine_note
STATE="$WORK/state"
setup_state_dir "$STATE"

say "filling the audit log to $ENTRIES entries..."
SECONDS=0
BYTES=$(timeout 600 python3 "$ROOT/bench/fill_audit.py" "$STATE/picd.db" "$ENTRIES")
say "filled in ${SECONDS} s; the chain covers $BYTES bytes"

# The filled chain must verify, or the timing means nothing.
report=$("$PICD" --config "$WORK/picd.toml" audit verify --state-dir "$STATE") ||
    die "verify failed on the generated log: $report"
python3 - "$report" "$ENTRIES" <<'PY' || die "unexpected report: $report"
import json, sys
r = json.loads(sys.argv[1])
assert r["valid"] is True and r["checked"] == int(sys.argv[2]), r
PY
say "db size: $(du -h "$STATE/picd.db" | cut -f1)"

head -c "$BYTES" /dev/urandom >"$WORK/anchor.bin"

# time_median NAME COMMAND: median wall time in seconds over RUNS runs (after one warm-up).
time_median() {
    local name=$1 cmd=$2
    if command -v hyperfine >/dev/null; then
        timeout 600 hyperfine --style none --warmup 1 --runs "$RUNS" --output null \
            --export-json "$WORK/$name.json" "$cmd" >&2
        python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$WORK/$name.json"
    else
        bash -c "$cmd" >/dev/null
        for _ in $(seq "$RUNS"); do
            local t0 t1
            t0=$(date +%s%N)
            timeout 120 bash -c "$cmd" >/dev/null
            t1=$(date +%s%N)
            echo "$(((t1 - t0) / 1000))e-6"
        done | median
    fi
}

verify_s=$(time_median verify "'$PICD' --config '$WORK/picd.toml' audit verify --state-dir '$STATE'")
sha_s=$(time_median sha256sum "sha256sum '$WORK/anchor.bin'")
# coreutils' sha256sum does not use the CPU's SHA instructions; OpenSSL (like picd's sha2
# crate) does, so it is the floor for hashing the same bytes.
ossl_s=$(time_median openssl "openssl dgst -sha256 '$WORK/anchor.bin'")

python3 - "$ENTRIES" "$BYTES" "$verify_s" "$sha_s" "$ossl_s" <<'PY'
import sys
n, nbytes = int(sys.argv[1]), int(sys.argv[2])
v, s, o = (float(x) for x in sys.argv[3:6])
mb = nbytes / 1e6
print(f"audit verify: {n} entries ({mb:.1f} MB hashed): median {v * 1000:.0f} ms "
      f"({n / v / 1e6:.2f} M entries/s) [target < 1000 ms: {'met' if v < 1 else 'NOT met'}]")
print(f"anchor sha256sum over {mb:.1f} MB: median {s * 1000:.0f} ms ({mb / s:.0f} MB/s); "
      f"ratio verify / sha256sum: {v / s:.2f}")
print(f"anchor openssl dgst -sha256 over {mb:.1f} MB: median {o * 1000:.0f} ms ({mb / o:.0f} MB/s); "
      f"ratio verify / openssl: {v / o:.2f}")
PY
