"""7. HTTP/1 pipelining: answers in request order across the fast path and the router

8 requests in one write, alternating the fast path (/api/me, /auth/verify) and routed requests
(/auth/sessions, a 404, /auth/refresh), answered in order, each with its own answer, and Connection:
close honoured after the last; HEAD behind fast-path answers (no body for the HEADs, the GET after
them with its body); 1 valid + 3,000 bad pipelined requests answered in order; a client pipelining
for 15 s without reading leaves the server's RSS bounded while another client is served.
"""
import select
import socket
import time

from harness.checks import check, note, precondition
from harness.http import Conn, parse_json, read_responses

from . import login


def test_pipelining(plain):
    tg, _ = plain
    precondition("the shared service (tokengate c) is running", tg.alive())
    conn = Conn(tg.port)
    token, sid = login(conn, "user01")
    auth = f"Authorization: Bearer {token}\r\n"
    requests = [
        ("GET /api/me", auth, 200),                  # fast path
        ("GET /auth/sessions", auth, 200),           # router
        ("GET /auth/verify", auth, 200),             # fast path, behind a routed request
        ("GET /api/me", "Authorization: Bearer x.y.z\r\n", 401),
        ("GET /no/such/path", auth, 404),            # router
        ("POST /auth/refresh", auth + "Content-Length: 0\r\n", 200),
        ("GET /api/me", auth, 200),
    ]
    payload = "".join(f"{line} HTTP/1.1\r\nHost: x\r\n{headers}\r\n" for line, headers, _ in requests)
    payload += f"GET /auth/verify HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    sock = socket.create_connection(("127.0.0.1", tg.port), timeout=10)
    try:
        sock.sendall(payload.encode())
        responses, closed = read_responses(sock, len(requests) + 1)
    finally:
        sock.close()
    statuses = [r[0] for r in responses]
    expected = [want for _, _, want in requests] + [200]
    check("8 pipelined requests get 8 answers in request order", statuses == expected, f"{statuses} != {expected}")
    if len(responses) == len(expected):
        me = parse_json(responses[0][2]) or {}
        sessions = parse_json(responses[1][2])
        check("each answer is its own request's (/api/me body, sessions list, verify headers)",
              me.get("session_id") == sid and isinstance(sessions, list)
              and responses[2][1].get("x-auth-session") == sid and responses[7][1].get("x-auth-user") == "user01")
    check("Connection: close is honoured after the last answer", closed)
    # HEAD behind fast-path answers on one connection: NIO's encoder pairs each answer with its
    # request's method (a HEAD answer has no body), so the fast path's answers must pass through it
    # too, or a later GET's body is dropped as a HEAD's (and a HEAD's sent).
    payload = (f"GET /auth/verify HTTP/1.1\r\nHost: x\r\n{auth}\r\n" f"GET /api/me HTTP/1.1\r\nHost: x\r\n{auth}\r\n"
               "HEAD /api/me HTTP/1.1\r\nHost: x\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    sock = socket.create_connection(("127.0.0.1", tg.port), timeout=10)
    try:
        sock.sendall(payload.encode())
        mixed, _ = read_responses(sock, 5, bodiless=(2, 3))
        sock.settimeout(2)
        rest = b""
        try:
            while chunk := sock.recv(65536):
                rest += chunk
        except socket.timeout:
            pass
    finally:
        sock.close()
    check("HEAD after fast-path answers: 200, 200, 401 and 200 without bodies, then GET /healthz with its body, nothing more",
          [r[0] for r in mixed] == [200, 200, 401, 200, 200] and mixed[4][2] == b'{"status":"ok"}' and rest == b"",
          f"{[(r[0], r[2][:40]) for r in mixed]} then {rest[:80]!r}")
    # One valid request, then 3,000 with a bad token queued behind it (each answered at once when
    # its turn comes): all answered, in order, without the replay nesting per request.
    many = 3000
    payload = f"GET /api/me HTTP/1.1\r\nHost: x\r\n{auth}\r\n"
    payload += "GET /api/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a.b.c\r\n\r\n" * many
    sock = socket.create_connection(("127.0.0.1", tg.port), timeout=20)
    try:
        sock.sendall(payload.encode())
        burst, _ = read_responses(sock, many + 1, timeout=20)
    finally:
        sock.close()
    codes = [r[0] for r in burst]
    check(f"1 valid + {many} bad pipelined requests: {many + 1} answers in order",
          codes == [200] + [401] * many, f"{len(codes)} answers, first {codes[:3]}")
    check("... and the service is still up", tg.alive())
    # A client that pipelines without ever reading: for 15 s, as fast as the server takes it, on the
    # fast path's two routes (answered at once: no token needed). The server must stop reading
    # once its answers back up (what it has not read waits in the kernel's socket buffers), so its
    # memory stays bounded and others are still served; it may also close such a connection as
    # idle. Without the bound a debug build grew by about 2.5 MiB a second here.
    rss0 = tg.stats()["rss_kb"]
    flood = socket.create_connection(("127.0.0.1", tg.port), timeout=10)
    flood.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    flood.setblocking(False)
    chunk = (b"GET /api/me HTTP/1.1\r\nHost: x\r\n\r\nGET /auth/verify HTTP/1.1\r\nHost: x\r\n\r\n") * 1000
    sent = 0
    peak = rss0
    deadline = time.monotonic() + 15
    cut_off = None
    try:
        while time.monotonic() < deadline and sent < 64 * 1024 * 1024:
            _, writable, _ = select.select([], [flood], [], 0.2)
            if writable:
                try:
                    sent += flood.send(chunk)
                except BlockingIOError:
                    pass
                except (ConnectionResetError, BrokenPipeError):
                    cut_off = 15 - (deadline - time.monotonic())
                    break
            peak = max(peak, tg.stats()["rss_kb"])
        other = Conn(tg.port)
        other_status = other.request("GET", "/api/me", token=token)[0]
        other.close()
    finally:
        flood.close()
    check("a client pipelining without reading for 15 s: the server's RSS grew by less than 16 MiB",
          peak - rss0 < 16 * 1024, f"{rss0 / 1024:.1f} -> {peak / 1024:.1f} MiB, {sent / 1048576:.1f} MiB sent")
    check("... and another client is served meanwhile (200)", other_status == 200, str(other_status))
    note(f"7: pipelined statuses {statuses}, closed after the last: {closed}; burst of {many + 1}: {len(codes)} answers; "
                  f"non-reading flood: {sent / 1048576:.1f} MiB sent, RSS {rss0 / 1024:.1f} -> {peak / 1024:.1f} MiB, "
                  + (f"closed by the server after {cut_off:.1f} s" if cut_off is not None else "not closed"))
