"""Airflow loads plugins from this folder's top level: this file hands it ordersync's plugin.

The package ``ordersync/`` itself is listed in ``.airflowignore`` (it is plain Python, imported by the DAGs).
"""

from ordersync.airflow.plugin import OrderSyncPlugin

__all__ = ["OrderSyncPlugin"]
