"""a. cross-instance through nginx: many sequences from concurrent clients

TOPOLOGY_SEQUENCES (10,000) sequences from TOPOLOGY_CONCURRENCY (24) concurrent keep-alive clients
through nginx (login, app page via auth_request, refresh, verify new + old, logout, replay x3): all
run, zero wrong answers (no 2xx after a completed logout, no 401 for a live token), zero errors,
and round robin: every instance verified at least 20 % of the requests.
"""
from harness.checks import check, say
from harness.http import port_of

from . import CONCURRENCY, SEQUENCES, instance_metric, instance_verify_counts
from .load import Load


def test_cross_instance_load(topology):
    say(f"a. cross-instance through nginx: {SEQUENCES} sequences from {CONCURRENCY} concurrent clients")
    say("   (login, app page via auth_request, refresh, verify new + old, logout, replay x3)")
    before = instance_verify_counts(topology)
    errors_before = instance_metric(topology, "tokengate_redis_errors_total")
    load = Load(port_of(topology.env["NGINX_URL"]), SEQUENCES, CONCURRENCY, time_limit=600).run()
    after = instance_verify_counts(topology)
    say("   " + load.summary())
    for sample in (load.wrong + load.errors)[:5]:
        say(f"   sample: {sample}")
    check(f"all {SEQUENCES} sequences ran", load.next_index == SEQUENCES, f"{load.next_index} started in time")
    check("zero wrong answers (no 2xx after logout, no 401 for a live token)", not load.wrong, f"{len(load.wrong)}")
    check("zero errors", not load.errors, f"{len(load.errors)}")
    shares = [y - x for x, y in zip(before, after)]
    total = sum(shares) or 1
    redis_errors = [y - x for x, y in zip(errors_before, instance_metric(topology, "tokengate_redis_errors_total"))]
    say(f"   protected requests per instance: {shares}; Redis errors per instance: {redis_errors}")
    check("round robin: every instance verified at least 20 % of the requests",
          all(share >= 0.2 * total for share in shares), str(shares))
