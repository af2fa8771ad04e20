#!/usr/bin/env python3
"""The anchor of bench/api_mutation.sh: the time of one durable SQLite commit (WAL,
synchronous=FULL) of a row about the size of an audit entry, on the same disk as picd's state.

Usage: sqlite_commit.py DATABASE COMMITS
Prints: RESULT commits=N p50_us=.. p90_us=.. p99_us=.. max_us=..
"""

import sqlite3
import sys
import time


def main():
    path, commits = sys.argv[1], int(sys.argv[2])
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, time TEXT, body TEXT, hash TEXT)")
    body = '{"changed":["dns.split_horizon"]}' + "x" * 150
    samples = []
    for i in range(commits + 50):
        t0 = time.perf_counter_ns()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (time, body, hash) VALUES (?, ?, ?)",
                     ("2026-11-24T07:16:00.123456Z", body, "%064x" % i))
        conn.execute("COMMIT")
        t1 = time.perf_counter_ns()
        if i >= 50:  # the first commits grow the WAL file
            samples.append((t1 - t0) / 1000)
    samples.sort()
    pct = lambda p: samples[min(len(samples) - 1, int(len(samples) * p / 100))]
    print("RESULT commits=%d p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f"
          % (len(samples), pct(50), pct(90), pct(99), samples[-1]))


if __name__ == "__main__":
    main()
