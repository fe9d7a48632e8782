#!/usr/bin/env bash
# One-off initialisation of a crm-sync Airflow deployment; idempotent, safe to re-run.
#
#   1. migrates Airflow's metadata database,
#   2. creates the pools crm-sync's tasks share (docker/pools.json),
#   3. stores the CRM connections given in the environment in the metadata database
#      (encrypted with the Fernet key), so they never sit in a file of the project:
#        CRM_SYNC_SALESFORCE_CONN -> salesforce_default
#        CRM_SYNC_HUBSPOT_CONN    -> hubspot_default
#      each in Airflow's JSON connection form (docs/operations.md, "Connections"); an unset
#      variable leaves that connection as it is,
#   4. validates the sync configuration ($CRM_SYNC_CONFIG), failing with the bad key's name.
#
# docker-compose.yaml's airflow-init service runs it; tests/deploy/test_celery_deployment.py runs
# the same script against a local PostgreSQL.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
airflow="${AIRFLOW_BIN:-airflow}"
python="${PYTHON_BIN:-python}"

echo "crm-sync init: migrating the metadata database"
"$airflow" db migrate

echo "crm-sync init: pools from ${here}/pools.json"
"$airflow" pools import "${here}/pools.json"

connections_file="$(mktemp --suffix=.json)"
trap 'rm -f "$connections_file"' EXIT
"$python" - "$connections_file" <<'PY'
import json
import os
import sys

wanted = {"salesforce_default": "CRM_SYNC_SALESFORCE_CONN", "hubspot_default": "CRM_SYNC_HUBSPOT_CONN"}
found = {}
for conn_id, variable in wanted.items():
    raw = os.environ.get(variable, "").strip()
    if not raw:
        continue
    try:
        found[conn_id] = json.loads(raw)
    except json.JSONDecodeError as exc:
        sys.exit(f"crm-sync init: {variable} is not Airflow's JSON connection form: {exc}")
with open(sys.argv[1], "w") as fh:
    json.dump(found, fh)
print("crm-sync init: connections from the environment:", ", ".join(found) or "none")
PY
if [[ "$(cat "$connections_file")" != "{}" ]]; then
    "$airflow" connections import --overwrite "$connections_file"
fi

echo "crm-sync init: checking the sync configuration"
"$python" -c "from crm_sync.settings import load_config; load_config(); print('crm-sync init: configuration ok')"
