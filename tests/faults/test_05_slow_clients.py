"""5. Slow clients (slowloris connections) and oversized headers

200 slowloris connections (FAULTS_SLOWLORIS: headers trickled, and login bodies trickled after a
Content-Length) do not starve normal clients; oversized headers (one 100 KB or 1 MB header, 10,000
headers, a 100 KB Authorization header or request line) get 431/400 or a closed connection with
bounded RSS; the header block is bounded at 16 KiB (431, on the hot path too); HTTP/1.1 needs
exactly one Host; a declared 1 MB body is refused with 413 at once; Expect: 100-continue is
answered; a client dropping its login body is not counted as a Redis failure. Reports what the
server does and how long it keeps slowloris connections open.
"""
import re
import socket
import threading
import time

from harness.checks import check, ms, note, percentile, say, wait_until
from harness.http import Conn, metric_value, raw_exchange
from harness.tokengate import fmt_stats

from . import SLOWLORIS, login
from .slowloris import SlowLoris


def test_slow_clients(plain, lab):
    tg, redis = plain
    say(f"   {SLOWLORIS} slowloris connections")
    conn = Conn(tg.port)
    token, sid = login(conn, "user05")
    conn.request("GET", "/api/me", token=token)
    before = tg.stats()
    say(f"   before: {fmt_stats(before)}")

    slow = lab.add(SlowLoris(tg.port, SLOWLORIS))
    time.sleep(0.5)
    loaded = tg.stats()
    normal = []  # (kind, status, elapsed)

    def normal_client(kind):
        c = Conn(tg.port, timeout=10)
        end = time.monotonic() + 6
        while time.monotonic() < end:
            if kind == "healthz-new":
                c.close()  # a new connection each time: accepting must not be starved either
                status, _, _, elapsed = c.timed("GET", "/healthz")
            elif kind == "healthz":
                status, _, _, elapsed = c.timed("GET", "/healthz")
            else:
                status, _, _, elapsed = c.timed("GET", "/api/me", token=token)
            normal.append((kind, status, elapsed))
            time.sleep(0.02)
        c.close()
    clients = [threading.Thread(target=normal_client, args=(k,), daemon=True) for k in ("healthz-new", "healthz", "me", "me")]
    for t in clients:
        t.start()
    for t in clients:
        t.join(timeout=30)
    lat = [n[2] for n in normal]
    failed = [n for n in normal if n[1] != 200]
    check(f"with {slow.opened} slowloris connections open, normal /healthz and /api/me keep succeeding ({len(normal)} requests)",
          normal and not failed, str(failed[:3]))
    check("... with reasonable latency (p99 < 250 ms, max < 1 s)", percentile(lat, 99) < 0.25 and max(lat, default=9) < 1.0,
          f"p50 {ms(percentile(lat, 50))}, p99 {ms(percentile(lat, 99))}, max {ms(max(lat, default=0))}")
    note(f"5: {slow.opened} slowloris open ({slow.opened - slow.bodies} trickling headers, {slow.bodies} trickling a login "
         f"body): {len(normal)} normal requests, p50 {ms(percentile(lat, 50))}, p99 {ms(percentile(lat, 99))}, "
         f"max {ms(max(lat, default=0))}, failures {len(failed)}; tokengate fds {before['fds']} -> {loaded['fds']}")
    # how long does the server keep slowloris connections? watch a little longer
    wait_until(lambda: slow.open_now() == 0, 4)
    note(f"5: slowloris: {slow.summary()}")
    login_503_before = metric_value(conn, r'/auth/login.*"503"|"503".*/auth/login')
    slow.close()
    released = wait_until(lambda: tg.stats()["fds"] <= before["fds"] + 4, 10)
    check("after the slowloris clients leave, the fds are released", released,
          f"{before['fds']} -> {tg.stats()['fds']}")
    login_503_after = metric_value(conn, r'/auth/login.*"503"|"503".*/auth/login')
    check("login bodies cut off by the client are not counted as 503 store_unavailable (Redis was up)",
          login_503_after is not None and login_503_after == (login_503_before or 0),
          f"/metrics 503s on /auth/login: {login_503_before} -> {login_503_after}")

    # oversized headers
    rss0 = tg.stats()["rss_kb"]
    behaviour = {}
    probes = {
        "8 KB header (normal)": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192 + b"\r\n\r\n",
        "one 100 KB header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        "10,000 headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(10_000)) + b"\r\n",
        "1 MB header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n",
        "100 KB Authorization": b"GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * 100_000 + b"\r\n\r\n",
        "100 KB request line": b"GET /healthz?" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    }
    for size in (16, 32, 48, 64, 79):  # where is the limit?
        probes[f"{size} KB of headers in 1 KB lines"] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + \
            b"".join(b"X-H%03d: %s\r\n" % (i, b"b" * 1000) for i in range(size)) + b"\r\n"
    for name, payload in probes.items():
        behaviour[name] = raw_exchange(tg.port, payload)
    check("an 8 KB header is served (200)", behaviour["8 KB header (normal)"] == 200, str(behaviour["8 KB header (normal)"]))
    for name in ("one 100 KB header", "10,000 headers", "1 MB header", "100 KB Authorization", "100 KB request line"):
        check(f"{name}: 431 or 400 or the connection closed", behaviour[name] in (431, 400, "closed", "reset"), str(behaviour[name]))
    # the header block is bounded at 16 KiB: 431 headers_too_large, on the hot path too
    check("48 KB of headers in 1 KB lines: 431 (the limit is 16 KiB)", behaviour["48 KB of headers in 1 KB lines"] == 431,
          str(behaviour["48 KB of headers in 1 KB lines"]))
    big = raw_exchange(tg.port, b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65_536 + b"\r\n\r\n")
    check("a single 64 KiB header on /api/me: 431", big == 431, str(big))
    check("15 KB of headers in 1 KB lines are still served (200)",
          raw_exchange(tg.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
                       b"".join(b"X-H%03d: %s\r\n" % (i, b"b" * 1000) for i in range(15)) + b"\r\n") == 200)
    # RFC 9112: an HTTP/1.1 request needs exactly one Host (HTTP/1.0 may have none)
    hosts = {
        "no Host": raw_exchange(tg.port, b"GET /healthz HTTP/1.1\r\n\r\n"),
        "two Host headers": raw_exchange(tg.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        "no Host on /auth/verify": raw_exchange(tg.port, b"GET /auth/verify HTTP/1.1\r\n\r\n"),
        "HTTP/1.0 without Host": raw_exchange(tg.port, b"GET /healthz HTTP/1.0\r\n\r\n"),
    }
    check("HTTP/1.1 without a Host, or with two, gets 400 (on the hot path too); HTTP/1.0 without one is served",
          hosts == {"no Host": 400, "two Host headers": 400, "no Host on /auth/verify": 400, "HTTP/1.0 without Host": 200},
          str(hosts))
    sock = socket.create_connection(("127.0.0.1", tg.port), timeout=5)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answers = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answers += chunk
    except OSError as error:
        answers = str(error).encode()
    finally:
        sock.close()
    statuses = re.findall(rb"HTTP/1\.1 (\d{3})", answers)
    check("pipelined: the request before a Host-less one is answered first, then 400, then the connection closes",
          statuses == [b"200", b"400"] and b"headers_too_large" not in answers and b'"invalid_request"' in answers,
          str(statuses))
    # a declared body over the 16 KiB limit is refused at once, not after the client timeout
    started = time.monotonic()
    declared = raw_exchange(tg.port, b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: 1000000\r\n\r\n", timeout=5)
    waited = time.monotonic() - started
    check("a declared Content-Length of 1 MB on /auth/login: 413 before any body is sent (under 2 s)",
          declared == 413 and waited < 2, f"{declared} after {waited:.2f} s")
    # Expect: 100-continue is answered, so a client sends its body at once instead of after a pause
    sock = socket.create_connection(("127.0.0.1", tg.port), timeout=5)
    try:
        body = b'{"username":"user00","password":"wrong"}'
        sock.sendall(b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        started = time.monotonic()
        interim = sock.recv(4096)
        waited = time.monotonic() - started
        sock.sendall(body)
        final = b""
        while b"\r\n\r\n" not in final:
            chunk = sock.recv(4096)
            if not chunk:
                break
            final += chunk
    except OSError as error:
        interim, final, waited = str(error).encode(), b"", 0
    finally:
        sock.close()
    check("Expect: 100-continue gets 100 Continue at once, then the login's own answer (401)",
          interim.startswith(b"HTTP/1.1 100") and waited < 1 and final.startswith(b"HTTP/1.1 401"),
          f"{interim[:40]!r} after {waited:.2f} s, then {final[:20]!r}")
    # many of them at once: memory stays bounded
    results = []

    def flood(n):
        for i in range(n):
            results.append(raw_exchange(tg.port, probes["one 100 KB header" if i % 2 else "10,000 headers"]))
    floods = [threading.Thread(target=flood, args=(25,), daemon=True) for _ in range(8)]
    for t in floods:
        t.start()
    for t in floods:
        t.join(timeout=60)
    rss1 = tg.stats()["rss_kb"]
    check("200 oversized requests from 8 clients: all refused", all(r in (431, 400, "closed", "reset") for r in results),
          str(sorted(set(map(str, results)))))
    check("... RSS grew by less than 32 MiB", rss1 - rss0 < 32 * 1024, f"{rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB")
    note("5: oversized: " + "; ".join(f"{k}: {v}" for k, v in behaviour.items()))
    note(f"5: 200 oversized requests: {sorted(set(map(str, results)))}, RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB")
    status = conn.request("GET", "/api/me", token=token)[0]
    check("afterwards a normal request still passes", status == 200, str(status))
    conn.close()
    after = tg.stats()
    say(f"   after:  {fmt_stats(after)}")
    note(f"5: fds {before['fds']} -> {after['fds']}, RSS {before['rss_kb'] / 1024:.1f} -> {after['rss_kb'] / 1024:.1f} MiB")
    check("RSS grew by less than 64 MiB over the whole scenario", after["rss_kb"] - before["rss_kb"] < 64 * 1024,
          f"{(after['rss_kb'] - before['rss_kb']) / 1024:.1f} MiB")
    check("same process throughout", tg.alive(), f"pid {tg.pid}")
