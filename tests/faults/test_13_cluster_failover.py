"""13. Redis Cluster: a shard's primary SIGKILLed under load, its replica promoted

A 3+3 cluster (cluster-node-timeout 2 s, cluster-require-full-coverage no) and two instances on
redis+cluster:// with TOKENGATE_REDIS_WAIT=1. Users whose slot is on the victim shard and users on
the other shards have live tokens, and victim-shard users also revoked ones (logout answered 204
before the crash), used on both instances without pause while the victim's primary is SIGKILLed.
Asserted: a live token is answered only 200 or 503 (never 401), a revoked one only 401 or 503 (never
200), users on the other shards only 200 (their primaries never stopped), every answer within the
Redis timeout + MARGIN. Measured: the victim shard's 503 window and its recovery. Then, on the
promoted primary (empty script cache: NOSCRIPT, then EVAL): token checks are answered; logins and
logouts wait for a replica (WAIT=1) and the shard has none until its old primary is back, so they
answer 503, and work once the old node has rejoined as a replica; /metrics counts the failover.
"""
import json
import time

from harness.checks import check, note, require, say, wait_until
from harness.cluster import ClusterSet
from harness.http import Conn, error_code, http_call, metric_value, parse_json
from harness.probe import Probe

from . import MARGIN, REDIS_TIMEOUT, USERS, login


