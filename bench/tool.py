#!/usr/bin/env python3
"""Helpers for bench/run and bench/profile (standard library only): seed tokens, refresh them, measure
logout-all, read CPU time, send a fixed number of requests."""
import asyncio
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


def resp_command(sock_file, *args):
    """Sends one command and reads its reply (bulk strings, integers and arrays are enough here)."""
    sock_file.write(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (str(x).encode() for x in args)))
    sock_file.flush()

    def read():
        line = sock_file.readline()[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else sock_file.read(size + 2)[:-2].decode()
        if kind == b"*":
            return [read() for _ in range(int(rest))]
        if kind == b"-":
            raise SystemExit(f"redis: {rest.decode()}")
        return rest.decode()
    return read()


def user_keys(redis_port, pattern):
    """How many keys match `pattern` (SCAN, 1,000 at a time)."""
    with socket.create_connection(("127.0.0.1", redis_port)) as sock, sock.makefile("rwb") as f:
        cursor, found = "0", 0
        while True:
            cursor, batch = resp_command(f, "SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            found += len(batch)
            if cursor == "0":
                return found


def logout_all(port, redis_port, token, pattern):
    """Time POST /auth/logout-all, and until no key matching `pattern` is left, while another
    client PINGs Redis; report the answer time, the time until the keys are gone and the worst PING."""
    stop, samples = threading.Event(), []
    pinger = threading.Thread(target=redis_ping_loop, args=(redis_port, stop, samples), daemon=True)
    pinger.start()
    time.sleep(0.2)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    conn.request("POST", "/auth/logout-all", headers={"Authorization": "Bearer " + token})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    while user_keys(redis_port, pattern) > 0 and time.perf_counter() - started < 30:
        time.sleep(0.005)
    gone = time.perf_counter() - started
    time.sleep(0.1)
    stop.set()
    pinger.join()
    during = [d for (t, d) in samples if started - 0.001 <= t <= started + gone]
    worst = max(during or [0])
    print(f"logout-all status {response.status} in {elapsed * 1000:.1f} ms, keys gone after {gone * 1000:.0f} ms; "
          f"other client's PING meanwhile: worst {worst * 1000:.1f} ms of {len(during)}")


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    print(total)


def send_fixed(port, path, tokens_file, total, connections):
    """Sends `total` keep-alive GETs of `path` over `connections` connections, each carrying the next
    token of the file; fails unless every answer is 200 (a profile of refusals would mean nothing)."""
    with open(tokens_file) as f:
        tokens = [line.strip() for line in f if line.strip()]
    counter = iter(range(total))

    async def connection():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in counter:
            token = tokens[n % len(tokens)]
            writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200 "):
                status = head.split(b"\r\n", 1)[0].decode()
                raise SystemExit(f"answer {n}: {status}")
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
        writer.close()

    async def main():
        await asyncio.gather(*(connection() for _ in range(connections)))

    asyncio.run(main())


def callgrind_self(path, requests, top):
    """The functions with the most own instructions (Ir) in a callgrind file, per request: name, count."""
    names, own, current, skip = {}, {}, None, False
    with open(path) as f:
        for line in f:
            if line.startswith(("fn=", "cfn=")):
                ref, _, name = line.split("=", 1)[1].rstrip("\n").partition(" ")
                if name:
                    names[ref] = name  # a name is given once, at its first use, then its (id) alone
                if line.startswith("fn="):
                    current = names.get(ref, ref)
            elif line.startswith("calls="):
                skip = True  # the next cost line is the call's inclusive cost
            elif line[:1].isdigit() or line[:1] in "+-*":
                if skip:
                    skip = False
                    continue
                fields = line.split()
                if len(fields) > 1 and current is not None:
                    own[current] = own.get(current, 0) + int(fields[1])
    for name, cost in sorted(own.items(), key=lambda item: -item[1])[:top]:
        print(f"{cost // requests} {name}")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "seed":
        seed(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif command == "logout-all":
        logout_all(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif command == "refresh":
        refresh_each(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif command == "send":
        send_fixed(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    elif command == "callgrind-self":
        callgrind_self(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif command == "cpu":
        cpu_ticks(sys.argv[2:])
    else:
        raise SystemExit(f"unknown command {command}")
