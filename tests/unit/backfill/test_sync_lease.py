"""``crm_sync`` and the backfills share the staging lease (issue 16): no run plans beside another.

A non-dry ``crm_sync`` run holds the lease from its ``take_lease`` task to its end; while a running
chunk holds it the task is rescheduled, a dead holder (a run that is over, a chunk that failed
or finished) is taken over, and a chunk takes the lease over from a ``crm_sync`` run that is over.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowRescheduleException
from crm_sync import staging
from crm_sync.backfill import lease, registry
from crm_sync.backfill.windows import plan_windows
from crm_sync.tasks import runs
from crm_sync.tasks.backfill import ChunkBlockedError, take_lease, transform_chunk

CHUNK = plan_windows("2023-01-01", "2023-02-01", 31)[0]


def context(run_id: str, *, dry_run: bool = False) -> dict[str, Any]:
    return {"run_id": run_id, "params": {"dry_run": dry_run}}


def start_sync(engine: sa.Engine, run_id: str, status: str = "running") -> None:
    staging.record_run(engine, run_id, dag_id="crm_sync", status=status)


def chunk_holds_the_lease(engine: sa.Engine) -> None:
    registry.start(engine, CHUNK, run_id="bf__1", dag_run_id="bf-run", attempt=1)
    take_lease(engine, CHUNK, "bf-run")


def test_the_sync_is_rescheduled_while_a_running_chunk_holds_the_lease(engine: sa.Engine) -> None:
    chunk_holds_the_lease(engine)
    start_sync(engine, "sync-1")
    with pytest.raises(AirflowRescheduleException):
        runs.take_lease_task(context("sync-1"))
    assert lease.holder(engine) == CHUNK.key


@pytest.mark.parametrize("status", ["failed", "done", "planned"])
def test_the_sync_takes_over_from_a_chunk_that_failed_or_finished(
    engine: sa.Engine, status: registry.Status
) -> None:
    chunk_holds_the_lease(engine)
    registry.finish(engine, CHUNK, status)
    start_sync(engine, "sync-1")
    assert runs.take_lease(context("sync-1")) == {"run_id": "sync-1", "lease": "run:sync-1"}
    assert lease.holder(engine) == "run:sync-1"


def test_a_failed_chunk_whose_lease_the_sync_took_stops_at_its_next_step(engine: sa.Engine) -> None:
    chunk_holds_the_lease(engine)
    registry.finish(engine, CHUNK, "failed")
    runs.take_lease(context("sync-1"))
    with pytest.raises(ChunkBlockedError, match="lost the staging lease to 'run:sync-1'"):
        transform_chunk({"chunk": CHUNK.as_xcom(), "run_id": "bf__1"})


@pytest.mark.parametrize("status", ["succeeded", "failed", "abandoned"])
def test_the_sync_takes_over_from_a_sync_run_that_is_over(engine: sa.Engine, status: str) -> None:
    start_sync(engine, "sync-1")
    runs.take_lease(context("sync-1"))
    staging.record_run(engine, "sync-1", dag_id="crm_sync", status=status)  # ended, lease not released
    start_sync(engine, "sync-2")
    runs.take_lease(context("sync-2"))
    assert lease.holder(engine) == "run:sync-2"


def test_a_running_sync_keeps_the_lease_and_a_retry_of_its_task_renews_it(engine: sa.Engine) -> None:
    start_sync(engine, "sync-1")
    runs.take_lease(context("sync-1"))
    runs.take_lease(context("sync-1"))
    start_sync(engine, "sync-2")
    with pytest.raises(lease.LeaseBusyError, match="held by 'run:sync-1'"):
        runs.take_lease(context("sync-2"))


def test_a_dry_run_takes_no_lease(engine: sa.Engine) -> None:
    chunk_holds_the_lease(engine)
    assert runs.take_lease(context("sync-1", dry_run=True)) == {"run_id": "sync-1", "lease": None}
    assert lease.holder(engine) == CHUNK.key


@pytest.mark.parametrize("end", [runs.finish_run, runs.record_failure])
def test_the_sync_releases_the_lease_when_it_finishes_or_fails(engine: sa.Engine, end: Any) -> None:
    start_sync(engine, "sync-1")
    runs.take_lease(context("sync-1"))
    end(context("sync-1"))
    assert lease.holder(engine) is None
    chunk_holds_the_lease(engine)  # the waiting chunk gets it at once
    assert lease.holder(engine) == CHUNK.key


def test_a_chunk_waits_for_a_running_sync_and_takes_over_from_one_that_is_over(engine: sa.Engine) -> None:
    start_sync(engine, "sync-1")
    runs.take_lease(context("sync-1"))
    registry.start(engine, CHUNK, run_id="bf__1", dag_run_id="bf-run", attempt=1)
    with pytest.raises(lease.LeaseBusyError, match="held by 'run:sync-1'"):
        take_lease(engine, CHUNK, "bf-run")
    staging.record_run(engine, "sync-1", dag_id="crm_sync", status="abandoned")  # killed worker
    take_lease(engine, CHUNK, "bf-run")
    assert lease.holder(engine) == CHUNK.key
