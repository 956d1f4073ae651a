"""Fault tests: TokenGate against a Redis that is missing, killed, slow, stalled or resetting, and
against slow or oversized clients. Everything runs on loopback: its own redis-server processes on
free ports, its own tokengate processes, and a small TCP proxy of its own (harness/proxy.py)
between tokengate and Redis that can pass traffic through, delay every chunk, stall (forward nothing
but keep the sockets open) or reset every connection (SO_LINGER 0, then close).

Invariants asserted throughout: no request is admitted (2xx on a protected route: GET /api/me,
GET /auth/verify, GET /auth/sessions) unless Redis confirmed its token at that time; no 2xx on a
protected route while Redis is unreachable; the process neither crashes nor leaks connections or
memory (/proc/PID/fd count, VmRSS, ESTABLISHED connections to the Redis port before/after).

One file per scenario (test_NN_<name>.py, its docstring says what it asserts): 1 Redis missing at
start-up, 2 killed and restarted empty, 3 slow and stalled, 4 reset mid-pipeline, 5 slow and
oversized clients, 5b slowloris beyond the fd limit, 6 10,000 sessions logged out at once, 7 HTTP/1
pipelining, 9 TLS to Redis, 10 a Sentinel failover under load, 11 a primary that dies with writes its
replicas never got (TOKENGATE_REDIS_WAIT on and off), 12 the primary partitioned from the majority in a
network namespace (a black hole), and an instance stranded with it (split brain, with and without
min-replicas-to-write), 13 a Redis Cluster shard's primary killed under load, 14 the service API's
listener flooded past the fd limit and trickled to, 15 one user at the caps (SLOWLOG of every
script, and a /auth/sessions flood beside another user's verifies), 16 logins from one address on
every Cluster shard while a shard's primary is killed (and while its link is frozen), 17 scenario 11
on a Redis Cluster (only replication through the proxies). Scenarios 3-4 share a service behind the proxy, 5-7 a plain one
(conftest.py); each file also runs alone (`tests/faults/run -k tls`).

Environment: TOKENGATE_BINARY (default .build/debug/tokengate), FAULTS_REDIS_TIMEOUT (the
services' TOKENGATE_REDIS_TIMEOUT, default 0.5 s), FAULTS_SLOWLORIS (default 200),
FAULTS_SLOW_DEADLINE (default 15 s). Needs redis-server (and openssl for 9; 10-12 run
redis-server --sentinel; 12 needs root and iproute2's `ip netns`, and makes its namespaces, veth
pairs and bridges on 10.213.0.0/16, all removed at its end; 13-15 run a 3+3 cluster).
"""
import os

from harness import http

REDIS_TIMEOUT = float(os.environ.get("FAULTS_REDIS_TIMEOUT", "0.5"))
SLOWLORIS = int(os.environ.get("FAULTS_SLOWLORIS", "200"))
# 5b: how long a normal client may wait for an answer while slowloris connections hold every fd the
# process may open (the server must cut them off, e.g. with a header-read deadline, within this).
SLOW_DEADLINE = float(os.environ.get("FAULTS_SLOW_DEADLINE", "15"))
FD_LIMIT = 256
TOKEN_TTL = 600  # long enough that no token expires during the run (expiry is not under test here)
# A request must be answered within the Redis timeout plus this margin (a debug build on 2 cores:
# the deadline check runs every timeout/10, a reconnect may add a connect attempt of its own).
MARGIN = 1.0
USERS = {f"user{i:02d}": f"pw-user{i:02d}-Secret" for i in range(16)}
USERS["big"] = "pw-big-Secret"


def login(conn, user):
    """(access token, session id) of a login of one of USERS on conn."""
    return http.login(conn, user, USERS[user])


def forge_token(key, user, sid=None, jti=None):
    return http.forge_token(key, user, sid, jti, ttl=TOKEN_TTL)
