#!/usr/bin/env python3
"""Start-up time of picd for bench/startup_memory.sh: from exec to the first 200 answer of
GET /health, polled every 0.5 ms on 127.0.0.1 (a raw socket, so no client start-up cost is
counted). The picd started is stopped by its PID after each run.

Usage: startup.py RUNS PORT STATE_DIR_OR_EMPTY PICD ARGS...
  STATE_DIR_OR_EMPTY: a state dir to reuse, or "" for a fresh one per run (migrations included)
Prints: RESULT runs=N median_ms=.. min_ms=.. max_ms=..
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def health_ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).split(b"\r\n")[0].split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


def one_run(port, state, cmd):
    fresh = not state
    if fresh:
        state = tempfile.mkdtemp(prefix="picd-startup.")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd + ["--state-dir", state, "serve", "--listen", f"127.0.0.1:{port}"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = t0 + 5
        while time.perf_counter() < deadline:
            if health_ok(port):
                return (time.perf_counter() - t0) * 1000
            if proc.poll() is not None:
                sys.exit(f"picd exited with {proc.returncode}")
            time.sleep(0.0005)
        sys.exit("picd did not answer /health within 5 s")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            print("picd did not stop within 10 s of SIGTERM; killing it", file=sys.stderr)
            proc.kill()
            proc.wait()
        if fresh:
            shutil.rmtree(state, ignore_errors=True)


def main():
    runs, port, state, cmd = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    one_run(port, state, cmd)  # warm the page cache
    times = sorted(one_run(port, state, cmd) for _ in range(runs))
    median = times[len(times) // 2] if runs % 2 else (times[runs // 2 - 1] + times[runs // 2]) / 2
    print("RESULT runs=%d median_ms=%.1f min_ms=%.1f max_ms=%.1f" % (runs, median, times[0], times[-1]))


if __name__ == "__main__":
    main()
