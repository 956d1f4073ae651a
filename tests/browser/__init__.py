"""Browser tests: the demo page and /tokengate.js in a real headless Chromium, against the real
tokengate binary and a real redis-server, with Redis checked directly.

The fixtures (conftest.py) start redis-server on a free port, tokengate instances on free ports of
127.0.0.1 (TOKEN_TTL 3 s, CLOSE_GRACE 1 s, REUSE_GRACE 1 s) and Chromium (headless, driven over the
DevTools protocol on --remote-debugging-pipe by harness/cdp.py, in its own process group). One file
per scenario (test_NN_<name>.py, its docstring says what it asserts): 1 login through the demo page
and 1b its controls, 2 idle in the foreground, 3 idle in a hidden tab, 4 reload, 5 tab closed, 6 the
whole browser killed, 7 the logout button, 8 per-request rotation, 9 cookie mode, 11 the Flask sample
app behind nginx, and 10 (file 12, run last) no JavaScript exception or CSP violation on any of
those pages. Scenarios 1b, 2 and 4 use alice's tab of scenario 1 (the `alice` fixture); each file
also runs alone (`tests/browser/run -k rotation`).

Environment: TOKENGATE_BINARY (default .build/debug/tokengate), TOKENGATE_SCREENSHOT (a PNG path:
save a screenshot of the logged-in demo page there), CHROMIUM (default Debian's
/usr/lib/chromium/chromium, else chromium on PATH). Needs redis-server and Chromium installed
(scripts/test installs them); scenario 11 also nginx and the app's Python environment, which
scripts/topology prepares.
"""
from harness.checks import note

TTL = 3
CLOSE_GRACE = 1
REUSE_GRACE = 1
SESSION_IDLE = 60
USERS = {name: f"{name}-Pa55word" for name in
         ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")}


def measured(name, seconds):
    """A time worth keeping: printed now and again at the end of the run."""
    note(f"measured: {name} " + (f"{seconds:.3f} s" if seconds is not None else "(none)"))
