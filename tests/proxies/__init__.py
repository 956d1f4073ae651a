"""Forward-auth through every common front proxy: nginx (auth_request, the shipped template), Caddy
(forward_auth), Traefik (forwardAuth), Envoy (ext_authz, HTTP service) and HAProxy (the Lua action
deploy/haproxy/tokengate-auth.lua), each run from the repository's own recipe file (recipes.py) in
front of the suite's app (app.py) with TokenGate as the auth service on a real Redis.

Every proxy runs three times, in front of three TokenGates: plain (the fast path), per-request
rotation, and cookie mode. The same checks run for every proxy (test_01) and with Redis paused
(test_02); the proxy x check matrix is printed at the end of the run. 127.0.0.1 only.

Environment: TOKENGATE_BINARY (default .build/debug/tokengate).
"""
USERS = {"alice": "alice-Pa55word"}
REDIS_TIMEOUT = 1.0
MODES = {
    "plain": {},
    "rotate": {"TOKENGATE_ROTATION": "per-request"},
    "cookie": {"TOKENGATE_COOKIE": "on"},
}
CHECKS = ("valid", "refusals", "forged/guarded", "forged/public", "dot-segments", "rotation", "cookie CSRF", "logout", "redis down")
