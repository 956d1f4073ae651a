"""5. close the tab

Target.closeTarget fires pagehide: the close beacon arrives, and no key of the session (of the
user) is left in Redis within 2 s (measured and printed).
"""
from harness.checks import check, say, wait_until
from harness.redis import PREFIX

from . import TTL, measured
from .page import describe_gone, login_via_page, open_demo, watch_gone


def test_close_tab(browser, main, redis):
    tab = open_demo(browser, main)
    sid = login_via_page(tab, "carol")
    tab.evaluate("TokenGate.refresh()")   # a full TTL left: an expiry can't pass for the beacon
    pttl = redis("PTTL", f"{PREFIX}{{carol}}:s:{sid}")
    closes = main.counter("/auth/close", "204")
    tab.close()
    session_gone, elapsed = watch_gone(redis, "carol", sid, 2 * TTL + 1)
    measured("tab close -> no key", elapsed)
    say(f"   tab closed with the session's PTTL at {pttl} ms; " + describe_gone(session_gone, elapsed, "carol", redis))
    check("Target.closeTarget fires pagehide: the close beacon arrives",
          wait_until(lambda: main.counter("/auth/close", "204") == closes + 1, 2),
          f"/auth/close 204 count {closes} -> {main.counter('/auth/close', '204')}")
    check("no key of the closed tab's session is left in Redis within 2 s",
          elapsed is not None and elapsed <= 2.0, describe_gone(session_gone, elapsed, "carol", redis))
