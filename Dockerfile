# The Airflow image docker-compose.yaml runs: the official Apache Airflow 3.3.2 image plus ordersync's
# pinned runtime requirements. dags/, plugins/ and include/ are mounted by docker-compose.yaml (not copied),
# so a code change needs no rebuild; a changed requirements.txt or constraints.txt does
# (docker compose build).
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.txt constraints.txt /opt/ordersync/
RUN pip install --no-cache-dir -r /opt/ordersync/requirements.txt -c /opt/ordersync/constraints.txt
