"""The one test harness's pytest glue, shared by tests/faults, tests/topology and tests/browser.

Every scenario is one file (tests/<suite>/test_NN_<name>.py, run in file order) with one test
function; shared processes are fixtures (the suite's conftest.py), so `-k` selects scenarios and any
file runs alone. A scenario makes soft checks (harness.checks: check, require, precondition): each
is printed as it is made, and the test fails at its end if any failed, listing each with its detail.
An exception in a scenario is one more failed check ("<test> ran to its end"). At the end of the run
each suite prints its count of checks ("faults: 128 checks passed, 0 failed"), and any failed check
makes the exit status non-zero.

Generic fixtures: binary (TOKENGATE_BINARY, default .build/debug/tokengate), work (a temporary
directory, kept when a check failed), credentials (a signing key and the suite's `users`), lab (what
a test starts, stopped when it ends) and session_lab (stopped when the run ends). A suite overrides
`users`, `service_env` (TOKENGATE_* settings of every tokengate it starts) and `log_level`.

Everything started is stopped at the end, also on failure, SIGTERM or Ctrl-C (SIGTERM is turned into
KeyboardInterrupt: pytest then tears the fixtures down; whatever is left is stopped at exit).
"""
import os
import shutil
import signal
import tempfile
import time
import traceback

import pytest

from harness import checks, processes
from harness.lab import Lab
from harness.tokengate import Credentials

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FAILURES = pytest.StashKey[list]()
STARTED = pytest.StashKey[float]()
OUTCOMES = (pytest.skip.Exception, pytest.fail.Exception, pytest.xfail.Exception)


# --- soft checks per scenario ----------------------------------------------------------------------

def _begin(item):
    failures = item.stash.setdefault(FAILURES, [])
    checks.begin(item.path.parent.name, failures)
    return failures


def _report(failures, what):
    lines = [f"{len(failures)} failed check(s) {what}:"] + [f"  {name}" + (f": {detail}" if detail else "")
                                                             for name, detail in failures]
    return "\n".join(lines)


def _counted(error):
    """Counts an unexpected exception as one failed check, once (a failing shared fixture re-raises
    the same exception to every test that asks for it)."""
    if not getattr(error, "_counted", False):
        try:
            error._counted = True
        except AttributeError:
            pass
        return True
    return False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    failures = _begin(item)
    item.stash[STARTED] = time.monotonic()
    title = ((item.module.__doc__ or "").strip().splitlines() or [item.name])[0]
    checks.say(f"\n{title}  [{item.nodeid}]")   # the scenario file's docstring begins with its title
    try:
        return (yield)
    except checks.Stop as stop:
        message = _report(failures, "in set-up") if failures else f"set-up failed earlier: {stop}"
    except OUTCOMES:
        raise
    except Exception as error:
        if _counted(error):
            checks.check(f"set-up of {item.name} ran to its end", False, traceback.format_exc(limit=-8))
        raise
    pytest.fail(message, pytrace=False)   # outside the except clause: no "during handling" chain


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    failures = _begin(item)
    try:
        yield
    except checks.Stop:
        pass   # its failed check is recorded
    except OUTCOMES:
        raise
    except Exception:   # a broken scenario is a failure, and the rest still run
        checks.check(f"{item.name} ran to its end", False, traceback.format_exc(limit=-6))
    if failures:
        pytest.fail(_report(failures, "in " + item.nodeid), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    failures = _begin(item)
    before = len(failures)
    result = yield
    checks.say(f"   ({time.monotonic() - item.stash.get(STARTED, time.monotonic()):.1f} s)")
    if len(failures) > before:
        pytest.fail(_report(failures[before:], "in tear-down"), pytrace=False)
    return result


def pytest_terminal_summary(terminalreporter):
    for suite, tally in checks.TALLIES.items():
        if tally.notes:
            terminalreporter.write_line(f"{suite} summary:")
            for line in tally.notes:
                terminalreporter.write_line(f"  {line}")
    for suite, tally in checks.TALLIES.items():
        terminalreporter.write_line(f"{suite}: {tally.passed} checks passed, {tally.failed} failed")


def pytest_sessionfinish(session, exitstatus):
    if exitstatus == 0 and any(tally.failed for tally in checks.TALLIES.values()):
        session.exitstatus = 1


# --- every process stopped, also on SIGTERM ------------------------------------------------------

def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even when started with SIGINT ignored (`cmd &`)


def pytest_unconfigure(config):
    processes.stop_all()


# --- generic fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def binary():
    path = os.environ.get("TOKENGATE_BINARY") or os.path.join(ROOT, ".build", "debug", "tokengate")
    if not os.path.isabs(path):
        path = os.path.join(ROOT, path)
    checks.precondition("the tokengate binary exists", os.access(path, os.X_OK), path)
    return path


@pytest.fixture(scope="session")
def work(request):
    suites = sorted({item.path.parent.name for item in request.session.items}) or ["tests"]
    path = tempfile.mkdtemp(prefix=f"tokengate-{'-'.join(suites)}-test.")
    os.chmod(path, 0o711)   # nginx workers (nobody, when run as root) reach their temp dirs inside
    yield path
    if any(tally.failed for tally in checks.TALLIES.values()) or request.session.testsfailed:
        checks.say(f"(files kept in {path})")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def users():
    """user -> password, added to the users file every tokengate of the suite reads."""
    return {}


@pytest.fixture(scope="session")
def service_env():
    """TOKENGATE_* settings of every tokengate the suite starts (besides key, users file, Redis URL)."""
    return {}


@pytest.fixture(scope="session")
def log_level():
    return "warning"


@pytest.fixture(scope="session")
def credentials(binary, work, users):
    return Credentials.make(binary, work, users)


@pytest.fixture(scope="session")
def session_lab(binary, work, credentials, service_env, log_level):
    lab = Lab(binary, work, credentials, service_env, log_level)
    yield lab
    lab.stop(show_logs=any(tally.failed for tally in checks.TALLIES.values()))


@pytest.fixture
def lab(binary, work, credentials, service_env, log_level):
    lab = Lab(binary, work, credentials, service_env, log_level)
    yield lab
    lab.stop(show_logs=bool(checks.failed_so_far()))
