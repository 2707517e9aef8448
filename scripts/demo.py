"""Quick start (a): run ``order_sync`` on the embedded default and print what landed where, and why.

Starts the local sandbox stores on loopback (a Shopify merchant, vendor "Acme
Tools" on Shopify, vendor "Bolt Supply" on WooCommerce) with demo orders,
points the ordersync connections and Variables at them, runs the DAG through
Airflow with a SQLite metadata database and ledger under ``.demo/``, then
prints one row per (merchant order, vendor).

The console shows the demo's own progress lines and the table; Airflow's own
log lines (scheduling, executor, the task processes) go to
``.demo/airflow/airflow.log``, whose path the demo prints. The run goes through
``ordersync.airflow.localrun.run_dag_locally``, which always ends: a run that has not
ended in ``ORDERSYNC_DEMO_TIMEOUT_SECONDS`` (default 600) is stopped, its
processes killed, and the demo says so.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.get("ORDERSYNC_DEMO_HOME", ROOT / ".demo" / "airflow"))
TIMEOUT_S = float(os.environ.get("ORDERSYNC_DEMO_TIMEOUT_SECONDS", "600"))


def _prepare_environment() -> None:
    HOME.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "plugins", ROOT / "sandbox", ROOT):
        sys.path.insert(0, str(path))
    from ordersync.paths import local_airflow

    os.environ.update(local_airflow(HOME), AIRFLOW__CORE__EXECUTOR="LocalExecutor")
    ledger = HOME / "ordersync_ledger.db"
    for leftover in (ledger, Path(f"{ledger}-wal"), Path(f"{ledger}-shm")):
        leftover.unlink(missing_ok=True)  # the sandbox stores are new each time; so is the ledger


def _migrate_airflow_db() -> None:
    from ordersync.airflow.localrun import LocalRunError, migrate_metadata_db

    print("• preparing Airflow's metadata database (SQLite) in", HOME, flush=True)
    try:
        migrate_metadata_db()
    except LocalRunError as exc:
        raise SystemExit(str(exc)) from None


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

    from ordersync.airflow.localrun import LocalRunError, api_server, run_dag_locally
    from ordersync_sandbox import Sandbox
    from ordersync_sandbox.seed import seed_demo

    airflow_log = HOME / "airflow.log"
    airflow_log.write_text("")  # this demo's Airflow output only
    with Sandbox() as sandbox:
        seeded = seed_demo(sandbox)
        os.environ.update(seeded["env"])
        print("• sandbox stores on loopback:")
        for name, store in sandbox.stores.items():
            print(f"    {name:<10} {store.platform:<12} {store.url}")
        with api_server(HOME / "api-server.log") as url:
            print(f"• Airflow API server on {url}")
            print(f"• running order_sync on the LocalExecutor … (Airflow's log: {airflow_log})", flush=True)
            try:
                run = run_dag_locally(
                    "order_sync",
                    {"order_ids": [], "vendors": [], "dry_run": False},
                    timeout_s=TIMEOUT_S,
                    log_path=airflow_log,
                    dag_folder=ROOT / "dags",
                )
            except LocalRunError as exc:
                print(f"✗ {exc}", file=sys.stderr)
                return 1
        for line in run.forced_shutdown + run.leftovers:
            print(f"  ⚠ Airflow left a process behind, ended by the demo: {line}", file=sys.stderr)

        from ordersync.ledger import Ledger
        from ordersync.paths import default_ledger_url

        ledger = Ledger(default_ledger_url())
        decisions = ledger.decisions_for_run(f"order_sync/{run.run_id}")
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
        print(f"order_sync run {run.run_id}: {run.state} in {run.seconds:.1f}s")
        print(_table(rows, ["order", "vendor", "outcome", "vendor order", "why"]))
        print(f"  task logs: {HOME / 'logs'}")
        print(f"  Airflow's log: {airflow_log}")
        print()
        for name, store in sandbox.stores.items():
            if name != "merchant":
                print(f"  {name}: {len(store.orders)} order(s) in the {store.platform} store")
        pushed_everywhere = all(
            len(store.orders) > 0 for name, store in sandbox.stores.items() if name != "merchant"
        )
        return 0 if run.state == "success" and pushed_everywhere else 1


if __name__ == "__main__":
    raise SystemExit(main())
