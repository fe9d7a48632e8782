"""Dead letters: per-record write failures, kept with the API's error until a later run succeeds.

The rules re-plan every record that is still out of sync on each run, so a failed write comes
back in the next run's plan and is tried again; this table remembers the failure in between,
counts the attempts and, past ``max_attempts``, holds the record back so a record the CRM will
never accept does not cost API calls every hour. ``crm-sync dead-letters`` lists the open
entries and releases held ones once the data is fixed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from crm_sync import staging
from crm_sync.load.writer import LoadItem, WriteOutcome

DEFAULT_MAX_ATTEMPTS = 5
table = staging.dead_letter


def record_key(item: LoadItem) -> str:
    """The record a row writes, stable across runs: what a later run's row for it will also name."""
    if item.object == "associations":
        f = item.fields
        ends = f"{f.get('from_type')}:{f.get('from_id')}->{f.get('to_type')}:{f.get('to_id')}"
        return f"{item.action}:{ends}:{f.get('type_id')}"
    key = item.source_id if item.action == "create" else item.target_id
    return f"{item.action}:{key}" if key else f"{item.action}:seq{item.seq}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A failed row together with the error it got."""

    item: LoadItem
    outcome: WriteOutcome


def record(conn: sa.Connection, run_id: str, failures: Sequence[DeadLetter], at: datetime) -> None:
    """Keep (or update) a dead letter per failed row; ``attempts`` counts runs, not retries."""
    for failure in failures:
        item, outcome = failure.item, failure.outcome
        key = {"target": item.target, "object": item.object, "record_key": record_key(item)}
        values = {
            "action": item.action,
            "source_id": item.source_id,
            "target_id": item.target_id,
            "fields": staging.dumps(dict(item.fields)),
            "rules": staging.dumps(list(item.rules)),
            "error_code": outcome.error_code,
            "message": outcome.message,
            "last_seen_at": at,
            "resolved_at": None,
        }
        where = sa.and_(*(table.c[k] == v for k, v in key.items()))
        existing = conn.execute(sa.select(table.c.attempts, table.c.last_run_id).where(where)).first()
        if existing is None:
            conn.execute(
                sa.insert(table).values(**key, **values, attempts=1, first_seen_at=at, last_run_id=run_id)
            )
            continue
        attempts = int(existing.attempts) + (0 if existing.last_run_id == run_id else 1)
        conn.execute(sa.update(table).where(where).values(**values, attempts=attempts, last_run_id=run_id))


def resolve(conn: sa.Connection, written: Iterable[LoadItem], at: datetime) -> int:
    """Close the open dead letters of rows that have now been written; returns how many.

    Open dead letters are few and written rows many (a backfill chunk writes 100,000s), so the
    open ones are read per object and only those written are updated.
    """
    keys: dict[tuple[str, str], set[str]] = {}
    for item in written:
        keys.setdefault((item.target, item.object), set()).add(record_key(item))
    done = 0
    for (target, obj), written_keys in keys.items():
        mine = sa.and_(table.c.target == target, table.c.object == obj, table.c.resolved_at.is_(None))
        open_keys = conn.execute(sa.select(table.c.record_key).where(mine)).scalars()
        hits = [key for key in open_keys if key in written_keys]
        for part in staging.chunked(hits, 500):
            done += (
                conn.execute(
                    sa.update(table)
                    .where(mine, table.c.record_key.in_(part))
                    .values(
                        resolved_at=at, message=sa.func.coalesce(table.c.message, "") + " [written later]"
                    )
                ).rowcount
                or 0
            )
    return done


def held(engine: sa.Engine, target: str, max_attempts: int) -> set[tuple[str, str]]:
    """(object, record_key) of open dead letters that have used up their attempts."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(table.c.object, table.c.record_key).where(
                table.c.target == target, table.c.resolved_at.is_(None), table.c.attempts >= max_attempts
            )
        ).all()
    return {(str(r.object), str(r.record_key)) for r in rows}


def supersede(conn: sa.Connection, target: str, planned: Iterable[LoadItem], at: datetime) -> int:
    """Close open dead letters whose record this run no longer plans to write: nothing is owed."""
    keys = {(i.object, record_key(i)) for i in planned}
    open_rows = conn.execute(
        sa.select(table.c.object, table.c.record_key).where(
            table.c.target == target, table.c.resolved_at.is_(None)
        )
    ).all()
    stale = [(r.object, r.record_key) for r in open_rows if (r.object, r.record_key) not in keys]
    for obj, key in stale:
        conn.execute(
            sa.update(table)
            .where(table.c.target == target, table.c.object == obj, table.c.record_key == key)
            .values(resolved_at=at, message=sa.func.coalesce(table.c.message, "") + " [no longer planned]")
        )
    return len(stale)


def release(engine: sa.Engine, target: str | None = None) -> int:
    """Give held dead letters a fresh set of attempts (after the data was fixed)."""
    stmt = sa.update(table).where(table.c.resolved_at.is_(None)).values(attempts=0)
    if target is not None:
        stmt = stmt.where(table.c.target == target)
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount or 0
