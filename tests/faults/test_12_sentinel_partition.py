"""12. Redis Sentinel: the primary partitioned from the majority (network namespaces), and split brain

The primary redis-server runs in a network namespace of the test's own (harness/netns.py), on a veth
address; its 2 replicas and 3 sentinels run in the root namespace and reach it over that link. The
partition is a black hole (packets vanish both ways, connections hang until their timeouts), made by
taking the link's bridge port down, and healed by bringing it up.

Round 1 (plain Redis settings): instances a and b (root namespace, TOKENGATE_REDIS_WAIT=1) under
load with live and revoked tokens, as in scenario 10, and instance m inside the primary's namespace
(the minority side; clients reach it over a second link that is never cut). After the cut, asserted
on a and b: a live token is answered only 200 or 503, a revoked one only 401 or 503, every answer
within the Redis timeout + MARGIN, /readyz 503 during the outage; measured: the 503 window (first to
last 503) and the recovery after the promotion. Then users log out through b (204 from the new
primary) and what m answers for those tokens while it still sees only the old primary is measured
(split brain: it may admit them); a logout through m is never answered 204 (WAIT=1 finds no replica).
After healing, the old primary is demoted by Sentinel (ROLE slave), m stops admitting the revoked
tokens (measured: how long after the heal), and no instance writes to the old primary (its
commandstats stay free of scripts and WAITs).

Round 2: the same partition with every data node run with min-replicas-to-write 1 and
min-replicas-max-lag LAG, and instances b and m. The old primary refuses writes (NOREPLICAS) once
no replica acknowledged within LAG s. Measured: how many requests for revoked tokens m still admits
and for how long (TokenGate's verify script writes only its once-a-second activity touch, so Redis
refuses only those runs); asserted: what holds on the minority side, and that the majority side is
not hurt by the setting (it serves again after the promotion).
"""
import time

import pytest

from harness import netns
from harness.checks import check, ms, note, precondition, require, say, wait_until
from harness.http import Conn
from harness.probe import Probe
from harness.processes import stop_process
from harness.redis import RedisError, Resp
from harness.sentinel import SentinelSet

from . import MARGIN, REDIS_TIMEOUT, login

LAG = 2            # min-replicas-max-lag of round 2, seconds
# Round 2: how long after the cut the minority side may still admit anything. Replicas acknowledge
# once a second and Redis counts their lag in whole seconds, so the old primary refuses writes at most
# LAG + 2 s after the cut; a verify may skip its write (the activity touch, once per Redis second per
# session) for at most 1 s more. MARGIN on top, as for every answer.
BOUND = LAG + 3
OBSERVE = 4.0      # seconds the partition is kept after the majority's logouts, while m is watched
ENV = {"TOKENGATE_REDIS_WAIT": "1"}


@pytest.fixture
def namespaces():
    """make(tag) -> a netns.Namespace; every one is closed at the end, also on failure. Ask for this
    fixture before `lab`: it is then torn down after the lab has stopped the processes inside."""
    made = []

    def make(tag):
        ns = netns.Namespace.create(tag)
        made.append(ns)
        return ns
    yield make
    for ns in made:
        try:
            ns.close()
        except Exception as error:   # the others still get closed
            say(f"   closing namespace {ns.name}: {error!r}")


def test_sentinel_partition(namespaces, lab, work):
    say("12. Redis Sentinel: the primary partitioned from the majority (ip netns, a black hole), and split brain")
    works, why = netns.available()
    precondition("network namespaces, veth pairs and bridges work here (root, iproute2)", works, why)
    started = time.monotonic()
    plain = _partition(namespaces, lab, work, "p", bounded=False)
    bounded = _partition(namespaces, lab, work, "q", bounded=True)
    if plain is not None and bounded is not None:
        note(f"partition: split brain without min-replicas: m admitted {plain}; with min-replicas-to-write 1, "
             f"max-lag {LAG} s: {bounded}")
    note(f"partition: both rounds took {time.monotonic() - started:.1f} s")


def _user_names():
    return iter(f"user{i:02d}" for i in range(16))


