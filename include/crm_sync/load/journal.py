"""The load journal: what each plan row of a run did on its target, written batch by batch.

A load task that crashed, timed out or was cleared is simply run again: rows already written
are skipped and their ids (and created pipeline stages) feed the reference resolver, so the
re-run finishes the job without a second write. The journal is also the evidence the
bookkeeping uses: snapshots advance only for pairs whose writes are journaled as done.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa

from crm_sync import staging
from crm_sync.load.writer import LoadItem, WriteOutcome

table = staging.load_journal


def done(engine: sa.Engine, run_id: str, target: str) -> dict[int, WriteOutcome]:
    """Outcomes of the rows of ``run_id`` already written to ``target``, by seq."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(table.c.seq, table.c.target_id, table.c.children).where(
                table.c.run_id == run_id, table.c.target == target, table.c.ok.is_(True)
            )
        ).all()
    return {
        int(r.seq): WriteOutcome(
            seq=int(r.seq),
            target_id=r.target_id,
            children=tuple(tuple(c) for c in json.loads(r.children or "[]")),
        )
        for r in rows
    }


def failed(engine: sa.Engine, run_id: str) -> list[tuple[str, str | None, str | None]]:
    """(target, source_id, target_id) of every row of ``run_id`` that is not written."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(table.c.target, table.c.source_id, table.c.target_id).where(
                table.c.run_id == run_id, table.c.ok.is_(False)
            )
        ).all()
    return [(str(r.target), r.source_id, r.target_id) for r in rows]


def write(
    conn: sa.Connection,
    run_id: str,
    items: Mapping[int, LoadItem],
    outcomes: Sequence[WriteOutcome],
    at: datetime,
) -> None:
    """Journal one batch's outcomes (a re-run's outcome replaces the earlier one)."""
    rows = [
        {
            "run_id": run_id,
            "target": items[o.seq].target,
            "seq": o.seq,
            "object": items[o.seq].object,
            "action": items[o.seq].action,
            "source_id": items[o.seq].source_id,
            "target_id": o.target_id or items[o.seq].target_id,
            "ok": o.ok,
            "error_code": o.error_code,
            "children": json.dumps([list(c) for c in o.children]) if o.children else None,
            "written_at": at,
        }
        for o in outcomes
    ]
    staging.upsert_on(conn, table, rows, ["run_id", "target", "seq"])
