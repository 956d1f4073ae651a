"""3. Redis slow and stalled behind a proxy

Redis slow (every chunk delayed past TOKENGATE_REDIS_TIMEOUT) and stalled (nothing forwarded):
protected requests 503 within the timeout plus a margin, /healthz stays fast, 3 x 40 concurrent
requests during a stall all answer 503 in bounded time, fds and Redis connections stay bounded,
reconnects are backed off, and traffic succeeds again once the proxy passes it.
"""
import threading
import time

from harness.checks import check, ms, note, percentile, say, wait_until
from harness.http import Conn, error_code
from harness.tokengate import fmt_stats

from . import MARGIN, REDIS_TIMEOUT, login


class HealthProbe:
    """GET /healthz every `interval` s on a fresh connection each time, in a thread; records latencies."""

    def __init__(self, port, interval=0.05):
        self.port = port
        self.interval = interval
        self.samples = []  # (latency, status)
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop_flag.is_set():
            conn = Conn(self.port, timeout=5)
            status, _, _, elapsed = conn.timed("GET", "/healthz")
            conn.close()
            self.samples.append((elapsed, status))
            self.stop_flag.wait(self.interval)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(timeout=10)

    def summary(self):
        lat = [s[0] for s in self.samples]
        return (f"{len(lat)} /healthz: p50 {ms(percentile(lat, 50))}, max {ms(max(lat) if lat else 0)}, "
                f"non-200 {sum(1 for s in self.samples if s[1] != 200)}")

    def ok(self, bound=0.1):
        """Every probe 200; 90 % under `bound`, none even close to the Redis timeout (a /healthz that
        waited on Redis would take the timeout; single slower samples are this client's own scheduling
        on a loaded 2-core machine)."""
        lat = [s[0] for s in self.samples]
        return bool(lat) and all(s[1] == 200 for s in self.samples) and percentile(lat, 90) < bound \
            and max(lat) < max(bound, 0.8 * REDIS_TIMEOUT)


def concurrent_requests(port, requests, timeout=15):
    """Sends every (method, path, token) at once, one connection each; returns (status, code, seconds)."""
    results = [None] * len(requests)
    barrier = threading.Barrier(len(requests))

    def one(i):
        method, path, token = requests[i]
        conn = Conn(port, timeout=timeout)
        try:
            barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        status, _, data, elapsed = conn.timed(method, path, token=token)
        conn.close()
        results[i] = (status, error_code(data), elapsed)
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout + 15)
    return results


