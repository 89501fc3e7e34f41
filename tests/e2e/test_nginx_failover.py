"""deploy/nginx/orderflow.conf's failover for answers, not only for a dead
instance (test_nginx kills one): `proxy_next_upstream error timeout
http_502 http_503 http_504` with no `non_idempotent`, as its comment says --
"Another instance gets the request when this one cannot be reached or
answers 502/503/504. nginx never re-sends a POST/PATCH that already reached
an instance: ... the client gets the error and decides".

The real nginx with the production file (test_nginx.Nginx: only ports,
certificate paths and upstream servers rewritten) in front of two
upstreams: a tiny local stub that answers every request with 502, 503 or
504, listed first (so round robin sends it the first request), and the real
orderflow. Every attempt is identified by the X-Request-ID nginx passes on.
  - GET: the stub saw it and answered its error, orderflow then answered it:
    the client gets orderflow's 200;
  - POST and PATCH: the stub saw it, orderflow never did, and the client gets
    the stub's status and body.
"""
import http.server
import json
import threading
import uuid

import pytest

from ofclient import Server
from test_nginx import Nginx, https, wait_access, access_lines


class Stub:
    """An upstream that answers every request with one status; it records
    (method, path, X-Request-ID) of each."""

    def __init__(self, status):
        self.status = status
        self.seen = []
        stub = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"      # keep-alive, as nginx's upstream block wants

            def answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                stub.seen.append((self.command, self.path, self.headers.get("X-Request-ID")))
                body = json.dumps({"detail": f"stub {stub.status}"}).encode()
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = answer

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.t = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def of(db_url):
    s = Server(db_url=db_url, workers=1, server_cfg='forwarded_allow_ips = ["127.0.0.1"];')
    s.start()
    yield s
    s.stop()


@pytest.mark.parametrize("status", [502, 503, 504])
def test_idempotent_request_goes_to_the_other_instance(of, status):
    with Stub(status) as stub, Nginx([stub.port, of.port]) as ng:
        rid = "fo-get-" + uuid.uuid4().hex[:12]
        r = https(ng, "GET", "/api/v1/products", headers={"X-Request-ID": rid})
        assert r.status == 200, r
        assert ("GET", "/api/v1/products", rid) in stub.seen, stub.seen   # the stub answered first
        assert wait_access(of, rid)["status"] == 200                      # then orderflow


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize("method,path,body", [
    ("POST", "/api/v1/products", {"name": "never", "price": "1.00"}),
    ("PATCH", "/api/v1/products/1", {"price": "2.00"}),
])
def test_non_idempotent_request_is_not_resent(of, status, method, path, body):
    with Stub(status) as stub, Nginx([stub.port, of.port]) as ng:
        rid = "fo-" + method.lower() + "-" + uuid.uuid4().hex[:12]
        r = https(ng, method, path, body=body, headers={"X-Request-ID": rid})
        assert (method, path, rid) in stub.seen, stub.seen
        assert r.status == status, r                        # the client gets the error...
        assert r.json() == {"detail": f"stub {status}"}
        # ...and orderflow never saw the request: a later request through
        # the same nginx is logged, this one is not
        rid2 = "fo-after-" + uuid.uuid4().hex[:12]
        assert https(ng, "GET", "/health", headers={"X-Request-ID": rid2}).status == 200
        wait_access(of, rid2)
        assert access_lines(of, rid) == []
