"""The command line around configuration: check-config (effective settings,
secrets redacted, exit 1 with file:line on a bad file), env overrides,
ORDERFLOW_CONFIG, --version/--help, usage errors, serve refusing to start.
"""
import os
import subprocess
import tempfile

from ofclient import BIN, TEST_SECRET

SRC = os.environ.get("OF_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
SAMPLE = os.path.join(SRC, "config", "orderflow.cfg")
DB_PASSWORD = "db-Pa55word-never-printed"


def run(*args, env=None, cfg_text=None, timeout=15):
    e = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    e.update(env or {})
    path = None
    if cfg_text is not None:
        d = tempfile.mkdtemp(prefix="of-cfgcli-")
        path = os.path.join(d, "orderflow.cfg")
        with open(path, "w") as f:
            f.write(cfg_text)
        args = [a.replace("{CFG}", path) for a in args]
    r = subprocess.run([BIN, *args], capture_output=True, text=True, env=e, timeout=timeout)
    return r, path


def test_check_config_sample_ok():
    r, _ = run("check-config", "-c", SAMPLE)
    assert r.returncode == 0, r.stderr
    for group in ("server:", "database:", "auth:", "rate_limit:", "cors:", "metrics:"):
        assert group in r.stdout
    assert 'listen = "127.0.0.1:8000";' in r.stdout
    assert "workers = 0;   # effective: " in r.stdout


def test_check_config_redacts_secrets():
    env = {
        "ORDERFLOW_DATABASE_URL": f"postgresql://app:{DB_PASSWORD}@db.internal:5432/of",
        "ORDERFLOW_JWT_SECRET": TEST_SECRET,
    }
    r, _ = run("check-config", "-c", SAMPLE, env=env)
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert DB_PASSWORD not in out
    assert TEST_SECRET not in out
    assert 'url = "postgresql://app:REDACTED@db.internal:5432/of";' in r.stdout
    assert "jwt_secret comes only from ORDERFLOW_JWT_SECRET: set (REDACTED)" in r.stdout


def test_check_config_redacts_keyword_form_password():
    r, _ = run("check-config", env={"ORDERFLOW_DATABASE_URL": f"host=db password={DB_PASSWORD} dbname=of"})
    assert r.returncode == 0
    assert DB_PASSWORD not in r.stdout
    assert 'url = "host=db password=REDACTED dbname=of";' in r.stdout


def test_check_config_output_is_a_valid_config():
    r, _ = run("check-config", "-c", "{CFG}", cfg_text='server: { workers = 3; max_requests = 9; };\n'
               'cors: { allow_origins = ["https://a.example"]; };\n')
    assert r.returncode == 0, r.stderr
    r2, _ = run("check-config", "-c", "{CFG}", cfg_text=r.stdout)
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout.split("\n", 1)[1] == r.stdout.split("\n", 1)[1]


def test_unknown_setting_exits_1_with_file_and_line():
    r, path = run("check-config", "-c", "{CFG}",
                  cfg_text="server: {\n  workers = 2;\n  colour = \"blue\";\n};\n")
    assert r.returncode == 1
    assert f"{path}:3: unknown setting server.colour" in r.stderr
    assert r.stdout == ""


def test_unknown_group_exits_1():
    r, path = run("check-config", "-c", "{CFG}", cfg_text="# x\ntelemetry: { on = true; };\n")
    assert r.returncode == 1
    assert f"{path}:2: unknown setting telemetry" in r.stderr


def test_out_of_range_and_syntax_errors_exit_1():
    r, path = run("check-config", "-c", "{CFG}", cfg_text="server: {\n  workers = 999;\n};\n")
    assert r.returncode == 1
    assert f"{path}:2: server.workers must be 0..256" in r.stderr
    r, path = run("check-config", "-c", "{CFG}", cfg_text="server: {\n  workers = ;\n};\n")
    assert r.returncode == 1
    assert f"{path}:2:" in r.stderr and "syntax error" in r.stderr
    r, _ = run("check-config", "-c", "/nonexistent/of.cfg")
    assert r.returncode == 1
    assert "/nonexistent/of.cfg" in r.stderr


def test_env_overrides_show_in_check_config():
    r, _ = run("check-config", "-c", SAMPLE,
               env={"ORDERFLOW_LISTEN": "[::1]:9099", "ORDERFLOW_WORKERS": "7"})
    assert r.returncode == 0, r.stderr
    assert 'listen = "[::1]:9099";' in r.stdout
    assert "workers = 7;   # effective: 7" in r.stdout
    r, _ = run("check-config", env={"ORDERFLOW_WORKERS": "lots"})
    assert r.returncode == 1
    assert "ORDERFLOW_WORKERS" in r.stderr


def test_orderflow_config_env_names_the_file():
    r, path = run("check-config", cfg_text="server: { workers = 5; };\n")
    assert "workers = 0;" in r.stdout          # no -c, no env: defaults
    r, path = run("check-config", "-c", "{CFG}", cfg_text="server: { workers = 5; };\n")
    r2, _ = run("check-config", env={"ORDERFLOW_CONFIG": path})
    assert r2.returncode == 0
    assert "workers = 5;" in r2.stdout


def test_short_jwt_secret_is_refused_without_echo():
    r, _ = run("check-config", env={"ORDERFLOW_JWT_SECRET": "tooshort-secret"})
    assert r.returncode == 1
    assert "at least 32 bytes" in r.stderr
    assert "tooshort-secret" not in r.stderr


def test_serve_refuses_bad_config_and_missing_secret():
    r, path = run("serve", "-c", "{CFG}", cfg_text="server: { listen = \"nohost\"; };\n",
                  env={"ORDERFLOW_JWT_SECRET": TEST_SECRET})
    assert r.returncode == 1
    assert f"{path}:1: server.listen must be" in r.stderr
    r, _ = run("serve", "-c", "{CFG}", cfg_text="server: { workers = 1; };\n")
    assert r.returncode == 1
    assert "ORDERFLOW_JWT_SECRET is not set" in r.stderr


def test_version_help_and_usage_errors():
    r, _ = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("orderflow ")
    r, _ = run("--help")
    assert r.returncode == 0 and "check-config" in r.stdout and "TTIN" in r.stdout
    r, _ = run("frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr
    r, _ = run("check-config", "extra")
    assert r.returncode == 2
    r, _ = run("check-config", "-c")
    assert r.returncode == 2
