"""API.md, transfers: "Balances never go negative and the sum of all balances
never changes, under any concurrency, worker crash or database restart" --
the database-restart part, on this module's private PostgreSQL.

Concurrent clients make keyed transfers between every pair of accounts while
PostgreSQL is stopped and started twice: a fast shutdown (pg_ctl -m fast)
and a crash (-m immediate, WAL recovery at start). A transfer whose answer
is a 5xx, or that got no answer, is retried with its Idempotency-Key until
it has one (API.md: a 5xx stores nothing, so the retry runs afresh; a 201
that was lost is replayed, never made twice). Afterwards:
  - the sum of all balances is what was opened, and none is negative;
  - every 201 transfer is in the ledger, exactly once, with its amount, and
    the ledger has no transfer nobody got a 201 for;
  - each account's balance is its opening balance plus the ledger's ins
    minus its outs.
"""
import random
import subprocess
import threading
import time
import uuid

import pytest

from conftest import TESTPG, run_psql
from ofclient import Server, register_and_login, wait_until

ACC = "/api/v1/bank-accounts"
OPENING = 100000            # cents per account
N_USERS = 3                 # each with 2 accounts and a client thread


class Transferer(threading.Thread):
    def __init__(self, srv, token, own, all_accounts, seed):
        super().__init__(daemon=True)
        self.srv, self.token, self.own, self.all = srv, token, own, all_accounts
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.done = {}              # key -> (transfer id, from, to, amount cents)
        self.retries = 0
        self.bad = []

    def one(self):
        src = self.rng.choice(self.own)
        dst = self.rng.choice([a for a in self.all if a != src])
        cents = self.rng.randint(1, 500)
        key = "bk-" + uuid.uuid4().hex
        body = {"from_account_id": src, "to_account_id": dst, "amount": f"{cents // 100}.{cents % 100:02d}"}
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                r = self.srv.req("POST", "/api/v1/transfers", body=body, token=self.token,
                                 headers={"Idempotency-Key": key}, timeout=30)
            except OSError:
                r = None
            if r is not None and r.status == 201:
                j = r.json()
                self.done[key] = (j["id"], src, dst, cents)
                got = (j["from_account_id"], j["to_account_id"], j["amount"])
                if got != (src, dst, body["amount"]):
                    self.bad.append(("201 does not echo the request", body, j))
                return
            if r is not None and r.status < 500 and not (r.status == 409 and b"in progress" in r.body):
                self.bad.append((r.status, r.body[:200]))
                return
            self.retries += 1
            time.sleep(0.05)
        self.bad.append(("no 201 within 180 s", key))

    def run(self):
        while not self.stop.is_set():
            self.one()


@pytest.fixture(scope="module")
def bank(private_pg):
    url = private_pg.create_db()
    # testpg.sh runs with synchronous_commit = off (fast tests): a crash then
    # loses commits already answered, as PostgreSQL documents. A server's
    # promise is only as good as its database's durability: this database
    # gets PostgreSQL's default back (fsync = off loses nothing here, the
    # machine does not crash, only PostgreSQL).
    name = url.split("/")[3].split("?")[0]
    private_pg.psql(f"ALTER DATABASE {name} SET synchronous_commit = on")
    s = Server(db_url=url, workers=2,
               extra_cfg="rate_limit: { login_per_minute = 0; writes_per_minute = 0; };")
    s.start()
    users = []
    for i in range(N_USERS):
        _, tok = register_and_login(s.port, f"bank-restart-{i}@x.io")
        accs = []
        for j in range(2):
            r = s.req("POST", ACC, token=tok, body={"name": f"r{i}{j}", "balance": f"{OPENING // 100}.00"})
            assert r.status == 201, r
            accs.append(r.json()["id"])
        users.append((tok, accs))
    yield s, url, users
    s.stop()


def total(url):
    return int(run_psql(url, "SELECT sum(balance_cents) FROM bank_accounts"))


def restart(private_pg, how):
    subprocess.run([TESTPG, how, private_pg.dir], check=True, timeout=120)
    subprocess.run([TESTPG, "pgstart", private_pg.dir], check=True, timeout=120)


def test_balances_unchanged_across_fast_and_immediate_restarts(private_pg, bank):
    s, url, users = bank
    accounts = [a for _, accs in users for a in accs]
    assert total(url) == OPENING * len(accounts)
    ts = [Transferer(s, tok, accs, accounts, i) for i, (tok, accs) in enumerate(users)]
    for t in ts:
        t.start()
    try:
        def made():
            return sum(len(t.done) for t in ts)
        wait_until(lambda: made() >= 30, "30 transfers before the first restart", timeout=120)
        for how in ("pgstop", "pgkill"):
            restart(private_pg, how)
            before = made()
            wait_until(lambda: made() >= before + 30, f"30 transfers after the {how} restart", timeout=120)
    finally:
        for t in ts:
            t.stop.set()
        for t in ts:
            t.join(240)
    assert not [t for t in ts if t.is_alive()], "a client is stuck"
    bad = [b for t in ts for b in t.bad]
    assert bad == [], bad[:10]

    assert total(url) == OPENING * len(accounts)
    assert run_psql(url, "SELECT count(*) FROM bank_accounts WHERE balance_cents < 0") == "0"
    answered = {v[0]: v[1:] for t in ts for v in t.done.values()}
    ledger = {}
    for line in run_psql(url, "SELECT id, from_account_id, to_account_id, amount_cents FROM transfers").splitlines():
        tid, f, to, c = map(int, line.split("|"))
        assert tid not in ledger
        ledger[tid] = (f, to, c)
    assert ledger == answered, (set(ledger) ^ set(answered))
    for acc in accounts:
        want = OPENING + sum(c for f, to, c in ledger.values() if to == acc) \
            - sum(c for f, to, c in ledger.values() if f == acc)
        got = int(run_psql(url, f"SELECT balance_cents FROM bank_accounts WHERE id = {acc}"))
        assert got == want, (acc, got, want)
    print(f"\n{len(answered)} transfers across a fast and an immediate PostgreSQL restart, "
          f"{sum(t.retries for t in ts)} retried attempts (5xx or no answer)")
