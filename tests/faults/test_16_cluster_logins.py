"""16. Redis Cluster: logins from one address on every shard while a shard's primary dies

A login takes a slot in three failed-login counters (user and address, user, address) that live in
three hash slots, so on a Cluster up to three shards: a login must not leave a slot taken on the
healthy shards when its script fails on the dying one, or the shared per-address counter fills up and
every login from that address waits its 10 s, for users on every shard.

A 3+3 cluster (node timeout 2 s) and two instances on it, one with TOKENGATE_REDIS_WAIT=1 and one
with 0. Two users per shard (by the slot of their sessions) log in without pause on each instance,
all from 127.0.0.1, while a shard whose primary does not hold the per-address counter is failed: its
primary SIGKILLed (`kill`), or first its link frozen (a proxy in front of every node stalls, so
scripts sent to it, logins' among them, hang, and its replica gets nothing), then SIGKILLed
(`frozen`). Asserted: every login is answered 200 or 503 (never 429 or a hang) within the Redis
timeout + MARGIN; after the replica's promotion a login succeeds on every shard within 1 s (on the
victim shard only without WAIT: with WAIT it has no replica left to confirm); once idle, no counter
holds a slot (no field but the failures `f`). The table of the run is printed (note lines).
"""
import threading
import time

from harness.checks import check, note, require, say, wait_until
from harness.cluster import ClusterSet
from harness.http import Conn, parse_json

from . import MARGIN, REDIS_TIMEOUT, USERS

ADDRESS = "127.0.0.1"
RECOVERY = 1.0    # seconds from the promotion to the first successful login on each shard


def test_cluster_logins_kill(lab, work):
    _scenario(lab, work, frozen=False)


def test_cluster_logins_frozen(lab, work):
    _scenario(lab, work, frozen=True)


