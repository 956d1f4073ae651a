"""1. login through the demo page

The demo page's form logs alice in and shows her and her session; the token lives in sessionStorage,
not localStorage; Redis holds the session hash and the token key, each with 0 < TTL <= TOKEN_TTL; the
user's index names the session and every key of the user has 0 < TTL <= TOKEN_TTL.
"""
from harness.checks import check
from harness.redis import PREFIX

from . import TTL
from .page import page_state, session_key_ttls


def test_login(alice, redis):
    tab, sid = alice
    state = page_state(tab)
    check("the demo page logs alice in and shows her and her session",
          bool(sid) and state["shownUser"] == "alice" and state["shownSession"] == sid and state["signedIn"]
          and not state["loginShown"], str(state))
    check("the token lives in sessionStorage, not localStorage",
          bool(state["token"]) and tab.evaluate("localStorage.length") == 0
          and state["token"] not in tab.evaluate("location.href"), str(state))
    ttls = session_key_ttls(redis, "alice", sid, state["token"])
    own = {key: pttl for key, pttl in ttls.items() if not key.endswith(":sessions")}
    check(f"Redis holds the session hash and the token key, each with 0 < TTL <= {TTL} s",
          all(0 < pttl <= TTL * 1000 for pttl in own.values()), str(own))
    members = redis("ZRANGE", f"{PREFIX}{{alice}}:sessions", 0, -1)
    every_key = {key: redis("PTTL", key) for key in redis.user_keys("alice")}
    check(f"the user's index names the session; every key of the user (index included) has 0 < TTL <= {TTL} s",
          members == [sid] and all(0 < pttl <= TTL * 1000 for pttl in every_key.values()),
          f"index {members}, PTTL (ms) {every_key}")
