#!/usr/bin/env bash
# Write a new .env for docker-compose.yaml with freshly generated secrets (never committed).
#
#   docker/new-env.sh             # then add CRM_SYNC_SALESFORCE_CONN / CRM_SYNC_HUBSPOT_CONN
#   docker/new-env.sh --sandbox   # also point crm-sync at the bundled emulators
#
# Refuses to overwrite an existing .env: its Fernet key decrypts the stored connections.
# NEW_ENV_FILE writes elsewhere (the compose test uses it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${NEW_ENV_FILE:-${root}/.env}"
if [[ -e "$target" ]]; then
    echo "new-env: ${target} exists; remove it first to start over (its Fernet key decrypts stored connections)" >&2
    exit 1
fi
python3 - "$target" <<'PY'
import base64
import os
import secrets
import sys

values = {
    "AIRFLOW_UID": str(os.getuid()) if os.getuid() != 0 else "50000",
    "POSTGRES_PASSWORD": secrets.token_hex(16),
    # A Fernet key is 32 url-safe base64-encoded bytes.
    "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
    "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(32),
    "AIRFLOW_API_SECRET_KEY": secrets.token_urlsafe(32),
    "AIRFLOW_ADMIN_USER": "admin",
}
with open(sys.argv[1], "w") as fh:
    fh.write("# Made by docker/new-env.sh. Never commit this file.\n")
    for key, value in values.items():
        fh.write(f"{key}={value}\n")
PY
chmod 600 "$target"
if [[ "${1:-}" == "--sandbox" ]]; then
    { echo; cat "${root}/docker/sandbox.env"; } >> "$target"
    echo "new-env: wrote ${target} (sandbox connections); start with: docker compose --profile sandbox up --build"
else
    echo "new-env: wrote ${target}; add CRM_SYNC_SALESFORCE_CONN and CRM_SYNC_HUBSPOT_CONN (docs/operations.md), then: docker compose up --build"
fi
