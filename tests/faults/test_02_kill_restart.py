"""2. Redis SIGKILLed under load and restarted empty on the same port

Under concurrent /api/me load (6 users): only 503 store_unavailable during the outage (never 200),
each within the Redis timeout + MARGIN, then 401 token_revoked for every old token (never 200), every
200 naming the token's own user and session; new logins, refresh, sessions, logout and logout-all
work (Lua scripts reloaded after NOSCRIPT), a login on either of two instances is usable on the
other, same PID, no fd/connection leak, RSS bounded.
"""
import threading
import time

from harness.checks import check, ms, note, precondition, require, say, wait_until
from harness.http import Conn, error_code, parse_json
from harness.tokengate import fmt_stats

from . import MARGIN, REDIS_TIMEOUT, login


class MeLoad:
    """Threads each looping GET /api/me with one user's token on a keep-alive connection; every
    answer is kept as (start, end, status, error code, body user, body sid, thread index)."""

    def __init__(self, port, identities, timeout=10):
        self.port = port
        self.identities = identities  # [(user, token, sid)]
        self.timeout = timeout
        self.answers = []
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(len(identities))]

    def _run(self, index):
        user, token, sid = self.identities[index]
        conn = Conn(self.port, timeout=self.timeout)
        while not self.stop_flag.is_set():
            started = time.monotonic()
            status, _, data = conn.request("GET", "/api/me", token=token)
            ended = time.monotonic()
            body = parse_json(data) if status == 200 else None
            body = body if isinstance(body, dict) else {}
            with self.lock:
                self.answers.append((started, ended, status, error_code(data), body.get("user"), body.get("session_id"), index))
            if status != 200:
                time.sleep(0.01)
        conn.close()

    def start(self):
        for thread in self.threads:
            thread.start()
        return self

    def stop(self):
        self.stop_flag.set()
        for thread in self.threads:
            thread.join(timeout=self.timeout + 5)
        return not any(t.is_alive() for t in self.threads)

    def count(self, predicate):
        with self.lock:
            return sum(1 for a in self.answers if predicate(a))


