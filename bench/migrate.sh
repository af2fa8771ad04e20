#!/usr/bin/env bash
# Upgrading a large 0.1.0 state: the 0.1.0 fixture (tests/fixtures/state-0.1.0, made by that
# release's code) grown to 1,000 peers and 100,000 DNS records with SQL in its own schema,
# then `picd migrate` timed (the pre-migration backup included) and the backup's size.
#
#   bench/migrate.sh            (PICD_BINARY=FILE to time an existing binary instead of a
#                                release build)
set -euo pipefail
source "$(dirname "$0")/common.sh"

PEERS=${PEERS:-1000}
RECORDS=${RECORDS:-100000}
FIXTURE=$ROOT/tests/fixtures/state-0.1.0/state.tar.gz
[[ -f $FIXTURE ]] || die "no $FIXTURE: run packaging/make-state-fixture"
if [[ -n ${PICD_BINARY:-} ]]; then
    PICD=$PICD_BINARY
else
    build_release
fi
command -v sqlite3 >/dev/null || die "sqlite3 is missing: packaging/install-test-deps"

tar -xzf "$FIXTURE" -C "$WORK"
STATE=$WORK/state
sqlite3 "$STATE/picd.db" <<SQL
PRAGMA foreign_keys = OFF;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $PEERS)
INSERT INTO peers (name, public_key, key_source, has_preshared_key, address_v4, address_v6,
                   tunnel, allowed_ips, persistent_keepalive, enabled, expires_at, user_id,
                   created_at, updated_at)
SELECT 'bench-' || i, printf('bench%039d=', i), 'client', 0,
       '10.' || (100 + i / 65536) || '.' || (i / 256 % 256) || '.' || (i % 256),
       printf('fd99::%x', i), 'split', '10.77.0.0/24', NULL, 1, NULL, NULL,
       '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'
FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $RECORDS)
INSERT INTO dns_records (id, zone, name, type, ttl, data, view, wire, created_at, updated_at)
SELECT printf('bench-%08d', i), 'lab.example', 'host' || i, 'A', 300,
       '192.0.' || (i / 256 % 256) || '.' || (i % 256), CASE i % 2 WHEN 0 THEN 'public' ELSE 'internal' END,
       zeroblob(4), '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'
FROM n;
COMMIT;
SQL
before=$(stat -c %s "$STATE/picd.db")
start=$(date +%s.%N)
"$PICD" --state-dir "$STATE" migrate >&2
end=$(date +%s.%N)
backup=$(ls "$STATE"/backups/pre-migrate-*.db)
printf 'state: %d peers, %d records, database %d KiB\n' "$PEERS" "$RECORDS" $((before / 1024))
printf 'picd migrate 0006 -> latest, backup included: %.2f s\n' "$(echo "$end - $start" | bc -l)"
printf 'pre-migration backup: %s, %d KiB\n' "$(basename "$backup")" $(($(stat -c %s "$backup") / 1024))
