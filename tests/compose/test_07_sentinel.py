"""07. The Sentinel override file: the same one command, login, use, logout, and a failover

`docker-compose -f docker-compose.yml -f docker-compose.sentinel.yml up -d` (after the Cluster
override's services are removed and the rest of that stack is `down`, volumes kept: the same
secrets) brings up the primary, two replicas and three sentinels, points TokenGate at the sentinels
(TOKENGATE_REDIS_WAIT=1), and nginx on its fixed address publishes the port; login, a guarded
request and logout work through it, and the sentinels name the `redis` container as the primary.
Then `docker-compose stop redis` (the first primary): the sentinels promote a replica; a token
whose logout was answered just before the stop stays refused; logins work again through the new
primary within 30 s, on every replica of TokenGate; a token issued before the failover and logged
out after it is refused; a new session opens the guarded app. The override's services are removed
with their /data volumes, then `down`.
"""
import json
import time

from harness.checks import check, note, require
from harness.http import Conn, http_call, login

from . import wait_for

SENTINEL = ["docker-compose.yml", "docker-compose.sentinel.yml"]


def test_sentinel(stack):
    user, password = stack.credentials()
    code, out, err = stack.remove_override_services("docker-compose.cluster.yml")
    require("the Cluster override's services removed, with their /data volumes", code == 0, (out + err)[-1000:])
    started = stack.switch_to(SENTINEL)
    conn = Conn(stack.port)

    def logged_in():
        return conn.request("POST", "/auth/login", json_body={"username": user, "password": password})[0] == 200

    require("the demo login works through the sentinels", wait_for(logged_in, 120))
    note(f"Sentinel override: a working login {time.monotonic() - started:.1f} s after `up` began")
    token, _ = login(conn, user, password)
    status, _, data = conn.request("GET", "/reports/7", token=token)
    check("a guarded app request with its token: 200", status == 200 and user.encode() in data, (status, data[:200]))
    status, _, _ = conn.request("POST", "/auth/logout", token=token)
    check("logout: 204", status == 204, status)
    status, _, _ = conn.request("GET", "/reports/7", token=token)
    check("the same request after logout: 401", status == 401, status)

    def primary_named():
        code, out, _ = stack.compose("exec", "-T", "sentinel-1", "redis-cli", "-p", "26379", "sentinel",
                                     "get-master-addr-by-name", "tokengate", timeout=60)
        return out.split()[0] if code == 0 and out.split() else None

    first_primary = stack.address(stack.containers("redis")[0])
    check("the sentinels name the redis container as the primary", primary_named() == first_primary,
          f"{primary_named()} (redis is {first_primary})")
    before, _ = login(conn, user, password)
    logged_out, _ = login(conn, user, password)

    replicas = {container: stack.address(container) for container in stack.containers("tokengate")}
    body = json.dumps({"username": user, "password": password})
    recovered = set()

    def every_replica_logs_in():
        # Each replica until its first login through the new primary (one session each, so the
        # polling does not fill the user's sessions).
        for container, address in replicas.items():
            if container not in recovered and http_call(8080, "POST", "/auth/login", body=body, host=address, timeout=3,
                                                        headers={"Content-Type": "application/json"})[0] == 200:
                recovered.add(container)
        return len(recovered) == len(replicas)

    # Answered only once a replica has the write (TOKENGATE_REDIS_WAIT=1): the failover keeps it.
    status, _, _ = conn.request("POST", "/auth/logout", token=logged_out)
    check("a logout just before the failover: 204", status == 204, status)
    stopped = time.monotonic()
    code, out, err = stack.compose("stop", "--timeout", "5", "redis", timeout=120)
    require("docker-compose stop redis (the first primary) exits 0", code == 0, (out + err)[-1000:])
    check(f"after the primary stopped, logins work again on all {len(replicas)} replicas within 30 s",
          wait_for(every_replica_logs_in, 30), f"{len(recovered)} recovered")
    note(f"Sentinel failover: logins back on every replica {time.monotonic() - stopped:.1f} s after `stop redis` began")
    named = primary_named()
    check("the sentinels name a new primary, not the stopped one", named is not None and named != first_primary,
          f"{named} (the first primary was {first_primary})")
    status, _, _ = conn.request("GET", "/reports/7", token=logged_out)
    check("the token logged out just before the failover, after it: 401", status == 401, status)
    status, _, _ = conn.request("POST", "/auth/logout", token=before)
    check("logout after the failover of a token issued before it: 204", status == 204, status)
    status, _, _ = conn.request("GET", "/reports/7", token=before)
    check("that token after logout: 401", status == 401, status)
    status, _, _ = conn.request("GET", "/reports/7", token=login(conn, user, password)[0])
    check("a new session after the failover opens the guarded app: 200", status == 200, status)
    code, out, err = stack.remove_override_services("docker-compose.sentinel.yml")
    check("the Sentinel override's services removed, with their /data volumes", code == 0, (out + err)[-1000:])
    code, out, err = stack.compose("down", "--timeout", "15", timeout=300)
    check("docker-compose down (the rest of the Sentinel stack) exits 0", code == 0, (out + err)[-1000:])
