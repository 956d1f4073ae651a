"""8. per-request rotation

An instance with TOKENGATE_ROTATION=per-request: 20 parallel TokenGate.fetch('/api/me') all 200 with
one X-Next-Token, which the client then holds; the consumed parent replayed after REUSE_GRACE gets
401 token_revoked and ends that session only (a second tab's session of the same user lives on, the
robbed tab shows the login form); the client survives rounds of parallel calls, token refreshes, a
reload and out-of-order responses (one held back with the Fetch domain) without ever logging
itself out.
"""
import time

from harness.checks import check, gone_within, require, wait_until
from harness.http import error_code, http_call, jwt_claims

from . import REUSE_GRACE, TTL
from .page import login_via_page, open_demo, page_fetch, page_state, stays_logged_in


def test_rotation(browser, session_lab, redis_server, redis):
    service = session_lab.tokengate("rotation", redis_server.port, env={"TOKENGATE_ROTATION": "per-request"})
    require("tokengate starts with TOKENGATE_ROTATION=per-request", service.start(), service.tail(8).strip())
    tab_a = open_demo(browser, service)
    sid_a = login_via_page(tab_a, "frank")
    tab_b = open_demo(browser, service, newWindow=True)   # its own window: both tabs visible
    sid_b = login_via_page(tab_b, "frank")
    check("two tabs of frank have two sessions", sid_a and sid_b and sid_a != sid_b, f"{sid_a} {sid_b}")

    result = tab_a.evaluate("""(async () => {
      await TokenGate.refresh();   // a fresh token: no timer refresh can fall inside the burst
      const parent = JSON.parse(sessionStorage.getItem('tokengate')).token;
      const answers = await Promise.all(Array.from({ length: 20 }, () => TokenGate.fetch('/api/me')));
      return { parent: parent, statuses: answers.map(r => r.status), next: answers.map(r => r.headers.get('X-Next-Token')),
               held: JSON.parse(sessionStorage.getItem('tokengate')).token, user: TokenGate.user };
    })()""")
    burst_at = time.monotonic()
    successors = set(result["next"])
    successor = result["next"][0]
    check("20 parallel TokenGate.fetch('/api/me') from the page all answer 200",
          result["statuses"] == [200] * 20, str(result["statuses"]))
    check("all 20 carry the same X-Next-Token (one successor per parent), a new token of the same session",
          len(successors) == 1 and successor and successor != result["parent"]
          and jwt_claims(successor).get("sid") == sid_a, f"{len(successors)} distinct: {sorted(map(str, successors))[:3]}")
    check("the client holds that successor afterwards", result["held"] == successor and result["user"] == "frank",
          f"held {str(result['held'])[-12:]}, successor {str(successor)[-12:]}")

    # Past the grace window the parent is consumed: replaying it is theft. Until then, all is well.
    problems, _ = stays_logged_in(redis, tab_a, "frank", sid_a, REUSE_GRACE + 0.5 - (time.monotonic() - burst_at))
    check("the tab stays logged in through the grace window", not problems, "; ".join(problems[:2]))
    status, _, body = http_call(service.port, "GET", "/api/me", token=result["parent"])
    check("the consumed parent replayed after REUSE_GRACE gets 401 token_revoked",
          status == 401 and error_code(body) == "token_revoked", f"{status} {body[:200]!r}")
    gone = gone_within(lambda: not redis.session_keys("frank", sid_a), 1.0)
    check("the replay ends that session: none of its keys is left", gone is not None,
          f"left: {redis.session_keys('frank', sid_a)}")
    answer = page_fetch(tab_b, "/api/me")
    check("the other tab's session of the same user is untouched (keys live, TokenGate.fetch 200)",
          redis.session_alive("frank", sid_b) and answer["status"] == 200, str(answer))
    check("the robbed tab notices and shows the login form",
          wait_until(lambda: page_state(tab_a)["loginShown"], TTL + 1, 0.1), str(page_state(tab_a)))

    # The surviving tab keeps working: rounds of parallel calls, token refreshes and a reload.
    problems = []
    for round_number in range(4):
        statuses = tab_b.evaluate("""(async () => {
          const work = Array.from({ length: 10 }, () => TokenGate.fetch('/api/me').then(r => r.status));
          work.push(TokenGate.refresh().then(ok => ok ? 200 : 0));
          work.push(TokenGate.fetch('/auth/verify').then(r => r.status));
          work.push(TokenGate.sessions().then(() => 200, () => 0));
          return Promise.all(work);
        })()""")
        if statuses != [200] * 13:
            problems.append(f"round {round_number + 1}: {statuses}")
        if round_number == 1:
            tab_b.reload()
            wait_until(lambda: tab_b.evaluate("typeof window.TokenGate === 'object'"), 5)
        round_end = time.monotonic() + REUSE_GRACE + 0.3    # each round's parents go past their grace
        while time.monotonic() < round_end:
            if page_state(tab_b)["sid"] != sid_b:
                problems.append(f"logged out after round {round_number + 1}: {page_state(tab_b)}")
                break
            time.sleep(0.1)
        if problems:
            break
    answer = page_fetch(tab_b, "/api/me")
    check("4 rounds of 10 parallel calls with refreshes, sessions(), a reload in between: all 200, never logged out",
          not problems and answer["status"] == 200 and redis.session_alive("frank", sid_b),
          "; ".join(problems) + f" final {answer}")

    # Out-of-order responses: hold one response back (Fetch domain) while a newer one goes through.
    tab_b.send("Fetch.enable", {"patterns": [{"urlPattern": "*/api/me?held*", "requestStage": "Response"}]})
    try:
        since = browser.mark()
        tab_b.evaluate("TokenGate.refresh()")
        t0 = tab_b.evaluate("JSON.parse(sessionStorage.getItem('tokengate')).token")
        tab_b.evaluate("window.__held = TokenGate.fetch('/api/me?held=1').then(r => r.status); 1")
        paused = browser.wait_event("Fetch.requestPaused", tab_b.session, since, timeout=5)
        first = page_fetch(tab_b, "/api/me")          # same parent t0: the same successor t1
        second = page_fetch(tab_b, "/api/me")         # sent with t1: its successor t2
        t2 = tab_b.evaluate("JSON.parse(sessionStorage.getItem('tokengate')).token")
        if paused:
            tab_b.send("Fetch.continueRequest", {"requestId": paused["requestId"]})
        held_status = tab_b.evaluate("__held")
        after_late = tab_b.evaluate("JSON.parse(sessionStorage.getItem('tokengate')).token")
    finally:
        tab_b.send("Fetch.disable")
    check("a held-back response arrives after newer ones (Fetch domain) and all answer 200",
          paused is not None and first["status"] == 200 and second["status"] == 200 and held_status == 200
          and first["next"] != t0 and second["next"] not in (t0, first["next"]),
          f"paused {paused is not None}, {first['status']} {second['status']} {held_status}")
    check("the late response does not roll the client back to a consumed token",
          after_late == t2, f"client holds {'the consumed t1' if after_late == first['next'] else str(after_late)[-12:]}"
          f" instead of t2 {str(t2)[-12:]}")
    problems, _ = stays_logged_in(redis, tab_b, "frank", sid_b, REUSE_GRACE + 0.3)   # past the grace of t1
    answer = page_fetch(tab_b, "/api/me")
    check("past the grace window the page still works (no self-inflicted theft detection)",
          not problems and answer["status"] == 200 and redis.session_alive("frank", sid_b)
          and page_state(tab_b)["user"] == "frank", "; ".join(problems[:2]) + f" {answer['status']} {answer['body'][:120]}")
