"""11. the Flask sample app behind nginx (cookie mode): its own login view, its page, a closed tab

scripts/topology in cookie mode (its own redis-server, 2 instances, the app, nginx from the shipped
template): log in through the app's own login view (its SQLite user, the session started through
the service API, no /auth/login), the page loads on the cookie and its TokenGate.fetch calls answer;
after 2 x TOKEN_TTL + 1 s a POST still saves; the tab closed -> no key of the session left within
CLOSE_GRACE + 1 s (measured and printed); scripts/topology stops cleanly.
"""
import json
import time

from harness.checks import check, require, say, wait_until
from harness.redis import Resp

from . import CLOSE_GRACE, REUSE_GRACE, TTL, measured
from .page import (
    DEMO_TABS,
    describe_gone,
    watch_gone,
)


def flask_status(tab):
    return tab.evaluate("""(() => ({ path: location.pathname, status: (document.getElementById('status') || {}).textContent,
      notes: Array.from(document.querySelectorAll('#notes li')).map(li => li.textContent),
      user: (document.getElementById('user') || {}).textContent, sid: window.TokenGate ? TokenGate.sessionId : null }))()""")


def test_flask_through_nginx(browser, lab, session_lab):
    # Stopped by the scenario itself (a check), or at the end of the run: its page stays open until then.
    topology = session_lab.topology("topology", {"TOKENGATE_TOKEN_TTL": str(TTL), "TOKENGATE_CLOSE_GRACE": str(CLOSE_GRACE),
                                                 "TOKENGATE_REUSE_GRACE": str(REUSE_GRACE), "TOKENGATE_COOKIE": "on"},
                                    instances=2, timeout=600)
    require("scripts/topology starts (redis, 2 instances, the Flask app, nginx)", topology.start(wait=180), topology.tail())
    origin, user = topology.env["NGINX_URL"], topology.env["APP_USER"]
    redis = lab.add(Resp(int(topology.env["REDIS_PORT"])))
    tab = browser.new_tab("about:blank")
    tab.send("Log.enable")
    DEMO_TABS.append((browser, tab.session))
    tab.navigate(origin + "/app/login?next=/app/")
    since = browser.mark()
    tab.evaluate("""(() => { document.getElementById('username').value = %s; document.getElementById('password').value = %s;
      document.getElementById('login').click(); })()""" % (json.dumps(user), json.dumps(topology.env["APP_PASSWORD"])),
                 await_promise=False)
    state = wait_until(lambda: (lambda s: s if s["path"] == "/app/" and s.get("status") == "notes: 200" else None)(
        flask_status(tab)), 15, 0.1)
    check("the app's login view checks its own user, the page loads through nginx on the cookie, "
          "and its first TokenGate.fetch answers 200", bool(state), str(flask_status(tab)))
    if not state:
        return
    sid = state["sid"]
    check("the page shows the user and holds the session the app started; its keys are in Redis",
          state["user"] == user and bool(sid) and redis.session_alive(user, sid), f"{state} keys {redis.user_keys(user)}")
    logins = [e for e in browser.events_of("Network.requestWillBeSent", tab.session, since)
              if e.get("request", {}).get("url", "").endswith("/auth/login")]
    check("the login went through the app, not TokenGate's own /auth/login", not logins, str(len(logins)))

    # Used across more than two token lifetimes: every operation carries a live token.
    problems = []
    deadline = time.monotonic() + 2 * TTL + 1
    while time.monotonic() < deadline and not problems:
        if not redis.session_alive(user, sid):
            problems.append(f"session key gone at {deadline - time.monotonic():.1f} s before the end")
        time.sleep(0.25)
    tab.evaluate("""(() => { document.getElementById('text').value = 'written after two token lifetimes';
      document.getElementById('add').requestSubmit(); })()""", await_promise=False)
    state = wait_until(lambda: (lambda s: s if "written after two token lifetimes" in s["notes"] else None)(
        flask_status(tab)), 10, 0.1)
    check(f"after {2 * TTL + 1} s open (TOKEN_TTL {TTL} s) the session lives and a POST through nginx saves a note",
          bool(state) and not problems and state["sid"] == sid, f"{problems} {flask_status(tab)}")

    # As in 5: a refresh just done, so none is in flight when the tab closes (a beacon that
    # overtakes the page's own refresh carries the superseded token and changes nothing, by design).
    tab.evaluate("TokenGate.refresh()")
    tab.close()
    session_gone, elapsed = watch_gone(redis, user, sid, 2 * TTL + 1)
    measured("Flask page closed -> no key", elapsed)
    say("   Flask page closed; " + describe_gone(session_gone, elapsed, user, redis))
    check(f"the closed Flask page leaves no key of the session within CLOSE_GRACE + 1 s ({CLOSE_GRACE + 1} s)",
          elapsed is not None and elapsed <= CLOSE_GRACE + 1, describe_gone(session_gone, elapsed, user, redis))
    check("scripts/topology stops cleanly on SIGTERM", topology.stop() in (0, 143), topology.tail())
