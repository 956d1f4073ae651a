"""c. instance failure under load through nginx

One of the 3 instances killed (SIGKILL) under load, then another stopped (SIGTERM): each went away,
nginx routes around it, zero wrong answers, client-visible failures at most the in-flight requests,
none later than 2 s after the instance went away, the load runs to its end; with 1 instance left,
30 app requests in a row pass. (It takes instances away: it runs after the scenarios that need 3.)
"""
import os
import signal
import threading
import time

from harness.checks import check, say, wait_until
from harness.http import Conn, port_of
from harness.processes import refuses_connections

from . import CONCURRENCY, KILL_SEQUENCES, login
from .load import Load


def kill_under_load(topology, victim_index, sig, label, sequences):
    pids = topology.instance_pids()
    victim_pid = pids[victim_index]
    victim_port = port_of(topology.instance_urls()[victim_index])
    load = Load(port_of(topology.env["NGINX_URL"]), sequences, CONCURRENCY, time_limit=300)
    runner = threading.Thread(target=load.run, daemon=True)   # daemon: an interrupted run does not wait for it
    runner.start()
    warm = wait_until(lambda: load.completed >= sequences // 5, 120, 0.02)
    killed_at = time.monotonic()
    os.kill(victim_pid, sig)
    gone = wait_until(lambda: refuses_connections(victim_port), 30, 0.05)
    gone_at = time.monotonic()
    runner.join(timeout=400)
    say(f"   {load.summary()}")
    say(f"   {label} after {sequences // 5} sequences; its port refused connections {gone_at - killed_at:.2f} s later")
    for sample in (load.wrong + load.errors)[:5]:
        say(f"   sample: {sample}")
    late = [e for e in load.errors if e[0] > gone_at + 2.0]
    check(f"{label}: the instance went away under load", bool(warm) and gone, f"warm={bool(warm)} gone={gone}")
    check(f"{label}: zero wrong answers", not load.wrong, str(load.wrong[:3]))
    check(f"{label}: client-visible failures ({len(load.errors)}) at most the in-flight requests ({CONCURRENCY})",
          len(load.errors) <= CONCURRENCY, str(load.errors[:3]))
    check(f"{label}: no failure later than 2 s after the instance went away", not late, str(late[:3]))
    check(f"{label}: the load ran to the end", load.next_index == sequences and not runner.is_alive(),
          f"{load.next_index}")
    return load


def test_instance_failure(topology):
    say(f"   {KILL_SEQUENCES} sequences, {CONCURRENCY} clients each")
    kill_under_load(topology, 1, signal.SIGKILL, "SIGKILL of instance 2 of 3", KILL_SEQUENCES)
    kill_under_load(topology, 2, signal.SIGTERM, "SIGTERM (graceful) of instance 3 of 3", KILL_SEQUENCES)
    nginx = Conn(port_of(topology.env["NGINX_URL"]))
    token, _ = login(nginx, "carol")
    statuses = [nginx.request("GET", f"/after-failure/{n}", token=token)[0] for n in range(30)]
    check("with 1 instance left, 30 app requests in a row pass", statuses == [200] * 30, str(statuses))
    nginx.request("POST", "/auth/logout", token=token)
    nginx.close()