def test_kill_restart(lab):
    redis = lab.redis("a-kill")
    precondition("redis-server starts", redis.start())
    tg = lab.tokengate("a-kill", redis.port)
    precondition("the service starts", tg.start(), tg.tail())
    other = lab.tokengate("a2", redis.port)
    require("a second instance on the same Redis starts", other.start(), other.tail())
    conn = Conn(tg.port)
    users = [f"user{i:02d}" for i in range(1, 7)]
    identities = [(user,) + login(conn, user) for user in users]
    before = tg.stats()
    say(f"   before: {fmt_stats(before)}")
    load = MeLoad(tg.port, identities).start()
    warm = wait_until(lambda: load.count(lambda a: a[2] == 200) >= 60, 20)
    check("load running: /api/me 200s before the kill", warm)
    redis.kill()
    killed = time.monotonic()
    wait_until(lambda: load.count(lambda a: a[0] > killed) >= 30 and time.monotonic() - killed > 2.0, 10)
    restarting = time.monotonic()
    restarted = redis.start()
    back = time.monotonic()
    check("redis-server restarted empty on the same port", restarted)
    every = wait_until(lambda: all(load.count(lambda a, i=i: a[0] > back and a[3] == "token_revoked" and a[6] == i)
                                   for i in range(len(identities))), 15)
    time.sleep(0.3)
    finished = load.stop()
    answers = list(load.answers)
    outage = [a for a in answers if a[0] >= killed and a[1] <= restarting]
    after = [a for a in answers if a[0] >= back]
    check("every client thread finished (no request hung)", finished)
    check(f"during the outage: {len(outage)} answers, all 503 store_unavailable (never 200)",
          outage and all(a[2] == 503 and a[3] == "store_unavailable" for a in outage),
          str(sorted({(a[2], a[3]) for a in outage})))
    slowest = max((a[1] - a[0] for a in outage), default=0.0)
    check(f"outage answers within the Redis timeout + {MARGIN:g} s", slowest <= REDIS_TIMEOUT + MARGIN, f"slowest {ms(slowest)}")
    admitted = [a for a in after if a[2] == 200]
    check("after the restart no old token is admitted (its data is gone)", not admitted, str(admitted[:3]))
    check("after the restart every old token gets 401 token_revoked", every,
          str(sorted({(a[2], a[3]) for a in after})))
    odd = [a for a in after if (a[2], a[3]) not in ((401, "token_revoked"), (503, "store_unavailable"))]
    check("after the restart only 401 token_revoked (or 503 while reconnecting)", not odd, str(odd[:3]))
    wrong_user = [a for a in answers if a[2] == 200 and (a[4], a[5]) != (identities[a[6]][0], identities[a[6]][2])]
    check("every 200 named the token's own user and session", not wrong_user, str(wrong_user[:3]))
    transport = [a for a in answers if a[2] is None]
    check("no request failed at the transport level", not transport, str(transport[:3]))
    first_revoked = min((a[1] for a in after if a[3] == "token_revoked"), default=None)
    note(f"2: {len(answers)} answers: {sum(1 for a in answers if a[0] < killed and a[2] == 200)} x 200 before the kill, "
         f"{len(outage)} x 503 during a {restarting - killed:.1f} s outage (slowest {ms(slowest)}), "
         f"{len(after)} after the restart; first token_revoked "
         f"{(first_revoked - back) if first_revoked else float('nan'):.2f} s after Redis was back")

    # new logins and every script (EVALSHA -> NOSCRIPT -> EVAL) after the restart
    steps = []
    try:
        token, sid = login(conn, "user07")
        steps.append(("login", 200))
        steps.append(("me", conn.request("GET", "/api/me", token=token)[0]))
        status, _, data = conn.request("POST", "/auth/refresh", token=token)
        steps.append(("refresh", status))
        fresh = (parse_json(data) or {}).get("access_token") if status == 200 else None
        steps.append(("sessions", conn.request("GET", "/auth/sessions", token=fresh or token)[0]))
        steps.append(("logout", conn.request("POST", "/auth/logout", token=fresh or token)[0]))
        status, _, data = conn.request("GET", "/api/me", token=fresh or token)
        steps.append(("after logout", status, error_code(data)))
        token, sid = login(conn, "user08")
        steps.append(("login", 200))
        steps.append(("logout-all", conn.request("POST", "/auth/logout-all", token=token)[0]))
    except AssertionError as error:
        steps.append(("login", str(error)))
    check("after the restart: login, /api/me, refresh, sessions, logout, logout-all all work (scripts reloaded)",
          steps == [("login", 200), ("me", 200), ("refresh", 200), ("sessions", 200), ("logout", 204),
                    ("after logout", 401, "token_revoked"), ("login", 200), ("logout-all", 204)], str(steps))
    # every login answered 200 is usable on the other instance
    conn2 = Conn(other.port)
    crossed = []
    for i, (here, there) in enumerate(((conn, conn2), (conn2, conn)) * 3):
        user = f"user{10 + i:02d}"
        try:
            token, sid = login(here, user)
        except AssertionError as error:
            crossed.append(str(error))
            continue
        status, _, data = there.request("GET", "/api/me", token=token)
        if status != 200 or (parse_json(data) or {}).get("session_id") != sid:
            crossed.append((user, status, data[:80]))
    check("after the restart, a login on either instance is usable on the other (6 logins)", not crossed, str(crossed[:3]))
    conn2.close()
    check("same process throughout (no crash loop)", tg.alive() and other.alive(), f"pid {tg.pid}")
    conn.close()
    wait_until(lambda: tg.stats()["fds"] <= before["fds"] + 4, 5)
    after_stats = tg.stats()
    say(f"   after:  {fmt_stats(after_stats)}")
    note(f"2: fds {before['fds']} -> {after_stats['fds']}, RSS {before['rss_kb'] / 1024:.1f} -> "
         f"{after_stats['rss_kb'] / 1024:.1f} MiB, ESTABLISHED to Redis {before['redis_established']} -> "
         f"{after_stats['redis_established']}")
    check("no fd leak (at most 4 more than before)", after_stats["fds"] <= before["fds"] + 4,
          f"{before['fds']} -> {after_stats['fds']}")
    check("at most 2 connections to Redis (the configured pool)", after_stats["redis_established"] <= 2,
          str(after_stats["redis_established"]))
    check("RSS grew by less than 64 MiB", after_stats["rss_kb"] - before["rss_kb"] < 64 * 1024,
          f"{(after_stats['rss_kb'] - before['rss_kb']) / 1024:.1f} MiB")
