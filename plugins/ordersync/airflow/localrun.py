"""Run one DAG run through Airflow's LocalExecutor from a script or a test, and always come back.

``make demo``, ``make bench`` and ``tests/e2e/test_local_runner.py`` run ``order_sync`` and ``tracking_sync``
with ``dag.test(use_executor=True)``: the real executor, real task processes, the real Execution API. Called in
the caller's own process, that call can hang for good after the DAG run has finished (``make bench`` did, for
over 6 minutes, after its first ``tracking_sync``). Airflow 3.3.2's ``LocalExecutor.end()``
(``airflow/executors/local_executor.py``, lines 251-275) puts one ``None`` "poison pill" on the task queue per
worker that ``is_alive()`` at that instant, then ``proc.join()`` s the workers one after the other with no
timeout, and its ``terminate()`` does nothing. A worker that never gets a pill, or cannot take it, keeps the
caller in ``join()`` for ever while the workers that did exit stay zombies behind it; and since an idle worker
waits in ``SimpleQueue.get()`` holding the queue's read lock, one stuck worker also keeps the others from
their pills. ``dag.test`` (``airflow/sdk/definitions/dag.py``, lines 1389-1480) calls ``end()`` after its loop,
outside any ``finally``: an error in the loop leaves the workers behind, and as they are not daemons the
interpreter then waits for them at exit. The workers are also forked from the caller, with whatever it holds
at that moment: the demo's sandbox HTTP server threads, the benchmark's sampler thread, SQLite connections of
the sync ledger, every open file.

:func:`run_dag_locally` therefore runs ``dag.test(use_executor=True)`` in a fresh interpreter of its own:

* in a new session, so every process of the run (the runner, its executor workers, their task processes) can
  be found and ended by session id, whatever happens;
* with :class:`BoundedLocalExecutor`, a ``LocalExecutor`` whose ``end()`` waits a bounded time for the workers
  to take their pills, sends more pills, then terminates and kills what is left, reaping every worker (no
  zombies); what it had to force is reported back;
* with its stdout and stderr (Airflow's own log lines, the workers' and the task processes' output) in a log
  file, so the caller's console only shows the caller's own lines;
* under a deadline: a run that does not end in ``timeout_s`` is ended, every process in its session killed,
  and :class:`LocalRunError` raised naming the DAG, the run's state in the metadata database, the processes
  it had to kill and the log file.

The run's facts (run id, state, the ``dag.test`` wall time, its task instances) come back as a
:class:`LocalRun`. The caller needs the same environment as for ``dag.test`` (``AIRFLOW_HOME``, a migrated
metadata database, the connections and Variables) plus an Execution API server: :func:`api_server`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ordersync.paths import project_root

EXECUTOR_PATH = "ordersync.airflow.localrun.BoundedLocalExecutor"
SHUTDOWN_SECONDS_ENV = "ORDERSYNC_EXECUTOR_SHUTDOWN_SECONDS"
DEFAULT_SHUTDOWN_SECONDS = 30.0


class LocalRunError(RuntimeError):
    """The DAG run did not end in time, or its runner failed before the DAG run ended."""

    def __init__(self, message: str, *, session_id: int = 0, killed: list[str] | None = None) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.killed = killed or []


@dataclass
class LocalRun:
    dag_id: str
    run_id: str
    state: str
    seconds: float  # the dag.test call itself: scheduling and executor shutdown included
    total_seconds: float  # plus the runner's interpreter start and DAG parsing
    log_path: Path
    task_instances: list[dict[str, Any]] = field(default_factory=list)
    forced_shutdown: list[str] = field(default_factory=list)  # workers the executor had to terminate
    leftovers: list[str] = field(default_factory=list)  # processes still alive after the runner exited
    session_id: int = 0  # the runner's session: every process of the run


# ======================================================================================================
# The executor: LocalExecutor with a shutdown that ends
# ======================================================================================================
_started: list[Any] = []  # executors started and not yet ended, in this process
_ended: list[Any] = []  # executors ended in this process (what each had to force)


def __getattr__(name: str) -> Any:
    # The class derives from Airflow's LocalExecutor; built on first use so that the scripts importing this
    # module do not import (and configure) Airflow in their own process.
    if name == "BoundedLocalExecutor":
        cls = _bounded_local_executor()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _bounded_local_executor() -> type:
    import multiprocessing.connection

    from airflow.executors.local_executor import LocalExecutor

    class BoundedLocalExecutor(LocalExecutor):
        """``LocalExecutor`` whose ``end()`` returns within ``ORDERSYNC_EXECUTOR_SHUTDOWN_SECONDS`` (+ 20 s).

        Airflow's ``end()`` puts one pill per worker it sees alive at that instant and joins each worker
        without a timeout. Here the pills go out the same way, then the workers are waited for together,
        draining the result queue meanwhile; halfway through the grace period each worker still alive gets
        another pill (a pill lost, or taken by a process that is not one of the workers, costs nothing then);
        at its end the rest are sent SIGTERM, then SIGKILL, and every worker is reaped. Only idle or exiting
        workers can be left by then: ``dag.test`` calls ``end()`` once the DAG run has finished.
        """

        def start(self) -> None:
            super().start()
            self.forced: list[str] = []
            _started.append(self)

        def end(self) -> None:
            if self in _started:
                _started.remove(self)
            _ended.append(self)
            grace = float(os.environ.get(SHUTDOWN_SECONDS_ENV, DEFAULT_SHUTDOWN_SECONDS))
            self.log.info(
                "Shutting down LocalExecutor: %d worker(s), at most %.0fs", len(self.workers), grace
            )
            workers = list(self.workers.values())
            alive = [p for p in workers if _alive(p)]
            for _ in alive:
                self.activity_queue.put(None)
            started = time.monotonic()
            resent = False
            while alive:
                self._drain_results()
                alive = [
                    p for p in workers if _alive(p)
                ]  # all of them; is_alive() reaps the ones that exited
                waited = time.monotonic() - started
                if not alive or waited >= grace:
                    break
                if not resent and waited >= grace / 2:
                    self.log.warning(
                        "LocalExecutor worker(s) %s still running %.0fs after the shutdown "
                        "message; sending another",
                        "; ".join(_describe(p.pid) for p in alive),
                        waited,
                    )
                    for _ in alive:
                        self.activity_queue.put(None)
                    resent = True
                multiprocessing.connection.wait([p.sentinel for p in alive], timeout=0.5)
            if alive:
                self.forced = [_describe(p.pid) for p in alive]
                self.log.error(
                    "LocalExecutor worker(s) still running %.0fs after the run ended; terminating them: %s",
                    grace,
                    "; ".join(self.forced),
                )
                for p in alive:
                    p.terminate()
                for p in alive:
                    p.join(5)
                for p in alive:
                    if p.is_alive():
                        p.kill()
                        p.join(5)
            for p in workers:
                try:
                    p.close()
                except ValueError:  # still running after SIGKILL: the session kill is the last word
                    pass
            self.workers = {}
            self._drain_results()
            self.activity_queue.close()
            self.result_queue.close()

        def _drain_results(self) -> None:
            try:
                self._read_results()
            except (EOFError, OSError):  # a worker killed halfway through a message
                pass

    BoundedLocalExecutor.__module__ = __name__
    BoundedLocalExecutor.__qualname__ = "BoundedLocalExecutor"
    return BoundedLocalExecutor


def _end_started_executors() -> None:
    """End executors that were started and never ended (``dag.test`` raised before its ``end()``)."""
    for executor in list(_started):  # a copy: end() removes the executor from _started
        executor.end()


def _alive(proc: Any) -> bool:
    try:
        return proc.is_alive()
    except ValueError:  # closed
        return False


# ======================================================================================================
# Processes of a session (/proc: Linux)
# ======================================================================================================
def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, session id) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2 :].split()  # the command may contain spaces and parentheses
    return rest[0], int(rest[1]), int(rest[3])


def _describe(pid: int | None) -> str:
    if pid is None:
        return "(a worker not started)"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            title = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        title = ""
    st = _stat(pid)
    state = {"Z": " (zombie)", "T": " (stopped)"}.get(st[0], "") if st else " (gone)"
    return f"pid {pid} {title[:100] or '?'!r}{state}"


def session_processes(sid: int) -> list[int]:
    """Pids of the processes whose session is ``sid`` (zombies included)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[2] == sid:
                found.append(int(entry))
    return sorted(found)


