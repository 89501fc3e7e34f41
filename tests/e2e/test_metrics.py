"""GET /metrics on the real binary: Prometheus text that a real parser reads
(python3-prometheus-client's, and `promtool check metrics` from Debian's prometheus,
which scripts/deps.sh test installs), counts that go up with requests and are
summed over all workers, totals that survive a worker's death, and the
metrics.allow check on the resolved client address.
"""
import os
import shutil
import signal
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ofclient import Server, request

FAMILIES = {
    "http_requests": "counter",
    "http_request_duration_seconds": "histogram",
    "db_pool_connections": "gauge",
    "db_pool_waiting": "gauge",
    "orderflow_workers": "gauge",
    "orderflow_worker_restarts": "counter",
    "process_start_time_seconds": "gauge",
}


def scrape_text(port, headers=None):
    r = request(port, "GET", "/metrics", headers=headers)
    assert r.status == 200, r
    assert r.header("Content-Type").startswith("text/plain; version=0.0.4"), r.header("Content-Type")
    return r.body.decode()


def parse(text):
    """{family name: type}, {(sample name, sorted label items): value}."""
    types, samples = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return types, samples


def scrape(port):
    return parse(scrape_text(port))[1]


def val(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def req_count(samples, method, route, status):
    return val(samples, "http_requests_total", method=method, route=route, status=str(status))


@pytest.fixture(scope="module")
def server(db_url):
    s = Server(db_url=db_url, workers=2)
    s.start()
    s.wait_workers(2)
    yield s
    s.stop()


def test_parses_with_a_real_parser(server):
    for _ in range(3):
        assert server.req("GET", "/health").status == 200
    text = scrape_text(server.port)
    types, samples = parse(text)
    for name, typ in FAMILIES.items():
        assert types.get(name) == typ, f"{name}: {types.get(name)} (want {typ})\n{text[:2000]}"
    # HELP and TYPE for every family.
    for name in ("http_requests_total", "http_request_duration_seconds", "db_pool_connections",
                 "db_pool_waiting", "orderflow_workers", "orderflow_worker_restarts_total",
                 "process_start_time_seconds"):
        assert f"# HELP {name} " in text and f"# TYPE {name} " in text, name
    assert val(samples, "orderflow_workers") == 2
    start = val(samples, "process_start_time_seconds")
    assert time.time() - 600 < start <= time.time() + 1
    for state in ("open", "busy", "idle"):
        assert ("db_pool_connections", (("state", state),)) in samples
    assert val(samples, "db_pool_waiting") >= 0


def test_promtool_check_metrics(server):
    promtool = shutil.which("promtool")
    assert promtool is not None, "promtool missing: scripts/deps.sh test installs Debian's prometheus"
    text = scrape_text(server.port)
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_counts_go_up_exactly(server):
    before = scrape(server.port)
    for _ in range(7):
        assert server.req("GET", "/health").status == 200
    for _ in range(3):
        assert server.req("GET", "/no/such/route").status == 404
    assert server.req("GET", "/api/v1/products/abc").status == 404        # not an id: no route
    assert server.req("DELETE", "/health").status == 405
    assert server.req("GET", "/api/v1/products/999999").status == 404    # a route, no product
    assert server.req("GET", "/ready").status == 200
    after = scrape(server.port)

    def delta(method, route, status):
        return req_count(after, method, route, status) - req_count(before, method, route, status)

    assert delta("GET", "/health", 200) == 7
    assert delta("GET", "unmatched", 404) == 4
    assert delta("DELETE", "unmatched", 405) == 1
    assert delta("GET", "/api/v1/products/{id}", 404) == 1
    assert delta("GET", "/ready", 200) == 1
    assert delta("GET", "/metrics", 200) == 1          # the first scrape itself

    # Histogram per route: cumulative buckets, +Inf == _count == requests.
    b = [(k, v) for k, v in after.items()
         if k[0] == "http_request_duration_seconds_bucket" and dict(k[1])["route"] == "/health"]
    b.sort(key=lambda kv: float(dict(kv[0][1])["le"].replace("+Inf", "inf")))
    values = [v for _, v in b]
    assert values == sorted(values), values
    assert dict(b[-1][0][1])["le"] == "+Inf"
    count = val(after, "http_request_duration_seconds_count", route="/health")
    assert values[-1] == count == req_count(after, "GET", "/health", 200)
    assert count - val(before, "http_request_duration_seconds_count", route="/health") == 7
    assert val(after, "http_request_duration_seconds_sum", route="/health") > 0
    # Every route of the table has a histogram (zeros included).
    assert ("http_request_duration_seconds_count", (("route", "/api/v1/auth/login"),)) in after
    # The pool reached PostgreSQL (/ready said so).
    assert val(after, "db_pool_connections", state="open") >= 1


def test_summed_over_all_workers(server):
    """Requests answered by both workers all show up in one scrape."""
    before = scrape(server.port)
    sent = 0
    deadline = time.time() + 20
    while time.time() < deadline:
        for _ in range(20):
            assert server.req("GET", "/health", headers={"X-Request-ID": f"sum-{sent}"}).status == 200
            sent += 1
        pids = {line.get("pid") for line in server.log_lines()
                if line.get("msg") == "access" and str(line.get("request_id", "")).startswith("sum-")}
        if len(pids) >= 2:
            break
    assert len(pids) >= 2, f"all {sent} requests went to one worker: {pids}"
    after = scrape(server.port)
    assert req_count(after, "GET", "/health", 200) - req_count(before, "GET", "/health", 200) == sent


def test_totals_survive_a_dead_worker(server):
    for _ in range(5):
        server.req("GET", "/health")
    before = scrape(server.port)
    victim = server.wait_workers(2)[0]
    os.kill(victim, signal.SIGKILL)
    server.wait_workers(2, exclude=(victim,))
    deadline = time.time() + 10
    while True:
        after = scrape(server.port)
        if val(after, "orderflow_workers") == 2 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert val(after, "orderflow_workers") == 2
    assert val(after, "orderflow_worker_restarts_total") == val(before, "orderflow_worker_restarts_total") + 1
    # Nothing went backwards: every counter and bucket is >= what it was.
    for key, v in before.items():
        if key[0] in ("http_requests_total", "http_request_duration_seconds_bucket",
                      "http_request_duration_seconds_count"):
            assert after.get(key, 0) >= v, (key, v, after.get(key))
    assert req_count(after, "GET", "/health", 200) >= req_count(before, "GET", "/health", 200)


def test_forbidden_outside_metrics_allow():
    s = Server(workers=1, extra_cfg='metrics: { allow = ["10.0.0.0/8"]; };')
    s.start()
    try:
        r = s.req("GET", "/metrics")
        assert r.status == 403, r
        assert r.json() == {"detail": "Insufficient permissions"}
        assert r.header("Content-Type").startswith("application/json")
        # Through a trusted proxy (127.0.0.1 is in the default
        # forwarded_allow_ips) the resolved client address is what counts.
        r = s.req("GET", "/metrics", headers={"X-Forwarded-For": "10.20.30.40"})
        assert r.status == 200, r
        r = s.req("GET", "/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status == 403, r
    finally:
        s.stop()


def test_default_allow_refuses_forwarded_outsiders():
    """Default metrics.allow is loopback only: a client that came through a
    local proxy from outside is refused."""
    s = Server(workers=1)
    s.start()
    try:
        assert s.req("GET", "/metrics").status == 200
        r = s.req("GET", "/metrics", headers={"X-Forwarded-For": "198.51.100.4"})
        assert r.status == 403 and r.json() == {"detail": "Insufficient permissions"}
    finally:
        s.stop()
