"""Customer mail over real SMTP: jobs/mail.{c,h} driven by the test tool
of-mailsend (renders an event and sends it with libcurl exactly as the jobs
process sets the handle up) against Debian's aiosmtpd on a loopback port.

Checks what the server received (envelope, headers, decoded body, libcurl's
dot-stuffing), the outcome class of 4xx / 5xx / refused connections, SMTP
login with credentials from the environment, STARTTLS and implicit TLS with a
self-signed certificate.
"""
import email
import email.policy
import json
import os
import ssl
import subprocess

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from ofclient import BIN, free_port

MAILSEND = os.path.join(os.path.dirname(os.path.abspath(BIN)), "of-mailsend")
EVT = "evt_01HV3K8Q9W2Y4Z6A8B0C2D4E6F"


def order(status="pending", name="Zo\u00eb \u00c4rger"):
    return {
        "id": 42, "customer_id": 7, "customer_name": name, "status": status,
        "total": "49.97", "notes": None, "created_by": 1,
        "items": [
            {"id": 1, "product_id": 3, "product_name": "Caf\u00e9 cr\u00e8me", "quantity": 2,
             "unit_price": "19.99"},
            {"id": 2, "product_id": 4, "product_name": ".", "quantity": 1, "unit_price": "9.99"},
        ],
        "created_at": "2024-03-05T12:34:56Z", "updated_at": "2024-03-05T12:34:56Z",
    }


def event(type_="order.created", data=None, evt=EVT):
    return {"id": evt, "type": type_, "timestamp": "2024-03-05T12:34:56.123456Z",
            "data": order() if data is None else data}


class Recorder:
    """Records accepted messages; answers RCPT / DATA from scripted replies
    first (None in a script = the normal answer)."""

    def __init__(self):
        self.messages = []
        self.script = {"RCPT": [], "DATA": []}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.script["RCPT"]:
            reply = self.script["RCPT"].pop(0)
            if reply:
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.script["DATA"]:
            reply = self.script["DATA"].pop(0)
            if reply:
                return reply
        self.messages.append({
            "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
            "content": envelope.content, "tls": session.ssl is not None,
            "auth": session.authenticated, "login": getattr(session, "login_data", None),
        })
        return "250 2.0.0 Message accepted for delivery"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
                    "-out", str(crt), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return str(crt), str(key)


def tls_context(cert):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    return ctx


@pytest.fixture
def smtp():
    """A plain SMTP server; yields (recorder, port)."""
    servers = []

    def start(**kw):
        rec = Recorder()
        port = free_port()
        ctl = Controller(rec, hostname="127.0.0.1", port=port, **kw)
        ctl.start()
        servers.append(ctl)
        return rec, port

    yield start
    for ctl in servers:
        ctl.stop()


def mailsend(tmp_path, ev, url, to="zoe@example.com", args=(), env=None):
    path = tmp_path / "event.json"
    path.write_text(json.dumps(ev))
    full_env = dict(os.environ)
    full_env.pop("ORDERFLOW_SMTP_USER", None)
    full_env.pop("ORDERFLOW_SMTP_PASSWORD", None)
    full_env.update(env or {})
    r = subprocess.run([MAILSEND, "--url", url, "--to", to, "--from", "Shop <shop@example.com>",
                        "--timeout", "20", *args, str(path)],
                       capture_output=True, text=True, timeout=60, env=full_env)
    return r.returncode, r.stdout.strip()


def parsed(msg):
    return email.message_from_bytes(msg["content"], policy=email.policy.default)


def test_confirmation_arrives_with_headers_and_body(smtp, tmp_path):
    rec, port = smtp()
    rc, out = mailsend(tmp_path, event(), f"smtp://127.0.0.1:{port}")
    assert (rc, out) == (0, "outcome=OK curl=0 smtp=250")
    assert len(rec.messages) == 1
    m = rec.messages[0]
    assert m["mail_from"] == "shop@example.com"
    assert m["rcpt_tos"] == ["zoe@example.com"]
    msg = parsed(m)
    assert msg["Message-ID"] == f"<{EVT}@orderflow>"
    assert msg["Subject"] == "Order #42 confirmed"
    assert msg["From"].addresses[0].display_name == "Shop"
    assert msg["From"].addresses[0].addr_spec == "shop@example.com"
    assert msg["To"].addresses[0].display_name == "Zo\u00eb \u00c4rger"
    assert msg["To"].addresses[0].addr_spec == "zoe@example.com"
    assert msg["Date"].datetime.isoformat() == "2024-03-05T12:34:56+00:00"
    assert msg.get_content_type() == "text/plain"
    assert msg.get_content_charset() == "utf-8"
    body = msg.get_content().replace("\r\n", "\n")
    assert "Hello Zo\u00eb \u00c4rger," in body
    assert "\nCaf\u00e9 cr\u00e8me\n    Quantity: 2, unit price: 19.99\n" in body
    # a line holding a lone "." survives only if libcurl dot-stuffed it
    assert "\n.\n    Quantity: 1, unit price: 9.99\n" in body
    assert "Total: 49.97" in body
    assert not msg.defects and all(not p.defects for p in msg.walk())


@pytest.mark.parametrize("to,subject", [("shipped", "Order #42 shipped"),
                                        ("cancelled", "Order #42 cancelled")])
