"""One ``crm_sync`` run in-process: the DAG's task functions in the DAG's order.

The DAG itself is run end to end by ``tests/integration/dag`` (``airflow dags test``, about 8 s of
fixed overhead per run). The load tests need many runs per test (a faulty run, a re-run, a
second run that must write nothing), so they call the same task functions the DAG's tasks call,
in the same order, against the sandbox the ``AIRFLOW_CONN_*`` variables point at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from crm_sync.catalog import HUBSPOT_STREAMS, SALESFORCE_STREAMS
from crm_sync.rules.pipeline import STAGES
from crm_sync.tasks import rules, runs
from crm_sync.tasks.extract import extract_hubspot, extract_salesforce
from crm_sync.tasks.load import commit, load_target
from crm_sync.tasks.validate import validate_plan


def context(run_id: str, n: int = 0, *, dry_run: bool = False) -> dict[str, Any]:
    """The slice of an Airflow task context the crm_sync tasks read.

    Run ``n`` ends ``n`` hours from now, like successive hourly runs: each interval ends after
    everything the earlier runs wrote, so the next run's extraction reads those writes back.
    """
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=n)
    return {
        "run_id": run_id,
        "dag_id": "crm_sync",
        "params": {"dry_run": dry_run},
        "logical_date": end,
        "data_interval_start": end - timedelta(hours=1),
        "data_interval_end": end,
    }


def plan_run(run_id: str, n: int = 0, *, dry_run: bool = False) -> dict[str, Any]:
    """start_run, every extraction task, every rule stage and validate; returns the task context."""
    ctx = context(run_id, n, dry_run=dry_run)
    runs.start_run(ctx)
    for stream in SALESFORCE_STREAMS:
        extract_salesforce(stream.name, run_id=run_id)
    for hs_stream in HUBSPOT_STREAMS:
        if hs_stream.name != "pipeline_stages":
            extract_hubspot(hs_stream.name, run_id=run_id)
    for stage in STAGES:
        rules.run_stage(stage, run_id=run_id)
    validate_plan(run_id)
    return ctx


def load_run(run_id: str) -> dict[str, dict[str, Any]]:
    """Both load tasks (Salesforce first, as a worker might pick them), then the commit."""
    return {target: load_target(target, run_id=run_id) for target in ("salesforce", "hubspot")}


def sync(run_id: str, n: int = 0) -> dict[str, dict[str, Any]]:
    """A whole non-dry run, as the DAG runs it."""
    ctx = plan_run(run_id, n)
    loads = load_run(run_id)
    commit(run_id=run_id)
    runs.finish_run(ctx)
    return loads
