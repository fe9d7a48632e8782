"""One ``crm_backfill_opportunities`` run in-process: the DAG's task functions in its order.

Like ``tests/integration/sync_harness.py`` for ``crm_sync``: the DAG itself runs end to end in
the slow DAG test; these tests need several runs each (a run killed mid-way, the re-trigger, a
second backfill), so they call the same functions the DAG's tasks call, chunk after chunk.

``crash`` = ``(chunk index, step)`` raises right after that step of that chunk, as a worker
killed there would leave things; ``observe(chunk key, "before"|"after")`` is called around each
chunk so tests can read the sandbox's request counts per chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_sync.tasks import backfill

DAG_ID = backfill.BACKFILL_DAG_ID
STEPS = ("extract", "transform", "load_salesforce", "load_hubspot", "commit")


class WorkerKilledError(RuntimeError):
    """Raised by the harness where a test asked it to stop, like a worker killed there."""


def run_backfill(
    dag_run_id: str,
    start: str,
    end: str,
    chunk_days: int = 30,
    *,
    dry_run: bool = False,
    crash: tuple[int, str] | None = None,
    observe: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Plan, then every chunk's steps in order; returns ``finish``'s progress report."""
    chunks = backfill.plan_opportunity_chunks(start, end, chunk_days, dag_run_id=dag_run_id)
    for chunk in chunks:
        key = backfill.Chunk.from_xcom(chunk).key
        if observe:
            observe(key, "before")
        run_chunk(chunk, dag_run_id, dry_run=dry_run, crash=crash)
        if observe:
            observe(key, "after")
    return backfill.finish("opportunities", dag_run_id=dag_run_id)


def run_resync(
    dag_run_id: str,
    chunk_size: int,
    *,
    crash: tuple[int, str] | None = None,
    observe: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """One ``crm_resync_accounts`` run (ACC-8), as :func:`run_backfill` runs the backfill."""
    chunks = backfill.plan_account_chunks(chunk_size, dag_run_id=dag_run_id)
    for chunk in chunks:
        key = backfill.Chunk.from_xcom(chunk).key
        if observe:
            observe(key, "before")
        run_chunk(chunk, dag_run_id, crash=crash, dag_id=backfill.RESYNC_DAG_ID)
        if observe:
            observe(key, "after")
    return backfill.finish("accounts", dag_run_id=dag_run_id)


def run_chunk(
    chunk: dict[str, Any],
    dag_run_id: str,
    *,
    dry_run: bool = False,
    crash: tuple[int, str] | None = None,
    dag_id: str = DAG_ID,
) -> dict[str, Any]:
    """One chunk's task group: extract, transform, both loads, commit."""

    def step(name: str) -> None:
        if crash == (chunk["index"], name):
            raise WorkerKilledError(f"killed after {name} of chunk {chunk['index']}")

    state = backfill.extract_chunk(chunk, dag_id=dag_id, dag_run_id=dag_run_id, dry_run=dry_run)
    step("extract")
    state = backfill.transform_chunk(state)
    step("transform")
    for target in ("salesforce", "hubspot"):
        backfill.load_chunk(target, state)
        step(f"load_{target}")
    result = backfill.commit_chunk(state)
    step("commit")
    return result
