"""The shared local runner (``ordersync.airflow.localrun``), as ``make demo`` and ``make bench`` use it: every run of
``order_sync`` on the LocalExecutor ends, with the right state, and leaves no process behind.

Airflow 3.3's ``LocalExecutor.end()`` joins its workers without a timeout, after one shutdown message
("poison pill") per worker it sees alive; one worker that does not take a pill keeps ``dag.test`` waiting for
ever (``make bench`` hung that way after its first ``tracking_sync``). The runner bounds the shutdown and
runs each DAG run in a process session of its own, so what it starts can always be found and ended.

Durations are bounded by generous guards only, never asserted as timings.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.e2e.conftest import ACME, BOLT

pytestmark = pytest.mark.e2e

RUNS = 3
GUARD_S = 300  # one order_sync run takes ~20-40 s here; this only stops a hang from stalling the suite
BLANK = {"order_ids": [], "vendors": [], "dry_run": False}


@pytest.fixture(scope="module")
def execution_api(airflow_db, tmp_path_factory):
    """Airflow's API server: the LocalExecutor's task processes report to it."""
    from ordersync.airflow.localrun import api_server

    with api_server(tmp_path_factory.mktemp("api") / "api-server.log") as url:
        yield url


def _children() -> set[tuple[int, bool]]:
    """This test process's descendants as (pid, is a zombie): the API server, and nothing of a run."""
    import psutil

    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            found.add((child.pid, child.status() == psutil.STATUS_ZOMBIE))
        except psutil.NoSuchProcess:
            pass
    return found


def _gone(session_id: int, wait_s: float = 10.0) -> list[int]:
    """The processes of the run's session still there (zombies included) after up to ``wait_s``: the kernel
    hands an orphan to init, which reaps it a moment later."""
    from ordersync.airflow.localrun import session_processes

    deadline = time.monotonic() + wait_s
    while (left := session_processes(session_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _tail(path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def test_runs_end_and_leave_no_process(world, execution_api, tmp_path):
    from ordersync.airflow.localrun import run_dag_locally

    world.order([(ACME, "ACME-HAMMER", 2, "24.00"), (BOLT, "BOLT-M6-100", 1, "9.50")])
    log = tmp_path / "airflow.log"
    before = _children()
    for i in range(RUNS):
        started = time.monotonic()
        run = run_dag_locally(world.dag, BLANK, timeout_s=GUARD_S, log_path=log)
        took = time.monotonic() - started
        print(f"run {i + 1}: {run.state}, dag.test {run.seconds}s, runner {run.total_seconds}s")
        assert took < GUARD_S + 60, took
        assert run.state == "success", _tail(log)
        states = {(ti["task_id"], ti["map_index"]): ti["state"] for ti in run.task_instances}
        assert states and set(states.values()) <= {"success", "skipped"}, states  # skipped: nothing to push
        # Airflow's own shutdown ended every worker: nothing was forced, nothing outlived the runner
        assert run.forced_shutdown == [] and run.leftovers == [], (run.forced_shutdown, run.leftovers)
        assert run.session_id and _gone(run.session_id) == []
        assert _children() == before, "the run left a child process or a zombie of this test process"
    # pushed exactly once across the runs; the later runs found nothing to do
    assert len(world.acme_orders()) == 1 and len(world.bolt_orders()) == 1


def test_a_run_past_its_deadline_is_stopped_with_everything_it_started(world, execution_api, tmp_path):
    from ordersync.airflow.localrun import LocalRunError, run_dag_locally

    world.order([(ACME, "ACME-HAMMER", 1, "24.00")])
    world.merchant.latency = 120  # the merchant store stops answering in time
    log = tmp_path / "airflow.log"
    before = _children()
    started = time.monotonic()
    with pytest.raises(LocalRunError) as failed:
        run_dag_locally(world.dag, BLANK, timeout_s=15, log_path=log)
    assert time.monotonic() - started < 15 + 60
    message = str(failed.value)
    assert "order_sync did not end within 15s" in message and "the DAG run had not ended" in message, message
    assert "state in the metadata database: running" in message and str(log) in message, message
    assert any("airflow worker -- LocalExecutor" in k for k in failed.value.killed), message  # named, killed
    assert failed.value.session_id and _gone(failed.value.session_id) == []
    assert _children() == before


@pytest.fixture
def executor(airflow_db, monkeypatch):
    """A started BoundedLocalExecutor with two idle workers and a 6 s shutdown grace."""
    monkeypatch.setenv("ORDERSYNC_EXECUTOR_SHUTDOWN_SECONDS", "6")
    from ordersync.airflow.localrun import BoundedLocalExecutor

    before = _children()
    ex = BoundedLocalExecutor(parallelism=2)
    ex.start()
    ex.children_before = before
    yield ex
    for proc in list(ex.workers.values()):  # only if a test failed before end()
        proc.kill()
        proc.join()


def _reaped(proc) -> bool:
    try:
        proc.is_alive()
    except ValueError:  # closed: it was joined (reaped), then closed
        return True
    return False


def test_executor_shutdown_ends_when_a_shutdown_message_goes_missing(executor, monkeypatch):
    """One shutdown message short (here: one worker looked gone at the instant the messages were counted, as
    Airflow's ``end()`` counts them) leaves a worker waiting for ever, and Airflow's ``end()`` joins it for
    ever. The bounded ``end()`` waits for every worker, sends the one left another message, and it exits."""
    from ordersync.airflow import localrun

    workers = list(executor.workers.values())
    assert len(workers) == 2
    real_alive, fooled = localrun._alive, []

    def alive_but_once_not(proc):
        if proc is workers[0] and not fooled:
            fooled.append(proc)
            return False
        return real_alive(proc)

    monkeypatch.setattr(localrun, "_alive", alive_but_once_not)
    started = time.monotonic()
    executor.end()
    took = time.monotonic() - started
    assert fooled, "the test did not take a message away"
    assert took < 6 + 20, took
    assert executor.forced == [], executor.forced  # the second message did it, nothing had to be killed
    assert all(_reaped(w) for w in workers)
    assert _children() == executor.children_before


def test_executor_shutdown_ends_when_a_worker_does_not_exit(executor):
    """A worker that cannot take its shutdown message (stopped here with SIGSTOP) is killed after the grace
    period, reaped, and named. When it stopped while holding the task queue's read lock (an idle worker
    waits for a message holding it), the other worker cannot read its message either and is ended too."""
    import signal

    workers = list(executor.workers.values())
    stuck = workers[0].pid
    os.kill(stuck, signal.SIGSTOP)
    started = time.monotonic()
    executor.end()
    took = time.monotonic() - started
    assert took < 6 + 20, took
    assert any(f"pid {stuck} " in w and "(stopped)" in w for w in executor.forced), executor.forced
    assert all(_reaped(w) for w in workers)
    assert _children() == executor.children_before
