"""The per-chunk task group both chunked DAGs map over (wiring only; logic is in the tasks).

``extract -> transform -> load_salesforce, load_hubspot -> commit``: the same stages as
``crm_sync``, each a task so the grid shows where a chunk is and a failed step retries alone.
Loads run in ``crm_sync``'s pools (``salesforce_api``, ``hubspot_api``), so a backfill and the
hourly sync never write to one CRM at the same time beyond the pool's slots. ``extract`` runs one
chunk at a time per run; the staging lease keeps whole chunks apart.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, task, task_group


def chunk_group() -> Any:
    """A ``@task_group`` to ``.expand(chunk=...)`` over planned chunks."""

    @task(max_active_tis_per_dagrun=1)
    def extract(chunk: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Skip a done chunk; else take the staging lease and stage the window (ACC-2, DEAL-9)."""
        from crm_sync.tasks.backfill import extract_task

        return extract_task(chunk, context)

    @task
    def transform(state: dict[str, Any]) -> dict[str, Any]:
        """crm_sync's seven rule stages and validation, for this chunk's run."""
        from crm_sync.tasks import failfast
        from crm_sync.tasks.backfill import transform_chunk

        return failfast.run(transform_chunk, state)

    def load(target: str) -> Any:
        @task(task_id=f"load_{target}", pool=f"{target}_api")
        def run_load(state: dict[str, Any]) -> dict[str, Any]:
            """Write this chunk's plan rows for one CRM (journaled; a retry resumes)."""
            from crm_sync.tasks import failfast
            from crm_sync.tasks.backfill import load_chunk

            return failfast.run(load_chunk, target, state)

        return run_load

    @task
    def commit(state: dict[str, Any]) -> dict[str, Any]:
        """Snapshots, links and backfill watermarks; the chunk is done; progress is logged."""
        from crm_sync.tasks.backfill import commit_chunk

        return commit_chunk(state)

    @task_group(group_id="chunk")
    def run_chunk(chunk: dict[str, Any]) -> None:
        state: Any = extract(chunk)  # XComArgs: resolved per mapped instance at run time
        planned: Any = transform(state)
        loads = [load("salesforce")(planned), load("hubspot")(planned)]
        loads >> commit(planned)

    return run_chunk


def shared_params() -> dict[str, Param]:
    """The params every chunked DAG takes besides its range: its API share and ``dry_run``."""
    return {
        "api_share": Param(
            0.5,
            type="number",
            exclusiveMinimum=0,
            maximum=1,
            description="Share of HubSpot's request rate the loads may use; the hourly sync keeps the rest.",
        ),
        "dry_run": Param(False, type="boolean", description="Plan every chunk; write nothing."),
    }
