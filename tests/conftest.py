"""Shared test setup: an isolated AIRFLOW_HOME, ledgers on SQLite and PostgreSQL, the sandbox stores."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from ordersync.paths import local_airflow
from tests.support import POSTGRES_URL, fresh_postgres_url, postgres_available

# Airflow reads its configuration when first imported: set it before any test module imports it.
_HOME = Path(tempfile.mkdtemp(prefix="ordersync-airflow-"))
os.environ.update(local_airflow(_HOME))
os.environ.update(
    {
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "ORDERSYNC_RETRY_BASE_SECONDS": "0.05",
        "ORDERSYNC_RETRY_CAP_SECONDS": "2",
        "ORDERSYNC_LOOKUP_DELAY_SECONDS": "0.1",
    }
)
os.environ.pop("AIRFLOW_CONN_ORDERSYNC_LEDGER", None)


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 - pytest hook signature
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The Airflow metadata database (SQLite in the temporary AIRFLOW_HOME), migrated once per session."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return _HOME


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request, tmp_path) -> str:
    """Each ledger test runs on SQLite and on PostgreSQL (127.0.0.1:5432)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} (CI must start it)")
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL}")
    return fresh_postgres_url()
