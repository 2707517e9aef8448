"""docker-compose.yaml's structure, checked without a Docker engine (none runs on our machines).

PyYAML resolves the anchors and merge keys (``<<: *airflow-common``) as Compose does, so each service is
checked as Compose would start it: the services of Airflow 3.3's official file, the CeleryExecutor, one
JWT secret for every Airflow component, the mounts the DAGs need, the ledger in a database of its own,
healthchecks and start order, the demo profile, and no secrets written into the file.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support import ROOT

COMPOSE = ROOT / "docker-compose.yaml"
AIRFLOW = [
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
]
LONG_RUNNING = [s for s in AIRFLOW if s != "airflow-init"]
DEMO = ["ordersync-sandbox", "ordersync-demo-setup"]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _default(value: str) -> str:
    """``${VAR:-default}`` → ``default`` (what Compose uses when VAR is unset)."""
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def test_the_services_of_the_official_celery_setup(services):
    assert {"postgres", "redis", *AIRFLOW} <= set(services)
    commands = {name: services[name].get("command") for name in LONG_RUNNING}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-worker": "celery worker",
        "airflow-triggerer": "triggerer",
    }
    assert services["airflow-apiserver"]["ports"] == ["8080:8080"]
    for name in ["postgres", "redis", *AIRFLOW]:
        assert "profiles" not in services[name], f"{name} must start without a profile"


def test_celery_executor_with_postgres_and_redis_everywhere(services):
    for name in AIRFLOW:
        env = _env(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert urlsplit(_default(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])).hostname == "postgres", name
        assert (
            env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
            and "@redis:6379" in env["AIRFLOW__CELERY__BROKER_URL"]
        ), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/", (
            name
        )


def test_one_jwt_secret_reaches_every_airflow_service(services):
    secrets = {name: _env(services[name]).get("AIRFLOW__API_AUTH__JWT_SECRET") for name in AIRFLOW}
    assert None not in secrets.values(), secrets
    assert len(set(secrets.values())) == 1, secrets
    assert next(iter(secrets.values())).startswith("${"), "the JWT secret comes from the environment"


def test_dags_plugins_and_include_are_mounted(services):
    for name in LONG_RUNNING:
        mounts = services[name]["volumes"]
        for folder in ("dags", "plugins", "include"):
            assert f"./{folder}:/opt/airflow/{folder}" in mounts, f"{name} lacks ./{folder}"
    # plugins/ordersync/paths.py finds include/rules next to plugins/: both under /opt/airflow
    assert (ROOT / "include" / "rules").is_dir()


def test_the_ledger_has_a_postgres_database_of_its_own(services):
    for name in AIRFLOW:
        env = _env(services[name])
        ledger = urlsplit(_default(env["AIRFLOW_CONN_ORDERSYNC_LEDGER"]))
        metadata = urlsplit(_default(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
        assert ledger.scheme == "postgres" and ledger.hostname == "postgres", (
            name
        )  # Airflow conn_type postgres
        assert ledger.path.strip("/") == "ordersync" != metadata.path.strip("/"), name
    init = "./deploy/postgres/init-ordersync-ledger.sh:/docker-entrypoint-initdb.d/10-ordersync-ledger.sh:ro"
    assert init in services["postgres"]["volumes"]
    script = (ROOT / "deploy" / "postgres" / "init-ordersync-ledger.sh").read_text()
    assert "CREATE DATABASE ordersync OWNER ordersync" in script


def test_healthchecks_and_start_order(services):
    for name in ["postgres", "redis", *LONG_RUNNING]:
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"
    for name in AIRFLOW:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy", name
        if name != "airflow-init":
            assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert _env(services["airflow-init"])["_AIRFLOW_DB_MIGRATE"] == "true"


def test_demo_profile_serves_the_sandbox_and_sets_the_connections(services):
    from ordersync_sandbox.seed import ACME, BOLT, MERCHANT, VENDORS_VARIABLE_ENV

    for name in DEMO:
        assert services[name]["profiles"] == ["demo"], name
    sandbox = services["ordersync-sandbox"]
    assert "ordersync_sandbox serve --demo" in " ".join(sandbox["command"])
    assert _env(sandbox)["ORDERSYNC_SANDBOX_BIND"] == "0.0.0.0"
    assert _env(sandbox)["ORDERSYNC_SANDBOX_PUBLIC_HOST"] == "ordersync-sandbox"
    assert "./sandbox:/opt/ordersync/sandbox:ro" in sandbox["volumes"]
    setup = services["ordersync-demo-setup"]
    script = "\n".join(setup["command"])
    for conn_id in (MERCHANT["conn_id"], ACME["conn_id"], BOLT["conn_id"]):
        assert conn_id in script
    assert VENDORS_VARIABLE_ENV in script and "variables set ordersync_vendors" in script
    assert setup["depends_on"]["ordersync-sandbox"]["condition"] == "service_healthy"
    assert setup["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    # the demo's stores deliver webhooks to the receiver: subscriptions registered with the API server's
    # address inside the Compose network, after the DAGs are parsed
    trigger = re.search(r"airflow dags trigger ordersync_webhooks -c '(\{.*\})'", script)
    assert trigger and json.loads(trigger.group(1)) == {"callback_url": "http://airflow-apiserver:8080"}
    assert "airflow-apiserver" in services and setup["depends_on"]["airflow-dag-processor"]


def test_no_secret_is_written_into_the_file(services):
    secretish = re.compile(r"PASSWORD|SECRET|FERNET|_CONN$|SQL_ALCHEMY_CONN|RESULT_BACKEND")
    for name, service in services.items():
        for key, value in _env(service).items():
            if secretish.search(key) and not key.endswith("_FILE") and value and ":@" not in value:
                assert "${" in value, f"{name}: {key} is a literal; take it from the environment"


def test_the_image_is_the_pinned_airflow(compose):
    pin = re.search(r"^apache-airflow==([\d.]+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"FROM apache/airflow:{pin}-python3.11" in dockerfile
    assert "-r /opt/ordersync/requirements.txt -c /opt/ordersync/constraints.txt" in dockerfile
    assert compose["x-airflow-common"]["build"] == "."


def test_the_webhooks_profile_exposes_only_the_receiver(services):
    """Profile "webhooks": nginx in front of the API server forwards /ordersync/webhooks/ and answers 404 for
    everything else, so the UI, the REST API and the execution API stay private (docs/event-driven.md)."""
    proxy = services["webhook-proxy"]
    assert proxy["profiles"] == ["webhooks"]
    assert proxy["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    mount = next(v for v in proxy["volumes"] if v.endswith(":/etc/nginx/conf.d/default.conf:ro"))
    conf = (ROOT / mount.split(":", 1)[0]).read_text()
    locations = re.findall(r"location\s+(\S+)\s*\{([^}]*)\}", conf)
    assert [path for path, _ in locations] == ["/ordersync/webhooks/", "/"]
    assert "proxy_pass http://airflow-apiserver:8080;" in locations[0][1]
    assert "return 404;" in locations[1][1] and "proxy_pass" not in locations[1][1]
    assert re.search(r"client_max_body_size\s+1m;", conf)
    api_port = services["airflow-apiserver"]["ports"][0]
    assert proxy["ports"] == ["8443:8443"] and not api_port.startswith("8443")
