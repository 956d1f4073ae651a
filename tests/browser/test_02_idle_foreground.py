"""2. idle in the foreground for 3 x TOKEN_TTL

Same session all along, its keys never gone, the page refreshed on its own, and a protected
TokenGate.fetch('/api/me') still answers 200.
"""
import json

from harness.checks import check, say

from . import TTL
from .page import page_fetch, requests_to, stays_logged_in


def test_idle_foreground(alice, browser, redis):
    say(f"   {3 * TTL + 1} s")
    tab, sid = alice
    since = browser.mark()
    problems, polls = stays_logged_in(redis, tab, "alice", sid, 3 * TTL + 1, visibility="visible")
    refreshes = requests_to(browser, tab.session, "/auth/refresh", since)
    check(f"the visible page stays logged in with the same session and its keys live ({polls} polls)",
          not problems, "; ".join(problems[:3]))
    check(f"the page refreshed on its own while idle ({len(refreshes)} refreshes)", len(refreshes) >= 3)
    answer = page_fetch(tab, "/api/me")
    body = json.loads(answer["body"]) if answer["status"] == 200 else {}
    check("a protected TokenGate.fetch('/api/me') still answers 200 for the same session",
          answer["status"] == 200 and body.get("user") == "alice" and body.get("session_id") == sid, str(answer))
