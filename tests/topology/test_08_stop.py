"""e. scripts/topology stops everything it started

SIGTERM stops scripts/topology (exit 0 or 143); redis, nginx, the app and every tokengate process
are gone and their ports closed. (It stops the suite's topology: it runs last.)
"""
import os
import time

from harness.checks import check, say
from harness.http import port_of
from harness.processes import refuses_connections


def test_stop(topology):
    pids = [int(topology.env[k]) for k in ("REDIS_PID", "NGINX_PID", "APP_PID")] + topology.instance_pids()
    ports = [int(topology.env["REDIS_PORT"]), port_of(topology.env["NGINX_URL"]), port_of(topology.env["APP_URL"])]
    started = time.monotonic()
    status = topology.stop()
    check("SIGTERM stops scripts/topology", status in (0, 143), f"exit status {status}")

    def alive(pid):
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    survivors = [pid for pid in pids if alive(pid)]
    check("redis, nginx, the app and every tokengate process are gone", not survivors, str(survivors))
    check("their ports are closed", all(refuses_connections(port) for port in ports))
    say(f"   stopped in {time.monotonic() - started:.1f} s")