def _scenario(lab, work, frozen):
    what = "its link frozen, then SIGKILLed" if frozen else "SIGKILLed"
    say(f"16. Redis Cluster: logins from one address on every shard, a shard's primary {what}")
    cluster = ClusterSet(lab, work, proxied=frozen, name="logins-frozen" if frozen else "logins-kill")
    require("the cluster starts (3 primaries, a replica each in sync)", cluster.start(), cluster.created)
    instances = {"wait-1": lab.tokengate("logins-w1", url=cluster.url, env={"TOKENGATE_REDIS_WAIT": "1"}),
                 "wait-0": lab.tokengate("logins-w0", url=cluster.url, env={"TOKENGATE_REDIS_WAIT": "0"})}
    require("both instances start on redis+cluster://", all(tg.start() for tg in instances.values()),
            "".join(tg.tail() for tg in instances.values()))
    address_shard = cluster.owner(f"tg:rl:ip:{ADDRESS}")
    shards = {user: cluster.owner(f"tg:{{{user}}}:sessions") for user in USERS if user != "big"}
    victims = sorted({port for port in shards.values() if port != address_shard})
    require("a shard that does not hold the per-address counter", victims, str(shards))
    victim = victims[0]
    by_shard = {}
    for user, port in sorted(shards.items()):
        by_shard.setdefault(port, []).append(user)
    require("users on every shard", len(by_shard) == 3 and all(len(u) >= 2 for u in by_shard.values()), str(by_shard))
    replica = cluster.replica_of(victim)
    require("the victim has a replica", replica is not None)

    answers = []     # (instance, shard, start, end, status, error code)
    lock = threading.Lock()
    stop = threading.Event()

    def log_in(name, tg, user):
        conn = Conn(tg.port, timeout=15)
        while not stop.is_set():
            started = time.monotonic()
            status, _, data = conn.request("POST", "/auth/login", json_body={"username": user, "password": USERS[user]})
            code = (parse_json(data) or {}).get("error") if status != 200 else None
            with lock:
                answers.append((name, shards[user], started, time.monotonic(), status, code))
            time.sleep(0.02)
        conn.close()
    threads = [threading.Thread(target=log_in, args=(name, tg, user), daemon=True)
               for name, tg in instances.items() for users in by_shard.values() for user in users[:2]]
    for thread in threads:
        thread.start()
    require("logins succeed on every shard before the fault",
            wait_until(lambda: {(n, s) for n, s, _, _, status, _ in list(answers) if status == 200}
                       >= {(n, s) for n in instances for s in by_shard}, 15))

    fault_at = time.monotonic()
    if frozen:
        cluster.proxy(victim).set_mode("stall")
        say(f"   the link of the primary on port {victim} frozen (its clients and its replica get nothing)")
        time.sleep(2)
    cluster.server(victim).kill()
    say(f"   the primary on port {victim} SIGKILLed")
    promoted = wait_until(lambda: (cluster.ask(replica, "ROLE") or [""])[0] == "master", 40, 0.02)
    promoted_at = time.monotonic()
    require("the cluster promotes the victim's replica", promoted)
    if frozen:
        cluster.proxy(victim).set_mode("pass")

    def first_login(name, shard):
        return next((end for n, s, start, end, status, _ in list(answers)
                     if n == name and s == shard and status == 200 and end > promoted_at), None)
    expected = [(name, shard) for name in instances for shard in by_shard if not (name == "wait-1" and shard == victim)]
    wait_until(lambda: all(first_login(name, shard) for name, shard in expected), 10, 0.05)
    time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
    check("every login thread ended (no login hung)", not any(thread.is_alive() for thread in threads))

    statuses = {(status, code) for *_, status, code in answers}
    wrong = [a for a in answers if a[4] not in (200, 503)]
    check("every login is answered 200 or 503 store_unavailable (never 429, 401 or no answer)",
          not wrong and statuses <= {(200, None), (503, "store_unavailable")}, str(sorted(statuses, key=str)))
    slowest = max(end - start for _, _, start, end, _, _ in answers)
    check(f"every login answered within the Redis timeout + {MARGIN:g} s", slowest <= REDIS_TIMEOUT + MARGIN, f"{slowest:.2f} s")
    recovery = {(name, shard): first_login(name, shard) for name, shard in expected}
    for (name, shard), end in sorted(recovery.items()):
        label = "victim" if shard == victim else f"shard {sorted(by_shard).index(shard) + 1}"
        check(f"{name}: a login succeeds on the {label} within {RECOVERY:g} s of the promotion",
              end is not None and end - promoted_at <= RECOVERY,
              "none" if end is None else f"{end - promoted_at:.2f} s")
    failed = [start for _, _, start, _, status, _ in answers if status == 503]
    others = [a for a in answers if a[1] != victim and a[1] != address_shard]
    # The counters live on every shard, so a login of a user on a healthy shard may still need the
    # victim; the victim's users need it for their session.
    leaked = wait_until(lambda: _slots_held(cluster) == 0, 5, 0.1)
    held = _slots_held(cluster)
    check("once idle, no failed-login counter holds a slot (no field but the failures)", leaked, f"{held} slots held")

    for name in instances:
        mine = [a for a in answers if a[0] == name]
        fails = [a[2] for a in mine if a[4] == 503]
        window = f"{max(fails) - min(fails):.1f} s" if fails else "none"
        firsts = ", ".join(f"{'victim' if shard == victim else 'shard'} {recovery[(name, shard)] - promoted_at:.2f} s"
                           if recovery.get((name, shard)) else f"{'victim' if shard == victim else 'shard'} -"
                           for shard in sorted(by_shard))
        note(f"cluster {what}, {name}: {len(mine)} logins, {len([a for a in mine if a[4] not in (200, 503)])} wrong answers, "
             f"503 window {window}, promotion -> first login {firsts}, slots held after idle {held}")
    note(f"cluster {what}: promotion {promoted_at - fault_at:.1f} s after the fault; "
         f"{len(failed)} logins answered 503, {len([a for a in others if a[4] == 503])} of them on the shard holding neither")


def _slots_held(cluster):
    """Slots held in every failed-login counter on the live primaries: a field per attempt in flight
    besides the failures `f` (a counter written by an older TokenGate holds a count `i` instead)."""
    held = 0
    for port in cluster.primary_ports():
        client = cluster.server(port).client()
        try:
            for key in client.keys("*rl:*"):
                if ":rl:sk:" in key:
                    continue
                fields = dict(zip(*[iter(client("HGETALL", key) or [])] * 2))
                held += int(fields["i"]) if "i" in fields else len([f for f in fields if f != "f"])
        finally:
            client.close()
    return held
