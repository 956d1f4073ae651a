"""5b. Slowloris beyond the process's fd limit (RLIMIT_NOFILE 256)

An instance run with RLIMIT_NOFILE 256 and 300 slow clients must stay alive and still answer a
normal client within FAULTS_SLOW_DEADLINE (so it must cut slow clients off and keep fds in reserve),
and answer again once the slow clients leave.
"""
import time

from harness.checks import check, note, precondition, require, wait_until
from harness.http import Conn

from . import FD_LIMIT, SLOW_DEADLINE
from .slowloris import SlowLoris


def test_fd_limit(plain, lab):
    _, redis = plain
    precondition("the shared Redis (redis-server c) is running", redis.alive())
    tg = lab.tokengate("d", redis.port, nofile=FD_LIMIT)
    require(f"the service starts with at most {FD_LIMIT} open files", tg.start(), tg.tail())
    conn = Conn(tg.port)
    status = conn.request("GET", "/healthz")[0]
    conn.close()
    before = tg.stats()
    slow = lab.add(SlowLoris(tg.port, FD_LIMIT + 44))
    full = wait_until(lambda: tg.stats()["fds"] >= FD_LIMIT - 2, 5)
    held = tg.stats()["fds"]
    probe = Conn(tg.port, timeout=SLOW_DEADLINE)
    status, _, _, elapsed = probe.timed("GET", "/healthz")
    probe.close()
    check(f"with every fd held by slowloris ({held} of {FD_LIMIT}), a normal /healthz is answered within "
          f"{SLOW_DEADLINE:g} s (the server must cut slow clients off)", status == 200,
          f"{status if status else 'no answer'} after {elapsed:.1f} s; fds were full: {bool(full)}")
    time.sleep(1.5)  # libdispatch's worker monitor runs about once a second; give it a turn with no fd left
    alive = tg.alive()
    crash = "" if alive else f"exit status {tg.proc.returncode}: {tg.tail(3).strip()[-200:]}"
    note(f"5b: {slow.opened} slowloris vs RLIMIT_NOFILE {FD_LIMIT} (fds {before['fds']} -> {held}): normal /healthz "
         f"{status if status else 'no answer'} after {elapsed:.1f} s; {slow.summary()}; "
         + ("process still running" if alive else f"process DIED ({crash})"))
    check("the process survives running out of file descriptors", alive, crash)
    slow.close()
    back = alive and wait_until(lambda: Conn(tg.port, timeout=2).request("GET", "/healthz")[0] == 200, 10, 0.2)
    check("once the slowloris clients leave, the service answers again", back)
    tg.stop()