def test_cluster_failover(lab, work):
    say("13. Redis Cluster: a shard's primary SIGKILLed under load (TOKENGATE_REDIS_WAIT=1)")
    cluster = ClusterSet(lab, work)
    require("the cluster starts (3 primaries, a replica each in sync)", cluster.start(), cluster.created)
    env = {"TOKENGATE_REDIS_WAIT": "1"}
    a = lab.tokengate("cluster-a", url=cluster.url, env=env)
    b = lab.tokengate("cluster-b", url=cluster.url, env=env)
    require("both instances start on redis+cluster://", a.start() and b.start(), a.tail() + b.tail())
    owners = {user: cluster.owner(f"tg:{{{user}}}:sessions") for user in USERS}
    victim = owners["user00"]
    on_victim = [user for user, port in owners.items() if port == victim and user != "big"]
    elsewhere = [user for user, port in owners.items() if port != victim and user != "big"]
    require("users on the victim shard and on the others", len(on_victim) >= 3 and len(elsewhere) >= 1, str(owners))
    conn = Conn(a.port)
    live = [login(conn, user)[0] for user in on_victim[:2]]
    revoked = []
    token, _ = login(conn, on_victim[2])
    require("a victim-shard user logs out (204, confirmed by the replica) before the crash",
            conn.request("POST", "/auth/logout", token=token)[0] == 204)
    revoked.append(token)
    others = [login(conn, user)[0] for user in elsewhere[:2]]
    conn.close()
    probes = {kind: [Probe(tg, "/api/me", token) for token in tokens for tg in (a, b)]
              for kind, tokens in (("live", live), ("revoked", revoked), ("others", others))}
    for probe in (p for group in probes.values() for p in group):
        probe.start()
    require("every live token is 200 before the crash",
            wait_until(lambda: all(p.answers and p.answers[-1][2] == 200 for p in probes["live"] + probes["others"]), 10))

    killed_at = time.monotonic()
    cluster.server(victim).kill()
    say(f"   the primary on port {victim} SIGKILLed")
    recovered = wait_until(lambda: all(p.answers and p.answers[-1][0] > killed_at and p.answers[-1][2] == 200
                                       for p in probes["live"]), 40, 0.05)
    recovered_at = time.monotonic()
    time.sleep(0.5)
    stopped = all(probe.stop() for group in probes.values() for probe in group)
    check("every probe thread ended (no request hung)", stopped)
    check("both instances serve the victim shard's users again by themselves", recovered)
    promoted = cluster.owner(f"tg:{{{on_victim[0]}}}:sessions")
    check("the cluster promoted the victim's replica", promoted not in (None, victim), str(promoted))

    def answers(kind):
        return [answer for probe in probes[kind] for answer in probe.answers]
    check("a live token is never refused: only 200 or 503",
          {s for _, _, s, _ in answers("live")} <= {200, 503}, str({(s, c) for _, _, s, c in answers("live")}))
    check("a revoked token is never admitted: only 401 token_revoked or 503",
          {(s, c) for _, _, s, c in answers("revoked")} <= {(401, "token_revoked"), (503, "store_unavailable")},
          str({(s, c) for _, _, s, c in answers("revoked")}))
    check("users on the other shards are served throughout (only 200)",
          {s for _, _, s, _ in answers("others")} == {200}, str({(s, c) for _, _, s, c in answers("others")}))
    outage = [start for start, _, status, _ in answers("live") if status == 503]
    check("the outage was seen on the victim shard (503)", outage)
    if outage:
        note(f"cluster failover: the victim shard answered 503 for {max(outage) - min(outage):.1f} s "
             f"(first to last), served again {recovered_at - killed_at:.1f} s after the kill (node timeout 2 s)")
    slowest = max((end - start for start, end, _, _ in answers("live") + answers("revoked") + answers("others")), default=0)
    check(f"every answer within the Redis timeout + {MARGIN:g} s", slowest <= REDIS_TIMEOUT + MARGIN, f"{slowest:.2f} s")

    # The promoted primary serves token checks (scripts reloaded: NOSCRIPT, then EVAL), but writes
    # wait for a replica (WAIT=1) and the shard has none until its old primary is back: they answer
    # 503, then work once the old node has rejoined as a replica.
    user = on_victim[3] if len(on_victim) > 3 else on_victim[0]
    status, _, data = http_call(b.port, "POST", "/auth/login", body=_login_body(user),
                                headers={"Content-Type": "application/json"})
    check("a login on the shard with no replica left answers 503 (WAIT=1 fails closed)",
          status == 503 and error_code(data) == "store_unavailable", str(status))
    status, _, data = http_call(b.port, "POST", "/auth/logout", token=live[0])
    check("and so does a logout", status == 503 and error_code(data) == "store_unavailable", str(status))
    status, _, _ = http_call(b.port, "GET", "/api/me", token=live[1])
    check("while token checks are answered (200)", status == 200, str(status))
    old = cluster.server(victim)
    require("the old primary starts again", old.start())
    rejoined = wait_until(lambda: (cluster.ask(victim, "ROLE") or [""])[0] == "slave"
                          and cluster.ask(victim, "ROLE")[3] == "connected", 40, 0.1)
    check("it rejoins as the new primary's replica", rejoined, str(cluster.ask(victim, "ROLE")))
    # The primary counts the replica for WAIT once it has acknowledged the stream (about a second
    # after the sync): until then a login still answers 503, so poll.
    answered = []

    def log_in():
        status, _, data = http_call(a.port, "POST", "/auth/login", body=_login_body(user), headers={"Content-Type": "application/json"})
        answered.append(status)
        return (parse_json(data) or {}).get("access_token") if status == 200 else None
    token = wait_until(log_in, 15, 0.2)
    conn = Conn(a.port)
    status = conn.request("POST", "/auth/refresh", token=token)[0] if token else None
    check("with a replica again, login and refresh work on the promoted primary", token and status == 200,
          f"logins {answered[-3:]}, refresh {status}")
    # The refused logout ran on the primary all the same (WAIT does not undo): its retry finds the
    # session ended (401) or ends it (204).
    status, _, _ = conn.request("POST", "/auth/logout", token=live[0])
    check("and the retried logout ends the session (204, or 401 if the refused one had run)", status in (204, 401), str(status))
    status, _, _ = http_call(b.port, "GET", "/api/me", token=live[0])
    check("its token is refused on the other instance", status == 401, str(status))
    failovers = metric_value(conn, r"^tokengate_redis_failovers_total ")
    check("/metrics counts the failover (tokengate_redis_failovers_total)", (failovers or 0) >= 1, str(failovers))
    conn.close()


def _login_body(user):
    return json.dumps({"username": user, "password": USERS[user]}).encode()
