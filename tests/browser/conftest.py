"""Fixtures of the browser tests: redis-server, the main tokengate, Chromium (relaunched when a
scenario killed it) and alice's logged-in demo tab, shared by the scenarios; every tokengate the
suite starts runs until the end (its pages stay open, for the console check)."""
import shutil

import pytest

from harness import cdp, checks
from harness.checks import precondition, require, say
from harness.processes import tail
from harness.redis import Resp

from . import CLOSE_GRACE, REUSE_GRACE, SESSION_IDLE, TTL, USERS
from .page import Browsers, login_via_page, open_demo


@pytest.fixture(scope="session")
def users():
    return USERS


@pytest.fixture(scope="session")
def service_env():
    return {"TOKENGATE_TOKEN_TTL": str(TTL), "TOKENGATE_CLOSE_GRACE": str(CLOSE_GRACE),
            "TOKENGATE_REUSE_GRACE": str(REUSE_GRACE), "TOKENGATE_SESSION_IDLE": str(SESSION_IDLE),
            "TOKENGATE_REDIS_TIMEOUT": "5"}


@pytest.fixture(scope="session")
def log_level():
    return "info"


@pytest.fixture(scope="session", autouse=True)
def suite(binary):
    executable = cdp.find_chromium()
    say(f"browser tests: binary {binary}, Chromium {executable}, TOKEN_TTL {TTL} s, CLOSE_GRACE {CLOSE_GRACE} s, "
        f"REUSE_GRACE {REUSE_GRACE} s")
    precondition("redis-server is installed", shutil.which("redis-server") is not None)
    precondition("Chromium is installed (Debian: apt-get install chromium)", executable is not None)


@pytest.fixture(scope="session")
def redis_server(session_lab):
    server = session_lab.redis("main")
    require("redis-server starts on a free port", server.start(), tail(server.log_path))
    return server


@pytest.fixture(scope="session")
def redis(redis_server):
    """A client of the suite's Redis (with TokenGate's key layout: user_keys, session_keys, ...)."""
    client = Resp(redis_server.port)
    yield client
    client.close()


@pytest.fixture(scope="session")
def main(session_lab, redis_server):
    """The suite's main tokengate (default settings besides the short TTLs)."""
    service = session_lab.tokengate("main", redis_server.port)
    require("tokengate starts", service.start(), service.tail(8).strip())
    return service


@pytest.fixture(scope="session")
def browsers(work):
    """Every Chromium the suite starts (all stopped at the end)."""
    every = Browsers(work)
    yield every
    every.close_all()
    if any(tally.failed for tally in checks.TALLIES.values()):
        say(f"--- chromium log (without D-Bus noise) ---\n{tail(every.log_path, 15, skip='dbus')}")


@pytest.fixture
def browser(browsers, main, redis_server):
    """The running browser (a new one if a scenario killed it)."""
    if not browsers.all:
        try:
            first = browsers.launch()
        except cdp.CDPError as error:
            precondition("Chromium starts and answers on the DevTools pipe", False, f"{error}\n{tail(browsers.log_path)}")
        say(f"   redis 127.0.0.1:{redis_server.port}, tokengate {main.origin}, "
            f"{first.send('Browser.getVersion')['product']} (pid {first.pid})")
    return browsers.current()


_alice = {}


@pytest.fixture
def alice(browser, main):
    """alice logged in through the demo page's form: (tab, session id), the same tab for every
    scenario as long as its browser runs."""
    if _alice.get("browser") is not browser:
        tab = open_demo(browser, main)
        _alice.update(browser=browser, tab=tab, sid=login_via_page(tab, "alice"))
    return _alice["tab"], _alice["sid"]
