"""What scenarios 11 (Sentinel) and 17 (Cluster) share: two instances, one with TOKENGATE_REDIS_WAIT=1
("wait-1") and one without ("wait-0"), write while replication is stalled, and are checked after the
failover. Each instance's state is a dict: "tg" (the tokengate), "conn" (its connection), "before"
(sessions to log out: (token, sid) pairs), "fresh" (users to log in)."""
from harness.checks import check, note
from harness.http import error_code, http_call, parse_json

from . import USERS


def write_during_stall(instances, unconfirmed):
    """While replication is stalled, each instance logs its "before" sessions out and its "fresh" users
    in (recorded in "logouts": (token, status) and "logins": (user, status, token)); then checks that
    the instance with WAIT answered none of them (503) and the one without answered all.
    `unconfirmed` says why WAIT cannot be satisfied, e.g. "no replica could confirm it"."""
    for state in instances.values():
        conn = state["conn"]
        state["logouts"] = [(token, conn.request("POST", "/auth/logout", token=token)[0]) for token, _ in state["before"]]
        state["logins"] = []
        for user in state["fresh"]:
            status, _, data = conn.request("POST", "/auth/login", json_body={"username": user, "password": USERS[user]})
            token = (parse_json(data) or {}).get("access_token") if status == 200 else None
            state["logins"].append((user, status, token))
        conn.close()
    d, p = instances["wait-1"], instances["wait-0"]
    check(f"with WAIT: no logout answered 204 while {unconfirmed} (503 store_unavailable instead)",
          all(status == 503 for _, status in d["logouts"]), str([s for _, s in d["logouts"]]))
    check(f"with WAIT: no login answered 200 while {unconfirmed} (503 instead)",
          all(status == 503 for _, status, _ in d["logins"]), str([s for _, s, _ in d["logins"]]))
    check("without WAIT: the primary alone answers logouts (204) and logins (200)",
          all(status == 204 for _, status in p["logouts"]) and all(status == 200 for _, status, _ in p["logins"]),
          str([s for _, s in p["logouts"]] + [s for _, s, _ in p["logins"]]))


def accepted(tg, token):
    return http_call(tg.port, "GET", "/api/me", token=token)[0] == 200


def check_nothing_answered_lost(instances):
    """After the failover, with WAIT: no token whose logout was answered 204 is accepted, and no login
    answered 200 is lost."""
    d = instances["wait-1"]
    came_back = [token for token, status in d["logouts"] if status == 204 and accepted(d["tg"], token)]
    check("with WAIT: no token whose logout was answered 204 is accepted after the failover", not came_back)
    lost = [user for user, status, token in d["logins"] if status == 200 and not accepted(d["tg"], token)]
    check("with WAIT: no login answered 200 is lost in the failover", not lost, str(lost))


def check_refused_logouts_retried(instances, retry_on, prefix=""):
    """The logouts the instance with WAIT refused during the stall succeed when retried on `retry_on`
    (an instance's name), and their tokens are refused by the instance with WAIT from then on."""
    d = instances["wait-1"]
    port = instances[retry_on]["tg"].port
    retried = [http_call(port, "POST", "/auth/logout", token=token)[0] for token, _ in d["logouts"]]
    check(f"{prefix}the logouts refused during the stall succeed when retried (204)", retried == [204] * len(d["logouts"]), str(retried))
    refused = [(status, error_code(data)) for status, _, data in
               (http_call(d["tg"].port, "GET", "/api/me", token=token) for token, _ in d["logouts"])]
    check(f"{prefix}and their tokens are refused from then on", all(r == (401, "token_revoked") for r in refused), str(refused))


def measure_without_wait(instances, label):
    """Without WAIT: what replication's asynchrony cost (checked non-zero, else the test proves nothing)."""
    p = instances["wait-0"]
    answered = [token for token, status in p["logouts"] if status == 204]
    back = [token for token in answered if accepted(p["tg"], token)]
    logins = [(user, token) for user, status, token in p["logins"] if status == 200]
    lost_logins = [user for user, token in logins if not accepted(p["tg"], token)]
    check("without WAIT: the failover lost acknowledged writes (else this test could not tell)", back or lost_logins)
    note(f"{label}without WAIT: {len(back)} of {len(answered)} tokens whose logout was answered 204 were accepted again "
         f"after the failover; {len(lost_logins)} of {len(logins)} answered logins were lost (their tokens 401)")
