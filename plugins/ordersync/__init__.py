"""ordersync: multi-vendor marketplace order sync, as plain Python behind thin Airflow DAGs."""
