"""ACC-2 / DEAL-9: mark a window's pre-existing records as imported, so the rules sync them.

The rules let an Account or Opportunity created before ``sync_enabled_at`` sync only when it
was modified since or imported (``sync_import``). A backfill chunk imports the Opportunities
created in its window that are not deleted, the Accounts they reference and the Contacts of
their contact roles, reading the Ids from what the chunk just staged (no API call).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from crm_sync import staging
from crm_sync.backfill.windows import Chunk


def window_ids(engine: sa.Engine, chunk: Chunk) -> dict[str, list[str]]:
    """Staged Ids the window imports, by SF object (``Opportunity``, ``Account``, ``Contact``)."""
    opp = staging.RAW_TABLES["sf_opportunity"]
    role = staging.RAW_TABLES["sf_opportunity_contact_role"]
    lo, hi = chunk.window()
    in_window = sa.and_(opp.c.CreatedDate >= lo, opp.c.CreatedDate < hi, opp.c._deleted.is_(False))
    with engine.connect() as conn:
        rows = conn.execute(sa.select(opp.c.Id, opp.c.AccountId).where(in_window)).all()
        opportunity_ids = [str(r.Id) for r in rows]
        contacts = conn.execute(
            sa.select(role.c.ContactId)
            .where(role.c._deleted.is_(False), role.c.OpportunityId.in_(sa.select(opp.c.Id).where(in_window)))
            .distinct()
        ).scalars()
        contact_ids = sorted({str(c) for c in contacts if c})
    account_ids = sorted({str(r.AccountId) for r in rows if r.AccountId})
    return {"Opportunity": sorted(opportunity_ids), "Account": account_ids, "Contact": contact_ids}


def record_imports(engine: sa.Engine, ids: Mapping[str, Sequence[str]], run_id: str) -> dict[str, int]:
    """Upsert ``sync_import`` rows for ``ids``; returns rows per object."""
    at = staging.now_utc()
    counts: dict[str, int] = {}
    for obj, values in ids.items():
        rows = [{"object": obj, "sf_id": i, "imported_at": at, "run_id": run_id} for i in values]
        counts[obj] = staging.upsert_rows(engine, staging.sync_import, rows, ["object", "sf_id"])
    return counts
