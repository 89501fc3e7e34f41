"""deploy/docker/entrypoint.sh, the container's entrypoint (Dockerfile), run
directly: the `*_FILE` secret handling the Dockerfile and docs/operations.md
describe, and the exec of orderflow with the container's arguments.

The script ends in `exec /usr/sbin/orderflow "$@"` (where the .deb installs
the binary); the test runs a copy in which only that line's program is
replaced by the first argument, so the same shell code runs with a stub
(printing what it was given) or with the built binary serving for real. The
image itself (scripts/image.sh, podman) needs a debootstrap base and runs in
the packaging label; what it adds over this test is the apt install.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys

import pytest

from ofclient import BIN, Server, register_and_login
from conftest import SRC

ENTRY = os.path.join(SRC, "deploy", "docker", "entrypoint.sh")
EXEC_LINE = 'exec /usr/sbin/orderflow "$@"'


@pytest.fixture(scope="module")
def entry(tmp_path_factory):
    """The entrypoint with its exec target taken from its first argument."""
    with open(ENTRY) as f:
        text = f.read()
    assert text.count(EXEC_LINE) == 1, "entrypoint.sh no longer ends in " + EXEC_LINE
    d = tmp_path_factory.mktemp("entry")
    path = d / "entrypoint.sh"
    path.write_text(text.replace(EXEC_LINE, 'exec "$@"'))
    path.chmod(0o755)
    stub = d / "stub.py"
    stub.write_text("#!" + sys.executable + "\nimport json, os, sys\n"
                    "print(json.dumps({'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items()"
                    " if k.startswith('ORDERFLOW_')}}))\n")
    stub.chmod(0o755)
    return str(path), str(stub)


def run(entry, env, *args):
    path, stub = entry
    base = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    base.update(env)
    return subprocess.run([path, stub, *args], env=base, capture_output=True, text=True, timeout=30)


def secret_file(tmp_path, name, content, mode=0o400):
    p = tmp_path / name
    p.write_text(content)
    p.chmod(mode)
    return str(p)


def test_dockerfile_runs_this_script_and_the_package_binary():
    with open(os.path.join(SRC, "Dockerfile")) as f:
        df = f.read()
    assert "COPY deploy/docker/entrypoint.sh /usr/local/bin/orderflow-entrypoint" in df
    assert re.search(r'^ENTRYPOINT \["/usr/local/bin/orderflow-entrypoint"\]$', df, re.M)
    assert re.search(r'^CMD \["serve"\]$', df, re.M)
    with open(os.path.join(SRC, "cmake", "install.cmake")) as f:
        assert "install(TARGETS orderflow RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})" in f.read()


def test_file_secrets_are_exported_and_the_file_variables_unset(entry, tmp_path):
    jwt = secret_file(tmp_path, "jwt", "file-secret-0123456789abcdef0123456789\n")
    url = secret_file(tmp_path, "url", "postgresql:///x?host=/tmp")
    r = run(entry, {"ORDERFLOW_JWT_SECRET_FILE": jwt, "ORDERFLOW_DATABASE_URL_FILE": url},
            "serve", "-c", "/etc/orderflow/orderflow.cfg")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["argv"] == ["serve", "-c", "/etc/orderflow/orderflow.cfg"]
    # $(cat) drops the trailing newline a secret file usually has
    assert out["env"] == {"ORDERFLOW_JWT_SECRET": "file-secret-0123456789abcdef0123456789",
                          "ORDERFLOW_DATABASE_URL": "postgresql:///x?host=/tmp"}, out


def test_a_set_variable_wins_over_its_file(entry, tmp_path):
    jwt = secret_file(tmp_path, "jwt", "from-the-file")
    r = run(entry, {"ORDERFLOW_JWT_SECRET": "from-the-env", "ORDERFLOW_JWT_SECRET_FILE": jwt})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["env"] == {"ORDERFLOW_JWT_SECRET": "from-the-env"}


def test_no_file_no_variable_passes_nothing(entry):
    r = run(entry, {}, "migrate", "up")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"argv": ["migrate", "up"], "env": {}}


@pytest.mark.parametrize("var", ["ORDERFLOW_JWT_SECRET", "ORDERFLOW_DATABASE_URL"])
def test_unreadable_file_stops_before_exec(entry, tmp_path, var):
    missing = str(tmp_path / "no-such-secret")
    r = run(entry, {var + "_FILE": missing}, "serve")
    assert r.returncode == 1
    assert r.stdout == ""            # the stub never ran
    assert f"{var}_FILE={missing} is not readable" in r.stderr


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def test_the_real_binary_serves_with_secrets_from_files(entry, db_url, tmp_path):
    """orderflow serve through the entrypoint with both secrets only in files:
    it starts, reaches the database, and signs tokens with the file's secret."""
    secret = "file-only-secret-" + "ab" * 20
    jwt = secret_file(tmp_path, "jwt", secret + "\n")
    url = secret_file(tmp_path, "url", db_url + "\n")
    s = Server(workers=1, wrapper=[entry[0]])
    for k in ("ORDERFLOW_JWT_SECRET", "ORDERFLOW_DATABASE_URL"):
        s.env.pop(k, None)
    s.env["ORDERFLOW_JWT_SECRET_FILE"] = jwt
    s.env["ORDERFLOW_DATABASE_URL_FILE"] = url
    with s:
        _, token = register_and_login(s.port, "docker-entry@x.io")
        head, payload, sig = token.split(".")
        want = hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
        assert hmac.compare_digest(b64url_decode(sig), want)
        assert json.loads(b64url_decode(payload))["sub"]
        master_env = open(f"/proc/{s.proc.pid}/environ", "rb").read().split(b"\0")
        assert not [e for e in master_env if e.startswith(b"ORDERFLOW_") and b"_FILE=" in e]
