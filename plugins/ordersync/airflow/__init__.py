"""The only part of ordersync that imports Airflow: Variables and Connections into an Env (``config``), what the
DAG files share (``dagkit``), the run-deadline callback (``deadline``) and the local runner (``localrun``).

Every Airflow process imports the plugins folder, so these modules import Airflow's SDK and nothing heavy at
module level; the domain is imported inside the functions, when a task runs.
"""
