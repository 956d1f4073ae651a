"""1b. the demo page's controls

The token countdown runs and shows at most TOKEN_TTL seconds; "Call /api/me" shows 200 with the
user and session; the sessions list shows both of alice's sessions, this tab's marked; "Revoke" ends
the other session at once (its keys gone, its token 401 token_revoked), not this one, and the list
then shows this tab's session only. TOKENGATE_SCREENSHOT saves a screenshot of the page.
"""
import base64
import json
import os

from harness.checks import check, gone_within, say, wait_until
from harness.http import error_code, http_call

from . import TTL, USERS


def test_demo_controls(alice, main, redis):
    tab, sid = alice
    # Another session of alice, as from another device.
    status, _, body = http_call(main.port, "POST", "/auth/login", headers={"Content-Type": "application/json"},
                                body=json.dumps({"username": "alice", "password": USERS["alice"]}))
    other = json.loads(body) if status == 200 else {}
    other_sid, other_token = other.get("session_id"), other.get("access_token")
    countdown = "document.getElementById('countdown').textContent"
    first = wait_until(lambda: tab.evaluate(countdown), 2)       # drawn every 200 ms
    later = wait_until(lambda: tab.evaluate(countdown) != first, 2)
    seconds = [float(t.split()[0]) for t in (first, tab.evaluate(countdown))
               if t and t.split()[0].replace(".", "", 1).isdigit()]
    check("the token countdown runs and shows at most TOKEN_TTL seconds",
          later and len(seconds) == 2 and all(0 <= v <= TTL for v in seconds), f"{first!r} -> {seconds}")
    tab.evaluate("document.getElementById('call-api').click()")
    output = wait_until(lambda: (lambda t: t if t.startswith("200") else None)(
        tab.evaluate("document.getElementById('api-output').textContent")), 3)
    check("\"Call /api/me\" shows 200 with the user and session", bool(output) and "alice" in output and sid in output,
          str(output))
    tab.evaluate("document.getElementById('reload-sessions').click()")
    rows_js = "Array.from(document.querySelectorAll('#sessions tr')).map(tr => tr.textContent)"
    rows = wait_until(lambda: (lambda r: r if len(r) == 2 else None)(tab.evaluate(rows_js)), 3) or tab.evaluate(rows_js)
    check("the sessions list shows both sessions, this tab's marked",
          len(rows) == 2 and any(sid[:10] in r and "this tab" in r for r in rows)
          and any(str(other_sid)[:10] in r and "Revoke" in r for r in rows), str(rows))
    shot = os.environ.get("TOKENGATE_SCREENSHOT")
    if shot:
        with open(shot, "wb") as handle:
            handle.write(base64.b64decode(tab.send("Page.captureScreenshot", {"format": "png"})["data"]))
        say(f"   screenshot of the demo page: {shot}")
    http_call(main.port, "POST", "/auth/refresh", token=other_token)   # a full TTL: only a revoke ends it now
    clicked = tab.evaluate("""(() => {
      const row = Array.from(document.querySelectorAll('#sessions tr')).find(tr => tr.textContent.includes(%s));
      const button = row && row.querySelector('button');
      if (button) button.click();
      return !!button;
    })()""" % json.dumps(str(other_sid)[:10]))
    gone = gone_within(lambda: not redis.session_keys("alice", other_sid), 1.0)
    status, _, body = http_call(main.port, "GET", "/api/me", token=other_token)
    check("\"Revoke\" ends the other session at once (its keys gone, its token 401 token_revoked), not this one",
          clicked and gone is not None and status == 401 and error_code(body) == "token_revoked"
          and redis.session_alive("alice", sid), f"clicked {clicked}, gone {gone}, {status} {body[:100]!r}")
    rows = wait_until(lambda: (lambda r: r if len(r) == 1 else None)(tab.evaluate(rows_js)), 3) or tab.evaluate(rows_js)
    check("the list then shows this tab's session only", len(rows) == 1 and "this tab" in rows[0], str(rows))
