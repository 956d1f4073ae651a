"""Fixtures of the fault tests: the suite's users and service settings, and the two services that
several scenarios share (each is started by whichever of its scenarios runs first)."""
import shutil

import pytest

from harness.checks import precondition, require, say

from . import REDIS_TIMEOUT, TOKEN_TTL, USERS


@pytest.fixture(scope="session")
def users():
    return USERS


@pytest.fixture(scope="session")
def service_env():
    return {"TOKENGATE_REDIS_TIMEOUT": f"{REDIS_TIMEOUT:g}", "TOKENGATE_TOKEN_TTL": str(TOKEN_TTL)}


@pytest.fixture(scope="session", autouse=True)
def suite(binary):
    say(f"fault tests: binary {binary}, services' Redis timeout {REDIS_TIMEOUT:g} s")
    precondition("redis-server is installed", shutil.which("redis-server") is not None)


@pytest.fixture(scope="session")
def proxied(session_lab):
    """Scenarios 3 and 4: redis-server "b", the fault proxy in front of it (in pass mode) and tokengate
    "b" talking to Redis through the proxy: (tokengate, redis, proxy)."""
    redis = session_lab.redis("b")
    require("redis-server starts", redis.start())
    proxy = session_lab.proxy(redis.port)
    tg = session_lab.tokengate("b", proxy.port)
    require("the service starts, Redis behind the proxy", tg.start(), tg.tail())
    return tg, redis, proxy


@pytest.fixture(scope="session")
def plain(session_lab):
    """Scenarios 5, 5b, 6 and 7: redis-server "c" and tokengate "c" on it: (tokengate, redis)."""
    redis = session_lab.redis("c")
    require("redis-server starts", redis.start())
    tg = session_lab.tokengate("c", redis.port)
    require("the service starts", tg.start(), tg.tail())
    return tg, redis
