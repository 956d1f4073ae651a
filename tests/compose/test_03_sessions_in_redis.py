"""03. The session in Redis, logout on every replica, a closed page

`docker-compose exec redis redis-cli --scan` shows the session's keys (its hash and its token) with
TTLs of at most the token's 30 s; after logout the token is refused (401) by every replica, asked
directly on the project's network, and through nginx, and those keys are gone; a session closed
with /auth/close is gone from Redis within CLOSE_GRACE + 1 s.
"""
import time

from harness.checks import check, note
from harness.http import Conn, http_call, jwt_claims, login

from . import CLOSE_GRACE, wait_for


def test_sessions_in_redis(stack):
    user, password = stack.credentials()
    conn = Conn(stack.port)
    token, sid = login(conn, user, password)
    jti = jwt_claims(token)["jti"]
    session_key, token_key = f"tg:{{{user}}}:s:{sid}", f"tg:{{{user}}}:t:{jti}"
    code, out, err = stack.redis_cli("--scan", "--pattern", f"tg:{{{user}}}:*")
    keys = out.split()
    check("`docker-compose exec redis redis-cli --scan` lists the session's hash and token keys",
          code == 0 and session_key in keys and token_key in keys, out + err)
    ttls = {key: int(stack.redis_cli("ttl", key)[1].strip() or -3) for key in (session_key, token_key)}
    check("both with a TTL of at most 30 s (TOKEN_TTL)", all(0 < ttl <= 30 for ttl in ttls.values()), ttls)

    status, _, _ = conn.request("POST", "/auth/logout", token=token)
    check("logout: 204", status == 204, status)
    replicas = stack.containers("tokengate")
    answers = {c[:12]: http_call(8080, "GET", "/auth/verify", token=token, host=stack.address(c))[0] for c in replicas}
    check(f"the logged-out token is refused by every replica, asked directly ({len(replicas)})",
          len(answers) == 3 and set(answers.values()) == {401}, answers)
    status, _, _ = conn.request("GET", "/reports/1", token=token)
    check("and through nginx: 401", status == 401, status)
    remaining = [key for key in stack.redis_cli("--scan", "--pattern", f"tg:{{{user}}}:*")[1].split()
                 if key in (session_key, token_key)]
    check("the session's keys are gone from Redis", remaining == [], remaining)

    token, sid = login(conn, user, password)
    session_key = f"tg:{{{user}}}:s:{sid}"
    status, _, _ = conn.request("POST", "/auth/close", token=token)
    closed = time.monotonic()
    check("/auth/close: 204", status == 204, status)
    gone = wait_for(lambda: stack.redis_command("EXISTS", session_key) == ":0", CLOSE_GRACE + 5, interval=0.05)
    elapsed = time.monotonic() - closed
    check(f"the closed session's hash is gone within CLOSE_GRACE + 1 s ({CLOSE_GRACE + 1} s)",
          gone and elapsed <= CLOSE_GRACE + 1, f"{elapsed:.2f} s")
    note(f"closed session gone from Redis after {elapsed:.2f} s (CLOSE_GRACE {CLOSE_GRACE} s)")
