"""Owners that Salesforce's assignment rules chose, carried back to HubSpot in the same run.

When a HubSpot contact or company without an owner makes a Lead or Account (OWN-3), or the
mapping asks for the assignment rules (OWN-2), Salesforce decides the owner at creation. The
HubSpot record must show that owner too; doing it with the link write-back, instead of waiting
for the next run to notice the new owner, makes one run reach the fixed point (SYNC-4).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import pandas as pd
import sqlalchemy as sa

from crm_sync import staging
from crm_sync.load.writer import LoadItem

ASSIGNMENT_FLAG = "_use_assignment_rule"
_CHUNK = 200


@runtime_checkable
class Queryable(Protocol):
    """A writer that can also run a SOQL query (the Salesforce writer)."""

    def query(self, soql: str) -> list[dict[str, Any]]: ...


def assigned(item: LoadItem) -> bool:
    """True for a create that let Salesforce's assignment rules choose the owner."""
    return item.action == "create" and bool(item.fields.get(ASSIGNMENT_FLAG))


def hubspot_owners(engine: sa.Engine, run_id: str) -> dict[str, str]:
    """Salesforce user id -> HubSpot owner id, as the owner rules of run ``run_id`` matched them."""
    owners = staging.read_run_rows(engine, "rule_owner_sf", run_id, ("sf_user_id", "hs_owner_id"))
    return {
        str(user): str(owner)
        for user, owner in zip(owners["sf_user_id"], owners["hs_owner_id"], strict=True)
        if not pd.isna(user) and not pd.isna(owner)
    }


def owner_fields(
    reader: Queryable, engine: sa.Engine, run_id: str, created: Iterable[tuple[str, str]]
) -> Mapping[str, dict[str, str]]:
    """``{Salesforce id: {"hubspot_owner_id": …}}`` for created (object, id) pairs with a mapped owner."""
    by_object: dict[str, list[str]] = {}
    for sobject, record_id in created:
        by_object.setdefault(sobject, []).append(record_id)
    if not by_object:
        return {}
    owners = hubspot_owners(engine, run_id)
    result: dict[str, dict[str, str]] = {}
    for sobject, ids in by_object.items():
        for start in range(0, len(ids), _CHUNK):
            quoted = ", ".join(f"'{i}'" for i in ids[start : start + _CHUNK])
            for row in reader.query(f"SELECT Id, OwnerId FROM {sobject} WHERE Id IN ({quoted})"):
                owner = owners.get(str(row.get("OwnerId")))
                if owner is not None:
                    result[str(row["Id"])] = {"hubspot_owner_id": owner}
    return result