def test_status_mail(smtp, tmp_path, to, subject):
    rec, port = smtp()
    data = {"order": order(status=to), "from": "paid", "to": to}
    rc, out = mailsend(tmp_path, event("order.status_changed", data), f"smtp://127.0.0.1:{port}")
    assert (rc, out) == (0, "outcome=OK curl=0 smtp=250")
    msg = parsed(rec.messages[0])
    assert msg["Subject"] == subject
    assert f"Status: {to}" in msg.get_content()
    assert "Caf\u00e9 cr\u00e8me" in msg.get_content()


@pytest.mark.parametrize("ev,args", [
    (event(), ["--inactive"]),
    (event("order.status_changed", {"order": order(), "from": "pending", "to": "paid"}), []),
    (event("transfer.created", {"id": 1, "amount": "5.00"}), []),
])
def test_no_mail_sends_nothing(smtp, tmp_path, ev, args):
    rec, port = smtp()
    rc, out = mailsend(tmp_path, ev, f"smtp://127.0.0.1:{port}", args=args)
    assert (rc, out) == (3, "outcome=NOMAIL")
    assert rec.messages == []


@pytest.mark.parametrize("stage", ["RCPT", "DATA"])
def test_4xx_is_retried_then_delivered_once(smtp, tmp_path, stage):
    rec, port = smtp()
    rec.script[stage] = ["451 4.7.1 Greylisted, try again later"]
    rc, out = mailsend(tmp_path, event(), f"smtp://127.0.0.1:{port}")
    assert rc == 75 and out.startswith("outcome=AGAIN ") and out.endswith(" smtp=451"), out
    assert rec.messages == []
    rc, out = mailsend(tmp_path, event(), f"smtp://127.0.0.1:{port}")
    assert (rc, out) == (0, "outcome=OK curl=0 smtp=250")
    assert len(rec.messages) == 1
    assert parsed(rec.messages[0])["Message-ID"] == f"<{EVT}@orderflow>"


@pytest.mark.parametrize("stage,reply", [("RCPT", "550 5.1.1 No such user"),
                                         ("DATA", "554 5.7.1 Rejected as spam")])
def test_5xx_is_final(smtp, tmp_path, stage, reply):
    rec, port = smtp()
    rec.script[stage] = [reply]
    rc, out = mailsend(tmp_path, event(), f"smtp://127.0.0.1:{port}")
    assert rc == 1 and out.startswith("outcome=ERR ") and out.endswith(" smtp=" + reply[:3]), out
    assert rec.messages == []


def test_refused_connection_is_retried(tmp_path):
    port = free_port()            # nothing listens there
    rc, out = mailsend(tmp_path, event(), f"smtp://127.0.0.1:{port}")
    assert (rc, out) == (75, "outcome=AGAIN curl=7 smtp=0")


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"mailer" and auth_data.password == b"s3cret pass"
    return AuthResult(success=ok, handled=False)   # handled=False: aiosmtpd answers 535


@pytest.mark.parametrize("password,want_rc", [("s3cret pass", 0), ("wrong", 1)])
def test_login_from_environment(smtp, tmp_path, password, want_rc):
    rec, port = smtp(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    env = {"ORDERFLOW_SMTP_USER": "mailer", "ORDERFLOW_SMTP_PASSWORD": password}
    rc, out = mailsend(tmp_path, event(), f"smtp://127.0.0.1:{port}", env=env)
    assert rc == want_rc, out
    if want_rc == 0:
        assert rec.messages[0]["auth"] is True
    else:
        assert out.endswith(" smtp=535"), out
        assert rec.messages == []


def test_login_required_but_none_configured(smtp, tmp_path):
    rec, port = smtp(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    rc, out = mailsend(tmp_path, event(), f"smtp://127.0.0.1:{port}")
    assert rc == 1 and out.endswith(" smtp=530"), out
    assert rec.messages == []


def test_starttls(smtp, tmp_path, cert):
    rec, port = smtp(tls_context=tls_context(cert), require_starttls=True,
                     authenticator=authenticator, auth_required=True)
    url = f"smtp://127.0.0.1:{port}"
    env = {"ORDERFLOW_SMTP_USER": "mailer", "ORDERFLOW_SMTP_PASSWORD": "s3cret pass"}
    # the certificate is verified: unknown CA -> a retryable TLS failure
    rc, out = mailsend(tmp_path, event(), url, args=["--starttls"], env=env)
    assert rc == 75 and out.startswith("outcome=AGAIN curl=60 "), out
    rc, out = mailsend(tmp_path, event(), url, args=["--starttls", "--cainfo", cert[0]], env=env)
    assert (rc, out) == (0, "outcome=OK curl=0 smtp=250")
    assert rec.messages[0]["tls"] is True and rec.messages[0]["auth"] is True
    assert parsed(rec.messages[0])["Message-ID"] == f"<{EVT}@orderflow>"


def test_smtps_implicit_tls(smtp, tmp_path, cert):
    rec, port = smtp(ssl_context=tls_context(cert))
    rc, out = mailsend(tmp_path, event(), f"smtps://127.0.0.1:{port}", args=["--cainfo", cert[0]])
    assert (rc, out) == (0, "outcome=OK curl=0 smtp=250")
    assert len(rec.messages) == 1
    assert parsed(rec.messages[0])["Subject"] == "Order #42 confirmed"
