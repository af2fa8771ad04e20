#!/usr/bin/env bash
# Logins under a burst of 60 simultaneous requests, before and after the bounded hash pool and
# the throttle that counts an attempt before verifying it: the release binary of BEFORE_REV
# (default a5857f3, main before the change, built in a worktree of its own at BEFORE_TREE)
# against this tree's, in the same run, alternating (see login.py for the two bursts). Reports
# latency p50/p99, peak RSS (VmHWM) and the most threads, and the ratios after/before.
# Bounded in time; traffic only to 127.0.0.1; stops only the picd it started, by PID.
set -euo pipefail
source "$(dirname "$0")/common.sh"

BEFORE_REV=${BEFORE_REV:-a5857f3}
BEFORE_TREE=${BEFORE_TREE:-$ROOT/../auth-base}
# Both builds share one target directory (the dependencies are built once), kept apart from
# the tree's own debug target.
RELEASE_TARGET=${RELEASE_TARGET:-$BEFORE_TREE/target}
ROUNDS=${ROUNDS:-3}
BURST=${BURST:-60}

if [[ ! -d $BEFORE_TREE ]]; then
    git -C "$ROOT" worktree add --detach "$BEFORE_TREE" "$BEFORE_REV" >&2
fi
[[ $(git -C "$BEFORE_TREE" rev-parse HEAD) == $(git -C "$ROOT" rev-parse "$BEFORE_REV") ]] ||
    die "$BEFORE_TREE is not at $BEFORE_REV"
for tree in before:"$BEFORE_TREE" after:"$ROOT"; do
    say "building picd ${tree%%:*} (release)..."
    (cd "${tree#*:}" && CARGO_TARGET_DIR=$RELEASE_TARGET cargo build --release --locked --quiet) ||
        die "cargo build --release failed in ${tree#*:}"
    cp "$RELEASE_TARGET/release/picd" "$WORK/picd-${tree%%:*}"
done
machine_note
python3 "$ROOT/bench/login.py" --before "$WORK/picd-before" --after "$WORK/picd-after" \
    --work "$WORK" --rounds "$ROUNDS" --burst "$BURST"