def test_slow_redis(proxied):
    tg, redis, proxy = proxied
    say(f"   TOKENGATE_REDIS_TIMEOUT={REDIS_TIMEOUT:g}")
    conn = Conn(tg.port)
    identities = [(user,) + login(conn, user) for user in ("user01", "user02", "user03", "user04")]
    status = conn.request("GET", "/api/me", token=identities[0][1])[0]
    check("through the proxy in pass mode: /api/me 200", status == 200, str(status))
    before = tg.stats()
    say(f"   before: {fmt_stats(before)}")

    delay = REDIS_TIMEOUT + 0.5
    proxy.set_mode("delay", delay)
    answers = []
    with HealthProbe(tg.port) as probe:
        for i in range(6):
            _, token, _ = identities[i % len(identities)]
            path = ("/api/me", "/auth/verify")[i % 2]
            status, _, data, elapsed = conn.timed("GET", path, token=token)
            answers.append((path, status, error_code(data), elapsed))
    bad = [a for a in answers if a[1] != 503 or a[2] != "store_unavailable"]
    slowest = max(a[3] for a in answers)
    check(f"Redis delayed {ms(delay)} per chunk: protected requests all 503 store_unavailable", not bad, str(bad[:3]))
    check(f"... each within the timeout + {MARGIN:g} s", slowest <= REDIS_TIMEOUT + MARGIN,
          ", ".join(ms(a[3]) for a in answers))
    check(f"... /healthz under 100 ms meanwhile (p90; max under {ms(max(0.1, 0.8 * REDIS_TIMEOUT))})", probe.ok(0.1), probe.summary())
    note(f"3: delay {ms(delay)}: {len(answers)} x 503 in " + ", ".join(ms(a[3]) for a in answers) + f"; {probe.summary()}")

    proxy.set_mode("stall")
    rounds, per_round = 3, 40
    peak = {"fds": 0, "redis_established": 0, "threads": 0}
    all_results = []
    accepted_before = proxy.accepted
    stall_started = time.monotonic()
    with HealthProbe(tg.port) as probe:
        for r in range(rounds):
            requests = [("GET", ("/api/me", "/auth/verify", "/auth/sessions")[i % 3], identities[i % len(identities)][1])
                        for i in range(per_round)]
            sampler_stop = threading.Event()

            def sample(sampler_stop=sampler_stop):
                while not sampler_stop.is_set():
                    try:
                        s = tg.stats()
                        for k in peak:
                            peak[k] = max(peak[k], s[k])
                    except OSError:
                        pass
                    sampler_stop.wait(0.05)
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            results = concurrent_requests(tg.port, requests)
            sampler_stop.set()
            sampler.join()
            all_results.extend(results)
            say(f"   stall round {r + 1}: {per_round} concurrent: slowest {ms(max(x[2] for x in results if x))}, "
                f"statuses {sorted({(x[0], x[1]) for x in results if x})}, fds now {tg.stats()['fds']}")
    stalled_for = time.monotonic() - stall_started
    missing = [x for x in all_results if x is None]
    bad = [x for x in all_results if x is not None and (x[0] != 503 or x[1] != "store_unavailable")]
    slowest = max((x[2] for x in all_results if x), default=0.0)
    check(f"stall: {len(all_results)} concurrent protected requests ({rounds} rounds of {per_round}) all answered 503",
          not missing and not bad, str((missing[:2], bad[:3])))
    check(f"... each within the timeout + {MARGIN:g} s", slowest <= REDIS_TIMEOUT + MARGIN, f"slowest {ms(slowest)}")
    check(f"... /healthz under 100 ms meanwhile (p90; max under {ms(max(0.1, 0.8 * REDIS_TIMEOUT))})", probe.ok(0.1), probe.summary())
    check("... at most 2 ESTABLISHED connections to Redis at any time", peak["redis_established"] <= 2, str(peak))
    check(f"... fds bounded by the clients in flight (peak <= {before['fds']} + {per_round} + 10)",
          peak["fds"] <= before["fds"] + per_round + 10, str(peak))
    settled = wait_until(lambda: tg.stats()["fds"] <= before["fds"] + 4, 5)
    during = tg.stats()
    check("... after each round's clients leave, fds back to the baseline (+4) while still stalled",
          settled, f"{before['fds']} -> {during['fds']}")
    reconnects = proxy.accepted - accepted_before
    note(f"3: stall {stalled_for:.1f} s: {len(all_results)} x 503, slowest {ms(slowest)}; {probe.summary()}; "
         f"peak fds {peak['fds']} (baseline {before['fds']}), peak ESTABLISHED to Redis {peak['redis_established']}, "
         f"{reconnects} connection attempts reached the proxy")
    check(f"... reconnect attempts to the stalled Redis are backed off ({reconnects} in {stalled_for:.1f} s, at most 10/s)",
          reconnects <= 10 * stalled_for + 2, str(reconnects))

    proxy.set_mode("pass")
    resumed = time.monotonic()
    back = wait_until(lambda: conn.request("GET", "/api/me", token=identities[0][1])[0] == 200, 10, 0.05)
    took = time.monotonic() - resumed
    check("proxy passes again: /api/me 200 again", back, f"after {took:.2f} s")
    statuses = [conn.request("GET", "/api/me", token=t)[0] for _, t, _ in identities for _ in range(5)]
    check("... and keeps succeeding (20 requests, 4 users)", statuses == [200] * 20, str(statuses))
    conn.close()
    after = tg.stats()
    say(f"   after:  {fmt_stats(after)}")
    note(f"3: recovered {took:.2f} s after the proxy passed again; fds {before['fds']} -> {after['fds']}, "
         f"RSS {before['rss_kb'] / 1024:.1f} -> {after['rss_kb'] / 1024:.1f} MiB")
    check("no fd leak (at most 4 more than before)", after["fds"] <= before["fds"] + 4, f"{before['fds']} -> {after['fds']}")
    check("RSS grew by less than 64 MiB", after["rss_kb"] - before["rss_kb"] < 64 * 1024,
          f"{(after['rss_kb'] - before['rss_kb']) / 1024:.1f} MiB")
    check("same process throughout", tg.alive(), f"pid {tg.pid}")