def _kill_session(sid: int, wait_s: float = 10.0) -> list[str]:
    """SIGTERM, then SIGKILL, every live process of session ``sid``; returns what it found alive."""
    live = [pid for pid in session_processes(sid) if (_stat(pid) or ("Z",))[0] != "Z"]
    described = [_describe(pid) for pid in live]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            live = [pid for pid in session_processes(sid) if (_stat(pid) or ("Z",))[0] != "Z"]
            if not live:
                return described
            time.sleep(0.1)
    return described


# ======================================================================================================
# The caller's side
# ======================================================================================================
def run_dag_locally(
    dag: Any,
    run_conf: dict[str, Any] | None = None,
    *,
    timeout_s: float = 600.0,
    log_path: str | Path | None = None,
    dag_folder: str | Path | None = None,
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_SECONDS,
) -> LocalRun:
    """Run one DAG run of ``dag`` (a DAG or its id) on the LocalExecutor, in a runner process of its own.

    Returns when the run has ended and every process it started is gone; raises :class:`LocalRunError` when
    it has not ended within ``timeout_s`` (everything it started is then killed) or the runner failed. The
    run's state is the caller's to judge: a failed DAG run is returned, not raised. Airflow's output goes to
    ``log_path`` (appended; default ``$AIRFLOW_HOME/local-runs.log``).
    """
    dag_id = dag if isinstance(dag, str) else dag.dag_id
    folder = Path(dag_folder or os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or project_root() / "dags")
    home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    log = Path(log_path) if log_path else home / "local-runs.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ordersync-run-") as tmp:
        result_path = Path(tmp) / "result.json"
        env = os.environ.copy()
        plugins = str(project_root() / "plugins")
        env["PYTHONPATH"] = os.pathsep.join([plugins, *filter(None, [env.get("PYTHONPATH")])])
        env["AIRFLOW__CORE__EXECUTOR"] = EXECUTOR_PATH
        env[SHUTDOWN_SECONDS_ENV] = str(shutdown_grace_s)
        cmd = [
            sys.executable,
            "-m",
            "ordersync.airflow.localrun",
            "--dag-id",
            dag_id,
            "--dag-folder",
            str(folder),
            "--conf",
            json.dumps(run_conf or {}),
            "--result",
            str(result_path),
        ]
        started = time.monotonic()
        with open(log, "a") as out:
            out.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} run_dag_locally({dag_id!r}) =====\n")
            out.flush()
            runner = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        sid = runner.pid
        try:
            runner.wait(timeout=timeout_s)
        except BaseException as exc:  # the deadline, or Ctrl-C in the caller: end the whole run either way
            killed = _kill_session(sid)
            runner.wait()
            state = _state_in_db(dag_id, started)
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise
            where = (
                "the DAG run had ended, Airflow's LocalExecutor was still shutting down"
                if state in ("success", "failed")
                else "the DAG run had not ended"
            )
            raise LocalRunError(
                f"{dag_id} did not end within {timeout_s:.0f}s ({where}; its state in the metadata database: "
                f"{state or 'no run found'}). Killed {len(killed)} process(es) left by the run: "
                f"{'; '.join(killed) or 'none'}. Airflow's log: {log}",
                session_id=sid,
                killed=killed,
            ) from None
        leftovers = _kill_session(sid)  # the runner is gone; nothing of its session may outlive it
        total = time.monotonic() - started
        result = json.loads(result_path.read_text()) if result_path.exists() else {}
    if "state" not in result:
        raise LocalRunError(
            f"the runner for {dag_id} exited with code {runner.returncode} before the DAG run "
            f"ended: {result.get('error') or 'no result'}; see Airflow's log: {log}",
            session_id=sid,
            killed=leftovers,
        )
    return LocalRun(
        dag_id=dag_id,
        run_id=result["run_id"],
        state=result["state"],
        seconds=result["seconds"],
        total_seconds=round(total, 2),
        log_path=log,
        task_instances=result["task_instances"],
        forced_shutdown=result.get("forced_shutdown", []),
        leftovers=leftovers,
        session_id=sid,
    )


