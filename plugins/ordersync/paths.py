"""Where ordersync finds its declarative data and keeps its default ledger."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The folder holding ``dags/``, ``plugins/`` and ``include/`` (``$AIRFLOW_HOME`` in the compose image)."""
    return Path(__file__).resolve().parents[2]


def rules_dir() -> Path:
    """``include/rules``; ``ORDERSYNC_RULES_DIR`` overrides it."""
    override = os.environ.get("ORDERSYNC_RULES_DIR")
    return Path(override) if override else project_root() / "include" / "rules"


def default_ledger_url() -> str:
    """SQLite file in ``$AIRFLOW_HOME`` (``~/airflow`` when unset), as Airflow itself defaults."""
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'ordersync_ledger.db'}"


def local_airflow(home: Path) -> dict[str, str]:
    """The environment of an Airflow run from this folder (demo, benchmark, tests, ``make up``).

    Its own ``AIRFLOW_HOME``, this project's ``dags/`` and ``plugins/``, no example DAGs, and no Airflow task
    retries: ordersync retries inside the task, and a local run should show a failure at once.
    """
    root = project_root()
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "ORDERSYNC_TASK_RETRIES": "0",
        # A task's supervisor notices its process has exited only on its next heartbeat check (default 5 s):
        # measured, that held 30 % of the vendor phase's task slots idle. 1 s costs ~2.6x the heartbeats.
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
    }
