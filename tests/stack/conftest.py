"""A real distributed stack for the tests in this folder: ``scripts/stack.py`` with the CeleryExecutor.

PostgreSQL (Airflow's metadata database and the ordersync ledger, each a fresh database) and Redis
(the Celery broker) on 127.0.0.1; api-server, scheduler, dag-processor and a Celery worker as
processes; the sandbox stores with the demo data in this process. One stack serves the whole session
(the distributed test and the browser test use different orders, so they do not see each other's
runs). Without PostgreSQL or Redis the tests skip with a message; in CI (``CI`` set) they fail.

On a failure the processes' logs and the task logs are kept under the artifacts folder
(``ORDERSYNC_ARTIFACTS``, default ``artifacts/``) and their last lines printed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.support import POSTGRES_URL, ROOT, Receiver, postgres_available

sys.path.insert(0, str(ROOT / "scripts"))

import stack as stack_module  # noqa: E402  (scripts/ is not a package)


def artifacts_dir() -> Path:
    path = Path(os.environ.get("ORDERSYNC_ARTIFACTS") or ROOT / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def require(ok: bool, what: str) -> None:
    """Skip with a message on a laptop without the service; fail in CI, which must provide it."""
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI must provide it: .ci/run starts PostgreSQL and Redis and installs Chromium)")
    pytest.skip(what)


DEADLINE_MINUTES = 0.25  # runs still going 15 s after they were queued send a deadline alert


@pytest.fixture(scope="session")
def alert_receiver():
    """A real HTTP endpoint on loopback for the stack's alert webhook (connection ordersync_alerts)."""
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="session")
def stack(request, alert_receiver):
    require(postgres_available(), f"PostgreSQL is not reachable at {POSTGRES_URL}")
    require(stack_module.redis_reachable(), f"Redis is not reachable at {stack_module.REDIS_URL}")
    failed_before = request.session.testsfailed
    started = time.monotonic()
    running = stack_module.Stack(
        executor="celery",
        extra_env={
            "ORDERSYNC_RUN_DEADLINE_MINUTES": str(DEADLINE_MINUTES),
            "AIRFLOW_CONN_ORDERSYNC_ALERTS": json.dumps({"conn_type": "http", "host": alert_receiver.url}),
            "AIRFLOW_VAR_ORDERSYNC_SETTINGS": json.dumps(
                {"failure_alerts": {"enabled": True, "emails": [], "webhook_conn_id": "ordersync_alerts"}}
            ),
        },
    )
    try:
        running.start()
    except BaseException:
        running.stop()
        _keep(running, "stack-start")
        running.cleanup()
        raise
    print(
        f"\nstack: CeleryExecutor stack up in {time.monotonic() - started:.0f}s at {running.url} "
        f"(home {running.home})"
    )
    yield running
    running.stop()
    if request.session.testsfailed > failed_before:
        _keep(running, "stack")
    running.cleanup()


def _keep(running, name: str) -> None:
    dest = artifacts_dir() / f"{name}-{running.tag}"
    if running.home.exists():
        running.keep_logs(dest)
    print(f"\nstack: logs kept in {dest}\n{running.tail()}", file=sys.stderr)
