"""The chunk registry, the staging lease and progress: what makes a backfill resumable and safe."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from crm_sync.backfill import lease, registry
from crm_sync.backfill.progress import progress
from crm_sync.backfill.windows import plan_windows
from crm_sync.tasks.backfill import RETRY_GRACE, ChunkBlockedError, take_lease

CHUNKS = plan_windows("2023-01-01", "2023-04-01", 30)


def _start(engine: sa.Engine, index: int, dag_run_id: str) -> None:
    chunk = CHUNKS[index]
    registry.start(
        engine, chunk, run_id=f"r{index}", dag_run_id=dag_run_id, attempt=registry.next_attempt(engine, chunk)
    )


def test_a_finished_chunk_keeps_its_counts_and_a_new_attempt_is_numbered(engine: sa.Engine) -> None:
    chunk = CHUNKS[0]
    _start(engine, 0, "run-1")
    registry.add_counts(engine, chunk, {"read": {"salesforce.Opportunity": 7}}, records=7)
    registry.finish(engine, chunk, "failed", error="boom")
    _start(engine, 0, "run-2")
    registry.add_counts(engine, chunk, {"plan": {"create": 7}}, records=7)
    done = registry.finish(engine, chunk, "done")
    assert (done.status, done.attempts, done.records, done.dag_run_id) == ("done", 2, 7, "run-2")
    assert done.counts == {"plan": {"create": 7}}


def test_progress_counts_done_chunks_records_and_estimates_the_rest(engine: sa.Engine) -> None:
    for i in (0, 1):
        _start(engine, i, "run-1")
        registry.add_counts(engine, CHUNKS[i], {}, records=10 * (i + 1))
        registry.finish(engine, CHUNKS[i], "done")
    keys = [c.key for c in CHUNKS] + ["opportunities:later..chunk"]
    report = progress(keys, registry.read(engine, "opportunities"))
    assert (report.total, report.done, report.records_done, report.records_per_chunk) == (4, 2, 30, 15.0)
    assert report.eta_s is not None
    assert "2/4 chunks done (50%)" in report.line()


def test_the_lease_admits_one_holder_and_is_reentrant(engine: sa.Engine) -> None:
    assert lease.try_acquire(engine, "a")
    assert lease.try_acquire(engine, "a")
    assert not lease.try_acquire(engine, "b")
    with pytest.raises(lease.LeaseBusyError, match="held by 'a'"):
        lease.acquire(engine, "b", wait_s=0)
    assert not lease.release(engine, "b")
    assert lease.release(engine, "a")
    assert lease.try_acquire(engine, "b")


def test_a_chunk_waits_for_a_running_chunk_of_its_own_run(engine: sa.Engine) -> None:
    _start(engine, 0, "run-1")
    take_lease(engine, CHUNKS[0], "run-1")
    with pytest.raises(lease.LeaseBusyError):
        take_lease(engine, CHUNKS[1], "run-1")


def test_a_failed_chunk_of_this_run_is_waited_for_then_blocks_until_the_run_is_retriggered(
    engine: sa.Engine,
) -> None:
    _start(engine, 0, "run-1")
    take_lease(engine, CHUNKS[0], "run-1")
    failed = registry.finish(engine, CHUNKS[0], "failed", error="boom")
    assert failed.finished_at is not None
    with pytest.raises(lease.LeaseBusyError):  # Airflow may still retry it
        take_lease(engine, CHUNKS[1], "run-1", now=failed.finished_at + timedelta(minutes=5))
    with pytest.raises(ChunkBlockedError, match="re-trigger"):
        take_lease(engine, CHUNKS[1], "run-1", now=failed.finished_at + RETRY_GRACE + timedelta(seconds=1))
    take_lease(engine, CHUNKS[1], "run-2")  # the re-triggered run takes the dead run's lease over
    assert lease.holder(engine) == CHUNKS[1].key


def test_a_chunk_killed_in_an_earlier_run_gets_its_own_lease_back(engine: sa.Engine) -> None:
    _start(engine, 1, "run-1")
    take_lease(engine, CHUNKS[1], "run-1")  # killed: still "running", lease never released
    take_lease(engine, CHUNKS[1], "run-2")
    assert lease.holder(engine) == CHUNKS[1].key


def test_a_retried_step_marks_its_failed_chunk_running_again(engine: sa.Engine) -> None:
    _start(engine, 0, "run-1")
    registry.finish(engine, CHUNKS[0], "failed", error="boom")
    registry.resume(engine, CHUNKS[0])
    again = registry.state(engine, CHUNKS[0])
    assert again is not None
    assert (again.status, again.attempts) == ("running", 1)
