"""The one test harness of the fault, deployment and browser suites (tests/faults, tests/topology,
tests/browser): real processes on loopback, started by fixtures and stopped when they end.

    checks.py     check / require / precondition (soft checks, counted per suite), note, say, wait_until
    processes.py  free ports (below the ephemeral range), stopping processes, log tails
    redis.py      RedisServer (redis-server on a free port; extra arguments, --replicaof) and Resp (a client)
    proxy.py      Proxy: the fault TCP proxy (pass, delay, stall, reset)
    tokengate.py  Credentials (signing key, users file) and TokenGate (`tokengate serve`; fds, RSS, sockets)
    topology.py   Topology: scripts/topology (redis, N instances, the sample app, nginx from the template)
    http.py       Conn (keep-alive), http_call, login, forge_token, raw_exchange, read_responses, metrics
    cdp.py        a Chrome DevTools Protocol client over --remote-debugging-pipe (the browser suite)
    lab.py        Lab: what one fixture scope started, stopped together

Standard library only (pytest runs it: tests/conftest.py). A new scenario is one file
tests/<suite>/test_NN_<name>.py whose docstring begins with its title and says what it asserts.
"""
