"""deploy/grafana/orderflow.json against the real /metrics: every metric name
a panel's PromQL uses must be one the server exposes (sample names, after a
few requests so every family has samples). Names that other work provides
are listed once, in FROM_OTHERS; the lead flips their switch when that work
is merged, and from then on they are required like the rest.
"""
import json
import os
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ofclient import Server

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("OF_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "../..")))
DASHBOARD = os.path.join(SRC, "deploy", "grafana", "orderflow.json")

# Metric name -> the work that exposes it. Switch to True once merged.
FROM_OTHERS = {
    "orderflow_events_pending": "jobs process (outbox backlog)",
    "orderflow_deliveries_pending": "jobs process (webhook delivery backlog)",
}
JOBS_WORK_MERGED = True

PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "topk", "bottomk", "quantile", "le", "abs", "clamp_min", "clamp_max",
}


def dashboard_exprs():
    with open(DASHBOARD) as f:
        d = json.load(f)
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    assert exprs, "the dashboard has no queries"
    return d, exprs


def metric_names(expr):
    e = re.sub(r"\{[^}]*\}", "", expr)                 # label matchers
    e = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", e)   # grouping labels
    e = re.sub(r"\[[^\]]*\]", "", e)                   # ranges, $__rate_interval
    e = re.sub(r'"[^"]*"', "", e)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d.*", n)}


def exposed(port):
    from ofclient import request
    for path in ("/health", "/api/v1/products", "/nope"):
        request(port, "GET", path)
    text = request(port, "GET", "/metrics").body.decode()
    names = set()
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            names.add(s.name)
    return names


@pytest.mark.static
def test_dashboard_is_grafana_json():
    d, exprs = dashboard_exprs()
    assert d["uid"] and d["title"]
    titles = " ".join(p["title"].lower() for p in d["panels"])
    for want in ("request rate", "errors", "latency", "pool wait", "database time", "backlog"):
        assert want in titles, want
    assert any("histogram_quantile" in e for e in exprs)


def test_every_metric_the_dashboard_uses_is_exposed(db_url):
    _, exprs = dashboard_exprs()
    used = set().union(*(metric_names(e) for e in exprs))
    assert "http_request_duration_seconds_bucket" in used      # the parser sees names
    s = Server(db_url=db_url, workers=1)
    try:
        s.start()
        have = exposed(s.port)
    finally:
        s.stop()
    missing = used - have
    if JOBS_WORK_MERGED:
        assert missing == set(), missing
    else:
        # only the names other work provides may be missing, and they must be
        # used (so the list stays honest)
        assert missing == set(FROM_OTHERS), missing
