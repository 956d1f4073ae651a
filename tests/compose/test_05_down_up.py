"""05. Stop within the grace period, `down` then `up`: the same secrets, Redis data kept

`docker stop` of one replica while 8 clients verify a live and a logged-out token through nginx:
every answer is the right one (nothing in flight is cut; nginx moves on to the other replicas) and
the replica exits 0 on SIGTERM within its grace period. `docker-compose stop` ends every replica
with SIGTERM well within its 15 s grace period (exit 0, not killed); after `down` (containers and
network gone, volumes kept) and `up -d`, init keeps the secrets it made (it prints no new demo
login), the token issued before `down` still verifies (same signing key, its Redis key survived in
the append-only file), the demo password still logs in (same users file), and a key written to Redis
before `down` is still there.
"""
import threading
import time

from harness.checks import check, note, require
from harness.http import Conn, http_call, login

from . import VerifyLoad, wait_for

MARKER = "compose-test:marker"


def test_down_up(stack):
    user, password = stack.credentials()
    conn = Conn(stack.port)
    require("a marker key written to Redis", stack.redis_cli("set", MARKER, "kept")[1].strip() == "OK")
    live, _ = login(conn, user, password)
    revoked, _ = login(conn, user, password)
    Conn(stack.port).request("POST", "/auth/logout", token=revoked)
    victim = stack.containers("tokengate")[0]
    with VerifyLoad(stack.port, live, revoked) as load:
        load.answered(500)
        started = time.monotonic()
        code = stack.docker("stop", "--time", "15", victim, timeout=60)[0]
        stopped = time.monotonic() - started
        load.answered(1000)
    exit_code = stack.inspect(victim).get("State", {}).get("ExitCode")
    check("docker stop of one replica under load: exit 0 on SIGTERM, within the grace period",
          code == 0 and exit_code == 0 and stopped < 15, f"exit {exit_code}, {stopped:.1f} s")
    check(f"no answer cut or wrong while it stopped: the live token 200, the logged-out one 401 ({load.total} requests)",
          not load.wrong, load.wrong[:10])
    note(f"stop of one replica under load: {stopped:.1f} s, {load.total} verifies, {len(load.wrong)} wrong")
    code, out, err = stack.compose("up", "-d", timeout=300)
    require("docker-compose up -d starts it again", code == 0 and wait_for(lambda: stack.all_healthy("tokengate", 3), 120),
            (out + err)[-1000:])

    token, _ = login(conn, user, password)
    issued = time.monotonic()
    replicas = stack.containers("tokengate")
    started = time.monotonic()
    code, out, err = stack.compose("stop", "--timeout", "15", "tokengate", timeout=120)
    stopped = time.monotonic() - started
    codes = {c[:12]: stack.inspect(c)["State"]["ExitCode"] for c in replicas}
    check("docker-compose stop tokengate: every replica exits 0 on SIGTERM, within the grace period",
          code == 0 and set(codes.values()) == {0} and stopped < 15, f"{codes}, {stopped:.1f} s")
    note(f"stop of 3 replicas: {stopped:.1f} s")

    code, out, err = stack.compose("down", "--timeout", "15", timeout=300)
    require("docker-compose down exits 0", code == 0, (out + err)[-1000:])
    # `up -d` returns once nginx has started (after the app is healthy); the token is asked of the
    # replicas directly as soon as they answer, well inside its 30 s.
    started = time.monotonic()
    result = {}
    upping = threading.Thread(target=lambda: result.update(up=stack.compose("up", "-d", timeout=600)))
    upping.start()

    def verified_by_a_replica():
        for container in stack.containers("tokengate"):
            address = stack.address(container)
            if address and http_call(8080, "GET", "/auth/verify", token=token, host=address, timeout=2)[0] == 200:
                return True
        return False

    ok = wait_for(verified_by_a_replica, max(0.0, 29 - (time.monotonic() - issued)), interval=0.2)
    check("the token issued before `down` verifies after `up` (same signing key, its key kept in Redis)", ok,
          f"{time.monotonic() - issued:.1f} s after it was issued")
    note(f"`down` + `up -d`: the old token verified {time.monotonic() - started:.1f} s after `up` began "
         f"({time.monotonic() - issued:.1f} s after it was issued)")
    upping.join()
    code, out, err = result["up"]
    require("docker-compose up -d again exits 0", code == 0, (out + err)[-2000:])
    note(f"`up -d` after `down` returned after {time.monotonic() - started:.1f} s")
    check("init kept the secrets: no new demo login in its log", stack.demo_login() is None, stack.logs("init")[-600:])
    check("the demo password from the first start still logs in", login(Conn(stack.port), user, password)[0])
    check("the marker key written before `down` is still in Redis (append-only file in the redis-data volume)",
          stack.redis_cli("get", MARKER)[1].strip() == "kept")
    stack.redis_cli("del", MARKER)
