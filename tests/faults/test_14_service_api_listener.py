"""14. The service API's listener: a connection cap within the open-file limit, and the client timeout

An instance with RLIMIT_NOFILE 256 and the service API enabled gets FD_LIMIT + 44 connections to
its service API listener that send nothing (no bytes, no key). It must stay alive, keep descriptors
in reserve (its fd count stays well under the limit: the listener's cap and the public one leave a
reserve for Redis and the runtime), answer public /healthz and logins (which need Redis) as usual,
and answer the service API again once they leave. Then a request whose headers, and one whose body,
trickle to the service API a byte at a time must be cut off no later than the same trickles on the
public listener (TOKENGATE_CLIENT_TIMEOUT 2 s here).
"""
import os
import socket
import subprocess
import threading
import time

from harness.checks import check, note, precondition, require, wait_until
from harness.http import Conn, http_call, login
from harness.processes import free_port

from . import FD_LIMIT, USERS

CLIENT_TIMEOUT = 2


def service_key(binary, work):
    path = os.path.join(work, "service-keys")
    secret = subprocess.run([binary, "admin-key", "generate", "app", "--keys-file", path],
                            capture_output=True, text=True, check=True).stdout.strip()
    return path, secret


def idle_flood(port, count):
    """count connections that send nothing (those the listen backlog has no room for are given up)."""
    socks = []
    for _ in range(count):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=0.2))
        except OSError:
            pass
    return socks


def trickle(port, head, seconds=12.0):
    """Sends head, then one byte every 0.25 s for ever (header bytes of a header line that never ends,
    or body bytes of a body that is never complete); the seconds until the server closed the
    connection, or None when it was still open after `seconds`."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    started = time.monotonic()
    try:
        sock.sendall(head)
        sock.setblocking(False)
        while time.monotonic() - started < seconds:
            try:
                if sock.recv(65536) == b"":
                    return time.monotonic() - started
            except BlockingIOError:
                pass
            try:
                sock.send(b"a")
            except BlockingIOError:
                pass
            time.sleep(0.25)
        return None
    except OSError:
        return time.monotonic() - started
    finally:
        sock.close()


def test_service_api_listener(plain, lab, binary, work):
    _, redis = plain
    precondition("the shared Redis (redis-server c) is running", redis.alive())
    keys_file, secret = service_key(binary, work)
    admin_port = free_port()
    tg = lab.tokengate("s14", redis.port, nofile=FD_LIMIT, env={
        "TOKENGATE_ADMIN_LISTEN": f"127.0.0.1:{admin_port}", "TOKENGATE_ADMIN_KEYS_FILE": keys_file})
    require(f"the service starts with at most {FD_LIMIT} open files and the service API", tg.start(), tg.tail())
    service = {"Authorization": f"Bearer {secret}"}
    require("the service API answers", wait_until(
        lambda: http_call(admin_port, "GET", "/admin/v1/users/user01/sessions", headers=service)[0] == 200, 10, 0.1))
    before = tg.stats()

    # 1. Idle connections to the service API past the open-file limit.
    flood = idle_flood(admin_port, FD_LIMIT + 44)
    try:
        wait_until(lambda: tg.stats()["fds"] > before["fds"] + 10, 3)
        time.sleep(0.5)
        held = tg.stats()["fds"]
        check(f"{len(flood)} idle service-API connections leave descriptors in reserve (fds {before['fds']} -> {held} "
              f"of {FD_LIMIT}: at least 32 free)", held <= FD_LIMIT - 32, f"{held} fds open")
        conn = Conn(tg.port, timeout=5)
        status, _, _, elapsed = conn.timed("GET", "/healthz")
        check("meanwhile a public /healthz is answered at once", status == 200 and elapsed < 1.0,
              f"{status} after {elapsed:.2f} s")
        try:
            token, _ = login(conn, "user01", USERS["user01"])
            status = conn.request("GET", "/auth/verify", token=token)[0]
        except AssertionError as error:
            token, status = None, str(error)
        check("meanwhile a login and a verify (Redis) work", token is not None and status == 200, status)
        conn.close()
        time.sleep(1.5)  # libdispatch's worker monitor runs about once a second: give it a turn
        alive = tg.alive()
        check("the process survives the flood", alive, "" if alive else tg.tail(5))
    finally:
        for sock in flood:
            sock.close()
    note(f"14: {len(flood)} idle service-API connections vs RLIMIT_NOFILE {FD_LIMIT}: fds {before['fds']} -> {held}; "
         f"process {'alive' if tg.alive() else 'DIED'}")
    check("once they leave, the service API answers again", tg.alive() and wait_until(
        lambda: http_call(admin_port, "GET", "/admin/v1/users/user01/sessions", headers=service, timeout=2)[0] == 200,
        10, 0.2))
    tg.stop()  # a death is already a failed check above; the trickles run on an instance of their own

    # 2. Trickled headers and bodies: cut off on both listeners alike.
    admin_port = free_port()
    tg = lab.tokengate("s14b", redis.port, env={
        "TOKENGATE_ADMIN_LISTEN": f"127.0.0.1:{admin_port}", "TOKENGATE_ADMIN_KEYS_FILE": keys_file,
        "TOKENGATE_CLIENT_TIMEOUT": str(CLIENT_TIMEOUT)})
    require(f"a service with TOKENGATE_CLIENT_TIMEOUT {CLIENT_TIMEOUT} starts", tg.start(), tg.tail())
    require("its service API answers", wait_until(
        lambda: http_call(admin_port, "GET", "/admin/v1/users/user01/sessions", headers=service)[0] == 200, 10, 0.1))
    headers_trickle = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
    admin_headers = b"GET /admin/v1/users/user01/sessions HTTP/1.1\r\nHost: x\r\nX-Slow: "
    body_public = (b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 100000\r\n\r\n")
    body_admin = (b"POST /admin/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Authorization: Bearer " + secret.encode() + b"\r\nContent-Length: 100000\r\n\r\n")
    results = {}

    def run(name, port, head):
        results[name] = trickle(port, head)
    threads = [threading.Thread(target=run, args=args) for args in (
        ("public headers", tg.port, headers_trickle), ("service headers", admin_port, admin_headers),
        ("public body", tg.port, body_public), ("service body", admin_port, body_admin))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shown = {name: "still open after 12 s" if t is None else f"closed after {t:.1f} s" for name, t in results.items()}
    note(f"14: trickled one byte every 0.25 s, CLIENT_TIMEOUT {CLIENT_TIMEOUT} s: {shown}")
    for kind in ("headers", "body"):
        public, admin = results[f"public {kind}"], results[f"service {kind}"]
        check(f"a trickled request {kind} is cut off on the public listener within 3 x CLIENT_TIMEOUT",
              public is not None and public <= 3 * CLIENT_TIMEOUT + 1, shown[f"public {kind}"])
        check(f"a trickled request {kind} is cut off on the service API no later than on the public listener",
              admin is not None and public is not None and admin <= public + 1.0, shown[f"service {kind}"])
    check("the process is still running", tg.alive(), tg.tail(5))
    tg.stop()
