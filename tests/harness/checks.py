"""Soft checks: a scenario records every check it makes and fails at its end if any failed.

    check(name, ok, detail="")         records a check, prints "  ok    name" or "  FAIL  name: detail",
                                       returns ok; the scenario goes on either way
    require(name, ok, detail="")       the same, but a failure ends the scenario there (raises Stop)
    precondition(name, ok, detail="")  counted only when it fails (then ends the scenario): what a
                                       scenario needs from a fixture is not a check of its own

The counts are kept per suite (the test file's folder: faults, topology, browser) and printed at the
end of the run ("faults: 128 checks passed, 0 failed") by tests/conftest.py, which also turns a
scenario's failed checks into a pytest failure listing each with its detail.
"""
import threading
import time
from dataclasses import dataclass, field


class Stop(Exception):
    """Ends a scenario after a failed require()/precondition() (the failure is already recorded)."""


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0
    notes: list = field(default_factory=list)   # key numbers, printed again in the summary


TALLIES = {}            # suite name -> Tally
_lock = threading.Lock()
_current = {"suite": "checks", "failures": []}   # the running test's suite and its failed checks


def begin(suite, failures):
    """Called by the hooks before each test phase: checks made now count for `suite` and are
    appended to `failures` ((name, detail) pairs)."""
    with _lock:
        _current["suite"] = suite
        _current["failures"] = failures
        TALLIES.setdefault(suite, Tally())


def tally(suite=None):
    with _lock:
        return TALLIES.setdefault(suite or _current["suite"], Tally())


def say(text=""):
    print(text, flush=True)


def note(text):
    """A number worth keeping: printed now and again in the summary at the end of the run."""
    tally().notes.append(text)
    say(f"   {text}")


def check(name, ok, detail=""):
    ok = bool(ok)
    with _lock:
        counts = TALLIES.setdefault(_current["suite"], Tally())
        if ok:
            counts.passed += 1
        else:
            counts.failed += 1
            _current["failures"].append((name, str(detail)))
    if ok:
        say(f"  ok    {name}" + (f" ({detail})" if detail and len(str(detail)) < 120 else ""))
    else:
        say(f"  FAIL  {name}" + (f": {detail}" if detail else ""))
    return ok


def require(name, ok, detail=""):
    """check(), and a failure ends the scenario (what `if not check(...): return` did)."""
    if not check(name, ok, detail):
        raise Stop(name)
    return ok


def precondition(name, ok, detail=""):
    """Counted only when it fails, and then it ends the scenario."""
    if not ok:
        check(name, False, detail)
        raise Stop(name)
    return ok


def failed_so_far():
    """The failed checks of the running test (setup, call and teardown)."""
    with _lock:
        return list(_current["failures"])


def wait_until(condition, timeout, interval=0.05):
    """Polls condition() until it is truthy or timeout seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def gone_within(condition, timeout, interval=0.01):
    """Seconds until condition() holds (polled), or None after timeout."""
    started = time.monotonic()
    if wait_until(condition, timeout, interval):
        return time.monotonic() - started
    return None


def percentile(values, p):
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"
