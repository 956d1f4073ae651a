"""3. idle in a hidden tab for 3 x TOKEN_TTL

The same as 2 while the tab is hidden (another tab opened in front and activated:
document.visibilityState is 'hidden' at every poll, and main-thread timers are throttled).
"""
from harness.checks import check, say, wait_until

from . import TTL
from .page import login_via_page, open_demo, page_fetch, requests_to, stays_logged_in


def test_idle_hidden(browser, main, redis):
    tab = open_demo(browser, main)
    sid = login_via_page(tab, "bob")
    tab.evaluate("window.__ticks = []; (function tick() { __ticks.push(performance.now()); setTimeout(tick, 50); })(); 1")
    # A new tab in front of it, activated: the demo tab becomes a background tab.
    cover = browser.new_tab("about:blank")
    browser.send("Target.activateTarget", {"targetId": cover.target_id})
    hidden = wait_until(lambda: tab.evaluate("document.visibilityState") == "hidden", 5)
    check("a tab opened and activated in front makes the demo tab's document.visibilityState 'hidden'",
          hidden, tab.evaluate("document.visibilityState"))
    if not hidden:
        return
    tab.evaluate("window.__ticks = []; 1")
    since = browser.mark()
    problems, polls = stays_logged_in(redis, tab, "bob", sid, 3 * TTL + 1, visibility="hidden")
    refreshes = requests_to(browser, tab.session, "/auth/refresh", since)
    ticks = tab.evaluate("__ticks.length")
    say(f"   hidden for {3 * TTL + 1} s: {ticks} ticks of a 50 ms main-thread timer ran (throttled: about one a second),"
        f" {len(refreshes)} refreshes")
    check(f"the hidden page stays logged in with the same session and its keys live, hidden at every poll ({polls} polls)",
          not problems, "; ".join(problems[:3]))
    check(f"the hidden page kept refreshing ({len(refreshes)} refreshes)", len(refreshes) >= 3)
    answer = page_fetch(tab, "/api/me")
    check("a protected TokenGate.fetch('/api/me') from the hidden tab still answers 200",
          answer["status"] == 200 and tab.evaluate("document.visibilityState") == "hidden", str(answer))
    cover.close()
    browser.send("Target.activateTarget", {"targetId": tab.target_id})
