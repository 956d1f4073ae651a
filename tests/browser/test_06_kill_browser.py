"""6. kill the whole browser

The whole browser SIGKILLed (its process group; no beacon can fire): no Chromium process survives,
no beacon came, and no key is left within TOKEN_TTL + 1 s (measured and printed); a fresh browser
starts for the scenarios after it.
"""
from harness.checks import check, say, wait_until
from harness.redis import PREFIX

from . import TTL, measured
from .page import describe_gone, login_via_page, open_demo, watch_gone


def test_kill_browser(browser, browsers, main, redis):
    tab = open_demo(browser, main)
    sid = login_via_page(tab, "dave")
    tab.evaluate("TokenGate.refresh()")
    pttl = redis("PTTL", f"{PREFIX}{{dave}}:s:{sid}")
    closes = main.counter("/auth/close", "204")
    browser.kill()
    session_gone, elapsed = watch_gone(redis, "dave", sid, TTL + 3)
    measured("browser kill -> no key", elapsed)
    say(f"   browser SIGKILLed with the session's PTTL at {pttl} ms; " + describe_gone(session_gone, elapsed, "dave", redis))
    check("SIGKILL to the browser's process group leaves no Chromium process",
          wait_until(lambda: not browser.group_alive(), 5), f"process group {browser.pid}")
    check("no beacon came from the killed browser", main.counter("/auth/close", "204") == closes)
    check(f"no key of the killed browser's session is left within TOKEN_TTL + 1 s ({TTL + 1} s)",
          elapsed is not None and elapsed <= TTL + 1, describe_gone(session_gone, elapsed, "dave", redis))
    fresh = browsers.launch()
    check("a fresh browser starts for the remaining tests", fresh.alive())
