"""A real Airflow secrets backend that reports every lookup as a Python audit event.

The DAG integrity test configures it through ``AIRFLOW__SECRETS__BACKEND``, so a DAG file that
looks a connection or variable up while being parsed is caught by Airflow's own lookup path.
"""

from __future__ import annotations

import sys

from airflow.secrets import BaseSecretsBackend


class AuditingSecretsBackend(BaseSecretsBackend):
    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        sys.audit("crm_sync.secrets_lookup", "connection", conn_id)
        return None

    def get_variable(self, key: str, team_name: str | None = None) -> str | None:
        sys.audit("crm_sync.secrets_lookup", "variable", key)
        return None
