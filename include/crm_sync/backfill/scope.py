"""ACC-8: keep a resync chunk's plan (and what its commit advances) inside its Account range.

The rules plan over everything staged, so the first resync chunk would otherwise plan the
updates of every linked Account, past HubSpot's 200,000-company cap. After the rules, a resync
chunk keeps only the Account <-> company ``update`` rows whose Salesforce Account Id lies in its
range ``(lo, hi]`` and, so that the commit never records a pair as synced that this chunk did
not write (SYNC-3 would then lose the change), only the proposed snapshot rows of those
Accounts; DEAL-4's cleared links are left to ``crm_sync``. Everything dropped is planned again by
the chunk that owns it, or by the hourly sync.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from crm_sync import staging
from crm_sync.backfill.windows import Chunk
from crm_sync.tasks.rules import read_stage_table

#: Plan objects of the Account <-> company pair, on either target.
ACCOUNT_OBJECTS = ("Account", "companies")


def in_range(ids: pd.Series, chunk: Chunk) -> pd.Series:
    """Where an Account Id lies in ``(lo, hi]`` (references to records to create never do)."""
    text = ids.astype("string")
    inside = (text > chunk.lo) & (text <= chunk.hi) & ~text.str.startswith("@")
    return inside.fillna(False).astype(bool)


def scope_plan(plan: pd.DataFrame, chunk: Chunk) -> pd.DataFrame:
    """The plan rows a resync chunk writes (pure; unit-tested)."""
    sf_id = plan["source_id"].where(plan["target"] == "hubspot", plan["target_id"])
    keep = plan["object"].isin(ACCOUNT_OBJECTS) & (plan["action"] == "update") & in_range(sf_id, chunk)
    return plan[keep.to_numpy()].reset_index(drop=True)


def scope_run(engine: sa.Engine, run_id: str, chunk: Chunk) -> dict[str, int]:
    """Rewrite ``run_id``'s plan, proposed snapshot and cleared links to the chunk's range."""
    plan = staging.read_plan(engine, run_id)
    kept = scope_plan(plan, chunk)
    staging.write_plan(engine, run_id, kept)
    snapshot = read_stage_table(engine, "rule_snapshot", run_id)
    if not snapshot.empty:
        snapshot = snapshot[
            (snapshot["object"] == "Account").to_numpy() & in_range(snapshot["sf_id"], chunk).to_numpy()
        ]
    staging.replace_run_rows(engine, "rule_snapshot", snapshot, run_id)
    cleared = read_stage_table(engine, "rule_cleared_links", run_id)
    staging.replace_run_rows(engine, "rule_cleared_links", cleared.iloc[0:0], run_id)
    return {"plan_rows": len(kept), "dropped": len(plan) - len(kept), "snapshot_rows": len(snapshot)}
