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
from harness.http import Conn, error_code, http_call, parse_json

from . import USERS, login


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
    check("with WAIT: no logout answered 204 while the replica could not confirm it (503 store_unavailable instead)",
          all(status == 503 for _, status in d["logouts"]), str([s for _, s in d["logouts"]]))
    check("with WAIT: no login answered 200 while the replica could not confirm it (503 instead)",
          all(status == 503 for _, status, _ in d["logins"]), str([s for _, s, _ in d["logins"]]))
    check("without WAIT: the primary alone answers logouts (204) and logins (200)",
          all(status == 204 for _, status in p["logouts"]) and all(status == 200 for _, status, _ in p["logins"]),
          str([s for _, s in p["logouts"]] + [s for _, s, _ in p["logins"]]))

    killed_at = time.monotonic()
    cluster.server(victim).kill()
    promoted = wait_until(lambda: (cluster.ask(replica, "ROLE") or [""])[0] == "master", 40, 0.05)
    require("the cluster promotes the replica", promoted)
    recovered = wait_until(lambda: all(http_call(s["tg"].port, "GET", "/api/me", token=s["witness"])[0] == 200
                                       for s in instances.values()), 30, 0.1)
    check("both instances serve the shard again after the promotion", recovered)
    note(f"cluster lost writes: both instances served the shard again {time.monotonic() - killed_at:.1f} s after the kill")

    def accepted(tg, token):
        return http_call(tg.port, "GET", "/api/me", token=token)[0] == 200

    came_back = [token for token, status in d["logouts"] if status == 204 and accepted(durable, token)]
    check("with WAIT: no token whose logout was answered 204 is accepted after the failover", not came_back)
    lost = [user for user, status, token in d["logins"] if status == 200 and not accepted(durable, token)]
    check("with WAIT: no login answered 200 is lost in the failover", not lost, str(lost))
    # The promoted primary has no replica now, so a write with WAIT=1 cannot be confirmed: the refused
    # logout is retried on the instance without WAIT (the same sessions, one store).
    retried = [http_call(plain.port, "POST", "/auth/logout", token=token)[0] for token, _ in d["logouts"]]
    check("the logouts refused during the stall succeed when retried (204)", retried == [204] * len(d["logouts"]), str(retried))
    refused = [(status, error_code(data)) for status, _, data in
               (http_call(durable.port, "GET", "/api/me", token=token) for token, _ in d["logouts"])]
    check("and their tokens are refused from then on", all(r == (401, "token_revoked") for r in refused), str(refused))

    answered = [token for token, status in p["logouts"] if status == 204]
    back = [token for token in answered if accepted(plain, token)]
    logins = [(user, token) for user, status, token in p["logins"] if status == 200]
    lost_logins = [user for user, token in logins if not accepted(plain, token)]
    check("without WAIT: the failover lost acknowledged writes (else this test could not tell)", back or lost_logins)
    note(f"cluster, without WAIT: {len(back)} of {len(answered)} tokens whose logout was answered 204 were accepted again "
         f"after the failover; {len(lost_logins)} of {len(logins)} answered logins were lost (their tokens 401)")


def _caught_up(cluster, primary):
    info = cluster.ask(primary, "INFO", "replication") or ""
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    offset = fields.get("master_repl_offset")
    return bool(offset) and f"offset={offset}," in fields.get("slave0", "")
