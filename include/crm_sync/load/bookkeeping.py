"""After both loads: advance what the next run compares against, only for what was written.

``sync_snapshot`` holds the last-synced value of each mapped field of each linked pair (SYNC-3
decides conflicts against it). The rules propose the new snapshot (``rule_snapshot``); it is
applied here for the pairs whose writes all succeeded, because a snapshot advanced past an
unwritten change would make the next run take the other side's value and lose that change.
References to records created this run are resolved through the journal. DEAL-6's association
snapshot is stored, DEAL-4's cleared links are applied, and the extraction watermarks advance
last (SYNC-1).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa

from crm_sync import staging
from crm_sync.load import journal
from crm_sync.load.refs import RefResolver, UnresolvedReferenceError

SNAPSHOT_KEY = ["object", "sf_id", "sf_field"]


def _resolver(engine: sa.Engine, run_id: str) -> RefResolver:
    resolver = RefResolver.for_run(engine, run_id)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(journal.table.c.object, journal.table.c.source_id, journal.table.c.target_id).where(
                journal.table.c.run_id == run_id,
                journal.table.c.action == "create",
                journal.table.c.ok.is_(True),
            )
        ).all()
    for row in rows:
        resolver.created(str(row.object), row.source_id, row.target_id)
    return resolver


def _resolved(resolver: RefResolver, value: Any) -> Any:
    try:
        return resolver.resolve(value)
    except UnresolvedReferenceError:
        return None


def advance_snapshot(engine: sa.Engine, run_id: str) -> int:
    """Upsert this run's proposed snapshot rows for pairs with no unwritten row; returns rows."""
    proposed = staging.read_run_rows(engine, "rule_snapshot", run_id)
    if proposed.empty:
        return 0
    resolver = _resolver(engine, run_id)
    proposed["sf_id"] = [_resolved(resolver, v) for v in proposed["sf_id"]]
    proposed["hs_id"] = [_resolved(resolver, v) for v in proposed["hs_id"]]
    pending_sf: set[str | None] = set()
    pending_hs: set[str | None] = set()
    for target, source_id, target_id in journal.failed(engine, run_id):
        sf_id, hs_id = (target_id, source_id) if target == "salesforce" else (source_id, target_id)
        pending_sf.add(sf_id)
        pending_hs.add(hs_id)
    keep = (
        proposed["sf_id"].notna()
        & proposed["hs_id"].notna()
        & ~proposed["sf_id"].isin(pending_sf)
        & ~proposed["hs_id"].isin(pending_hs)
    )
    rows: list[dict[str, Any]] = [
        {**{str(k): (None if pd.isna(v) else v) for k, v in rec.items()}, "run_id": run_id}
        for rec in proposed[keep].to_dict("records")
    ]
    for row in rows:
        row["synced_at"] = pd.Timestamp(row["synced_at"]).to_pydatetime() if row["synced_at"] else None
        row["value"] = None if row["value"] is None else str(row["value"])
    return staging.upsert_rows(engine, staging.sync_snapshot, rows, SNAPSHOT_KEY)


def clear_links(engine: sa.Engine, run_id: str) -> int:
    """DEAL-4: drop the links of deals deleted in HubSpot whose Opportunity was kept."""
    cleared = staging.read_run_rows(engine, "rule_cleared_links", run_id)
    if cleared.empty:
        return 0
    table = staging.sync_link
    with engine.begin() as conn:
        for rec in cleared.itertuples(index=False):
            conn.execute(sa.delete(table).where(table.c.object == rec.object, table.c.sf_id == rec.sf_id))
    return len(cleared)


def commit_run(engine: sa.Engine, run_id: str) -> dict[str, Any]:
    """Snapshots (fields, DEAL-6 associations), cleared links and watermarks of a finished load."""
    from crm_sync.tasks.rules import advance_association_snapshot

    return {
        "snapshot_rows": advance_snapshot(engine, run_id),
        "association_snapshot_rows": advance_association_snapshot(engine, run_id),
        "cleared_links": clear_links(engine, run_id),
        "watermarks": staging.commit_watermarks(engine, run_id),
    }
