"""9. cookie mode

An instance with TOKENGATE_COOKIE=on: the login answer is no-store; the HttpOnly __Host-tg_token
cookie is set but invisible to document.cookie, __Host-tg_csrf is readable; the cookie alone
authenticates a plain navigation; same-origin POSTs on the cookie alone without the double-submit
token (or with a wrong one) get 403 csrf_failed; a planted plain tg_csrf (what a sibling subdomain
can set) changes nothing and a __Host-tg_csrf against the prefix's rules (Path=/app) is refused by
the browser; a cross-origin form POST to /auth/logout-all from a page the test serves on another
port (same site, so the SameSite=Strict cookie does go along) gets 403 csrf_failed and leaves the
session alone, so does one from a cross-site origin (localhost) and a no-cors fetch;
TokenGate.logoutAll() from the page itself works and clears the cookies; a closed tab still leaves no
key within 2 s (the beacon passes the CSRF check).
"""
import http.server
import json
import threading

from harness.checks import check, gone_within, require, say, wait_until
from harness.http import error_code

from . import TTL, measured
from .page import describe_gone, login_via_page, open_demo, page_fetch, watch_gone


class AttackerSite:
    """Another origin (a port of our own, a Python thread) serving pages that try a cross-site POST."""

    def __init__(self, target_origin):
        target = target_origin

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.startswith("/form"):
                    page = (f"<!doctype html><title>attacker</title><form id=f method=POST "
                            f"action='{target}/auth/logout-all'><input type=hidden name=csrf value=forged>"
                            f"<input type=hidden name=token value=forged></form>"
                            f"<script>document.getElementById('f').submit()</script>")
                else:
                    page = "<!doctype html><title>attacker</title>nothing here"
                data = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="attacker", daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def cross_site_post(browser, attacker_origin, target_port):
    """Opens the attacker's auto-submitting form; returns (status, body text, request headers, whether
    the POST was sent at all)."""
    tab = browser.new_tab("about:blank")
    since = browser.mark()
    tab.navigate(f"{attacker_origin}/form")
    sent = browser.wait_event("Network.requestWillBeSent", tab.session, since,
                                  lambda p: p["request"]["url"].endswith("/auth/logout-all"), timeout=10)
    response = browser.wait_event("Network.responseReceived", tab.session, since,
                                      lambda p: p["response"]["url"].endswith("/auth/logout-all"), timeout=10)
    extra = browser.wait_event("Network.requestWillBeSentExtraInfo", tab.session, since,
                                   lambda p: sent is not None and p.get("requestId") == sent["requestId"], timeout=3)
    wait_until(lambda: tab.evaluate("location.port") == str(target_port) and tab.evaluate("document.readyState") == "complete", 5)
    body = tab.evaluate("document.body ? document.body.innerText : ''")
    tab.close()
    headers = {k.lower(): v for k, v in ((extra or {}).get("headers") or {}).items()}
    return (response or {}).get("response", {}).get("status"), body, headers, sent is not None


