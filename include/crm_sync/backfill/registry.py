"""The chunk registry: which chunks of a backfill or resync are done, with their counts.

One row per chunk key (the window, independent of DAG runs; see :mod:`.windows`). A chunk is
``running`` from its extraction until its commit, ``done`` after the commit, ``failed`` when a
step raised, and ``planned`` after a dry run (a later real run still processes it). A cleared
or re-triggered run skips ``done`` chunks, which is what makes the backfill resumable; nothing
else about a chunk is remembered, so a chunk that did not finish is simply run again (its writes
are idempotent: links stop a second create, SYNC-4 stops a second update).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from crm_sync import staging
from crm_sync.backfill.windows import Chunk

Status = Literal["running", "done", "failed", "planned"]

metadata = sa.MetaData()

table = sa.Table(
    "backfill_chunk",
    metadata,
    sa.Column("kind", sa.Text(), primary_key=True),
    sa.Column("chunk_key", sa.Text(), primary_key=True),
    sa.Column("lo", sa.Text(), nullable=False),
    sa.Column("hi", sa.Text(), nullable=False),
    sa.Column("status", sa.Text(), nullable=False),
    sa.Column("run_id", sa.Text()),
    sa.Column("dag_run_id", sa.Text()),
    sa.Column("attempts", sa.Integer(), nullable=False, default=0),
    sa.Column("records", sa.Integer(), nullable=False, default=0),
    sa.Column("counts", sa.Text()),
    sa.Column("error", sa.Text()),
    sa.Column("started_at", staging.UTCDateTime()),
    sa.Column("finished_at", staging.UTCDateTime()),
    sa.Column("duration_s", sa.Float()),
)


@dataclass(frozen=True)
class ChunkState:
    """A registry row as the tasks and progress reports read it."""

    key: str
    status: Status
    run_id: str | None
    dag_run_id: str | None
    attempts: int
    records: int
    counts: dict[str, Any]
    duration_s: float | None
    finished_at: datetime | None = None


def ensure(engine: sa.Engine) -> None:
    """Create the registry table if missing (staging's own schema first)."""
    staging.ensure_schema(engine)
    metadata.create_all(engine, checkfirst=True)


def read(engine: sa.Engine, kind: str, keys: Iterable[str] | None = None) -> dict[str, ChunkState]:
    """Registry rows of ``kind`` (all, or only ``keys``), by chunk key."""
    ensure(engine)
    stmt = sa.select(table).where(table.c.kind == kind)
    wanted = None if keys is None else list(keys)
    if wanted is not None:
        stmt = stmt.where(table.c.chunk_key.in_(wanted))
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return {
        str(r.chunk_key): ChunkState(
            key=str(r.chunk_key),
            status=r.status,
            run_id=r.run_id,
            dag_run_id=r.dag_run_id,
            attempts=int(r.attempts or 0),
            records=int(r.records or 0),
            counts=json.loads(r.counts) if r.counts else {},
            duration_s=r.duration_s,
            finished_at=r.finished_at,
        )
        for r in rows
    }


def state(engine: sa.Engine, chunk: Chunk) -> ChunkState | None:
    """The registry row of one chunk, if any run ever started it."""
    return read(engine, chunk.kind, [chunk.key]).get(chunk.key)


def state_of(engine: sa.Engine, key: str) -> ChunkState | None:
    """The registry row of the chunk with ``key`` (whatever its kind), if any."""
    kind = key.partition(":")[0]
    return read(engine, kind, [key]).get(key)


def next_attempt(engine: sa.Engine, chunk: Chunk) -> int:
    """The number the next attempt of ``chunk`` gets (1 for a chunk never started)."""
    previous = state(engine, chunk)
    return (previous.attempts if previous else 0) + 1


def start(engine: sa.Engine, chunk: Chunk, *, run_id: str, dag_run_id: str, attempt: int) -> None:
    """Mark ``chunk`` running as attempt ``attempt`` (run id ``run_id``), counts cleared."""
    ensure(engine)
    _upsert(
        engine,
        chunk,
        status="running",
        run_id=run_id,
        dag_run_id=dag_run_id,
        attempts=attempt,
        records=0,
        counts=json.dumps({}),
        error=None,
        started_at=staging.now_utc(),
        finished_at=None,
        duration_s=None,
    )


def add_counts(engine: sa.Engine, chunk: Chunk, counts: Mapping[str, Any], *, records: int = 0) -> None:
    """Merge one step's counts into the chunk's row (and add its records)."""
    current = state(engine, chunk)
    if current is None:
        raise KeyError(f"chunk {chunk.key} was never started")
    merged = {**current.counts, **dict(counts)}
    _upsert(engine, chunk, counts=staging.dumps(merged), records=current.records + records)


def resume(engine: sa.Engine, chunk: Chunk) -> None:
    """A retried step of a failed attempt: the chunk is running again (same attempt, same run id)."""
    current = state(engine, chunk)
    if current is not None and current.status == "failed":
        _upsert(engine, chunk, status="running", error=None, finished_at=None)


def finish(engine: sa.Engine, chunk: Chunk, status: Status, *, error: str | None = None) -> ChunkState:
    """Close the chunk's current attempt with ``status``; returns the final row."""
    current = state(engine, chunk)
    if current is None:
        raise KeyError(f"chunk {chunk.key} was never started")
    with engine.connect() as conn:
        started = conn.execute(
            sa.select(table.c.started_at).where(table.c.kind == chunk.kind, table.c.chunk_key == chunk.key)
        ).scalar_one()
    now = staging.now_utc()
    duration = (now - started).total_seconds() if isinstance(started, datetime) else None
    _upsert(engine, chunk, status=status, error=error, finished_at=now, duration_s=duration)
    final = state(engine, chunk)
    assert final is not None
    return final


def _upsert(engine: sa.Engine, chunk: Chunk, **values: Any) -> None:
    row = {"kind": chunk.kind, "chunk_key": chunk.key, "lo": chunk.lo, "hi": chunk.hi, **values}
    with engine.begin() as conn:
        exists = conn.execute(
            sa.select(table.c.chunk_key).where(table.c.kind == chunk.kind, table.c.chunk_key == chunk.key)
        ).first()
        if exists is None:
            conn.execute(sa.insert(table).values({"status": "running", "attempts": 0, "records": 0, **row}))
        else:
            conn.execute(
                sa.update(table)
                .where(table.c.kind == chunk.kind, table.c.chunk_key == chunk.key)
                .values(**values)
            )
