"""Deployment tests: TokenGate scaled out behind the real nginx, guarding a real upstream app.

Starts scripts/topology once for the suite (conftest.py: redis-server, 3 tokengate instances, the
sample app, nginx rendered from deploy/nginx/tokengate.conf.template) and checks, with traffic to
127.0.0.1 only, one file per scenario (test_NN_<name>.py, its docstring says what it asserts):

  a. cross-instance, directly and as many concurrent sequences through nginx (01, 03);
  b. forward-auth in front of the sample app, failing closed while Redis does not answer (02);
  d. docker-compose config -q, and compose mounts the same template the native script renders (04);
  f. an app answer's Cache-Control through the template, with and without rotation (05);
  g. cookie mode behind the template on a non-default port (06);
  c. one of the 3 instances killed under load, then another stopped (07: runs late, it takes
     instances away);
  e. scripts/topology stops everything it started (08: runs last, it stops the topology).

Environment: TOKENGATE_BINARY (default .build/debug/tokengate), TOPOLOGY_SEQUENCES (default
10000), TOPOLOGY_CONCURRENCY (default 24), TOPOLOGY_KILL_SEQUENCES (default 3000),
TOKENGATE_REDIS_TIMEOUT (the instances', default 5 s).
"""
import os
import re
import subprocess

from harness import http
from harness.http import Conn, port_of

SEQUENCES = int(os.environ.get("TOPOLOGY_SEQUENCES", "10000"))
CONCURRENCY = int(os.environ.get("TOPOLOGY_CONCURRENCY", "24"))
KILL_SEQUENCES = int(os.environ.get("TOPOLOGY_KILL_SEQUENCES", "3000"))
# How long an instance waits for Redis before failing closed with 503. The product default is 1 s;
# these tests check correctness, not latency, on a small shared machine where a loaded second can
# stall for longer than that (then requests fail closed, which the tests would count as errors).
REDIS_TIMEOUT = float(os.environ.get("TOKENGATE_REDIS_TIMEOUT", "5"))
USERS = {"alice": "alice-Pa55word", "bob": "bob-Pa55word", "carol": "carol-Pa55word", "dave": "dave-Pa55word"}


def login(conn, user):
    """(access token, session id) of a login of one of USERS on conn."""
    return http.login(conn, user, USERS[user])


def topology_env(credentials, **extra):
    """The environment of every topology the suite starts: the suite's key and users, its Redis timeout."""
    return {"TOKENGATE_SIGNING_KEY_FILE": credentials.key_file, "TOKENGATE_USERS_FILE": credentials.users_file,
            "TOKENGATE_REDIS_TIMEOUT": f"{REDIS_TIMEOUT:g}", **extra}


def redis_cli(topology, *args):
    result = subprocess.run(["redis-cli", "-p", topology.env["REDIS_PORT"], *args],
                            capture_output=True, text=True, timeout=10)
    return result.stdout.strip()


def instance_metric(topology, name):
    """One counter from every instance's /metrics (-1 where it cannot be read)."""
    counts = []
    for url in topology.instance_urls():
        status, _, data = Conn(port_of(url), timeout=5).request("GET", "/metrics")
        match = re.search(rb"^" + name.encode() + rb" (\d+)", data or b"", re.M)
        counts.append(int(match.group(1)) if status == 200 and match else -1)
    return counts


def instance_verify_counts(topology):
    return instance_metric(topology, "tokengate_verify_duration_seconds_count")
