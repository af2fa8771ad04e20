#!/usr/bin/env python3
"""Appends entries to picd's audit log until it holds TOTAL entries, with the same hash chain
picd writes (src/audit/chain.rs): SHA-256 over every field as a big-endian u32 byte length and
its bytes, in the order seq, time, actor, action, target_type, target_id, result, client_addr,
detail, prev_hash; lowercase hex; the audit_head row (id = 1) holds the last seq and hash.

Usage: fill_audit.py DATABASE TOTAL
Prints the number of bytes the chain hashes over (all entries, old and new) on stdout, for the
sha256sum anchor of bench/audit_verify.sh.
"""

import hashlib
import sqlite3
import struct
import sys
import time

ACTORS = ["admin", "alice", "bob", "setup", "anonymous"]
ACTIONS = [
    ("config.update", "config", "cell", '{"changed":["dns.upstreams"]}'),
    ("auth.login", "user", "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", '{"role":"admin"}'),
    ("peers.create", "peers", "laptop", '{"address":"10.77.0.12"}'),
    ("auth.login", "user", "", '{"error":"invalid_credentials","username":"admin"}'),
]
CLIENTS = ["127.0.0.1", "203.0.113.9", "fd77:77::5"]
RESULTS = {0: "success", 1: "success", 2: "success", 3: "denied"}


def encode(parts):
    out = bytearray()
    for p in parts:
        b = p.encode()
        out += struct.pack(">I", len(b))
        out += b
    return bytes(out)


def chained_bytes(row):
    """The exact byte string picd hashes for a stored row."""
    return encode([str(row[0])] + [str(v) for v in row[1:10]])


def main():
    path, total = sys.argv[1], int(sys.argv[2])
    conn = sqlite3.connect(path, isolation_level=None)
    # Filling is a fixture, not a measurement: no fsync per page, one transaction.
    conn.execute("PRAGMA synchronous = OFF")
    hashed_bytes = 0
    for row in conn.execute(
        "SELECT seq, time, actor, action, target_type, target_id, result, client_addr, detail, "
        "prev_hash FROM audit_log ORDER BY seq"
    ):
        hashed_bytes += len(chained_bytes(row))
    head_seq, head_hash = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    start_seq = head_seq + 1
    if head_seq >= total:
        print(hashed_bytes)
        return
    base = int(time.time()) - (total - head_seq)

    def rows():
        nonlocal head_hash, hashed_bytes
        for seq in range(start_seq, total + 1):
            t = base + (seq - start_seq)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % (seq % 1000000)
            kind = seq % 4
            action, target_type, target_id, detail = ACTIONS[kind]
            fields = (
                str(seq), stamp, ACTORS[seq % 5], action, target_type, target_id,
                RESULTS[kind], CLIENTS[seq % 3], detail, head_hash,
            )
            data = encode(fields)
            hashed_bytes += len(data)
            digest = hashlib.sha256(data).hexdigest()
            yield (seq, *fields[1:], digest)
            head_hash = digest

    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO audit_log (seq, time, actor, action, target_type, target_id, result, "
        "client_addr, detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        rows(),
    )
    conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (total, head_hash))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(hashed_bytes)


if __name__ == "__main__":
    main()
