#!/usr/bin/env python3
"""Helpers for bench/run (standard library only): seed tokens, refresh them, measure logout-all, read CPU time."""
import http.client
import json
import socket
import sys
import threading
import time


def login(conn, user, password):
    conn.request("POST", "/auth/login", json.dumps({"username": user, "password": password}),
                 {"Content-Type": "application/json"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise SystemExit(f"login {user}: {response.status} {body[:200]!r}")
    return json.loads(body)["access_token"]


def seed(port, users, sessions, out, threads=8):
    """Log each of `users` users in `sessions` times; write one token per line."""
    work = [f"user{u}" for u in range(1, users + 1) for _ in range(sessions)]
    tokens, lock = [], threading.Lock()

    def worker(part):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = [login(conn, user, "bench-password") for user in part]
        with lock:
            tokens.extend(mine)

    chunks = [work[i::threads] for i in range(threads)]
    pool = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    with open(out, "w") as f:
        f.write("\n".join(tokens) + "\n")
    print(f"seeded {len(tokens)} tokens")


def refresh_each(port, tokens_file, times):
    """POST /auth/refresh `times` times with each token of the file (one connection)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    tokens = [line for line in open(tokens_file).read().split() if line]
    for _ in range(times):
        for token in tokens:
            conn.request("POST", "/auth/refresh", headers={"Authorization": "Bearer " + token})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise SystemExit(f"refresh: {response.status} {body[:200]!r}")
    print(f"{len(tokens) * times} refreshes")


def redis_ping_loop(port, stop, samples):
    s = socket.create_connection(("127.0.0.1", port))
    while not stop.is_set():
        started = time.perf_counter()
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        s.recv(64)
        samples.append((started, time.perf_counter() - started))
    s.close()


def logout_all(port, redis_port, token):
    """Time POST /auth/logout-all while another client PINGs Redis; report both."""
    stop, samples = threading.Event(), []
    pinger = threading.Thread(target=redis_ping_loop, args=(redis_port, stop, samples))
    pinger.start()
    time.sleep(0.2)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    conn.request("POST", "/auth/logout-all", headers={"Authorization": "Bearer " + token})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    time.sleep(0.2)
    stop.set()
    pinger.join()
    during = [d for (t, d) in samples if started - 0.001 <= t <= started + elapsed]
    worst = max([d for (_, d) in samples] or [0])
    print(f"logout-all status {response.status} in {elapsed * 1000:.1f} ms; "
          f"other client's PING: worst {worst * 1000:.1f} ms overall, {len(during)} PINGs during it")


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    print(total)


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "seed":
        seed(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif command == "logout-all":
        logout_all(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif command == "refresh":
        refresh_each(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif command == "cpu":
        cpu_ticks(sys.argv[2:])
    else:
        raise SystemExit(f"unknown command {command}")
