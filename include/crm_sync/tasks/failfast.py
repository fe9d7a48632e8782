"""Errors no retry can fix fail a task at once, without Airflow's retries.

A wrong config key, a missing or wrong connection, an untrusted certificate or an unreachable
host fail the same way on every attempt; retrying them only delays the message by minutes and
prints the same traceback three times. The DAG's tasks run their work through :func:`run` so
these errors become ``AirflowFailException`` (no retries) carrying the original message, which
names the key or connection and the fix. Transient errors keep Airflow's retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from crm_sync.connections import CrmConnectionError
from crm_sync.settings import ConfigError
from crm_sync.staging import StagingConfigError

P = ParamSpec("P")
R = TypeVar("R")

#: Failures that are the same on every attempt.
PERMANENT: tuple[type[BaseException], ...] = (ConfigError, CrmConnectionError, StagingConfigError)


def run(work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call ``work``; a permanent failure is re-raised as ``AirflowFailException``."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return work(*args, **kwargs)
    except PERMANENT as exc:
        raise AirflowFailException(
            f"{type(exc).__name__}: {exc} (not retried: fix it and clear the task)"
        ) from exc
