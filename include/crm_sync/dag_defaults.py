"""Task defaults every crm-sync DAG shares (a light import: DAG files load it at parse time).

Transient failures (a CRM outage outlasting the clients' own retries, a lost worker) get two
Airflow retries with exponential backoff; errors no retry can fix fail at once instead
(:mod:`crm_sync.tasks.failfast`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "data-platform",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}
