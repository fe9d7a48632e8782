"""crm_resync_accounts: resync Account <-> company field mappings of any number of pairs (ACC-8).

Wiring only; logic is in ``crm_sync.tasks.backfill``. HubSpot's own resync of a company/account
mapping fails above 200,000 companies; this one plans the linked Accounts (``sync_link``) in Id
ranges of at most ``chunk_size`` (200,000 at most) and runs each range through ``crm_sync``'s rules,
validation, loads and commit, so every mapped field is brought in line under SYNC-2/SYNC-3 (for
example after a mapping was added). It shares the chunk registry, the staging lease, the pools
and the progress reports of ``crm_backfill_opportunities``: a finished range is skipped when the
run is cleared or re-triggered, and ``finish`` reports ranges done and the time left.

Params:
    chunk_size: linked Accounts per chunk (1..200,000).
    label: names the resync; by default the account mappings' fingerprint, so re-triggering with
        unchanged mappings resumes and skips finished ranges, and changed mappings resync all.
    api_share: share of HubSpot's request rate the loads may use (default 0.5).
    dry_run: plan every chunk; write nothing.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, task
from crm_sync.backfill.taskgroup import chunk_group, shared_params
from crm_sync.dag_defaults import DEFAULT_ARGS


@dag(
    dag_id="crm_resync_accounts",
    description="Resync Account <-> company field mappings in chunks of at most 200,000 (ACC-8)",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["crm-sync", "resync", "salesforce", "hubspot"],
    params={
        "chunk_size": Param(
            200_000, type="integer", minimum=1, maximum=200_000, description="Linked Accounts per chunk."
        ),
        "label": Param(
            "",
            type="string",
            description="Names this resync; empty: the mappings' fingerprint (same mappings resume).",
        ),
        **shared_params(),
    },
    doc_md=__doc__,
)
def crm_resync_accounts() -> None:
    @task
    def plan_chunks(**context: Any) -> list[dict[str, Any]]:
        """Id ranges of the linked Accounts; the log shows how many earlier runs finished."""
        from crm_sync.tasks import failfast
        from crm_sync.tasks.backfill import plan_account_chunks

        params = context["params"]
        return failfast.run(
            plan_account_chunks, params["chunk_size"], dag_run_id=context["run_id"], label=params["label"]
        )

    @task(trigger_rule="all_done")
    def finish(**context: Any) -> dict[str, Any]:
        """Progress of the resync; fails while a chunk is undone (re-trigger to resume)."""
        from crm_sync.tasks.backfill import finish_task

        return finish_task("accounts", context)

    chunk_group().expand(chunk=plan_chunks()) >> finish()


crm_resync_accounts()
