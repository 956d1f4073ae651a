"""g. cookie mode behind the template on a non-default port (a third topology, TOKENGATE_COOKIE=on)

nginx passes Host with its port, so a same-origin POST with Origin and no Sec-Fetch-Site passes the
origin check (200), and one from another port does not (403).
"""
import http.client
import json

from harness.checks import check
from harness.http import port_of

from . import USERS, topology_env


def test_cookie_origin_port(lab, credentials):
    cookie = lab.topology("cookie", topology_env(credentials, TOKENGATE_COOKIE="on"), instances=1)
    try:
        up = cookie.start(wait=120)
        if not check("a topology with TOKENGATE_COOKIE=on starts", up, cookie.tail()):
            return
        port = port_of(cookie.env["NGINX_URL"])
        # Cookie mode behind the template on a non-default port: nginx passes Host with its port,
        # so a same-origin POST from a browser that sends Origin but no Sec-Fetch-Site passes the
        # origin check, and one from another port does not.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/auth/login", body=json.dumps({"username": "bob", "password": USERS["bob"]}),
                     headers={"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{port}"})
        login_answer = conn.getresponse()
        login_answer.read()
        cookies = [v.split(";", 1)[0] for k, v in login_answer.getheaders() if k.lower() == "set-cookie"]
        jar = "; ".join(cookies)
        csrf = next((c.split("=", 1)[1] for c in cookies if c.startswith("__Host-tg_csrf=")), "")
        answers = []
        for origin in (f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port + 1}"):
            conn.request("POST", "/auth/refresh", body=b"", headers={"Cookie": jar, "X-CSRF-Token": csrf, "Origin": origin})
            answer = conn.getresponse()
            answer.read()
            answers.append(answer.status)
        conn.close()
        check("cookie mode through nginx on a non-default port: a same-origin POST (Origin, no Sec-Fetch-Site) 200, "
              "another port's 403", login_answer.status == 200 and bool(csrf) and answers == [200, 403],
              f"login {login_answer.status}, cookies {[c.split('=')[0] for c in cookies]}, answers {answers}")
    finally:
        cookie.stop()
