"""crm_backfill_opportunities: import historical Opportunities chunk by chunk (ACC-2, DEAL-9).

Wiring only; every task imports its logic from ``crm_sync.tasks.backfill`` when it runs, so
parsing this file touches no network, database or connection.

Params:
    start, end: the range of Opportunity ``CreatedDate`` to import, ``[start, end)`` (dates).
    chunk_days: days per chunk (default 30); each chunk is one mapped instance of ``chunk``.
    api_share: share of HubSpot's request rate the loads may use (default 0.5), leaving the rest to
        the hourly sync; Salesforce's daily allowance is guarded by the connection's ``api_reserve``.
    dry_run: plan every chunk and write nothing (review with ``crm-sync plan --run-id``).

``plan_chunks`` splits the range; ``chunk`` (a task group mapped over the windows) reads each
window's Opportunities with the Accounts, Contacts and contact roles they reference, and runs
``crm_sync``'s rules, validation, loads (in the pools ``salesforce_api``/``hubspot_api``) and
commit for them. A chunk a previous run finished is skipped (the chunk registry in staging), so
clearing or re-triggering the run resumes where it stopped; ``finish`` reports the progress and
fails while any chunk is undone. The hourly sync's watermarks are never moved.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, task
from crm_sync.backfill.taskgroup import chunk_group, shared_params
from crm_sync.dag_defaults import DEFAULT_ARGS


@dag(
    dag_id="crm_backfill_opportunities",
    description="Import historical Opportunities with their accounts, contacts and roles, chunk by chunk",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["crm-sync", "backfill", "salesforce", "hubspot"],
    params={
        "start": Param(
            "2024-01-01", type="string", format="date", description="First CreatedDate day imported."
        ),
        "end": Param(
            "2025-01-01", type="string", format="date", description="Day after the last one imported."
        ),
        "chunk_days": Param(30, type="integer", minimum=1, description="Days of CreatedDate per chunk."),
        **shared_params(),
    },
    doc_md=__doc__,
)
def crm_backfill_opportunities() -> None:
    @task
    def plan_chunks(**context: Any) -> list[dict[str, Any]]:
        """The windows of [start, end); the log shows how many earlier runs already finished."""
        from crm_sync.tasks import failfast
        from crm_sync.tasks.backfill import plan_opportunity_chunks

        params = context["params"]
        return failfast.run(
            plan_opportunity_chunks,
            params["start"],
            params["end"],
            params["chunk_days"],
            dag_run_id=context["run_id"],
        )

    @task(trigger_rule="all_done")
    def finish(**context: Any) -> dict[str, Any]:
        """Progress of the whole range; fails while a chunk is undone (re-trigger to resume)."""
        from crm_sync.tasks.backfill import finish_task

        return finish_task("opportunities", context)

    chunk_group().expand(chunk=plan_chunks()) >> finish()


crm_backfill_opportunities()
