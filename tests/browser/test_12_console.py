"""10. no JavaScript exception or CSP violation on the demo pages (and the Flask page of 11)

Every page the other scenarios opened (harness: page.DEMO_TABS) is checked for Runtime.exceptionThrown
and error-level Log entries (other than network ones). It runs last (file 12) so that it sees them
all; run alone, it opens the demo page and logs in first, to have one page to check.
"""
from harness.checks import check

from . import TTL
from .page import DEMO_TABS, login_via_page, open_demo


def test_console(browser, main):
    if not DEMO_TABS:
        tab = open_demo(browser, main)
        login_via_page(tab, "alice")
        tab.evaluate(f"new Promise(resolve => setTimeout(resolve, {TTL * 1000}))")   # a token refresh or so
    problems = []
    for owner, session in DEMO_TABS:
        for event in owner.events_of("Runtime.exceptionThrown", session):
            details = event.get("exceptionDetails", {})
            problems.append(details.get("exception", {}).get("description") or details.get("text"))
        for event in owner.events_of("Log.entryAdded", session):
            entry = event.get("entry", {})
            if entry.get("level") == "error" and entry.get("source") != "network":
                problems.append(f"{entry.get('source')}: {entry.get('text')}")
    check("10. no JavaScript exception or CSP violation on the demo pages", not problems, "; ".join(map(str, problems[:5])))
