"""7. the logout button

Every key of the session gone at once (<= 1 s), a token captured before the logout is refused with
401 token_revoked, the page shows the login form again and forgot the token.
"""
from harness.checks import check, gone_within
from harness.http import error_code, http_call

from .page import login_via_page, open_demo, page_state


def test_logout(browser, main, redis):
    tab = open_demo(browser, main)
    sid = login_via_page(tab, "erin")
    token = page_state(tab)["token"]
    before = redis.session_keys("erin", sid)
    tab.evaluate("""new Promise((resolve, reject) => {
      TokenGate.addEventListener('logout', () => resolve());
      setTimeout(() => reject(new Error('no logout event within 5 s')), 5000);
      document.getElementById('logout').click();
    })""")
    elapsed = gone_within(lambda: not redis.user_keys("erin"), 1.0)
    check(f"every key of the session is gone at once after the click ({len(before)} before; "
          + (f"{elapsed * 1000:.0f} ms" if elapsed is not None else "still there after 1 s") + ")",
          bool(before) and elapsed is not None, f"left: {redis.user_keys('erin')}")
    status, _, body = http_call(main.port, "GET", "/api/me", token=token)
    check("the token captured before the logout gets 401 token_revoked",
          status == 401 and error_code(body) == "token_revoked", f"{status} {body[:200]!r}")
    state = page_state(tab)
    check("the page shows the login form again and forgot the token",
          state["loginShown"] and not state["signedIn"] and state["user"] is None and state["token"] is None, str(state))
