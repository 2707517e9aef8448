#!/usr/bin/env bash
# Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d): the ordersync
# ledger gets a database and a role of its own, apart from Airflow's metadata database.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v ledger_password="${ORDERSYNC_LEDGER_PASSWORD:?ORDERSYNC_LEDGER_PASSWORD is not set}" <<'SQL'
CREATE ROLE ordersync LOGIN PASSWORD :'ledger_password';
CREATE DATABASE ordersync OWNER ordersync;
SQL
