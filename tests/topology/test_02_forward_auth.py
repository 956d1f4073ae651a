"""b. forward-auth: nginx auth_request -> /auth/verify in front of the sample app

Every app path x method needs a valid token (401 with WWW-Authenticate from nginx without one; a
garbage token, a forged X-Auth-User, the token in the query, the Basic scheme: 401; a duplicate
Authorization header: 400 or 401); the Flask app guards itself too; with a valid token the app sees
X-Auth-User (a client's own is replaced) and no token; the Flask sample app's own login view, report
and JSON views through nginx, its service API unreachable through nginx; nothing gets through while
Redis does not answer (fail closed) or right after logout.
"""
import http.client
import re
import socket
import subprocess
import threading
import time
import urllib.parse

from harness.checks import check, wait_until
from harness.http import Conn, parse_json, port_of

from . import REDIS_TIMEOUT, login, redis_cli

APP_PATHS = ["/", "/index.html", "/admin", "/admin/users/1?tab=keys", "/api/data.json", "/auth", "/authx",
             "/static/app.js", "/deep/a/b/c/", "/.env", "/tokengate.jsx", "/auth-verify", "/%61dmin"]
METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD"]


def from_app(status, data):
    return status == 200 and b'"app": "sample"' in (data or b"")


def form_post(port, path, fields):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=urllib.parse.urlencode(fields),
                           headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "topology-test"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def check_flask_app(topology, nginx):
    """The Flask sample app behind nginx: its own users, its login view, the service API."""
    port = port_of(topology.env["NGINX_URL"])
    user, password = topology.env["APP_USER"], topology.env["APP_PASSWORD"]
    status, _ = form_post(port, "/app/login", {"username": user, "password": "wrong"})
    check("the app's login view (public through nginx) refuses a wrong password: 401", status == 401, str(status))
    status, page = form_post(port, "/app/login", {"username": user, "password": password, "next": "/app/report"})
    block = re.search(rb'<script type="application/json" id="grant"[^>]*>(.*?)</script>', page or b"", re.S)
    grant = parse_json(block.group(1)) if block else None
    check("... and with the app's own password answers the session it started through the service API",
          status == 200 and grant is not None and "access_token" in grant, f"{status} {page[:120]!r}")
    if not grant:
        return
    token = grant["access_token"]
    status, _, data = nginx.request("GET", "/app/report", token=token)
    check("the Flask report view through nginx shows the user", status == 200 and f'id="report-user">{user}<'.encode() in data,
          f"{status} {data[:120]!r}")
    status, _, data = nginx.request("GET", "/app/api/notes", token=token)
    check("the Flask JSON API through nginx answers for the user", status == 200 and (parse_json(data) or {}).get("user") == user,
          f"{status} {data[:120]!r}")
    status, _, data = nginx.request("GET", "/app/report")
    check("the Flask report view through nginx without a token: 401", status == 401, str(status))
    # The service API is not reachable through nginx, with the service key or a user token.
    with open(topology.env["ADMIN_KEY_FILE"]) as handle:
        service_key = handle.read().strip()
    answers = [nginx.request("POST", "/admin/v1/sessions", token=secret, json_body={"user": "zed"})[0]
               for secret in (service_key, token)]
    left = subprocess.run(["redis-cli", "-p", topology.env["REDIS_PORT"], "--scan", "--pattern", "*{zed}*"],
                          capture_output=True, text=True).stdout.split()
    check("POST /admin/v1/sessions through nginx never reaches the service API (no session for zed)",
          answers[0] == 401 and not left, f"answers {answers}, keys {left}")
    nginx.request("POST", "/auth/logout", token=token)
    status, _, _ = nginx.request("GET", "/app/report", token=token)
    check("after logout the Flask view is 401", status == 401, str(status))


