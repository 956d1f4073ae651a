"""1. Redis not running at start-up, then appearing on its port

The service starts, /healthz 200, /readyz 503, login and protected routes (with a correctly signed
token) 503 store_unavailable, each within the Redis timeout + MARGIN; Redis then appears on that port
and the service recovers by itself (/readyz 200, login works, a correctly signed token Redis never
saw is 401 token_revoked), same PID, no fd leak.
"""
import time

from harness.checks import check, ms, note, require, say, wait_until
from harness.http import Conn, error_code, parse_json
from harness.processes import refuses_connections
from harness.tokengate import fmt_stats

from . import MARGIN, REDIS_TIMEOUT, USERS, forge_token, login


def test_startup_without_redis(lab, credentials):
    redis = lab.redis("a")
    tg = lab.tokengate("a", redis.port)
    require("the service starts and listens while nothing answers on the Redis port",
            refuses_connections(redis.port) and tg.start(), tg.tail())
    before = tg.stats()
    say(f"   before: {fmt_stats(before)}")
    conn = Conn(tg.port)
    status, _, _, elapsed = conn.timed("GET", "/healthz")
    check("/healthz 200 without Redis", status == 200, f"{status} in {ms(elapsed)}")
    status, _, data, elapsed = conn.timed("GET", "/readyz")
    check("/readyz 503 store_unavailable without Redis", status == 503 and error_code(data) == "store_unavailable",
          f"{status} {data[:80]!r} in {ms(elapsed)}")
    forged = forge_token(credentials.key, "user00")
    answers, slowest = [], 0.0
    for _ in range(5):
        for method, path, token, body in (
                ("POST", "/auth/login", None, {"username": "user00", "password": USERS["user00"]}),
                ("GET", "/api/me", forged, None), ("GET", "/auth/verify", forged, None),
                ("GET", "/auth/sessions", forged, None), ("POST", "/auth/refresh", forged, None)):
            status, _, data, elapsed = conn.timed(method, path, token=token, json_body=body)
            answers.append((path, status, error_code(data)))
            slowest = max(slowest, elapsed)
    bad = [a for a in answers if a[1] != 503 or a[2] != "store_unavailable"]
    check(f"login and protected routes (correctly signed token) all 503 store_unavailable ({len(answers)} requests)",
          not bad, str(bad[:4]))
    check(f"each answered within the Redis timeout + {MARGIN:g} s", slowest <= REDIS_TIMEOUT + MARGIN,
          f"slowest {ms(slowest)}")
    note(f"1: without Redis: {len(answers)} requests, all 503, slowest {ms(slowest)}")

    require("redis-server starts on that port", redis.start())
    appeared = time.monotonic()
    ready = wait_until(lambda: conn.request("GET", "/readyz")[0] == 200, 15, 0.05)
    recovered = time.monotonic() - appeared
    check("/readyz turns 200 by itself (no restart)", ready, f"after {recovered:.2f} s")
    note(f"1: /readyz 200 {recovered:.2f} s after Redis appeared")
    try:
        token, sid = login(conn, "user00")
        logged_in = True
    except AssertionError as error:
        logged_in, token, sid = False, None, None
        say(f"   {error}")
    check("login works after Redis appeared", logged_in)
    if logged_in:
        status, _, data = conn.request("GET", "/api/me", token=token)
        body = parse_json(data) or {}
        check("/api/me 200 with that token", status == 200 and body.get("user") == "user00" and body.get("session_id") == sid,
              f"{status} {data[:80]!r}")
    status, _, data = conn.request("GET", "/api/me", token=forged)
    check("the correctly signed token Redis never saw: 401 token_revoked", status == 401 and error_code(data) == "token_revoked",
          f"{status} {data[:80]!r}")
    check("same process throughout (no crash, no restart)", tg.alive(), f"pid {tg.pid}")
    conn.close()
    after = tg.stats()
    say(f"   after:  {fmt_stats(after)}")
    note(f"1: fds {before['fds']} -> {after['fds']} (now with {after['redis_established']} Redis connections), "
         f"RSS {before['rss_kb'] / 1024:.1f} -> {after['rss_kb'] / 1024:.1f} MiB")
    check("no fd leak from the failed connection attempts (at most the 2 Redis connections + 4 more than at start)",
          after["fds"] <= before["fds"] + 6 and after["redis_established"] <= 2, f"{before['fds']} -> {after['fds']}")
