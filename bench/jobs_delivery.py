#!/usr/bin/env python3
"""Delivery throughput of the jobs process (issue 12): N order.created
events with one webhook registered, a local receiver, time until every
delivery succeeded. A benchmark, not a test: prints the figures.

  bench/jobs_delivery.py [--events N] [--concurrency C] [--pgdir DIR]
  bench/jobs_delivery.py --sink     only the receiver: prints its port, serves
                                    until killed (bench/run.sh's webhook run)

Uses a throwaway cluster made by tests/pg/testpg.sh in DIR (default
build/testpg: started if not running) and the binary in ORDERFLOW_BIN
(default build/orderflow). The receiver is a small asyncio HTTP/1.1 server
(keep-alive) in this process, answering 204 to each POST.
"""
import argparse
import asyncio
import os
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
os.environ.setdefault("ORDERFLOW_BIN", os.path.join(ROOT, "build", "orderflow"))
os.environ.setdefault("OF_SOURCE_DIR", ROOT)



class Receiver:
    def __init__(self):
        self.count = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self.run, daemon=True).start()
        self.ready.wait()

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                n = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":")[1])
                await reader.readexactly(n)
                self.count += 1
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def run(self):
        asyncio.set_event_loop(self.loop)
        srv = self.loop.run_until_complete(asyncio.start_server(self.handle, "127.0.0.1", 0))
        self.port = srv.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--pgdir", default=os.path.join(ROOT, "build", "testpg"))
    ap.add_argument("--sink", action="store_true")
    a = ap.parse_args()
    if a.sink:
        rcv = Receiver()
        print(rcv.port, flush=True)
        threading.Event().wait()
        return
    import conftest                  # the test suite's cluster helpers (pytest)
    from ofclient import Server
    import test_jobs
    if not os.path.exists(os.path.join(a.pgdir, "url")):
        conftest._start_cluster(a.pgdir)
    cluster = conftest.Cluster(a.pgdir, False)
    db = cluster.create_db()
    rcv = Receiver()
    try:
        test_jobs.add_webhook(db, f"http://127.0.0.1:{rcv.port}/hook")
        cfg = test_jobs.BASE_CFG + f"jobs: {{ concurrency = {a.concurrency}; }};\n"
        # events first, then the server: the clock starts before the master
        # does, so start-up time counts against the figure
        for k in range(0, a.events, 500):
            test_jobs.add_events(db, min(500, a.events - k))
        srv = Server(db_url=db, workers=1, extra_cfg=cfg)
        t0 = time.time()
        srv.start(wait=False)
        try:
            deadline = t0 + 600
            while rcv.count < a.events and time.time() < deadline:
                time.sleep(0.02)
            t_recv = time.time() - t0
            while time.time() < deadline:
                left = conftest.run_psql(db, "SELECT count(*) FROM deliveries WHERE status <> 'succeeded'")
                n = conftest.run_psql(db, "SELECT count(*) FROM deliveries")
                if left == "0" and int(n) == a.events:
                    break
                time.sleep(0.05)
            t_done = time.time() - t0
        finally:
            srv.stop()
        print(f"events={a.events} concurrency={a.concurrency} received={rcv.count} "
              f"received_in={t_recv:.2f}s ({rcv.count / t_recv:.0f}/s) "
              f"all_recorded_in={t_done:.2f}s ({a.events / t_done:.0f} webhooks/s)")
    finally:
        cluster.drop_db(db)


if __name__ == "__main__":
    main()