def test_forward_auth(topology):
    nginx = Conn(port_of(topology.env["NGINX_URL"]))
    leaks, wrong_status = [], []
    for path in APP_PATHS:
        for method in METHODS:
            status, headers, data = nginx.request(method, path)
            if from_app(status, data):
                leaks.append((method, path))
            if status != 401 or "bearer" not in headers.get("www-authenticate", "").lower():
                wrong_status.append((method, path, status))
    check(f"no token: every app path x method ({len(APP_PATHS) * len(METHODS)}) is 401 with WWW-Authenticate",
          not wrong_status and not leaks, f"{wrong_status[:5]} leaks={leaks[:5]}")
    status, _, data = Conn(port_of(topology.env["APP_URL"])).request("GET", "/admin")
    check("the Flask app guards itself too: direct, without a token, it answers 401", status == 401 and not from_app(status, data),
          str(status))
    check_flask_app(topology, nginx)

    t1, sid = login(nginx, "bob")
    bad = []
    for label, headers in (("garbage token", {"Authorization": "Bearer not.a.token"}),
                           ("forged X-Auth-User", {"X-Auth-User": "bob"}),
                           ("token in the query", None),
                           ("Basic scheme", {"Authorization": f"Basic {t1}"}),
                           ("two Authorization headers", "dup")):
        if headers is None:
            status, _, data = nginx.request("GET", f"/admin?access_token={t1}")
        elif headers == "dup":
            raw = socket.create_connection(("127.0.0.1", port_of(topology.env["NGINX_URL"])), timeout=5)
            raw.sendall(f"GET /admin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t1}\r\n"
                        f"Authorization: Bearer {t1}\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while True:
                chunk = raw.recv(65536)
                if not chunk:
                    break
                reply += chunk
            raw.close()
            status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else None
            data = reply
        else:
            status, _, data = nginx.request("GET", "/admin", headers=headers)
        # nginx itself refuses a duplicate Authorization header with 400; anything else must be 401
        if status not in ((400, 401) if headers == "dup" else (401,)) or from_app(status, data):
            bad.append((label, status))
    check("garbage token, forged X-Auth-User, token in the query, Basic scheme: 401; duplicate header: 400 or 401", not bad, str(bad))

    seen, wrong = 0, []
    for path in APP_PATHS:
        for method in METHODS:
            status, _, data = nginx.request(method, path, token=t1)
            if method == "HEAD":
                ok = status == 200
            else:
                app = parse_json(data) or {}
                ok = (from_app(status, data) and app.get("x_auth_user") == "bob" and app.get("x_auth_session") == sid
                      and app.get("method") == method and not app.get("authorization_seen"))
            seen += ok
            if not ok:
                wrong.append((method, path, status, data[:80]))
    check("valid token: every app path x method reaches the app, which sees X-Auth-User=bob and no token",
          not wrong, str(wrong[:3]))
    status, _, data = nginx.request("GET", "/reports", token=t1, headers={"X-Auth-User": "admin", "X-Auth-Session": "x"})
    app = parse_json(data) or {}
    check("a client's own X-Auth-User is replaced by the verified one",
          from_app(status, data) and app.get("x_auth_user") == "bob" and app.get("x_auth_session") == sid, str(app))

    # Redis not answering (paused for longer than the instances' Redis timeout): fail closed
    # (TokenGate 503 -> auth_request 500), never the app.
    pause_ms = str(int(REDIS_TIMEOUT * 1000) + 1500)
    pauser = threading.Thread(target=redis_cli, args=(topology, "CLIENT", "PAUSE", pause_ms, "ALL"))
    started = time.monotonic()
    pauser.start()
    time.sleep(0.2)  # let the pause take effect (a command, not a condition we can poll from here)
    status, _, data = nginx.request("GET", "/admin", token=t1)
    pauser.join()
    check("Redis paused: nginx answers an error, not the app (fail closed)",
          status is not None and status >= 500 and not from_app(status, data),
          f"{status} after {time.monotonic() - started:.1f} s")
    back = wait_until(lambda: from_app(*nginx.request("GET", "/admin", token=t1)[::2]), REDIS_TIMEOUT + 15, 0.2)
    check("after Redis answers again, the live token passes again", back)

    status, _, _ = nginx.request("POST", "/auth/logout", token=t1)
    check("logout through nginx answers 204", status == 204, str(status))
    after = []
    for path in APP_PATHS:
        for method in METHODS:
            status, _, data = nginx.request(method, path, token=t1)
            if status != 401 or from_app(status, data):
                after.append((method, path, status))
    check("right after logout every app path x method is 401 again", not after, str(after[:5]))
    nginx.close()
