"""A whole local Airflow stack for ordersync: the sandbox stores plus Airflow's own processes.

Used by the distributed (CeleryExecutor) test, the browser test and ``make up``::

    with Stack(executor="celery") as stack:          # PostgreSQL + Redis on 127.0.0.1
        run_id = stack.trigger("order_sync", {"order_ids": ["#1001"]})
        assert stack.wait_for_run("order_sync", run_id) == "success"
        print(stack.task_log("order_sync", run_id, "push_vendor_orders", map_index=0))

What it starts, on free ports and with a temporary ``AIRFLOW_HOME`` (nothing is shared with another
run on the same machine):

* the sandbox stores (merchant on Shopify, Acme Tools on Shopify, Bolt Supply on WooCommerce) with
  the demo orders, in this process; ``stack.stores`` gives their Python API;
* ``executor="celery"``: a fresh PostgreSQL database for Airflow's metadata and another for the
  ordersync ledger (connection ``ordersync_ledger``), both dropped on stop; a Celery queue of its
  own on a Redis database of its own (``ORDERSYNC_STACK_REDIS_URL``, default
  ``redis://127.0.0.1:6379/5``); processes ``api-server``, ``scheduler``, ``dag-processor`` and
  ``celery worker``;
* ``executor="local"``: SQLite metadata database and ledger in the home folder, the LocalExecutor
  inside the scheduler; processes ``api-server``, ``scheduler`` and ``dag-processor``.

Every process runs in a process group of its own and is stopped with it; its output goes to
``<home>/logs/<name>.log`` (``stack.tail()`` prints the ends). The UI and REST API log in with
SimpleAuthManager user ``admin`` / password ``admin`` (``ORDERSYNC_STACK_PASSWORD`` changes it); user
``viewer`` (role ``viewer``: read-only) has a password made up per stack (``stack.viewer_password``).

``python scripts/stack.py`` (``make up``) starts it and serves until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get(
    "ORDERSYNC_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ORDERSYNC_STACK_REDIS_URL", "redis://127.0.0.1:6379/5")
USER = "admin"
VIEWER = "viewer"  # SimpleAuthManager role viewer: reads everything, changes nothing
TERMINAL = {"success", "failed"}

for _path in (ROOT / "plugins", ROOT / "sandbox", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from ordersync.paths import local_airflow  # noqa: E402 - importable once plugins/ is on the path


class StackError(RuntimeError):
    """The stack did not start or did not answer; the message names the process and its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_reachable(url: str = REDIS_URL) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_connect_timeout=3).ping())
    except Exception:
        return False


def _pg_admin(url: str) -> Any:
    import psycopg2
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = psycopg2.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password,
        dbname=u.database or "postgres",
        connect_timeout=3,
    )
    conn.autocommit = True
    return conn


def _db_url(admin_url: str, database: str, driver: str = "postgresql+psycopg2") -> str:
    """``database`` on the admin URL's server; ``driver="postgres"`` gives Airflow's connection URI form
    (conn_type postgres)."""
    from sqlalchemy.engine import make_url

    return make_url(admin_url).set(drivername=driver, database=database).render_as_string(hide_password=False)


