"""04. --scale tokengate=5 without restarting nginx, and a replica killed under load

`docker-compose up -d --scale tokengate=5` adds two replicas; nginx (the same container, never
restarted) follows Docker's DNS and sends verify requests to all five (counted per replica from its
own /metrics); `docker kill` of one replica while 8 clients verify a live token and a logged-out one
through nginx: every answer is the right one (200 for the live token, 401 for the other), nginx
routes around the dead replica; then the stack is scaled back to 3.
"""
import re
import time

from harness.checks import check, note, require
from harness.http import Conn, http_call, login

from . import VerifyLoad, wait_for

VERIFY = re.compile(r'^\w*http_requests_total\{[^}]*route="[^"]*verify[^"]*"[^}]*\} (\S+)$', re.M)


def verify_count(stack, container):
    status, _, data = http_call(8080, "GET", "/metrics", host=stack.address(container), timeout=5)
    if status != 200:
        return None
    return sum(float(value) for value in VERIFY.findall(data.decode(errors="replace")))


def test_scale_and_kill(stack):
    user, password = stack.credentials()
    nginx = stack.containers("nginx")
    require("nginx runs", len(nginx) == 1)
    nginx_started = stack.inspect(nginx[0])["State"]["StartedAt"]
    started = time.monotonic()
    code, out, err = stack.compose("up", "-d", "--scale", "tokengate=5", timeout=600)
    require("docker-compose up -d --scale tokengate=5 exits 0", code == 0, (out + err)[-2000:])
    check("5 replicas healthy", wait_for(lambda: stack.all_healthy("tokengate", 5), 120),
          [(c[:12], stack.health(c)) for c in stack.containers("tokengate")])
    note(f"--scale tokengate=5: 5 replicas healthy after {time.monotonic() - started:.1f} s")
    check("nginx is the same container, not restarted",
          stack.containers("nginx") == nginx and stack.inspect(nginx[0])["State"]["StartedAt"] == nginx_started)

    replicas = stack.containers("tokengate")
    conn = Conn(stack.port)
    token, _ = login(conn, user, password)
    before = {c: verify_count(stack, c) for c in replicas}
    require("every replica's /metrics counts verify requests", all(v is not None for v in before.values()), before)
    statuses = []
    for _ in range(500):
        statuses.append(conn.request("GET", "/reports/1", token=token)[0])
        if len(statuses) % 100 == 0:
            token, _ = login(conn, user, password)   # well inside the token's 30 s
    after = {c: verify_count(stack, c) for c in replicas}
    per_replica = {c[:12]: int((after[c] or 0) - before[c]) for c in replicas}
    check("500 guarded requests through nginx: all 200", statuses.count(200) == 500, {s: statuses.count(s) for s in set(statuses)})
    check("they reached all 5 replicas, nginx unrestarted", len(per_replica) == 5 and all(n > 0 for n in per_replica.values()),
          per_replica)
    note(f"verify requests per replica after --scale 5: {sorted(per_replica.values())}")

    live, _ = login(conn, user, password)
    revoked, _ = login(conn, user, password)
    Conn(stack.port).request("POST", "/auth/logout", token=revoked)
    with VerifyLoad(stack.port, live, revoked) as load:
        load.answered(500)                       # the load runs before the kill
        killed = stack.docker("kill", replicas[0])[0] == 0
        load.answered(2000)                      # and goes on while the replica is dead
    check("docker kill of one replica under load", killed)
    check(f"no wrong answer: the live token 200, the logged-out one 401 ({load.total} requests)", not load.wrong,
          load.wrong[:10])
    note(f"kill under load: {load.counts['live']} live + {load.counts['revoked']} revoked verifies, {len(load.wrong)} wrong")

    code, out, err = stack.compose("up", "-d", "--scale", "tokengate=3", timeout=600)
    check("scaled back to 3 replicas, all healthy", code == 0 and wait_for(lambda: stack.all_healthy("tokengate", 3), 120),
          (out + err)[-1000:])
