#!/usr/bin/env python3
"""The measuring side of bench/peers.sh. Runs inside the benchmark's network namespace, so
`wg` reaches the interfaces without `ip netns exec` in the measured path.

  peers.py fill PORT USER PASSWORD COUNT
      creates COUNT peers through the API (one admin session, keep-alive); prints the time.
  peers.py add PORT USER PASSWORD IFNAME RUNS
      RUNS times: POST /api/peers for one more peer (timed), then `wg show IFNAME peers` until
      its key is listed. Prints key=value figures in ms.
  peers.py wait-peers IFNAME COUNT TIMEOUT_S
      polls `wg show IFNAME peers` until it lists COUNT keys; prints that moment (wall clock,
      nanoseconds, as `date +%s%N` gives it).
  peers.py anchors IFNAME COUNT RUNS
      on a wireguard-go interface: one `wg set` adding COUNT peers, then RUNS times `wg set`
      adding one more peer. Prints key=value figures in ms.
"""

import base64
import http.client
import json
import os
import statistics
import subprocess
import sys
import time

NAME_PREFIX = "bench"


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


class Api:
    """One admin session over one keep-alive connection."""

    def __init__(self, port, user, password):
        self.conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        status, body, headers = self.request("POST", "/api/auth/login", {"username": user, "password": password})
        if status != 200:
            sys.exit(f"login failed: {status} {body}")
        # Every cookie the login set (the session's and the device cookie), as a browser keeps them.
        cookies = [v.split(";", 1)[0] for k, v in headers if k.lower() == "set-cookie"]
        self.cookie = "; ".join(cookies)
        self.csrf = json.loads(body)["csrf_token"]

    def request(self, method, path, body=None):
        headers = {"Content-Type": "application/json"}
        if getattr(self, "cookie", None):
            headers["Cookie"] = self.cookie
            headers["X-CSRF-Token"] = self.csrf
        payload = json.dumps(body) if body is not None else None
        self.conn.request(method, path, body=payload, headers=headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read().decode(), resp.getheaders()

    def create_peer(self, name):
        status, body, _ = self.request("POST", "/api/peers", {"name": name})
        if status != 201:
            sys.exit(f"creating {name}: {status} {body}")
        return json.loads(body)["public_key"]


def wg_peers(ifname):
    out = subprocess.run(["wg", "show", ifname, "peers"], capture_output=True, text=True, check=True)
    return out.stdout.split()


def fill(port, user, password, count):
    api = Api(port, user, password)
    start = time.perf_counter()
    for i in range(int(count)):
        api.create_peer(f"{NAME_PREFIX}{i:05d}")
    print(f"seconds={time.perf_counter() - start:.2f}")


def add(port, user, password, ifname, runs):
    """picd answers the POST only after the peer is on the interface, so the response time is
    the end-to-end figure; one `wg show` right after the response checks that it is there."""
    api = Api(port, user, password)
    posts, show, listed_at_once = [], [], 0
    for i in range(int(runs)):
        start = time.perf_counter()
        key = api.create_peer(f"extra{i:03d}")
        posts.append((time.perf_counter() - start) * 1000)
        deadline = time.perf_counter() + 5
        first = True
        while True:
            before = time.perf_counter()
            listed = key in wg_peers(ifname)
            show.append((time.perf_counter() - before) * 1000)
            if listed:
                listed_at_once += first
                break
            if time.perf_counter() > deadline:
                sys.exit(f"the key of extra{i:03d} did not reach {ifname} within 5 s")
            first = False
    print(
        f"post_median={statistics.median(posts):.2f} post_p90={percentile(posts, 90):.2f} "
        f"listed_at_once={listed_at_once} wg_show_median={statistics.median(show):.2f} runs={runs}"
    )


def wait_peers(ifname, count, timeout_s):
    deadline = time.time() + float(timeout_s)
    while time.time() < deadline:
        try:
            if len(wg_peers(ifname)) >= int(count):
                print(time.time_ns())
                return
        except subprocess.CalledProcessError:
            pass  # the interface is not there yet
        time.sleep(0.002)
    sys.exit(f"{ifname} did not hold {count} peers within {timeout_s} s")


def random_key():
    return base64.b64encode(os.urandom(32)).decode()


def anchors(ifname, count, runs):
    count, runs = int(count), int(runs)
    args = ["wg", "set", ifname]
    for i in range(count):
        args += ["peer", random_key(), "allowed-ips", f"10.90.{i // 250}.{i % 250 + 1}/32,fd90::{i + 1:x}/128"]
    start = time.perf_counter()
    subprocess.run(args, check=True)
    bulk = (time.perf_counter() - start) * 1000
    if len(wg_peers(ifname)) != count:
        sys.exit(f"{ifname} does not hold {count} peers after the bulk wg set")
    single = []
    for i in range(runs):
        args = ["wg", "set", ifname, "peer", random_key(), "allowed-ips", f"10.91.0.{i + 1}/32,fd91::{i + 1:x}/128"]
        start = time.perf_counter()
        subprocess.run(args, check=True)
        single.append((time.perf_counter() - start) * 1000)
    print(f"bulk_ms={bulk:.1f} single_median={statistics.median(single):.2f} single_p90={percentile(single, 90):.2f}")


COMMANDS = {"fill": fill, "add": add, "wait-peers": wait_peers, "anchors": anchors}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
