"""W3C Trace Context and OTLP/HTTP JSON export, against the real binary, a
real PostgreSQL and a real OTLP/HTTP receiver in this test (http.server on
loopback taking POST /v1/traces): every document it gets must match the OTLP
JSON shape (otlp_schema.json, the protobuf JSON mapping of the subset we
emit); ids must link up (server span's parent = the caller's span, database
and hash spans' parent = the server span); invalid incoming headers start new
traces; sample_ratio 0 exports no root trace but still answers traceparent
with flags 00; a receiver that is down costs requests nothing and the dropped
spans are counted; the access log and the lines written while serving carry
trace_id/span_id; PostgreSQL sees application_name orderflow/<worker pid>.
"""
import json
import os
import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema
import pytest

from conftest import run_psql
from ofclient import Server, free_port, metric, register_and_login

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "otlp_schema.json")) as f:
    SCHEMA = json.load(f)

TP_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
TID = "4bf92f3577b34da6a3ce929d0e0e4736"
SID = "00f067aa0ba902b7"
DEADLINE = 20
# Quotes, a backslash and a non-ASCII letter: the encoder must escape them and
# keep the document valid UTF-8 (written as a libconfig string below).
SERVICE = 'of-test "q" \\ caf\u00e9'
SERVICE_CFG = SERVICE.replace("\\", "\\\\").replace('"', '\\"')


