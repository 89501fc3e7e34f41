"""X-Forwarded-Proto, as API.md "Headers the server honours" says: honoured
only from peers in server.forwarded_allow_ips, ignored from anyone else.

What it changes: the access log's `scheme` field ("https" when a trusted
proxy says so, else "http", the scheme of our own listener). The server
builds no absolute URL (no Location header; /openapi.json's `servers` entry
is the relative "/"), so that is all it changes -- checked here too, so an
absolute URL built later has to come with its own test.
"""
import http.client
import json
import time
import uuid

import pytest

from ofclient import Server


def access_line(srv, request_id, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in srv.log_lines():
            if line.get("msg") == "access" and line.get("request_id") == request_id:
                return line
        time.sleep(0.05)
    raise AssertionError(f"no access line for {request_id}:\n{srv.log()[-2000:]}")


def get(port, path, headers, source=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def scheme_of(srv, proto, source=None, path="/health"):
    """Send one request with X-Forwarded-Proto: proto (None: no header); the
    scheme its access-log line records."""
    rid = "xfp-" + uuid.uuid4().hex[:10]
    h = {"X-Request-ID": rid}
    if proto is not None:
        h["X-Forwarded-Proto"] = proto
    status, headers, body = get(srv.port, path, h, source)
    assert status == 200, (status, body)
    assert "location" not in headers
    return access_line(srv, rid)["scheme"]


@pytest.fixture(scope="module")
def trusting(db_url):
    """Default forwarded_allow_ips: loopback 127.0.0.1 and ::1 are trusted."""
    s = Server(db_url=db_url, workers=1, server_cfg="access_log = true;")
    s.start()
    yield s
    s.stop()


def test_trusted_peer_sets_the_scheme(trusting):
    assert scheme_of(trusting, "https") == "https"
    assert scheme_of(trusting, " HTTPS ") == "https"
    assert scheme_of(trusting, "http") == "http"
    assert scheme_of(trusting, None) == "http"
    assert scheme_of(trusting, "gopher") == "http"     # not a scheme we serve: ignored


def test_untrusted_peer_is_ignored_by_address(trusting):
    # 127.0.0.2 is loopback but not in the default list (127.0.0.1, ::1)
    assert scheme_of(trusting, "https", source="127.0.0.2") == "http"
    # X-Forwarded-For from it is ignored the same way
    rid = "xfp-" + uuid.uuid4().hex[:10]
    get(trusting.port, "/health", {"X-Request-ID": rid, "X-Forwarded-Proto": "https",
                                   "X-Forwarded-For": "203.0.113.9"}, source="127.0.0.2")
    line = access_line(trusting, rid)
    assert (line["client_ip"], line["scheme"]) == ("127.0.0.2", "http"), line


@pytest.mark.parametrize("allow", ["[]", '[ "10.0.0.0/8" ]'])
def test_untrusted_when_loopback_not_listed(db_url, allow):
    with Server(db_url=db_url, workers=1,
                server_cfg=f"access_log = true; forwarded_allow_ips = {allow};") as s:
        assert scheme_of(s, "https") == "http"
        rid = "xfp-" + uuid.uuid4().hex[:10]
        get(s.port, "/health", {"X-Request-ID": rid, "X-Forwarded-Proto": "https",
                                "X-Forwarded-For": "203.0.113.9"})
        line = access_line(s, rid)
        assert (line["client_ip"], line["scheme"]) == ("127.0.0.1", "http"), line


def test_no_absolute_url_depends_on_the_scheme(trusting):
    """The OpenAPI document's servers entry stays relative whatever the proxy says."""
    for proto in ("https", "http"):
        status, _, body = get(trusting.port, "/openapi.json", {"X-Forwarded-Proto": proto})
        assert status == 200
        doc = json.loads(body)
        assert [s["url"] for s in doc["servers"]] == ["/"], doc["servers"]