def _state_in_db(dag_id: str, since_monotonic: float) -> str | None:
    """The state of ``dag_id``'s newest test run started after the call (for the timeout message)."""
    try:
        code = (
            "import sys, json\n"
            "from airflow.models.dagrun import DagRun\n"
            "runs = DagRun.find(dag_id=sys.argv[1])\n"
            "runs = [r for r in runs if r.start_date and r.start_date.timestamp() >= float(sys.argv[2])]\n"
            "runs.sort(key=lambda r: r.start_date)\n"
            "print(json.dumps(str(getattr(runs[-1].state, 'value', runs[-1].state)) if runs else None))\n"
        )
        since = time.time() - (time.monotonic() - since_monotonic) - 5
        done = subprocess.run(
            [sys.executable, "-c", code, dag_id, str(since)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except Exception:
        return None


# ======================================================================================================
# What a LocalExecutor run needs besides the DAG: a migrated metadata database and an Execution API server
# ======================================================================================================
def migrate_metadata_db() -> None:
    """``airflow db migrate`` for ``$AIRFLOW_HOME`` in a subprocess (its output only shown when it fails)."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise LocalRunError("airflow db migrate failed:\n" + done.stdout[-2000:] + done.stderr[-4000:])


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def api_server(log_path: str | Path, timeout_s: float = 120.0) -> Iterator[str]:
    """Airflow's API server on loopback, for the LocalExecutor's task processes to report to.

    Sets ``AIRFLOW__API_AUTH__JWT_SECRET`` and ``AIRFLOW__CORE__EXECUTION_API_SERVER_URL`` in ``os.environ``
    (the runs started meanwhile inherit them) and restores them afterwards; yields the server's base URL.
    """
    import secrets
    import urllib.request

    port = _free_port()
    names = ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL")
    saved = {name: os.environ.get(name) for name in names}
    os.environ[names[0]] = secrets.token_hex(32)
    os.environ[names[1]] = f"http://127.0.0.1:{port}/execution/"
    log = Path(log_path)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise LocalRunError(f"Airflow's API server did not start; see {log}") from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ======================================================================================================
# The runner process
# ======================================================================================================
def _runner_main(argv: list[str]) -> int:
    import argparse
    import logging
    import traceback

    parser = argparse.ArgumentParser()
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--dag-folder", required=True)
    parser.add_argument("--conf", default="{}")
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    result_path = Path(args.result)
    try:
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(dag_folder=args.dag_folder)
        if args.dag_id not in bag.dags:
            raise RuntimeError(
                f"no DAG {args.dag_id!r} in {args.dag_folder}; import errors: {bag.import_errors}"
            )
        logging.getLogger("ordersync").setLevel(logging.INFO)
        started = time.monotonic()
        try:
            dag_run = bag.dags[args.dag_id].test(use_executor=True, run_conf=json.loads(args.conf))
        finally:
            _end_started_executors()
        seconds = time.monotonic() - started
        tis = [
            {
                "id": str(ti.id),
                "task_id": ti.task_id,
                "map_index": ti.map_index,
                "state": str(getattr(ti.state, "value", ti.state)),
                "start_date": ti.start_date.isoformat() if ti.start_date else None,
                "end_date": ti.end_date.isoformat() if ti.end_date else None,
            }
            for ti in dag_run.get_task_instances()
        ]
        forced = [w for ex in _ended for w in getattr(ex, "forced", [])]
        result = {
            "run_id": dag_run.run_id,
            "state": str(getattr(dag_run.state, "value", dag_run.state)),
            "seconds": round(seconds, 2),
            "task_instances": tis,
            "forced_shutdown": forced,
        }
        code = 0
    except BaseException as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
        code = 1
    result_path.write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    return code


if __name__ == "__main__":
    # Run as ``python -m ordersync.airflow.localrun``: work in the ``ordersync.airflow.localrun`` module itself, the one the
    # ExecutorLoader imports the executor from, not in a second copy named ``__main__``.
    from ordersync.airflow import localrun

    raise SystemExit(localrun._runner_main(sys.argv[1:]))
