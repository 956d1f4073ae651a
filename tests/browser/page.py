"""The browsers the suite starts, and helpers for the demo page and the session's keys in Redis."""
import json
import os
import shutil
import tempfile
import time

from harness import cdp
from harness.checks import wait_until
from harness.http import jwt_claims
from harness.redis import PREFIX

from . import USERS


class Browsers:
    """Every Chromium the tests start, so that all of them are stopped at the end whatever happens."""

    def __init__(self, work):
        self.work = work
        self.all = []
        self.log_path = os.path.join(work, "chromium.log")

    def current(self):
        """The browser the tests use: the last one launched, or a new one if it is gone."""
        live = [b for b in self.all if b.alive()]
        return live[-1] if live else self.launch()

    def launch(self):
        profile = tempfile.mkdtemp(prefix="profile.", dir=self.work)
        browser = cdp.Browser.launch(profile, self.log_path)
        browser.profile = profile
        self.all.append(browser)
        browser.send("Browser.getVersion")  # the pipe answers
        return browser

    def close_all(self):
        for browser in self.all:
            try:
                browser.close()
            except Exception:
                browser.kill()
            shutil.rmtree(browser.profile, ignore_errors=True)


DEMO_TABS = []   # (browser, session) of every tab that showed the demo page, for the console check


def open_demo(browser, service, **create_params):
    tab = browser.new_tab("about:blank", **create_params)
    tab.send("Log.enable")
    DEMO_TABS.append((browser, tab.session))
    tab.navigate(service.origin + "/")
    if not wait_until(lambda: tab.evaluate("typeof window.TokenGate === 'object'"), 10):
        raise AssertionError("the demo page has no window.TokenGate")
    return tab


def login_via_page(tab, user):
    """Fills the demo page's form and clicks "Log in"; returns the session id once the page shows it."""
    sid = tab.evaluate("""(async () => {
      const $ = id => document.getElementById(id);
      const done = new Promise((resolve, reject) => {
        TokenGate.addEventListener('login', () => resolve());
        setTimeout(() => reject(new Error('no login event within 8 s; the page says: ' + $('login-error').textContent)), 8000);
      });
      $('username').value = %s; $('password').value = %s;
      $('login-button').click();
      await done;
      return TokenGate.sessionId;
    })()""" % (json.dumps(user), json.dumps(USERS[user])))
    if not wait_until(lambda: page_state(tab)["shownUser"] == user, 5):
        raise AssertionError(f"the page does not show {user} after login: {page_state(tab)}")
    return sid


def page_state(tab):
    return tab.evaluate("""(() => {
      let stored = null;
      try { stored = JSON.parse(sessionStorage.getItem('tokengate')); } catch (e) {}
      const $ = id => document.getElementById(id);
      return { user: window.TokenGate ? TokenGate.user : null, sid: window.TokenGate ? TokenGate.sessionId : null,
               token: stored && stored.token, visibility: document.visibilityState,
               shownUser: $('user') ? $('user').textContent : null, shownSession: $('session') ? $('session').textContent : null,
               signedIn: !!$('session-card') && !$('session-card').classList.contains('hidden'),
               loginShown: !!$('login-card') && !$('login-card').classList.contains('hidden') };
    })()""")


def page_fetch(tab, url, init=None):
    """TokenGate.fetch from the page: {status, body, next} (next: the X-Next-Token header)."""
    return tab.evaluate("""TokenGate.fetch(%s, %s).then(async r => ({ status: r.status, body: await r.text(),
      next: r.headers.get('X-Next-Token') }))""" % (json.dumps(url), json.dumps(init or {})))


def requests_to(browser, session, path, since):
    return [e for e in browser.events_of("Network.requestWillBeSent", session, since)
            if e.get("request", {}).get("url", "").split("?")[0].endswith(path)]


def stays_logged_in(redis, tab, user, sid, seconds, visibility=None):
    """Polls the page (and its document.visibilityState, when given) and Redis until `seconds` have
    passed; returns (problems, polls)."""
    problems, polls = [], 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        polls += 1
        state = page_state(tab)
        if state["user"] != user or state["sid"] != sid or not state["signedIn"]:
            problems.append(f"page at +{seconds - (deadline - time.monotonic()):.1f} s: {state}")
        if visibility and state["visibility"] != visibility:
            problems.append(f"page {state['visibility']} at +{seconds - (deadline - time.monotonic()):.1f} s")
        if not redis.session_alive(user, sid):
            problems.append(f"session key gone at +{seconds - (deadline - time.monotonic()):.1f} s")
        if problems:
            break
        time.sleep(0.25)
    return problems, polls


def session_key_ttls(redis, user, sid, token):
    """PTTL of the session hash, the page's token key and the user's index (ms; -2 absent, -1 none)."""
    jti = jwt_claims(token).get("jti")
    keys = [f"{PREFIX}{{{user}}}:s:{sid}", f"{PREFIX}{{{user}}}:t:{jti}", f"{PREFIX}{{{user}}}:sessions"]
    return {key: redis("PTTL", key) for key in keys}


def watch_gone(redis, user, sid, timeout):
    """Polls Redis every 10 ms: (seconds until the session's own keys, hash and tokens, are gone,
    seconds until no key of the user is left, index included); None for what did not happen."""
    started = time.monotonic()
    session_gone = None
    while time.monotonic() - started < timeout:
        if session_gone is None and not redis.session_keys(user, sid):
            session_gone = time.monotonic() - started
        if session_gone is not None and not redis.user_keys(user):
            return session_gone, time.monotonic() - started
        time.sleep(0.01)
    return session_gone, None


def describe_gone(session_gone, all_gone, user, redis):
    def text(value):
        return f"{value:.3f} s" if value is not None else "not yet"
    left = "" if all_gone is not None else f" (left: {redis.user_keys(user)})"
    return f"session hash and token keys gone after {text(session_gone)}, every key of {user} (index included) after {text(all_gone)}{left}"
