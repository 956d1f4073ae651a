"""4. reload

The unloading page sends the close beacon, the reloaded page is still logged in with the same
session id, and the session outlives CLOSE_GRACE (its keys restored to a full TTL).
"""
import time

from harness.checks import check, wait_until
from harness.redis import PREFIX

from . import CLOSE_GRACE, TTL
from .page import page_fetch, page_state, session_key_ttls


def test_reload(alice, main, redis):
    tab, sid = alice
    closes = main.counter("/auth/close", "204")
    reloaded_at = time.monotonic()
    tab.reload()
    wait_until(lambda: tab.evaluate("typeof window.TokenGate === 'object'"), 5)
    state = page_state(tab)
    check("after a reload the page is still logged in, same user, same session id",
          state["user"] == "alice" and state["sid"] == sid and state["signedIn"] and state["shownSession"] == sid,
          str(state))
    beacon = wait_until(lambda: main.counter("/auth/close", "204") == closes + 1, 2)
    check("the unloading page sent the close beacon (/auth/close 204 counted once)", beacon,
          f"/auth/close 204 count {closes} -> {main.counter('/auth/close', '204')}")
    # The beacon cut the session to CLOSE_GRACE; past that, only the reloaded page's refresh keeps it.
    lowest, highest = None, 0
    problems = []
    deadline = reloaded_at + CLOSE_GRACE + 1.5
    while time.monotonic() < deadline:
        pttl = redis("PTTL", f"{PREFIX}{{alice}}:s:{sid}")
        if pttl < 0:
            problems.append(f"session key gone {time.monotonic() - reloaded_at:.2f} s after the reload")
            break
        lowest = pttl if lowest is None else min(lowest, pttl)
        highest = max(highest, pttl)
        time.sleep(0.02)
    ttls = session_key_ttls(redis, "alice", sid, page_state(tab)["token"])
    check(f"the session outlives CLOSE_GRACE after the reload, its keys back to a full TTL "
          f"(session PTTL seen {lowest}..{highest} ms)",
          not problems and highest >= TTL * 1000 - 500 and all(pttl > 0 for pttl in ttls.values()),
          "; ".join(problems) + f" {ttls}")
    answer = page_fetch(tab, "/api/me")
    check("the reloaded page's protected call answers 200", answer["status"] == 200, str(answer))