class Stack:
    """Start with ``start()`` (or ``with``); ``stop()`` ends every process and drops what it created."""

    def __init__(
        self,
        executor: str = "celery",
        home: Path | None = None,
        port: int | None = None,
        schedule: bool = False,
        password: str | None = None,
        extra_env: dict[str, str] | None = None,
        worker_concurrency: int = 4,
        webhooks: bool = False,
        tick_cron: str | None = None,
    ) -> None:
        if executor not in ("celery", "local"):
            raise ValueError("executor is 'celery' or 'local'")
        self.executor = executor
        self.tag = uuid.uuid4().hex[:10]
        self._own_home = home is None
        self.home = Path(home) if home else Path(tempfile.mkdtemp(prefix="ordersync-stack-"))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.schedule = schedule
        self.password = password or os.environ.get("ORDERSYNC_STACK_PASSWORD", "admin")
        self.viewer_password = secrets.token_urlsafe(12)
        self.extra_env = dict(extra_env or {})
        self.worker_concurrency = worker_concurrency
        self.webhooks = webhooks  # register the stores' webhook subscriptions through ordersync_webhooks
        self.tick_cron = tick_cron  # ORDERSYNC_TICK_CRON: the DAGs' tick (default every 5 minutes)
        self.processes: dict[str, subprocess.Popen] = {}
        self.databases: list[str] = []
        self.sandbox: Any = None
        self.stores: dict[str, Any] = {}
        self.env: dict[str, str] = {}
        self.ledger_url = ""  # SQLAlchemy URL of the ordersync ledger this stack's tasks write
        self._tokens: dict[str, str] = {}
        self._session: Any = None

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    def start(self, timeout: float = 240) -> Stack:
        from ordersync_sandbox import Sandbox
        from ordersync_sandbox.seed import seed_demo

        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.sandbox = Sandbox()
        seeded = seed_demo(self.sandbox)
        self.stores = seeded["stores"]
        self.env = self._environment(seeded["env"])
        self._run(["db", "migrate"], "db-migrate", timeout=300)
        self._spawn("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.port)])
        self._spawn("scheduler", ["scheduler"])
        self._spawn("dag-processor", ["dag-processor"])
        if self.executor == "celery":
            self._spawn(
                "celery-worker",
                [
                    "celery",
                    "worker",
                    "--queues",
                    self.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"],
                    "--concurrency",
                    str(self.worker_concurrency),
                    "--celery-hostname",
                    f"ordersync-{self.tag}@%h",
                    "--without-mingle",
                    "--without-gossip",
                ],
            )
        deadline = time.monotonic() + timeout
        self._wait(lambda: self._get_ok("/api/v2/monitor/health"), deadline, "the API server to answer")
        self._wait(
            lambda: self._dags_parsed(("order_sync", "tracking_sync")),
            deadline,
            "the dag-processor to parse order_sync and tracking_sync",
        )
        if self.executor == "celery":
            self._wait(self._worker_ready, deadline, "the Celery worker to listen on its queue")
        if self.webhooks:
            self.subscribe_webhooks(timeout=max(30.0, deadline - time.monotonic()))
        return self

    def subscribe_webhooks(self, timeout: float = 120) -> str:
        """Run ``ordersync_webhooks`` as an operator would (REST API trigger, ``callback_url`` = this API
        server): every sandbox store then delivers its webhooks to the receiver. Returns the run id."""
        self._wait(
            lambda: self._dags_parsed(("ordersync_webhooks",)),
            time.monotonic() + timeout,
            "ordersync_webhooks",
        )
        self.api("PATCH", "/api/v2/dags/ordersync_webhooks", json={"is_paused": False})
        run_id = self.trigger("ordersync_webhooks", {"callback_url": self.url, "dry_run": False})
        state = self.wait_for_run("ordersync_webhooks", run_id, timeout=timeout)
        if state != "success":
            raise StackError(f"ordersync_webhooks {run_id} ended {state}\n{self.tail()}")
        return run_id

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self._terminate(name, self.processes[name])
        if self._session is not None:
            self._session.close()
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.databases:
            try:
                conn = _pg_admin(POSTGRES_ADMIN_URL)
                with conn.cursor() as cur:
                    for db in self.databases:
                        cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                conn.close()
            except Exception as exc:  # a leftover database is not worth failing a teardown for
                print(f"stack: could not drop {self.databases}: {exc}", file=sys.stderr)
            self.databases = []
        if self.executor == "celery" and self.env:
            try:
                import redis

                redis.Redis.from_url(REDIS_URL).delete(self.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"])
            except Exception:
                pass

    def cleanup(self) -> None:
        """Remove the temporary home (logs included); call after copying what you want to keep."""
        if self._own_home:
            shutil.rmtree(self.home, ignore_errors=True)

    def keep_logs(self, dest: Path) -> Path:
        """Copy the process logs and the task logs to ``dest`` (a test artifact)."""
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.logs_dir, dest / "logs", dirs_exist_ok=True)
        return dest

    def tail(self, lines: int = 40) -> str:
        out = []
        for name in self.processes:
            path = self.logs_dir / f"{name}.log"
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"----- {name} ({path}) -----\n" + "\n".join(text))
        return "\n".join(out)

    # ------------------------------------------------------------------ environment and processes

    def _environment(self, store_env: dict[str, str]) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_"))
        }
        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({USER: self.password, VIEWER: self.viewer_password}))
        env.update(local_airflow(self.home))
        env.update(
            {
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin,{VIEWER}:viewer",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__BASE_URL": f"{self.url}/",
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__CORE__FERNET_KEY": "",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.schedule),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
                "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"ordersync_{self.tag}",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.tick_cron:
            env["ORDERSYNC_TICK_CRON"] = self.tick_cron
        if self.executor == "celery":
            metadata, ledger = f"ordersync_it_{self.tag}", f"ordersync_it_{self.tag}_ledger"
            conn = _pg_admin(POSTGRES_ADMIN_URL)
            with conn.cursor() as cur:
                for db in (metadata, ledger):
                    cur.execute(f'CREATE DATABASE "{db}"')
                    self.databases.append(db)
            conn.close()
            metadata_url = _db_url(POSTGRES_ADMIN_URL, metadata)
            self.ledger_url = _db_url(POSTGRES_ADMIN_URL, ledger)
            env.update(
                {
                    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
                    # Airflow derives an asyncpg URL for its async engine; asyncpg is not among our pinned
                    # dependencies (the official image has it) and nothing this stack uses needs that engine
                    # (only the "wait for a run" endpoint and multi-team mode do), so it is switched off.
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": "",
                    "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
                    "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
                    "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
                    "AIRFLOW_CONN_ORDERSYNC_LEDGER": _db_url(POSTGRES_ADMIN_URL, ledger, driver="postgres"),
                }
            )
        else:
            self.ledger_url = f"sqlite:///{self.home / 'ordersync_ledger.db'}"
            env.update(
                {
                    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                    "AIRFLOW_CONN_ORDERSYNC_LEDGER": json.dumps(
                        {"conn_type": "sqlite", "extra": {"sqlalchemy_url": self.ledger_url}}
                    ),
                }
            )
        env.update(store_env)
        env.update(self.extra_env)
        return env

    def _airflow(self, args: list[str]) -> list[str]:
        return [sys.executable, "-m", "airflow", *args]

    def _run(self, args: list[str], name: str, timeout: float) -> None:
        log = self.logs_dir / f"{name}.log"
        with open(log, "w") as fh:
            done = subprocess.run(
                self._airflow(args),
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                cwd=self.home,
            )
        if done.returncode != 0:
            raise StackError(
                f"airflow {' '.join(args)} failed ({done.returncode}); log {log}:\n"
                + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            )

    def _spawn(self, name: str, args: list[str]) -> None:
        with open(self.logs_dir / f"{name}.log", "w") as fh:
            self.processes[name] = subprocess.Popen(
                self._airflow(args),
                env=self.env,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,
            )

    @staticmethod
    def _terminate(name: str, proc: subprocess.Popen) -> None:
        if proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:  # children that outlived their leader (task processes) go with the group
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def check_alive(self, during: str) -> None:
        """Raise :class:`StackError` naming the first process that exited, with the logs' ends."""
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise StackError(f"{name} exited ({proc.returncode}) {during}\n{self.tail()}")

    def _wait(self, ready: Any, deadline: float, what: str) -> None:
        while True:
            self.check_alive(f"while waiting for {what}")
            try:
                if ready():
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise StackError(f"timed out waiting for {what}\n{self.tail()}")
            time.sleep(1)

    def _worker_ready(self) -> bool:
        path = self.logs_dir / "celery-worker.log"
        return path.exists() and " ready." in path.read_text(errors="replace")

    def _dags_parsed(self, dag_ids: tuple[str, ...]) -> bool:
        for dag_id in dag_ids:
            found = self.api("GET", f"/api/v2/dags/{dag_id}", check=False)
            if found.status_code != 200 or found.json().get("is_paused"):
                return False
        return True

    # ------------------------------------------------------------------ REST API

    def _get_ok(self, path: str) -> bool:
        import requests

        return requests.get(self.url + path, timeout=5).status_code == 200

    def token(self, user: str = USER) -> str:
        """A JWT from ``POST /auth/token`` (SimpleAuthManager) for ``user``: ``admin`` or ``viewer``."""
        import requests

        if user not in self._tokens:
            passwords = {USER: self.password, VIEWER: self.viewer_password}
            if user not in passwords:
                raise ValueError(f"the stack has users {', '.join(passwords)}, not {user!r}")
            answer = requests.post(
                f"{self.url}/auth/token", json={"username": user, "password": passwords[user]}, timeout=30
            )
            if answer.status_code not in (200, 201):
                raise StackError(f"POST /auth/token ({user}): HTTP {answer.status_code}: {answer.text[:300]}")
            self._tokens[user] = answer.json()["access_token"]
        return self._tokens[user]

    def api(self, method: str, path: str, check: bool = True, user: str = USER, **kwargs: Any) -> Any:
        """A REST API request as ``user`` (Bearer token); ``check``: raise :class:`StackError` for 4xx/5xx."""
        import requests

        if self._session is None:
            self._session = requests.Session()
        headers = {"Authorization": f"Bearer {self.token(user)}", **kwargs.pop("headers", {})}
        answer = self._session.request(method, self.url + path, headers=headers, timeout=60, **kwargs)
        if check and answer.status_code >= 400:
            raise StackError(f"{method} {path}: HTTP {answer.status_code}: {answer.text[:500]}")
        return answer

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        """``POST /api/v2/dags/{dag_id}/dagRuns`` with ``conf``; returns the run id."""
        body = {"logical_date": None, "conf": conf, "note": "triggered by the ordersync stack"}
        return self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body).json()["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL:
                return state
            self.check_alive(f"during {dag_id} {run_id}")
            if time.monotonic() > deadline:
                raise StackError(f"{dag_id} {run_id} still {state} after {timeout:.0f}s\n{self.tail()}")
            time.sleep(2)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
        ).json()["task_instances"]

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task's log through ``GET …/taskInstances/{task_id}/logs/{try_number}``, one event per line."""
        answer = self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"map_index": map_index, "full_content": "true"},
            headers={"Accept": "application/json"},
        ).json()
        content = answer.get("content", [])
        if isinstance(content, str):
            return content
        lines = []
        for entry in content:
            if isinstance(entry, dict):
                lines.append(str(entry.get("event", "")))
            else:
                lines.append(str(entry))
        return "\n".join(lines)


