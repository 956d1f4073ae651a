"""17. Redis Cluster: a shard's primary dies with writes its replica never got (TOKENGATE_REDIS_WAIT on and off)

Scenario 11 on a 3+3 cluster. Every node announces 127.0.0.2 (where a proxy of the test's own listens
on its port) to its replica and the cluster bus, and 127.0.0.1 to clients, so only replication goes
through the proxy. The proxy of the primary of the shard holding the most test users stalls (the
primary keeps answering, its replica gets nothing), so the primary acknowledges writes its replica
never has; then it is SIGKILLed and the cluster promotes the replica. Two instances share the cluster:
one with TOKENGATE_REDIS_WAIT=1, one without. During the stall each logs sessions of that shard's
users out and logs others of them in. Asserted with WAIT: no logout is answered 204 and no login 200
without the replica having it (503 instead), so after the failover no revoked token is accepted and no
answered login is lost; the logouts it refused work once retried. Measured without WAIT (and checked
to be non-zero, else the test would prove nothing): how many tokens whose logout was answered 204 are
accepted again after the failover, and how many answered logins are lost.
"""
import time

from harness.checks import check, note, require, say, wait_until
from harness.cluster import ClusterSet
from harness.http import Conn, http_call

from . import USERS, login
from .lost_writes import check_nothing_answered_lost, check_refused_logouts_retried, measure_without_wait, write_during_stall


def test_cluster_lost_writes(lab, work):
    say("17. Redis Cluster: a shard's primary dies with writes its replica never got (WAIT on and off)")
    cluster = ClusterSet(lab, work, replication_proxied=True, name="lost-writes")
    require("the cluster starts, each replica replicating through a proxy of the test's own", cluster.start(), cluster.created)
    durable = lab.tokengate("wait-1", url=cluster.url, env={"TOKENGATE_REDIS_WAIT": "1"})
    plain = lab.tokengate("wait-0", url=cluster.url, env={"TOKENGATE_REDIS_WAIT": "0"})
    require("both instances start on redis+cluster://", durable.start() and plain.start(), durable.tail() + plain.tail())
    shards = {}
    for user in (u for u in USERS if u != "big"):
        shards.setdefault(cluster.owner(f"tg:{{{user}}}:sessions"), []).append(user)
    victim, users = max(shards.items(), key=lambda item: len(item[1]))
    # Pigeonhole: 16 users on 3 shards put at least 6 on one; each instance takes 3 (a session logged
    # out, a fresh login, and a witness that stays logged in).
    require("six users on one shard", len(users) >= 6, str(shards))
    replica = cluster.replica_of(victim)
    require("the victim has a replica", replica is not None)
    instances = {}
    for tg, mine in ((durable, users[0:3]), (plain, users[3:6])):
        conn = Conn(tg.port)
        before = [login(conn, mine[0])]
        witness = login(conn, mine[2])[0]
        instances[tg.name] = {"tg": tg, "conn": conn, "before": before, "fresh": [mine[1]], "witness": witness}

    # Before the stall the replica has everything: nothing is in flight when it starts.
    require("the replica has caught up", wait_until(lambda: _caught_up(cluster, victim), 10))
    cluster.proxy(victim).set_mode("stall")
    say(f"   replication of the primary on port {victim} stalled: it answers, its replica gets nothing")
    write_during_stall(instances, "the replica could not confirm it")

    killed_at = time.monotonic()
    cluster.server(victim).kill()
    promoted = wait_until(lambda: (cluster.ask(replica, "ROLE") or [""])[0] == "master", 40, 0.05)
    require("the cluster promotes the replica", promoted)
    recovered = wait_until(lambda: all(http_call(s["tg"].port, "GET", "/api/me", token=s["witness"])[0] == 200
                                       for s in instances.values()), 30, 0.1)
    check("both instances serve the shard again after the promotion", recovered)
    note(f"cluster lost writes: both instances served the shard again {time.monotonic() - killed_at:.1f} s after the kill")

    check_nothing_answered_lost(instances)
    # The promoted primary has no replica now, so a write with WAIT=1 cannot be confirmed: the refused
    # logout is retried on the instance without WAIT (the same sessions, one store).
    check_refused_logouts_retried(instances, retry_on="wait-0")
    measure_without_wait(instances, label="cluster, ")


def _caught_up(cluster, primary):
    info = cluster.ask(primary, "INFO", "replication") or ""
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    offset = fields.get("master_repl_offset")
    return bool(offset) and f"offset={offset}," in fields.get("slave0", "")
