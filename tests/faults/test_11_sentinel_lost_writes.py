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
from harness.http import Conn, http_call
from harness.redis import RedisError
from harness.sentinel import SentinelSet

from . import login
from .lost_writes import check_nothing_answered_lost, check_refused_logouts_retried, measure_without_wait, write_during_stall

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
    write_during_stall(instances, "no replica could confirm it")

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

    # With WAIT: nothing answered was lost. Its refused logouts left the sessions live (the client was
    # told to retry): a retry now ends them.
    check_nothing_answered_lost(instances)
    check_refused_logouts_retried(instances, retry_on="wait-1", prefix="with WAIT: ")
    # Without WAIT: what replication's asynchrony costs, measured (and the stall shown to have bitten).
    measure_without_wait(instances, label="")


def _primary_or_none(sentinels):
    try:
        return sentinels.primary_port()
    except (OSError, RedisError, TypeError, ValueError):
        return None
