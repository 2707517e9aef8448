"""DAG integrity: the bag loads, the contract's names and params are there, files parse fast."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.support import ROOT

DAG_FILES = sorted((ROOT / "dags").glob("*.py"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "order_sync" in dagbag.dags


def test_order_sync_contract(dagbag):
    dag = dagbag.dags["order_sync"]
    assert set(dag.params.keys()) == {"order_ids", "vendors", "dry_run"}
    assert dag.params["order_ids"] == [] and dag.params["vendors"] == [] and dag.params["dry_run"] is False
    assert dag.max_active_runs == 1 and dag.doc_md
    push = dag.get_task("push_vendor_orders")
    assert push.map_index_template == "{{ vendor }}"
    assert [t.task_id for t in dag.topological_sort()][:3] == ["validate_settings", "fetch_orders", "decide"]
    for task in dag.tasks:
        assert task.retries >= 0


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_fast(path):
    """Each DAG file imports in under 0.5 s once Airflow itself is loaded (no Variable, network or heavy import)."""
    code = textwrap.dedent(f"""
        import importlib.util, sys, time
        sys.path[:0] = [{str(ROOT / 'plugins')!r}, {str(ROOT / 'dags')!r}]
        import airflow.sdk  # Airflow's own import cost is not the DAG file's
        start = time.perf_counter()
        spec = importlib.util.spec_from_file_location("dag_under_test", {str(path)!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(time.perf_counter() - start)
        print("modules:" + ",".join(sorted({{m.split(".")[0] for m in sys.modules}} & {{"ordersync", "requests"}})))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    seconds, modules = done.stdout.strip().splitlines()[-2:]
    assert float(seconds) < 0.5, f"{path.name} took {float(seconds):.3f}s to import"
    assert modules == "modules:", f"{path.name} imports {modules} at parse time"