def _partition(namespaces, lab, work, tag, bounded):
    """One round; returns a summary of what m admitted for tokens logged out through the majority."""
    label = f"min-replicas {LAG} s" if bounded else "plain"
    say(f"   --- round {'2' if bounded else '1'}: {label} ---")
    ns = namespaces(tag)
    data, client = ns.link(), ns.link()   # data: Redis and Sentinel traffic (cut); client: to m (never cut)
    extra = ["--min-replicas-to-write", "1", "--min-replicas-max-lag", str(LAG)] if bounded else []
    sentinels = SentinelSet(lab, work, name=f"partition-{tag}", extra=extra, primary_host=data.inside,
                            primary_prefix=ns.prefix, bind=("127.0.0.1", data.root))
    require(f"[{label}] the Sentinel set starts, its primary inside namespace {ns.name} at {data.inside}", sentinels.start(),
            sentinels.primary.log_path)
    old_port = sentinels.primary.port
    majority = [lab.tokengate(f"{tag}-{side}", url=sentinels.url, env=ENV) for side in (("b",) if bounded else ("a", "b"))]
    m = lab.tokengate(f"{tag}-m", url=sentinels.url_at(data.root), env=ENV, host=client.inside, prefix=ns.prefix)
    every = majority + [m]
    require(f"[{label}] the instances start (m inside the namespace, on the sentinels at {data.root})",
            all(tg.start() for tg in every), "".join(tg.tail() for tg in every))
    b = majority[-1]
    conns = {tg.name: Conn(tg.port, host=tg.host) for tg in every}
    users = _user_names()

    # Before the cut: live tokens on the majority instances, revoked ones (204), and the victims:
    # live now, to be logged out through b once the majority has promoted a replica.
    live, revoked = [], []
    for tg in majority:
        live += [(tg, *login(conns[tg.name], next(users))) for _ in range(2)]
        token, _ = login(conns[tg.name], next(users))
        status = conns[tg.name].request("POST", "/auth/logout", token=token)[0]
        require(f"[{label}] a logout on {tg.name} before the cut (204)", status == 204, str(status))
        revoked.append((tg, token))
    victims = [login(conns[b.name], next(users))[0] for _ in range(3)]
    m_live = login(conns[m.name], next(users))[0]
    m_spare = login(conns[m.name], next(users))[0]   # logged out through m during the partition

    probes_live = [Probe(tg, "/api/me", token).start() for _, token, _ in live for tg in majority]
    probes_revoked = [Probe(tg, "/api/me", token).start() for _, token in revoked for tg in majority]
    readiness = [Probe(tg, "/readyz").start() for tg in majority]
    probes_victims = [Probe(m, "/api/me", token).start() for token in victims]
    probe_m_live = Probe(m, "/api/me", m_live).start()
    probe_m_ready = Probe(m, "/readyz").start()
    probes = probes_live + probes_revoked + readiness + probes_victims + [probe_m_live, probe_m_ready]
    require(f"[{label}] every live token is 200 on every instance before the cut",
            wait_until(lambda: all(p.answers and p.answers[-1][2] == 200 for p in probes_live + probes_victims + [probe_m_live]), 10))

    cut_at = time.monotonic()
    data.cut()
    say(f"   the link to the primary ({data.inside}:{old_port}) cut: a black hole both ways")
    status = conns[m.name].request("POST", "/auth/logout", token=m_spare)[0]
    check(f"[{label}] a logout through m while it sees no replica is not answered 204 (WAIT=1: 503)", status == 503, str(status))

    promoted = wait_until(lambda: _primary_or_none(sentinels) not in (None, old_port), 30, 0.05)
    promoted_at = time.monotonic()
    require(f"[{label}] the majority's sentinels promote a replica", promoted)
    new_port = _primary_or_none(sentinels)
    served = wait_until(lambda: all(p.last_is(200, promoted_at) for p in probes_live), 20, 0.05)
    served_at = time.monotonic()
    check(f"[{label}] the majority's instances serve the live tokens again by themselves", served)
    note(f"partition [{label}]: promotion {promoted_at - cut_at:.1f} s after the cut, the majority's instances "
         f"served again {served_at - promoted_at:.1f} s after it ({served_at - cut_at:.1f} s after the cut)")

    # The promoted primary needs its one replica back (Sentinel reconfigures it) before WAIT=1 can confirm.
    synced = wait_until(lambda: len((sentinels.role(new_port) or [None, None, []])[2]) >= 1, 20, 0.05)
    check(f"[{label}] the other replica follows the new primary", synced, str(sentinels.role(new_port)))
    logged_out, statuses = [], []
    for token in victims:
        # Retried while WAIT finds no replica (503); a 401 after a 503 means that attempt did end it.
        seen = []
        answered = wait_until(lambda token=token, seen=seen: seen.append(conns[b.name].request("POST", "/auth/logout", token=token)[0])
                              or seen[-1] == 204 or (seen[-1] == 401 and 503 in seen), 10, 0.1)
        logged_out.append((token, time.monotonic() if answered else None))
        statuses.append(seen)
    require(f"[{label}] users log out through b on the majority side (204 from the new primary)",
            all(at is not None for _, at in logged_out), str(statuses))
    status = conns[b.name].request("GET", "/api/me", token=victims[0])[0]
    check(f"[{label}] b refuses a token logged out through it (401)", status == 401, str(status))
    time.sleep(OBSERVE)   # the partition lasts: m is watched (its probes run meanwhile)

    heal_at = time.monotonic()
    data.heal()
    say("   the link healed")
    demoted = wait_until(lambda: (sentinels.role(old_port, timeout=1) or [""])[0] == "slave", 30, 0.1)
    demoted_at = time.monotonic()
    check(f"[{label}] Sentinel demotes the old primary once it is reachable again (ROLE slave)", demoted,
          str(sentinels.role(old_port)))
    converged = wait_until(lambda: all(p.last_is(401, time.monotonic() - 0.5) for p in probes_victims), 30, 0.05)
    check(f"[{label}] after the heal m refuses the tokens logged out on the majority side (401)", converged,
          str([p.answers[-1][2:] for p in probes_victims if p.answers]))
    time.sleep(0.3)
    check(f"[{label}] every probe thread ended (no request hung)", all(p.stop() for p in probes))

    # The majority side: scenario 10's invariants.
    live_answers = [a for p in probes_live for a in p.answers]
    revoked_answers = [a for p in probes_revoked for a in p.answers]
    check(f"[{label}] majority side: a live token is never refused (only 200 or 503)",
          {s for _, _, s, _ in live_answers} <= {200, 503}, str(sorted({(s, c) for _, _, s, c in live_answers}, key=str)))
    check(f"[{label}] majority side: a revoked token is never admitted (only 401 token_revoked or 503)",
          {(s, c) for _, _, s, c in revoked_answers} <= {(401, "token_revoked"), (503, "store_unavailable")},
          str(sorted({(s, c) for _, _, s, c in revoked_answers}, key=str)))
    outage = [a for a in live_answers if a[2] == 503]
    check(f"[{label}] majority side: the outage was seen (503 store_unavailable)",
          outage and all(code == "store_unavailable" for _, _, _, code in outage))
    slowest = max((end - start for start, end, _, _ in live_answers + revoked_answers), default=0)
    check(f"[{label}] majority side: every answer within the Redis timeout + {MARGIN:g} s (slowest {ms(slowest)})",
          slowest <= REDIS_TIMEOUT + MARGIN)
    ready = [s for p in readiness for start, _, s, _ in p.answers if cut_at < start < served_at]
    check(f"[{label}] majority side: /readyz answered 503 during the outage", 503 in ready, str(sorted(set(ready), key=str)))
    if outage:
        note(f"partition [{label}]: 503 window on the majority side {min(a[0] for a in outage) - cut_at:.2f} s to "
             f"{max(a[1] for a in outage) - cut_at:.2f} s after the cut ({max(a[1] for a in outage) - min(a[0] for a in outage):.1f} s); "
             f"{len(outage)} of {len(live_answers)} live-token answers 503")

    # The minority side: what m answered for the tokens logged out through b.
    admitted, refused, unavailable, other = [], 0, 0, set()
    for p, (_, at) in zip(probes_victims, logged_out):
        for start, end, status, code in p.answers:
            if start <= at:
                continue
            if status == 200:
                admitted.append((start, end))
            elif status == 503:
                unavailable += 1
            elif status == 401:
                refused += 1
            else:
                other.add((status, code))
    check(f"[{label}] minority side: m answers the revoked tokens only 200, 401 or 503", not other, str(other))
    first_logout = min(at for _, at in logged_out)
    last_admitted = max((end for _, end in admitted), default=None)
    summary = (f"{len(admitted)} of {len(admitted) + refused + unavailable} requests for tokens logged out on the majority "
               f"side answered 200 ({unavailable} 503, {refused} 401)"
               + (f", the last {last_admitted - first_logout:.1f} s after the logout, {last_admitted - heal_at:+.1f} s from the heal"
                  if last_admitted else ""))
    note(f"partition [{label}]: m (minority side): {summary}")
    in_partition = [(p, a) for p in probes_victims + [probe_m_live] for a in p.answers if cut_at < a[0] and a[1] < heal_at]
    last_200 = max((a[1] - cut_at for _, a in in_partition if a[2] == 200), default=None)
    m_ready = sorted({s for start, _, s, _ in probe_m_ready.answers if cut_at < start < heal_at}, key=str)
    note(f"partition [{label}]: m answered its last 200 (any token live on the old primary) "
         f"{'never' if last_200 is None else f'{last_200:.1f} s after the cut'} during the partition; its /readyz {m_ready}")
    if bounded:
        late = sorted({(a[2], a[3]) for _, a in in_partition if a[0] > cut_at + BOUND + MARGIN and a[2] != 503}, key=str)
        check(f"[{label}] minority side: once {BOUND + MARGIN:g} s have passed since the cut, m answers only 503 for tokens "
              f"live on the old primary (it refuses the activity touch: NOREPLICAS)", not late, str(late))
        check(f"[{label}] minority side: no token logged out on the majority side is admitted by m later than "
              f"{BOUND + MARGIN:g} s after the cut", all(start <= cut_at + BOUND + MARGIN for start, _ in admitted))
    else:
        check(f"[{label}] minority side: split brain shown: m, seeing only the old primary, admits tokens logged out on "
              f"the majority side (the hazard min-replicas-to-write bounds; else this round could not tell)", admitted)
    m_slowest = max((end - start for p in probes_victims + [probe_m_live] for start, end, _, _ in p.answers), default=0)
    check(f"[{label}] minority side: every answer of m within the Redis timeout + {MARGIN:g} s (slowest {ms(m_slowest)})",
          m_slowest <= REDIS_TIMEOUT + MARGIN)
    switched = max((a[0] for p in probes_victims for a in p.answers if a[0] > heal_at and a[2] != 401), default=heal_at)
    note(f"partition [{label}]: after the heal: m refused every revoked token from {switched - heal_at:.1f} s on; "
         f"Sentinel demoted the old primary {demoted_at - heal_at:.1f} s after the heal")

    # The old primary, now a replica, is not written to: no script and no WAIT reach it any more.
    old = sentinels.primary
    try:
        stats = Resp(old.port, timeout=2, host=old.host)
        stats("CONFIG", "RESETSTAT")
        for tg in every:
            conn = conns[tg.name]
            conn.close()
            token, _ = login(conn, next(users))
            for _ in range(5):
                conn.request("GET", "/api/me", token=token)
            status = conn.request("POST", "/auth/logout", token=token)[0]
            check(f"[{label}] {tg.name} logs in and out on the new primary after the heal (204)", status == 204, str(status))
        # Replicated writes count in commandstats too (as their effects): scripts, WAITs and refused
        # writes (READONLY) can only come from a client.
        commands = {k: v for k, v in {**stats.info("commandstats"), **stats.info("errorstats")}.items()
                    if k in ("cmdstat_evalsha", "cmdstat_eval", "cmdstat_wait", "cmdstat_script|load", "errorstat_READONLY")}
        stats.close()
        check(f"[{label}] no instance sends a script, a WAIT or a write to the old primary after its demotion", not commands, str(commands))
    except (OSError, RedisError, AssertionError) as error:
        check(f"[{label}] the old primary answers after the heal, and logins work", False, repr(error))
    for conn in conns.values():
        conn.close()
    for thing in every + sentinels.servers:   # this round's processes, before the next starts (2 cores)
        thing.stop()
    for proc in sentinels.sentinel_procs:
        stop_process(proc)
    return summary


def _primary_or_none(sentinels):
    try:
        return sentinels.primary_port()
    except (OSError, RedisError, TypeError, ValueError):
        return None