def demo_webhook(stack: Stack, order_name: str = "#1003", timeout: float = 60) -> float | None:
    """``make up``'s proof that webhooks work: mark the demo's unpaid order paid at the merchant and time how
    long until its vendor order exists (orders/paid webhook -> receiver -> order_sync event run -> push)."""
    from ordersync.ledger import Ledger

    merchant = stack.stores["merchant"]
    order = merchant.get_order(order_name)
    if order is None:
        print(f"  (no demo order {order_name}: skipping the webhook demonstration)")
        return None
    ledger = Ledger(stack.ledger_url)
    start = time.monotonic()
    merchant.update_order(order["id"], displayFinancialStatus="PAID")
    print(
        f"\n• {order_name} marked paid in the sandbox merchant store; waiting for its vendor order",
        flush=True,
    )
    while time.monotonic() - start < timeout:
        ledger.migrate()  # the first run may not have created the ledger yet
        pushed = [p for p in ledger.pairs([order["id"]]).values() if p.state == "pushed"]
        if pushed:
            took = time.monotonic() - start
            for pair in pushed:
                print(
                    f"  ✓ {order_name} is at {pair.vendor} as {pair.vendor_order_name} {took:.1f} s after the "
                    "payment (webhook → receiver → order_sync event run)",
                    flush=True,
                )
            return took
        time.sleep(0.25)
    print(
        f"  ✗ {order_name} did not reach its vendor within {timeout:.0f} s: see {stack.logs_dir}", flush=True
    )
    return None


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(
        description="ordersync + Airflow with the sandbox stores, UI on localhost"
    )
    parser.add_argument(
        "--executor",
        choices=("local", "celery"),
        default=os.environ.get("EXECUTOR", "local"),
        help="local: LocalExecutor + SQLite (nothing to install); celery: CeleryExecutor with "
        "PostgreSQL and Redis on 127.0.0.1",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    args = parser.parse_args()
    home = ROOT / ".demo" / "stack"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    stack = Stack(executor=args.executor, home=home, port=args.port, schedule=True, webhooks=True)
    print(
        f"• starting Airflow ({'CeleryExecutor' if args.executor == 'celery' else 'LocalExecutor'}) "
        f"with the sandbox stores; logs in {stack.logs_dir}",
        flush=True,
    )
    stopping = {"now": False}

    def _stop(signum: int, frame: Any) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        stack.start()
        # An operator's own password (ORDERSYNC_STACK_PASSWORD) is never echoed; the default one is.
        shown = "from ORDERSYNC_STACK_PASSWORD" if stack.password != "admin" else "admin"
        print(f"\n  Airflow UI: {stack.url}/  (user {USER}, password {shown})")
        print(
            f"  Order Sync: {stack.url}/ordersync/  (read-only user {VIEWER}, password {stack.viewer_password})"
        )
        for name, store in stack.stores.items():
            print(f"  {name:<9} {store.platform:<12} {store.url}")
        print(
            "\n  order_sync and tracking_sync are unpaused and tick every 5 minutes; the stores' webhooks go to\n"
            f"  {stack.url}/ordersync/webhooks/<conn_id> (registered by ordersync_webhooks), so a change in a\n"
            "  sandbox store starts a run within seconds.",
            flush=True,
        )
        demo_webhook(stack)
        print(
            '\n  Open order_sync and press Trigger with order_ids ["#1001"] to run one by hand. Ctrl-C stops\n'
            "  everything.",
            flush=True,
        )
        while not stopping["now"]:
            stack.check_alive("while the stack was up")  # StackError: printed below, exit 1
            time.sleep(1)
        return 0
    except StackError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        print("• stopping", flush=True)
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(main())
