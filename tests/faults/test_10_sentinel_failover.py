"""10. Redis Sentinel: the primary SIGKILLed under load, a replica promoted

A Sentinel set (a primary, 2 replicas, 3 sentinels, down after 2 s) and two instances on
redis+sentinel:// with TOKENGATE_REDIS_WAIT=1. Live tokens (logged in before the crash) and revoked
ones (logged out, 204, before the crash) are used on both instances, without pause, while the
primary is SIGKILLed: a live token is answered only 200 or 503 (never 401: its login was on a replica
before it was answered), a revoked one only 401 or 503 (never 200: its logout was on a replica too),
every answer within the Redis timeout + MARGIN, and /readyz is 503 at some point while the primary is
gone. After the promotion both instances serve again by themselves (reported: how long), and then
logins, refreshes and logouts work on the new primary (its script cache empty: NOSCRIPT, then EVAL);
the old primary, started again, comes back as a replica and is not written to; /metrics counts the
failover.
"""
import time

from harness.checks import check, ms, note, precondition, require, say, wait_until
from harness.http import Conn, error_code, http_call, metric_value, parse_json
from harness.probe import Probe
from harness.sentinel import SentinelSet

from . import MARGIN, REDIS_TIMEOUT, login


def test_sentinel_failover(lab, work):
    say("10. Redis Sentinel: the primary SIGKILLed under load, a replica promoted (TOKENGATE_REDIS_WAIT=1)")
    sentinels = SentinelSet(lab, work)
    require("the Sentinel set starts (a primary, 2 replicas in sync, 3 sentinels that know them)", sentinels.start())
    env = {"TOKENGATE_REDIS_WAIT": "1"}
    a = lab.tokengate("sentinel-a", url=sentinels.url, env=env)
    b = lab.tokengate("sentinel-b", url=sentinels.url, env=env)
    require("both instances start on redis+sentinel://", a.start() and b.start(), a.tail() + b.tail())
    conn_a, conn_b = Conn(a.port), Conn(b.port)
    live = [(tg, *login(conn, user)) for tg, conn, user in
            ((a, conn_a, "user00"), (a, conn_a, "user01"), (b, conn_b, "user02"), (b, conn_b, "user03"))]
    revoked = []
    for tg, conn, user in ((a, conn_a, "user04"), (b, conn_b, "user05")):
        token, sid = login(conn, user)
        status, _, _ = conn.request("POST", "/auth/logout", token=token)
        require(f"{user} logs out (204) before the crash", status == 204, str(status))
        revoked.append((tg, token, sid))
    old_primary = sentinels.primary_port()

    # Each token is used on both instances.
    probes = {}
    for kind, entries in (("live", live), ("revoked", revoked)):
        for _, token, _ in entries:
            for tg in (a, b):
                probes.setdefault(kind, []).append(Probe(tg, "/api/me", token).start())
    readiness = [Probe(tg, "/readyz").start() for tg in (a, b)]
    require("every live token is 200 before the crash", wait_until(lambda: all(
        p.answers and p.answers[-1][2] == 200 for p in probes["live"]), 10))

    killed_at = time.monotonic()
    sentinels.server(old_primary).kill()
    say(f"   primary on port {old_primary} SIGKILLed")

    def serving():
        return all(p.answers and p.answers[-1][0] > killed_at and p.answers[-1][2] == 200 for p in probes["live"])
    recovered = wait_until(serving, 40, 0.05)
    recovered_at = time.monotonic()
    time.sleep(0.5)   # a few more answers after recovery, for the invariants
    stopped = all(p.stop() for p in probes["live"] + probes["revoked"] + readiness)
    check("every probe thread ended (no request hung)", stopped)
    new_primary = sentinels.primary_port()
    check("the sentinels promoted a replica", new_primary != old_primary, f"primary still {new_primary}")
    check("both instances serve the live tokens again by themselves", recovered)
    note(f"failover: the instances answered 200 again {recovered_at - killed_at:.1f} s after the kill "
         f"(Sentinel's down-after is 2 s)")

    live_answers = [answer for p in probes["live"] for answer in p.answers]
    revoked_answers = [answer for p in probes["revoked"] for answer in p.answers]
    check("a live token is never refused: only 200 or 503 (its login was on a replica before it was answered)",
          {s for _, _, s, _ in live_answers} <= {200, 503}, str(sorted({(s, c) for _, _, s, c in live_answers}, key=str)))
    check("a revoked token is never admitted: only 401 token_revoked or 503 (its logout survived the failover)",
          {(s, c) for _, _, s, c in revoked_answers} <= {(401, "token_revoked"), (503, "store_unavailable")},
          str(sorted({(s, c) for _, _, s, c in revoked_answers}, key=str)))
    outage = [answer for answer in live_answers if answer[2] == 503]
    check("the outage was seen: live tokens answered 503 store_unavailable while no primary served",
          outage and all(code == "store_unavailable" for _, _, _, code in outage))
    slowest = max((end - start for start, end, _, _ in live_answers + revoked_answers), default=0)
    check(f"every answer within the Redis timeout + {MARGIN:g} s (slowest {ms(slowest)})", slowest <= REDIS_TIMEOUT + MARGIN)
    ready = [status for p in readiness for started, _, status, _ in p.answers if killed_at < started < recovered_at]
    check("/readyz answered 503 while the primary was gone", 503 in ready, str(sorted(set(ready), key=str)))
    note(f"answers during the run: live {len(live_answers)} ({len(outage)} 503), revoked {len(revoked_answers)}")

    # The new primary takes writes: login (its script cache is empty), refresh, logout, on both.
    for tg, conn, user in ((a, conn_a, "user06"), (b, conn_b, "user07")):
        try:
            token, _ = login(conn, user)
        except AssertionError as error:
            check(f"a login on {tg.name} after the failover", False, str(error))
            continue
        status, _, data = conn.request("POST", "/auth/refresh", token=token)
        fresh = (parse_json(data) or {}).get("access_token") if status == 200 else None
        check(f"login and refresh on {tg.name} after the failover", fresh is not None, f"{status} {data[:120]!r}")
        status, _, _ = conn.request("POST", "/auth/logout", token=fresh or token)
        check(f"logout on {tg.name} after the failover (WAIT with the one replica left)", status == 204, str(status))
        status, _, data = conn.request("GET", "/api/me", token=fresh or token)
        check(f"the logged-out token is refused on {tg.name}", status == 401 and error_code(data) == "token_revoked", str(status))
    for tg, token, _ in revoked:
        status, _, data = http_call(tg.port, "GET", "/api/me", token=token)
        check(f"a token logged out before the crash is still refused on {tg.name}", status == 401, str(status))

    # The old primary comes back as a replica of the new one and is never written to.
    old = sentinels.server(old_primary)
    precondition("the old primary starts again on its port", old.start())
    demoted = wait_until(lambda: (sentinels.role(old_primary) or [""])[0] == "slave", 30, 0.1)
    check("Sentinel makes the old primary a replica of the new one", demoted, str(sentinels.role(old_primary)))
    # New connections: the waits above may outlast the instances' idle timeout for keep-alive ones.
    conn_a.close()
    conn_b.close()
    conn_a, conn_b = Conn(a.port), Conn(b.port)
    token, _ = login(conn_a, "user08")
    status, _, _ = conn_a.request("POST", "/auth/logout", token=token)
    check("writes still go to the new primary (logout 204 with the old primary back as a replica)", status == 204, str(status))
    for tg, conn in ((a, conn_a), (b, conn_b)):
        failovers = metric_value(conn, r"^tokengate_redis_failovers_total ")
        check(f"/metrics on {tg.name} counts the failover (tokengate_redis_failovers_total)", (failovers or 0) >= 1, str(failovers))
        errors = metric_value(conn, rf'^tokengate_redis_node_errors_total{{node="127.0.0.1:{old_primary}"}} ')
        check(f"/metrics on {tg.name} counts the killed primary's errors (tokengate_redis_node_errors_total)", (errors or 0) >= 1, str(errors))
    conn_a.close()
    conn_b.close()
