#!/usr/bin/env python3
"""Logins under a burst, two picd binaries compared in one run (see login.sh).

Two bursts of BURST simultaneous POST /api/auth/login, each against a freshly started picd:
  right: BURST different users, each from its own loopback address (127.0.1.N), right password;
         no per-user or per-address bound applies, only what picd does with the hashing.
  wrong: BURST wrong passwords for the admin from one address: the throttle's case.
Every connection is opened first, then all requests leave at once (a barrier). Reported per
binary and burst, over all rounds: the statuses, the latency p50 and p99 (send to full
answer), picd's peak resident memory (VmHWM after the burst, the median over the rounds) and
the most threads seen (sampled every 2 ms). Then the ratios after/before.

Talks to 127.0.0.1 only; stops only the picd processes it started, by PID.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

ADMIN_USER = "admin"
ADMIN_PASSWORD = "bench-password-0123"
USER_PASSWORD = "bench-user-password-0123"
WRONG_PASSWORD = "certainly not the password"

ANSWERS = f"""[admin]
username = "{ADMIN_USER}"
password = "{ADMIN_PASSWORD}"
[cell]
name = "bench"
domain = "bench.example"
public_endpoint = "203.0.113.10"
wireguard_port = 51820
subnet_v4 = "10.77.0.0/24"
subnet_v6 = "fd77:77::/64"
[dns]
upstreams = ["127.0.0.1:9"]
split_horizon = true
"""


def say(*args):
    print(*args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_prefix():
    # As root, without CAP_NET_ADMIN: no WireGuard interface or firewall rule on this machine.
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return ["setpriv", "--bounding-set=-net_admin"]
    return []


class Picd:
    def __init__(self, binary, work, state):
        self.binary, self.work, self.state = binary, work, state
        self.port = free_port()
        self.log = open(os.path.join(work, "picd.log"), "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PICD_")}
        env.update(PICD_WIREGUARD_MODE="off", PICD_DNS_LISTEN="", PICD_CADDY_ADMIN="127.0.0.1:1")
        self.proc = subprocess.Popen(
            run_prefix()
            + [binary, "--config", os.path.join(work, "picd.toml"), "serve",
               "--state-dir", state, "--listen", f"127.0.0.1:{self.port}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"picd exited: {self.proc.returncode}")
            try:
                status, _, _ = self.request("GET", "/health")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.01)
        self.stop()
        raise SystemExit("picd did not answer /health")

    @property
    def pid(self):
        # picd re-executes itself once, in place: the PID stays. With setpriv, picd is its exec.
        return self.proc.pid

    def proc_status(self, name):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
        raise KeyError(name)

    def request(self, method, path, body=None, headers=None, source="127.0.0.1"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60,
                                          source_address=(source, 0))
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        text = resp.read()
        conn.close()
        return resp.status, resp.getheaders(), text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                say(f"WARNING: picd {self.pid} did not stop on SIGTERM; killing it")
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def prepare_state(binary, work, name, users):
    """A state directory with setup done and `users` peers with a portal login each."""
    state = os.path.join(work, f"state-{name}")
    answers = os.path.join(work, "answers.toml")
    with open(answers, "w") as f:
        f.write(ANSWERS)
    subprocess.run(run_prefix() + [binary, "--config", os.path.join(work, "picd.toml"), "setup",
                                   "--answers", answers, "--state-dir", state],
                   check=True, stdout=subprocess.DEVNULL)
    picd = Picd(binary, work, state)
    try:
        status, headers, text = picd.request(
            "POST", "/api/auth/login", {"username": ADMIN_USER, "password": ADMIN_PASSWORD})
        assert status == 200, text
        cookie = next(v.split(";")[0] for k, v in headers
                      if k.lower() == "set-cookie" and v.startswith("picd_session="))
        csrf = json.loads(text)["csrf_token"]
        for user in users:
            status, _, text = picd.request(
                "POST", "/api/peers", {"name": user, "portal_password": USER_PASSWORD},
                {"Cookie": cookie, "X-CSRF-Token": csrf})
            assert status in (200, 201), text
    finally:
        picd.stop()
    return state


def burst(picd, logins):
    """Fires every (source, username, password) login at once; returns (status, seconds)."""
    results = [None] * len(logins)
    barrier = threading.Barrier(len(logins) + 1)

    def one(i, source, username, password):
        conn = http.client.HTTPConnection("127.0.0.1", picd.port, timeout=60,
                                          source_address=(source, 0))
        conn.connect()
        body = json.dumps({"username": username, "password": password})
        barrier.wait()
        start = time.perf_counter()
        conn.request("POST", "/api/auth/login", body=body,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        results[i] = (resp.status, time.perf_counter() - start)
        conn.close()

    threads = [threading.Thread(target=one, args=(i, *login)) for i, login in enumerate(logins)]
    for t in threads:
        t.start()
    most_threads = [picd.proc_status("Threads")]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                most_threads[0] = max(most_threads[0], picd.proc_status("Threads"))
            except (OSError, KeyError):
                pass
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    barrier.wait()
    for t in threads:
        t.join()
    done.set()
    sampler.join()
    return results, picd.proc_status("VmHWM"), most_threads[0]


def percentile(values, p):
    ordered = sorted(values)
    rank = max(1, int(-(-p * len(ordered) // 100)))  # nearest rank
    return ordered[rank - 1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--burst", type=int, default=60)
    args = parser.parse_args()
    with open(os.path.join(args.work, "picd.toml"), "w") as f:
        f.write('log_level = "warn"\n')
    users = [f"u{i:02}" for i in range(args.burst)]
    binaries = {"before": args.before, "after": args.after}
    states = {name: prepare_state(b, args.work, name, users) for name, b in binaries.items()}
    bursts = {
        "right": [(f"127.0.1.{i + 1}", u, USER_PASSWORD) for i, u in enumerate(users)],
        "wrong": [("127.0.0.1", ADMIN_USER, WRONG_PASSWORD)] * args.burst,
    }
    seen = {(b, k): {"latency": [], "served": [], "status": {}, "rss": [], "threads": []}
            for b in binaries for k in bursts}
    for round_no in range(args.rounds):
        # Alternating order: a drift of the machine's load favours neither binary.
        order = list(binaries) if round_no % 2 == 0 else list(reversed(binaries))
        for name in order:
            for kind, logins in bursts.items():
                state = os.path.join(args.work, f"run-{name}-{kind}")
                shutil.rmtree(state, ignore_errors=True)
                shutil.copytree(states[name], state, symlinks=True)
                picd = Picd(binaries[name], args.work, state)
                try:
                    results, rss, threads = burst(picd, logins)
                finally:
                    picd.stop()
                    shutil.rmtree(state, ignore_errors=True)
                s = seen[(name, kind)]
                s["latency"] += [t for _, t in results]
                s["served"] += [t for status, t in results if status < 500]
                for status, _ in results:
                    s["status"][status] = s["status"].get(status, 0) + 1
                s["rss"].append(rss)
                s["threads"].append(threads)
                statuses = {}
                for status, _ in results:
                    statuses[status] = statuses.get(status, 0) + 1
                say(f"round {round_no + 1} {name:6} {kind}: statuses {dict(sorted(statuses.items()))}, "
                    f"p50 {percentile([t for _, t in results], 50) * 1000:.0f} ms, "
                    f"p99 {percentile([t for _, t in results], 99) * 1000:.0f} ms, "
                    f"VmHWM {rss / 1024:.1f} MB, threads up to {threads}")
    summary = {}
    for (name, kind), s in seen.items():
        served = s["served"] or [float("nan")]
        summary[(name, kind)] = (
            percentile(s["latency"], 50) * 1000,
            percentile(s["latency"], 99) * 1000,
            statistics.median(s["rss"]) / 1024,
            max(s["threads"]),
            percentile(served, 50) * 1000,
            percentile(served, 99) * 1000,
        )
        p50, p99, rss, threads, served50, served99 = summary[(name, kind)]
        print(f"{name:6} {kind}: {args.rounds} x {args.burst} logins, statuses "
              f"{dict(sorted(s['status'].items()))}; all: p50 {p50:.0f} ms, p99 {p99:.0f} ms; "
              f"answered (not 503): p50 {served50:.0f} ms, p99 {served99:.0f} ms; "
              f"peak RSS {rss:.1f} MB (median), threads up to {threads}")
    for kind in bursts:
        b, a = summary[("before", kind)], summary[("after", kind)]
        print(f"RATIO {kind} after/before: p50 {a[0] / b[0]:.3g}, p99 {a[1] / b[1]:.3g}, "
              f"answered p50 {a[4] / b[4]:.3g}, p99 {a[5] / b[5]:.3g}, "
              f"peak RSS {a[2] / b[2]:.3g}, threads {a[3] / b[3]:.3g}")


if __name__ == "__main__":
    main()
