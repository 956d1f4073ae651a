"""Fixtures of the proxies suite: one Redis behind the harness's fault proxy (its "stall" mode is Redis
paused), the three TokenGates of __init__.MODES, the app, and every proxy x mode, started once."""
import secrets
import shutil

import pytest

from harness import checks
from harness.checks import check, precondition, require, say

from . import CHECKS, MODES, REDIS_TIMEOUT, USERS
from .app import EchoApp
from .recipes import PROXIES, start, tool

MATRIX = {}   # (proxy, check) -> True/False (all its checks passed), printed at the end


def mark(proxy, column, name, ok, detail=""):
    """check(), and its result in the matrix cell (proxy, column)."""
    ok = check(f"{proxy}: {name}", ok, detail)
    MATRIX[(proxy, column)] = MATRIX.get((proxy, column), True) and ok
    return ok


def pytest_terminal_summary(terminalreporter):
    if not MATRIX:
        return
    width = max(len(c) for c in CHECKS) + 2
    terminalreporter.write_line("proxy x check:")
    terminalreporter.write_line("  " + "".join(f"{c:<{width}}" for c in ("proxy",) + CHECKS))
    for proxy in PROXIES:
        cells = [{True: "ok", False: "FAIL", None: "-"}[MATRIX.get((proxy, c))] for c in CHECKS]
        terminalreporter.write_line("  " + "".join(f"{c:<{width}}" for c in [proxy] + cells))


@pytest.fixture(scope="session")
def users():
    return USERS


@pytest.fixture(scope="session")
def service_env():
    return {"TOKENGATE_REDIS_TIMEOUT": f"{REDIS_TIMEOUT:g}"}


@pytest.fixture(scope="session", autouse=True)
def suite(binary):
    say(f"proxies tests: binary {binary}")
    for name in PROXIES + ("envsubst",):
        path = tool(name)
        precondition(f"{name} is installed", shutil.which(path) is not None, path)


@pytest.fixture(scope="session")
def stack(session_lab, work):
    """{"redis", "pause" (the fault proxy in front of Redis), "tokengates" (mode -> TokenGate), "app",
    "secret", "proxies" ((proxy, mode) -> Proxied)}."""
    redis = session_lab.redis("redis")
    require("redis-server starts", redis.start())
    pause = session_lab.proxy(redis.port)
    tokengates = {}
    for mode, env in MODES.items():
        tg = session_lab.tokengate(mode, pause.port, env=env)
        require(f"tokengate ({mode}) starts", tg.start(), tg.tail())
        tokengates[mode] = tg
    secret = secrets.token_urlsafe(24)
    app = session_lab.add(EchoApp(secret))
    proxies = {}
    for kind in PROXIES:
        for mode, tg in tokengates.items():
            proxied = start(kind, work, mode, tg.port, app.port, secret)
            if proxied is None:
                check(f"{kind} ({mode}) starts from its recipe", False, f"see {work}/{kind}-{mode}")
                continue
            session_lab.add(proxied)
            proxies[(kind, mode)] = proxied
    say(f"   app 127.0.0.1:{app.port}, " + ", ".join(f"{k}/{m} :{p.port}" for (k, m), p in proxies.items()))
    yield {"redis": redis, "pause": pause, "tokengates": tokengates, "app": app, "secret": secret, "proxies": proxies}
    if any(tally.failed for tally in checks.TALLIES.values()):
        for (kind, mode), proxied in proxies.items():
            say(f"--- {kind} ({mode}) log (tail) ---\n{proxied.tail(8)}")
