"""4. Redis connections reset (RST) mid-pipeline, then replies straddling the timeout, under concurrent clients

Connections reset mid-pipeline, several times, then replies delayed so that they straddle the
timeout, under 16 concurrent clients each with its own user, live token and logged-out token:
every request answered (none past a deadline), only 200/503 for live tokens and 401/503 for dead
ones, every 200 names the token's own user and session (/api/me body, /auth/verify headers,
/auth/sessions list): no request got another's reply. No fd leak, at most 2 Redis connections.
"""
import threading
import time

from harness.checks import check, ms, note, precondition, require, say, wait_until
from harness.http import Conn, error_code, parse_json
from harness.tokengate import fmt_stats

from . import MARGIN, REDIS_TIMEOUT, login


def test_reset(proxied):
    tg, redis, proxy = proxied
    precondition("the service behind the proxy (tokengate b) is running", tg.alive())
    proxy.set_mode("pass")
    conn = Conn(tg.port)
    users = [f"user{i:02d}" for i in range(16)]
    people = {}
    for user in users:
        # the dead token: its session, and every earlier session of the user, ended by logout-all
        dead, dead_sid = login(conn, user)
        if conn.request("POST", "/auth/logout-all", token=dead)[0] != 204:
            require(f"logout-all of {user}'s earlier sessions", False)
        live, sid = login(conn, user)
        people[user] = (live, sid, dead, dead_sid)
    before = tg.stats()
    say(f"   before: {fmt_stats(before)}")
    deadline = REDIS_TIMEOUT + MARGIN + 1.0
    lock = threading.Lock()
    answers = []  # (user, kind, status, code, ok, elapsed, detail)
    stop_flag = threading.Event()

    def client(user):
        live, sid, dead, dead_sid = people[user]
        conn = Conn(tg.port, timeout=15)
        kinds = ("me", "verify", "sessions", "dead-me", "dead-verify")
        n = 0
        while not stop_flag.is_set():
            kind = kinds[n % len(kinds)]
            n += 1
            path = {"me": "/api/me", "verify": "/auth/verify", "sessions": "/auth/sessions",
                    "dead-me": "/api/me", "dead-verify": "/auth/verify"}[kind]
            token = dead if kind.startswith("dead") else live
            status, headers, data, elapsed = conn.timed("GET", path, token=token)
            code = error_code(data)
            detail = ""
            if kind.startswith("dead"):
                ok = (status, code) in ((401, "token_revoked"), (503, "store_unavailable"))
            elif status == 200:
                if kind == "me":
                    body = parse_json(data) or {}
                    ok = body.get("user") == user and body.get("session_id") == sid
                elif kind == "verify":
                    ok = headers.get("x-auth-user") == user and headers.get("x-auth-session") == sid
                else:
                    body = parse_json(data)
                    ok = isinstance(body, list) and [s.get("session_id") for s in body] == [sid] \
                        and body[0].get("current") is True
                if not ok:
                    detail = f"{headers.get('x-auth-user')} {data[:120]!r}"
            else:
                ok = (status, code) == (503, "store_unavailable")
            with lock:
                answers.append((user, kind, status, code, ok, elapsed, detail, phase[0]))
        conn.close()

    phase = ["resets"]
    threads = [threading.Thread(target=client, args=(user,), daemon=True) for user in users]
    started = time.monotonic()
    for t in threads:
        t.start()
    resets = []
    wait_until(lambda: len(answers) >= 100, 10)
    for _ in range(6):
        time.sleep(0.6)
        resets.append(proxy.reset_all())
    time.sleep(1.0)
    # then replies straddling the timeout: each chunk held 0.4 x the timeout each way, so some
    # replies arrive just in time and some just too late (a late reply must never answer a later
    # request on a re-made connection)
    phase[0] = "delay"
    proxy.set_mode("delay", REDIS_TIMEOUT * 0.4)
    time.sleep(3.0)
    phase[0] = "after"
    proxy.set_mode("pass")
    time.sleep(1.0)
    stop_flag.set()
    for t in threads:
        t.join(timeout=20)
    elapsed = time.monotonic() - started
    hung = [t for t in threads if t.is_alive()]
    check("every client thread finished", not hung, f"{len(hung)} still waiting")
    transport = [a for a in answers if a[2] is None]
    late = [a for a in answers if a[5] > deadline]
    wrong = [a for a in answers if not a[4] and a[2] is not None]
    crossed = [a for a in wrong if a[2] == 200 or (a[2] == 401 and not a[1].startswith("dead"))]
    counts = {}
    for a in answers:
        counts[(a[2], a[3])] = counts.get((a[2], a[3]), 0) + 1
    per_phase = {}
    for a in answers:
        key = (a[2], a[3])
        per_phase.setdefault(a[7], {})[key] = per_phase.setdefault(a[7], {}).get(key, 0) + 1
    note(f"4: {len(answers)} requests from {len(users)} clients in {elapsed:.1f} s, {len(resets)} resets "
         f"(connections reset each time: {resets}), then 3 s of Redis replies delayed {ms(REDIS_TIMEOUT * 0.8)} "
         f"round trip; answers by phase {per_phase}; slowest {ms(max(a[5] for a in answers))}")
    check("while replies straddled the timeout, some requests passed and some timed out",
          per_phase.get("delay", {}).get((200, None), 0) > 0 and per_phase.get("delay", {}).get((503, "store_unavailable"), 0) > 0,
          str(per_phase.get("delay")))
    check("connections were actually reset (some 503s seen)", counts.get((503, "store_unavailable"), 0) > 0 and sum(resets) > 0,
          str(resets))
    check("every request answered (no transport failure)", not transport, str(transport[:3]))
    check(f"none took longer than {deadline:g} s", not late, str(late[:3]))
    check("no request got another request's reply (every 200 names its own user/session, dead tokens never 200, "
          "live tokens never 401)", not crossed, str(crossed[:3]))
    check("only 200/401 token_revoked/503 store_unavailable as expected per token", not wrong, str(wrong[:3]))
    statuses = [conn.request("GET", "/api/me", token=people[u][0])[0] for u in users]
    check("after the resets every live token still passes", statuses == [200] * len(users), str(statuses))
    conn.close()
    settled = wait_until(lambda: tg.stats()["fds"] <= before["fds"] + 4, 5)
    after = tg.stats()
    say(f"   after:  {fmt_stats(after)}")
    note(f"4: fds {before['fds']} -> {after['fds']}, RSS {before['rss_kb'] / 1024:.1f} -> {after['rss_kb'] / 1024:.1f} MiB, "
         f"ESTABLISHED to Redis {after['redis_established']}")
    check("no fd leak (at most 4 more than before)", settled, f"{before['fds']} -> {after['fds']}")
    check("at most 2 connections to Redis", after["redis_established"] <= 2, str(after["redis_established"]))
    check("RSS grew by less than 64 MiB", after["rss_kb"] - before["rss_kb"] < 64 * 1024,
          f"{(after['rss_kb'] - before['rss_kb']) / 1024:.1f} MiB")
    check("same process throughout", tg.alive(), f"pid {tg.pid}")