class Receiver:
    """An OTLP/HTTP receiver: keeps every JSON document POSTed to /v1/traces."""

    def __init__(self):
        self.docs, self.bad = [], []
        self.lock = threading.Lock()
        rec = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = self.path == "/v1/traces" and \
                    self.headers.get("Content-Type", "").startswith("application/json")
                with rec.lock:
                    try:
                        (rec.docs if ok else rec.bad).append(json.loads(body))
                    except ValueError:
                        rec.bad.append(body)
                self.send_response(200 if ok else 400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def spans(self):
        with self.lock:
            docs = list(self.docs)
        out = []
        for d in docs:
            for rs in d["resourceSpans"]:
                for ss in rs["scopeSpans"]:
                    out.extend(ss["spans"])
        return out

    def trace(self, trace_id):
        return [s for s in self.spans() if s["traceId"] == trace_id]

    def wait_for(self, cond, what):
        deadline = time.time() + DEADLINE
        while time.time() < deadline:
            got = cond()
            if got:
                return got
            time.sleep(0.05)
        raise AssertionError(f"receiver never got {what}; spans: {self.spans()}")


def attrs(span):
    out = {}
    for kv in span.get("attributes", []):
        (v,) = kv["value"].values()
        out[kv["key"]] = v
    return out


def server_span(spans):
    s = [x for x in spans if x["kind"] == 2]
    assert len(s) == 1, spans
    return s[0]


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def srv(db_url, receiver):
    s = Server(db_url=db_url, workers=2,
               extra_cfg=f'tracing: {{ otlp_endpoint = "http://127.0.0.1:{receiver.port}"; '
                         f'sample_ratio = 1.0; service_name = "{SERVICE_CFG}"; slow_statement_ms = 150; }};\n'
                         'rate_limit: { login_per_minute = 0; };')
    s.start()
    yield s
    s.stop()


def answer_tp(r):
    m = TP_RE.match(r.header("traceparent") or "")
    assert m, r.header("traceparent")
    return m.group(1), m.group(2), m.group(3)


def test_every_document_matches_the_otlp_json_schema(srv, receiver):
    r = srv.req("GET", "/api/v1/products")
    assert r.status == 200, r
    tid, _, _ = answer_tp(r)
    receiver.wait_for(lambda: receiver.trace(tid), "the list's trace")
    with receiver.lock:
        docs, bad = list(receiver.docs), list(receiver.bad)
    assert bad == []
    for d in docs:
        jsonschema.validate(d, SCHEMA)
        res = {a["key"]: a["value"] for a in d["resourceSpans"][0]["resource"]["attributes"]}
        assert res["service.name"] == {"stringValue": SERVICE}


def test_valid_traceparent_is_continued_and_spans_link_up(srv, receiver):
    r = srv.req("GET", "/api/v1/products?limit=5",
                headers={"traceparent": f"00-{TID}-{SID}-01", "X-Request-ID": "trace-req-1"})
    assert r.status == 200, r
    tid, sid, flags = answer_tp(r)
    assert (tid, flags) == (TID, "01")
    assert sid != SID

    def linked():
        spans = [s for s in receiver.trace(TID) if s["spanId"] == sid or s.get("parentSpanId") == sid]
        return spans if any(s["kind"] == 3 for s in spans) and any(s["kind"] == 2 for s in spans) else None
    spans = receiver.wait_for(linked, "a server span with a database child")
    srv_span = server_span(spans)
    assert srv_span["parentSpanId"] == SID
    assert srv_span["name"] == "GET /api/v1/products"
    a = attrs(srv_span)
    assert a["http.route"] == "/api/v1/products"
    assert a["http.request.method"] == "GET"
    assert a["http.response.status_code"] == "200"
    assert a["client.address"] == "127.0.0.1"
    assert a["orderflow.request_id"] == "trace-req-1"
    assert int(srv_span["endTimeUnixNano"]) >= int(srv_span["startTimeUnixNano"])
    assert abs(int(srv_span["startTimeUnixNano"]) / 1e9 - time.time()) < 600
    db = [s for s in spans if s["kind"] == 3]
    for s in db:
        assert s["parentSpanId"] == sid
        assert s["traceId"] == TID
        da = attrs(s)
        assert da["db.system.name"] == "postgresql"
        assert da["db.operation.name"] == s["name"]
        assert int(da["db.response.returned_rows"]) >= 0
        assert int(srv_span["startTimeUnixNano"]) <= int(s["startTimeUnixNano"])
        assert int(s["endTimeUnixNano"]) <= int(srv_span["endTimeUnixNano"])


def test_password_hash_is_a_child_span(srv, receiver):
    tp = f"00-{'a' * 32}-{'b' * 16}-01"
    r = srv.req("POST", "/api/v1/auth/register", body={"email": "trace-hash@x.io", "password": "user-pass-123"},
                headers={"traceparent": tp})
    assert r.status == 201, r
    tid, sid, _ = answer_tp(r)
    assert tid == "a" * 32

    def done():
        sp = receiver.trace(tid)
        return sp if any(s["name"] == "password hash" for s in sp) and any(s["kind"] == 2 for s in sp) else None
    spans = receiver.wait_for(done, "the registration's hash span")
    h = [s for s in spans if s["name"] == "password hash"][0]
    assert h["parentSpanId"] == sid
    assert h["kind"] == 1
    assert any(s["kind"] == 3 and s["parentSpanId"] == sid for s in spans), spans


INVALID = [
    f"00-{TID.upper()}-{SID}-01",                      # upper-case hex
    f"00-{'0' * 32}-{SID}-01",                         # zero trace id
    f"00-{TID}-{'0' * 16}-01",                         # zero parent id
    f"ff-{TID}-{SID}-01",                              # forbidden version
    f"00-{TID}-{SID}-01-extra",                        # version 00 is exactly 55 chars
    f"00-{TID}-{SID}",                                 # no flags
    "garbage",
    f"00-{TID}-{SID}-0x",
]


@pytest.mark.parametrize("bad", INVALID)
def test_invalid_traceparent_starts_a_new_trace(srv, bad):
    r = srv.req("GET", "/health", headers={"traceparent": bad, "tracestate": "rojo=1"})
    tid, sid, flags = answer_tp(r)
    assert tid != TID and tid != TID.lower()
    assert flags == "01"                  # a root, sampled by ratio 1.0
    assert r.header("tracestate") is None


def test_future_version_is_continued(srv):
    r = srv.req("GET", "/health", headers={"traceparent": f"cc-{TID}-{SID}-01-more-fields"})
    tid, _, _ = answer_tp(r)
    assert tid == TID


def test_missing_traceparent_starts_a_trace_per_request(srv):
    ids = {answer_tp(srv.req("GET", "/health"))[0] for _ in range(5)}
    assert len(ids) == 5


def test_tracestate_passed_through_only_when_valid(srv):
    tp = f"00-{TID}-{SID}-01"
    r = srv.req("GET", "/health", headers={"traceparent": tp, "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"})
    assert r.header("tracestate") == "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"
    r = srv.req("GET", "/health", headers={"traceparent": tp, "tracestate": "Rojo=1,rojo=2"})
    assert r.header("tracestate") is None


def test_unsampled_parent_is_not_exported(srv, receiver):
    quiet = "c" * 32
    r = srv.req("GET", "/api/v1/products", headers={"traceparent": f"00-{quiet}-{SID}-00"})
    assert answer_tp(r)[0] == quiet and answer_tp(r)[2] == "00"
    marker = "d" * 32
    srv.req("GET", "/api/v1/products", headers={"traceparent": f"00-{marker}-{SID}-01"})
    receiver.wait_for(lambda: receiver.trace(marker), "the sampled marker trace")
    time.sleep(0.5)       # a batch of the other worker, if any, had its chance too
    assert receiver.trace(quiet) == []


def test_access_log_and_request_log_lines_carry_the_ids(srv):
    r = srv.req("GET", "/__test/sleep_db?ms=300", headers={"traceparent": f"00-{'e' * 32}-{SID}-01"})
    assert r.status == 200, r
    tid, sid, _ = answer_tp(r)
    deadline = time.time() + DEADLINE
    while time.time() < deadline:
        lines = srv.log_lines()
        access = [l for l in lines if l.get("msg") == "access" and l.get("trace_id") == tid]
        slow = [l for l in lines if "slow statement" in l.get("msg", "") and l.get("trace_id") == tid]
        if access and slow:
            break
        time.sleep(0.05)
    assert access and access[0]["span_id"] == sid, lines[-5:]
    # the slow-statement warning is written while serving: same ids, once
    assert len(slow) == 1, [l for l in lines if "slow" in l.get("msg", "")]
    assert slow[0]["level"] == "warn" and slow[0]["span_id"] == sid
    assert "test_sleep" in slow[0]["msg"] or "sleep" in slow[0]["msg"]
    other = [l for l in lines if l.get("msg") != "access" and "worker ready" in l.get("msg", "")]
    assert all("trace_id" not in l for l in other)


def test_worker_connections_carry_application_name(srv, db_url):
    pids = set(srv.worker_pids())
    deadline = time.time() + DEADLINE
    names = set()
    while time.time() < deadline:
        out = run_psql(db_url, "SELECT DISTINCT application_name FROM pg_stat_activity "
                               "WHERE datname = current_database() AND application_name LIKE 'orderflow/%'")
        names = set(out.split())
        if {f"orderflow/{p}" for p in pids} <= names:
            break
        time.sleep(0.1)
    assert {f"orderflow/{p}" for p in pids} <= names, (pids, names)




def test_exported_spans_are_counted(srv, receiver):
    srv.req("GET", "/health")
    deadline = time.time() + DEADLINE
    while time.time() < deadline and metric(srv.port, "orderflow_trace_spans_exported_total") == 0:
        time.sleep(0.05)
    assert metric(srv.port, "orderflow_trace_spans_exported_total") > 0


def test_ratio_zero_exports_no_root_but_answers_flags_00(db_url):
    rec = Receiver()
    s = Server(db_url=db_url, workers=1,
               extra_cfg=f'tracing: {{ otlp_endpoint = "http://127.0.0.1:{rec.port}/"; sample_ratio = 0.0; }};')
    try:
        s.start()
        roots = []
        for _ in range(5):
            r = s.req("GET", "/api/v1/products")
            assert r.status == 200, r
            tid, _, flags = answer_tp(r)
            assert flags == "00"
            roots.append(tid)
        # a sampled parent is still followed: its spans arrive, the roots' never do
        marker = "f" * 32
        s.req("GET", "/api/v1/products", headers={"traceparent": f"00-{marker}-{SID}-01"})
        rec.wait_for(lambda: rec.trace(marker), "the sampled parent's trace")
        time.sleep(0.5)
        assert {sp["traceId"] for sp in rec.spans()} == {marker}
        for d in rec.docs:
            jsonschema.validate(d, SCHEMA)
    finally:
        s.stop()
        rec.close()


def test_spans_still_queued_at_a_graceful_stop_are_exported(db_url):
    """A batch leaves 1 s after its first span; a worker told to stop exits
    sooner (its 200 ms drain). Its last spans are sent on the way out."""
    rec = Receiver()
    s = Server(db_url=db_url, workers=1,
               extra_cfg=f'tracing: {{ otlp_endpoint = "http://127.0.0.1:{rec.port}"; sample_ratio = 1.0; }};')
    try:
        s.start()
        marker = "e" * 32
        r = s.req("GET", "/api/v1/products", headers={"traceparent": f"00-{marker}-{SID}-01"})
        assert r.status == 200, r
        queued = not rec.trace(marker)
        assert s.stop(signal.SIGTERM, timeout=30) == 0
        spans = rec.trace(marker)           # the master is gone: so are its workers
        print(f"\nspans of the last request: {len(spans)} "
              f"({'queued' if queued else 'already sent'} when the stop began)")
        assert server_span(spans)["traceId"] == marker
        assert any(sp["kind"] == 3 for sp in spans), spans     # its database round trip
        for d in rec.docs:
            jsonschema.validate(d, SCHEMA)
        assert "not exported at exit" not in s.log()
    finally:
        s.stop()
        rec.close()


def test_receiver_down_costs_nothing_and_drops_are_counted(db_url):
    dead = free_port()       # nothing listens there
    s = Server(db_url=db_url, workers=1,
               extra_cfg=f'tracing: {{ otlp_endpoint = "http://127.0.0.1:{dead}"; sample_ratio = 1.0; }};')
    try:
        s.start()
        for _ in range(20):
            r = s.req("GET", "/api/v1/products")
            assert r.status == 200, r
            answer_tp(r)
        deadline = time.time() + DEADLINE
        while time.time() < deadline and metric(s.port, "orderflow_trace_spans_dropped_total") == 0:
            time.sleep(0.05)
        assert metric(s.port, "orderflow_trace_spans_dropped_total") > 0
        assert metric(s.port, "orderflow_trace_spans_exported_total") == 0
        assert s.req("GET", "/health").status == 200
    finally:
        s.stop()


def test_no_endpoint_still_answers_traceparent(db_url):
    s = Server(db_url=db_url, workers=1)
    try:
        s.start()
        r = s.req("GET", "/api/v1/products", headers={"traceparent": f"00-{TID}-{SID}-01"})
        assert r.status == 200 and answer_tp(r)[0] == TID
        assert metric(s.port, "orderflow_trace_spans_dropped_total") == 0
    finally:
        s.stop()
