"""6. 10,000 sessions for one user, then logout-all

10,000 sessions for one user (one HTTP login, the rest written in the documented key layout by one
Lua script): logout-all answers 204 in one response and ends every session with its answer, the keys
are deleted in batches soon after (nothing left under *big*) with no script running 10 ms or longer
(SLOWLOG); another user's session is untouched.
"""
import re
import time

from harness.checks import check, ms, note, precondition, wait_until
from harness.http import Conn, error_code, random_id

from . import TOKEN_TTL, forge_token, login

BULK_SESSIONS = """
local t = tonumber(redis.call('TIME')[1])
local ms = t * 1000
local ttl = tonumber(ARGV[1])
local prefix = ARGV[2]
for i = 3, #ARGV, 2 do
  local sid, jti = ARGV[i], ARGV[i + 1]
  local skey = prefix .. 's:' .. sid
  redis.call('HSET', skey, 'created', t, 'seen', t, 'ua', 'bulk', 'ip', '127.0.0.1', 't:' .. jti, ms + ttl * 1000)
  redis.call('EXPIRE', skey, ttl)
  redis.call('SET', prefix .. 't:' .. jti, 1, 'EX', ttl)
  redis.call('ZADD', prefix .. 'sessions', ms + ttl * 1000, sid)
end
return redis.call('ZCARD', prefix .. 'sessions')
"""


def script_stats(redis):
    """EVALSHA/EVAL counts from INFO commandstats: successful runs, all attempts, microseconds."""
    client = redis.client()
    try:
        info = client("INFO", "commandstats")
    finally:
        client.close()
    totals = {"ok": 0, "all": 0, "usec": 0}
    for line in info.splitlines():
        match = re.match(r"cmdstat_(evalsha|eval):(.*)", line.strip())
        if match:
            fields = dict(item.split("=") for item in match.group(2).split(","))
            totals["ok"] += int(fields["calls"]) - int(fields.get("failed_calls", 0))
            totals["all"] += int(fields["calls"]) + int(fields.get("rejected_calls", 0))
            totals["usec"] += int(fields["usec"])
    return totals


def test_many_sessions(plain, credentials):
    tg, redis = plain
    precondition("the shared service (tokengate c) is running", tg.alive())
    conn = Conn(tg.port, timeout=30)
    token, sid = login(conn, "big")
    other, other_sid = login(conn, "user09")
    ids = [(random_id(), random_id()) for _ in range(9_999)]
    client = redis.client()
    try:
        args = [str(TOKEN_TTL), "tg:{big}:"] + [x for pair in ids for x in pair]
        total = client("EVAL", BULK_SESSIONS, 0, *args)
    finally:
        client.close()
    keys = len(redis.scan("*{big}*"))
    check("10,000 sessions of 'big' in Redis (1 by HTTP login, 9,999 in the same layout)", total == 10_000,
          f"{total} sessions, {keys} keys")
    bulk_sid, bulk_jti = ids[1234]
    status, _, data = conn.request("GET", "/api/me", token=forge_token(credentials.key, "big", bulk_sid, bulk_jti))
    check("a token for a written session passes (the layout is the service's)", status == 200, f"{status} {data[:80]!r}")
    before = tg.stats()
    stats0 = script_stats(redis)
    # Redis runs one command at a time: one that ran 10 ms held every other client that long.
    client = redis.client()
    try:
        client("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        client("SLOWLOG", "RESET")
        status, _, data, elapsed = conn.timed("POST", "/auth/logout-all", token=token)
        check("logout-all answers 204", status == 204, f"{status} {data[:80]!r} in {ms(elapsed)}")
        status, _, data = conn.request("GET", "/api/me", token=forge_token(credentials.key, "big", bulk_sid, bulk_jti))
        check("every session ended with the answer (a bulk session's token: 401 token_revoked)",
              status == 401 and error_code(data) == "token_revoked", f"{status} {data[:80]!r}")
        started = time.monotonic()
        gone = wait_until(lambda: not redis.scan("*big*"), 10)
        reaped = time.monotonic() - started
        left = redis.scan("*big*")
        check("nothing left under *big* soon after (the keys are deleted in batches)", gone, f"{len(left)} keys, e.g. {left[:3]}")
        slow = [entry for entry in client("SLOWLOG", "GET", "100") or []
                if entry[3] and str(entry[3][0]).upper() in ("EVALSHA", "EVAL")]
        check("no script ran 10 ms or longer meanwhile (SLOWLOG), so no other client waited that long",
              not slow, f"{[(entry[2], entry[3][:1]) for entry in slow]} (µs, command)")
    finally:
        client.close()
    stats1 = script_stats(redis)
    runs = {k: stats1[k] - stats0[k] for k in stats1}
    status, _, data = conn.request("GET", "/api/me", token=token)
    check("the logged-out token: 401 token_revoked", status == 401 and error_code(data) == "token_revoked", f"{status}")
    status, _, data = conn.request("GET", "/api/me", token=other)
    check("another user's session is untouched", status == 200, f"{status}")
    after = tg.stats()
    note(f"6: logout-all of 10,000 sessions ({keys} keys) answered 204 in {ms(elapsed)}; keys gone "
         f"{reaped:.2f} s later ({runs['all']} script runs, {runs['usec'] / 1000:.0f} ms in Redis in all); "
         f"{len(left)} keys left; RSS {before['rss_kb'] / 1024:.1f} -> {after['rss_kb'] / 1024:.1f} MiB")
    conn.close()
