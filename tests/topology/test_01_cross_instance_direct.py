"""a. cross-instance, hitting the instances directly

Login on A, use on B, refresh on C (a new token for the same session, working on A, B and C, verify
naming the user and session), the session's keys in Redis; logout on A, then replay of both tokens
on B and C refused at once (401 token_revoked) and no key of the session left in Redis.
"""
from harness.checks import check
from harness.http import Conn, parse_json, port_of

from . import login, redis_cli


def test_cross_instance_direct(topology):
    a, b, c = (Conn(port_of(url)) for url in topology.instance_urls())
    t1, sid = login(a, "alice")
    status, _, data = b.request("GET", "/api/me", token=t1)
    me = parse_json(data) or {}
    check("token from A works on B", status == 200 and me.get("user") == "alice" and me.get("session_id") == sid,
          f"{status} {data[:120]!r}")
    status, _, data = c.request("POST", "/auth/refresh", token=t1)
    fresh = parse_json(data) or {}
    t2 = fresh.get("access_token")
    check("refresh on C gives a new token for the same session",
          status == 200 and t2 and t2 != t1 and fresh.get("session_id") == sid, f"{status} {data[:120]!r}")
    statuses = [conn.request("GET", "/api/me", token=t2)[0] for conn in (a, b, c)]
    check("the refreshed token works on A, B and C", statuses == [200, 200, 200], str(statuses))
    status, headers, _ = b.request("GET", "/auth/verify", token=t2)
    check("verify on B names the user and session",
          status == 200 and headers.get("x-auth-user") == "alice" and headers.get("x-auth-session") == sid,
          f"{status} {headers}")
    check("the session's keys are in Redis", redis_cli(topology, "EXISTS", f"tg:{{alice}}:s:{sid}") == "1")
    status, _, _ = a.request("POST", "/auth/logout", token=t2)
    check("logout on A answers 204", status == 204, str(status))
    replays = []
    for name, conn in (("B", b), ("C", c)):
        for token_name, token in (("old", t1), ("new", t2)):
            for method, path in (("GET", "/api/me"), ("GET", "/auth/verify"), ("POST", "/auth/refresh")):
                status, _, data = conn.request(method, path, token=token)
                code = (parse_json(data) or {}).get("error")
                replays.append((name, token_name, path, status, code))
    refused = all(status == 401 and (code == "token_revoked" or path == "/auth/verify")
                  for _, _, path, status, code in replays)
    check("replay of both tokens on B and C, first try: 401 token_revoked", refused,
          str([r for r in replays if r[3] != 401]))
    check("no key of the session is left in Redis",
          redis_cli(topology, "--scan", "--pattern", f"tg:{{alice}}:*{sid}*") == "")
    for conn in (a, b, c):
        conn.close()
