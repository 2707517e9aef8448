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
