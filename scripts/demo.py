"""Quick start (a): run ``order_sync`` on the embedded default and print what landed where, and why.

Starts the local sandbox stores on loopback (a Shopify merchant, vendor "Acme
Tools" on Shopify, vendor "Bolt Supply" on WooCommerce) with demo orders,
points the ordersync connections and Variables at them, runs the DAG through
Airflow with a SQLite metadata database and ledger under ``.demo/``, then
prints one row per (merchant order, vendor).
"""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.get("ORDERSYNC_DEMO_HOME", ROOT / ".demo" / "airflow"))


def _prepare_environment() -> None:
    HOME.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "plugins", ROOT / "sandbox", ROOT):
        sys.path.insert(0, str(path))
    from ordersync.paths import local_airflow

    os.environ.update(local_airflow(HOME), AIRFLOW__CORE__EXECUTOR="LocalExecutor")
    ledger = HOME / "ordersync_ledger.db"
    for leftover in (ledger, Path(f"{ledger}-wal"), Path(f"{ledger}-shm")):
        leftover.unlink(missing_ok=True)     # the sandbox stores are new each time; so is the ledger


def _migrate_airflow_db() -> None:
    print("• preparing Airflow's metadata database (SQLite) in", HOME)
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit("airflow db migrate failed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _api_server() -> Iterator[None]:
    """Airflow's API server on loopback: the LocalExecutor's task processes report to it."""
    port = _free_port()
    os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = secrets.token_hex(32)
    os.environ["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
    log_path = HOME / "api-server.log"
    with open(log_path, "w") as log_file:
        server = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port",
                                   str(port)], stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"Airflow's API server did not start; see {log_path}")
                time.sleep(0.5)
        print(f"• Airflow API server on http://127.0.0.1:{port}")
        yield
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    widths[-1] = min(widths[-1], 90)
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    line = "  ".join("-" * w for w in widths)
    out = [fmt.format(*headers), line]
    for row in rows:
        cells = [str(c) for c in row]
        cells[-1] = cells[-1] if len(cells[-1]) <= widths[-1] else cells[-1][: widths[-1] - 1] + "…"
        out.append(fmt.format(*cells))
    return "\n".join(out)


def main() -> int:
    _prepare_environment()
    _migrate_airflow_db()
    import json
    import logging

    from ordersync_sandbox import Sandbox
    from ordersync_sandbox.seed import seed_demo

    with Sandbox() as sandbox:
        seeded = seed_demo(sandbox)
        os.environ.update(seeded["env"])
        print("• sandbox stores on loopback:")
        for name, store in sandbox.stores.items():
            print(f"    {name:<10} {store.platform:<12} {store.url}")
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=str(ROOT / "dags"))
        if bag.import_errors:
            raise SystemExit(f"DAG import errors: {bag.import_errors}")
        print("• running order_sync on the LocalExecutor …")
        logging.getLogger("ordersync").setLevel(logging.INFO)
        with _api_server():
            dag_run = bag.dags["order_sync"].test(use_executor=True)
        state = str(getattr(dag_run.state, "value", dag_run.state))

        from ordersync.ledger import Ledger
        from ordersync.paths import default_ledger_url

        ledger = Ledger(default_ledger_url())
        decisions = ledger.decisions_for_run(f"order_sync/{dag_run.run_id}")
        pairs = ledger.pairs({d["merchant_order_id"] for d in decisions})
        vendors = {v["vendor"]: v for v in json.loads(seeded["env"]["AIRFLOW_VAR_ORDERSYNC_VENDORS"])}
        rows = []
        for d in sorted(decisions, key=lambda d: (d["merchant_order_name"], d["vendor"])):
            pair = pairs.get((d["merchant_order_id"], d["vendor"]))
            landed = ""
            if d["outcome"] == "pushed" and pair is not None:
                platform = vendors.get(d["vendor"], {}).get("platform", "?")
                landed = f"{pair.vendor_order_name} in {platform}"
            rows.append([d["merchant_order_name"], d["vendor"] or "-", d["outcome"], landed, d["reason"]])
        print()
        print(f"order_sync run {dag_run.run_id}: {state}")
        print(_table(rows, ["order", "vendor", "outcome", "vendor order", "why"]))
        print(f"  task logs: {HOME / 'logs'}")
        print()
        for name, store in sandbox.stores.items():
            if name != "merchant":
                print(f"  {name}: {len(store.orders)} order(s) in the {store.platform} store")
        pushed_everywhere = all(len(store.orders) > 0 for name, store in sandbox.stores.items() if name != "merchant")
        return 0 if state == "success" and pushed_everywhere else 1


if __name__ == "__main__":
    raise SystemExit(main())
