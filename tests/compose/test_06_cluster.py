"""06. The Cluster override file: the same one command, login, use, logout

`docker-compose -f docker-compose.yml -f docker-compose.cluster.yml up -d` (after `down` of the
single-Redis stack, volumes kept: the same secrets) brings up six Redis nodes, joins them into a
cluster (cluster-init) and points TokenGate at it; login, a guarded request and logout work through
the published port, and the session's keys live in the cluster.
"""
import time

from harness.checks import check, note, require
from harness.http import Conn, login

from . import wait_for

CLUSTER = ["docker-compose.yml", "docker-compose.cluster.yml"]


def test_cluster(stack):
    user, password = stack.credentials()
    started = stack.switch_to(CLUSTER)
    conn = Conn(stack.port)

    def logged_in():
        status, _, data = conn.request("POST", "/auth/login", json_body={"username": user, "password": password})
        return status == 200

    require("the demo login works through the Cluster", wait_for(logged_in, 120))
    note(f"Cluster override: a working login {time.monotonic() - started:.1f} s after `up` began")
    token, sid = login(conn, user, password)
    status, _, data = conn.request("GET", "/reports/7", token=token)
    check("a guarded app request with its token: 200", status == 200 and user.encode() in data, (status, data[:200]))
    code, out, _ = stack.compose("exec", "-T", "redis-node-1", "redis-cli", "-c", "exists", f"tg:{{{user}}}:s:{sid}")
    check("the session's hash is in the cluster (redis-cli -c)", code == 0 and out.strip() == "1", out)
    status, _, _ = conn.request("POST", "/auth/logout", token=token)
    check("logout: 204", status == 204, status)
    status, _, _ = conn.request("GET", "/reports/7", token=token)
    check("the same request after logout: 401", status == 401, status)
    code, out, _ = stack.compose("exec", "-T", "redis-node-1", "redis-cli", "-c", "exists", f"tg:{{{user}}}:s:{sid}")
    check("the session's hash is gone from the cluster", out.strip() == "0", out)