def test_cookie_mode(browser, session_lab, redis_server, redis):
    service = session_lab.tokengate("cookie", redis_server.port, env={"TOKENGATE_COOKIE": "on"})
    require("tokengate starts with TOKENGATE_COOKIE=on", service.start(), service.tail(8).strip())
    tab = open_demo(browser, service)
    since = browser.mark()
    sid = login_via_page(tab, "grace")
    login_response = browser.wait_event("Network.responseReceived", tab.session, since,
                                            lambda p: p["response"]["url"].endswith("/auth/login"), timeout=5)
    cache = {k.lower(): v for k, v in (login_response or {}).get("response", {}).get("headers", {}).items()}
    check("the login response has Cache-Control: no-store", "no-store" in cache.get("cache-control", ""), str(cache))
    cookies = {c["name"]: c for c in tab.send("Network.getCookies", {"urls": [service.origin + "/"]})["cookies"]}
    jar = tab.evaluate("document.cookie")
    token_cookie = cookies.get("__Host-tg_token", {})
    check("Chromium keeps __Host-tg_token: HttpOnly, Secure, SameSite=Strict, Path=/, a session cookie",
          token_cookie.get("httpOnly") and token_cookie.get("secure") and token_cookie.get("sameSite") == "Strict"
          and token_cookie.get("path") == "/" and token_cookie.get("session"),
          f"cookies: {sorted(cookies)} {token_cookie}")
    check("document.cookie shows __Host-tg_csrf but not the HttpOnly token cookie",
          "__Host-tg_csrf=" in jar and "tg_token" not in jar and token_cookie.get("value", "-") not in jar, jar)
    csrf_cookie = cookies.get("__Host-tg_csrf", {})
    check("__Host-tg_csrf is Secure, SameSite=Strict, readable", csrf_cookie.get("secure") and not csrf_cookie.get("httpOnly")
          and csrf_cookie.get("sameSite") == "Strict", str(csrf_cookie))
    nav = browser.new_tab("about:blank")
    nav.navigate(service.origin + "/api/me")
    text = nav.evaluate("document.body ? document.body.innerText : ''")
    check("the cookie alone authenticates a plain navigation to /api/me",
          '"user":"grace"' in text.replace(" ", "") and sid in text, text[:200])
    nav.close()

    answers = tab.evaluate("""(async () => {
      const plain = await fetch('/auth/logout-all', { method: 'POST' });
      const wrong = await fetch('/auth/logout-all', { method: 'POST', headers: { 'X-CSRF-Token': 'forged' } });
      return [plain.status, (await plain.json()).error, wrong.status, (await wrong.json()).error];
    })()""")
    check("same-origin POSTs on the cookie alone need the double-submit token: none or a wrong one, 403 csrf_failed",
          answers == [403, "csrf_failed", 403, "csrf_failed"] and redis.session_alive("grace", sid), str(answers))

    # Cookie tossing: a sibling subdomain can set cookies for the whole site, but never one with the
    # __Host- prefix. Plant what it could (the plain name) and try what it cannot (__Host- with Domain).
    real_csrf = csrf_cookie.get("value")
    tab.send("Network.setCookie", {"name": "tg_csrf", "value": "planted", "url": service.origin + "/"})
    tab.evaluate("document.cookie = '__Host-tg_csrf=planted; Path=/app; Secure'")
    jar = {c["name"]: c["value"] for c in tab.send("Network.getCookies", {"urls": [service.origin + "/app/x"]})["cookies"]}
    check("Chromium refuses a __Host-tg_csrf that breaks the prefix's rules (Path=/app); a planted plain tg_csrf "
          "sits beside the real one", jar.get("__Host-tg_csrf") == real_csrf and jar.get("tg_csrf") == "planted",
          f"{jar} (real {real_csrf})")
    answer = tab.evaluate("""(async () => {
      const csrf = document.cookie.match(/(?:^|;\\s*)__Host-tg_csrf=([^;]*)/)[1];
      const r = await fetch('/auth/refresh', { method: 'POST', headers: { 'X-CSRF-Token': csrf } });
      return [r.status, r.ok ? (await r.json()).session_id : (await r.json()).error];
    })()""")
    check("with the planted cookie a same-origin refresh on the cookie alone still answers 200",
          answer == [200, sid], str(answer))
    tab.send("Network.deleteCookies", {"name": "tg_csrf", "url": service.origin + "/"})

    attacker = AttackerSite(service.origin)
    try:
        status, body, headers, sent = cross_site_post(browser, f"http://127.0.0.1:{attacker.port}", service.port)
        say(f"   form POST from http://127.0.0.1:{attacker.port}: Sec-Fetch-Site {headers.get('sec-fetch-site')}, "
            f"Origin {headers.get('origin')}, cookie sent: {'tg_token' in headers.get('cookie', '')}; answer {status} {body[:80]}")
        check("a cross-origin form POST to /auth/logout-all (cookie sent along) gets 403 csrf_failed",
              sent and status == 403 and error_code(body) == "csrf_failed", f"{status} {body[:200]}")
        check("the session survives it (keys still in Redis, the page still logged in)",
              redis.session_alive("grace", sid) and page_fetch(tab, "/api/me")["status"] == 200)
        status, body, headers, sent = cross_site_post(browser, f"http://localhost:{attacker.port}", service.port)
        say(f"   form POST from http://localhost:{attacker.port}: Sec-Fetch-Site {headers.get('sec-fetch-site')}, "
            f"cookie sent: {'tg_token' in headers.get('cookie', '')}; answer {status} {body[:80]}")
        check("a cross-site form POST (from localhost) is refused and the session survives",
              sent and status in (401, 403) and redis.session_alive("grace", sid), f"{status} {body[:200]}")
        evil = browser.new_tab(f"http://127.0.0.1:{attacker.port}/")
        evil.evaluate(f"""fetch({json.dumps(service.origin + '/auth/logout-all')}, {{ method: 'POST', mode: 'no-cors',
            credentials: 'include', headers: {{ 'Content-Type': 'text/plain' }}, body: 'csrf=forged' }}).then(() => 1, () => 0)""")
        evil.close()
        check("a no-cors fetch POST from the other origin leaves the session alive",
              redis.session_alive("grace", sid) and page_fetch(tab, "/api/me")["status"] == 200)
    finally:
        attacker.stop()

    tab.evaluate("TokenGate.logoutAll()")
    elapsed = gone_within(lambda: not redis.user_keys("grace"), 1.0)
    cookies = tab.send("Network.getCookies", {"urls": [service.origin + "/"]})["cookies"]
    check("TokenGate.logoutAll() from the page itself works: every key of the user gone",
          elapsed is not None, f"left: {redis.user_keys('grace')}")
    check("logout clears the cookies (Clear-Site-Data)", not [c for c in cookies if c["name"] in ("__Host-tg_token", "__Host-tg_csrf")],
          str([c["name"] for c in cookies]))

    closer = open_demo(browser, service)
    closer_sid = login_via_page(closer, "heidi")
    closer.evaluate("TokenGate.refresh()")
    closes = service.counter("/auth/close", "204")
    closer.close()
    session_gone, elapsed = watch_gone(redis, "heidi", closer_sid, 2 * TTL + 1)
    measured("cookie mode: tab close -> no key", elapsed)
    say("   cookie mode, tab closed: " + describe_gone(session_gone, elapsed, "heidi", redis))
    check("cookie mode: the close beacon (token and csrf in its body) is accepted",
          wait_until(lambda: service.counter("/auth/close", "204") == closes + 1, 2),
          f"/auth/close 204 count {closes} -> {service.counter('/auth/close', '204')}; "
          f"403s: {service.counter('/auth/close', '403')}")
    check("cookie mode: a closed tab leaves no key within 2 s (the beacon passes the CSRF check)",
          elapsed is not None and elapsed <= 2.0, describe_gone(session_gone, elapsed, "heidi", redis))
