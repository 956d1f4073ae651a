"""11. Redis Sentinel: the primary dies with writes its replicas never got (TOKENGATE_REDIS_WAIT on and off)

The replicas replicate through proxies of the test's own, which stall (the primary keeps answering,
its replicas get nothing), so the primary acknowledges writes that no replica has; then it is
SIGKILLed and Sentinel promotes a replica. Two instances share the set: one with
TOKENGATE_REDIS_WAIT=1, one without. During the stall each logs sessions out and logs new users in.
Asserted with WAIT: no logout is answered 204 and no login 200 without a replica having it (503
instead), so after the failover no revoked token is accepted and no answered login is lost; the
logouts it refused work once retried. Measured without WAIT (and checked to be non-zero, else the
test would prove nothing): how many tokens whose logout was answered 204 are accepted again after
the failover, and how many answered logins are lost.
"""
import time

from harness.checks import check, note, require, say, wait_until
from harness.http import Conn, error_code, http_call, parse_json
from harness.redis import RedisError
from harness.sentinel import SentinelSet

from . import USERS, login

USERS_EACH = 4   # per instance: sessions logged out during the stall, and logins during it


def test_sentinel_lost_writes(lab, work):
    say("11. Redis Sentinel: the primary dies with writes its replicas never got (WAIT on and off)")
    sentinels = SentinelSet(lab, work, proxied=True)
    require("the Sentinel set starts, its replicas replicating through the test's proxies", sentinels.start())
    durable = lab.tokengate("wait-1", url=sentinels.url, env={"TOKENGATE_REDIS_WAIT": "1"})
    plain = lab.tokengate("wait-0", url=sentinels.url, env={"TOKENGATE_REDIS_WAIT": "0"})
    require("both instances start", durable.start() and plain.start(), durable.tail() + plain.tail())
    users = iter(f"user{i:02d}" for i in range(16))
    instances = {}
    for tg in (durable, plain):
        conn = Conn(tg.port)
        before = [login(conn, next(users)) for _ in range(USERS_EACH)]
        instances[tg.name] = {"tg": tg, "conn": conn, "before": before, "fresh": [next(users) for _ in range(USERS_EACH)]}

    for proxy in sentinels.proxies:
        proxy.set_mode("stall")
    say("   replication stalled: the primary answers, its replicas get nothing")
    for state in instances.values():
        conn = state["conn"]
        state["logouts"] = [(token, conn.request("POST", "/auth/logout", token=token)[0]) for token, _ in state["before"]]
        state["logins"] = []
        for user in state["fresh"]:
            status, _, data = conn.request("POST", "/auth/login", json_body={"username": user, "password": USERS[user]})
            token = (parse_json(data) or {}).get("access_token") if status == 200 else None
            state["logins"].append((user, status, token))
        conn.close()
    d, p = instances["wait-1"], instances["wait-0"]
    check("with WAIT: no logout answered 204 while no replica could confirm it (503 store_unavailable instead)",
          all(status == 503 for _, status in d["logouts"]), str([s for _, s in d["logouts"]]))
    check("with WAIT: no login answered 200 while no replica could confirm it (503 instead)",
          all(status == 503 for _, status, _ in d["logins"]), str([s for _, s, _ in d["logins"]]))
    check("without WAIT: the primary alone answers logouts (204) and logins (200)",
          all(status == 204 for _, status in p["logouts"]) and all(status == 200 for _, status, _ in p["logins"]),
          str([s for _, s in p["logouts"]] + [s for _, s, _ in p["logins"]]))

    old = sentinels.primary_port()
    killed_at = time.monotonic()
    sentinels.server(old).kill()
    promoted = wait_until(lambda: _primary_or_none(sentinels) not in (None, old), 40, 0.1)
    require("Sentinel promotes a replica", promoted)
    # Both instances serve again: a token that was never logged out answers 200 on each.
    witness = instances["wait-1"]["before"][0][0]
    recovered = wait_until(lambda: all(http_call(s["tg"].port, "GET", "/api/me", token=witness)[0] == 200
                                       for s in instances.values()), 30, 0.1)
    check("both instances serve again after the promotion", recovered)
    note(f"lost writes: both instances served again {time.monotonic() - killed_at:.1f} s after the kill")

    def accepted(tg, token):
        return http_call(tg.port, "GET", "/api/me", token=token)[0] == 200

    # With WAIT: nothing answered was lost. Its refused logouts left the sessions live (the client was
    # told to retry): a retry now ends them.
    came_back = [token for token, status in d["logouts"] if status == 204 and accepted(durable, token)]
    check("with WAIT: no token whose logout was answered 204 is accepted after the failover", not came_back)
    lost = [user for user, status, token in d["logins"] if status == 200 and not accepted(durable, token)]
    check("with WAIT: no login answered 200 is lost in the failover", not lost, str(lost))
    retried = [http_call(durable.port, "POST", "/auth/logout", token=token)[0] for token, _ in d["logouts"]]
    check("with WAIT: the logouts refused during the stall succeed when retried (204)", retried == [204] * USERS_EACH, str(retried))
    refused = [(status, error_code(data)) for status, _, data in
               (http_call(durable.port, "GET", "/api/me", token=token) for token, _ in d["logouts"])]
    check("with WAIT: and their tokens are refused from then on", all(r == (401, "token_revoked") for r in refused), str(refused))

    # Without WAIT: what replication's asynchrony costs, measured (and the stall shown to have bitten).
    answered = [token for token, status in p["logouts"] if status == 204]
    back = [token for token in answered if accepted(plain, token)]
    logins = [(user, token) for user, status, token in p["logins"] if status == 200]
    lost_logins = [user for user, token in logins if not accepted(plain, token)]
    check("without WAIT: the failover lost acknowledged writes (else this test could not tell)", back or lost_logins)
    note(f"without WAIT: {len(back)} of {len(answered)} tokens whose logout was answered 204 were accepted again "
         f"after the failover; {len(lost_logins)} of {len(logins)} answered logins were lost (their tokens 401)")


def _primary_or_none(sentinels):
    try:
        return sentinels.primary_port()
    except (OSError, RedisError, TypeError, ValueError):
        return None
