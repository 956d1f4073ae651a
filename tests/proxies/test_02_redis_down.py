"""Redis paused: 503 through every proxy

With Redis not answering (the fault proxy in front of it stalls), a request with a valid token is
503 through every proxy, never 401, 403, 500 or the app; once Redis answers again the same token
reaches the app.
"""
from harness.checks import precondition, wait_until
from harness.http import http_call, parse_json

from .conftest import mark
from .recipes import PROXIES
from .test_01_recipes import login


def test_redis_down(stack):
    proxies = {kind: stack["proxies"][(kind, "plain")] for kind in PROXIES if (kind, "plain") in stack["proxies"]}
    precondition("at least one proxy runs", proxies)
    tokens = {kind: login(proxied.port)[0] for kind, proxied in proxies.items()}
    pause = stack["pause"]
    pause.set_mode("stall")
    try:
        for kind, proxied in proxies.items():
            status, headers, data = http_call(proxied.port, "GET", "/api/notes", token=tokens[kind], timeout=20)
            body = parse_json(data) or {}
            mark(kind, "redis down", "Redis paused: 503 (never 401/403/500, never the app)",
                 status == 503 and headers.get("x-from-app") is None, f"{status} {data[:200]!r}")
            if kind != "envoy":   # ext_authz answers its status_on_error without a body
                mark(kind, "redis down", "... with a store_unavailable JSON body", body.get("error") == "store_unavailable",
                     data[:200])
    finally:
        pause.set_mode("pass")
        pause.reset_all()
    for kind, proxied in proxies.items():
        back = wait_until(lambda p=proxied.port, t=tokens[kind]: http_call(p, "GET", "/api/notes", token=t)[0] == 200, 10, 0.1)
        mark(kind, "redis down", "Redis back: the same token reaches the app again", back)
