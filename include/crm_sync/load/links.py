"""Links made by a load: stored in ``sync_link`` at once, and written back to the source CRM.

A create in one CRM makes a pair with the record it came from. The pair is stored right after
the batch that created it (a crash loses no link), and the source record gets the new record's
id in its link field (``HubSpot_Id__c`` in Salesforce, ``salesforce*id`` in HubSpot) in the same
run, so the next run finds both sides linked and has nothing left to write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from crm_sync import staging
from crm_sync.load.writer import LoadItem, WriteOutcome

#: HubSpot property naming the Salesforce record, per Salesforce object (the same link fields
#: extraction derives links from).
HS_LINK_PROPERTY: dict[str, str] = {obj: prop for obj, _, _, prop in staging.LINK_SOURCES}
#: HubSpot object holding the counterpart of each Salesforce object.
HS_OBJECT: dict[str, str] = {
    "Account": "companies",
    "Contact": "contacts",
    "Lead": "contacts",
    "Opportunity": "deals",
}
_HS_TO_SF = {"companies": "Account", "deals": "Opportunity"}


@dataclass(frozen=True, slots=True)
class Link:
    """A pair of records, one per CRM, for one Salesforce object."""

    object: str
    sf_id: str
    hs_id: str


def salesforce_object(item: LoadItem) -> str | None:
    """The Salesforce object a HubSpot row pairs with (contacts pair with Contacts or Leads)."""
    if item.object == "pipelines":
        return "RecordType" if item.source_id and "/" not in item.source_id else None
    if item.object == "contacts":
        for obj in ("Contact", "Lead"):
            if item.fields.get(HS_LINK_PROPERTY[obj]):
                return obj
        return None
    return _HS_TO_SF.get(item.object)


def link_of(item: LoadItem, outcome: WriteOutcome) -> Link | None:
    """The pair a successful create or link row makes, if any."""
    if not outcome.ok or item.action not in ("create", "link") or not item.source_id:
        return None
    written_id = outcome.target_id or item.target_id
    if not written_id:
        return None
    if item.target == "hubspot":
        sf_object = salesforce_object(item)
        return Link(sf_object, item.source_id, written_id) if sf_object else None
    if item.object in HS_LINK_PROPERTY:
        return Link(item.object, written_id, item.source_id)
    return None


def store(conn: sa.Connection, links: Sequence[Link], run_id: str, at: datetime) -> None:
    """Upsert pairs; a pair replaces any earlier link of either of its records (a link moves)."""
    table = staging.sync_link
    for link in links:
        conn.execute(
            sa.delete(table).where(
                table.c.object == link.object,
                sa.or_(table.c.sf_id == link.sf_id, table.c.hs_id == link.hs_id),
            )
        )
        conn.execute(
            sa.insert(table).values(
                object=link.object, sf_id=link.sf_id, hs_id=link.hs_id, linked_at=at, run_id=run_id
            )
        )


def back_link(item: LoadItem, outcome: WriteOutcome, seq: int) -> LoadItem | None:
    """The update that writes a created record's id into its source record's link field."""
    if item.action != "create" or not outcome.ok or not outcome.target_id or not item.source_id:
        return None
    if item.target == "hubspot":
        sf_object = salesforce_object(item)
        if sf_object is None or sf_object == "RecordType":
            return None
        return LoadItem(
            seq=seq,
            target="salesforce",
            object=sf_object,
            action="update",
            source_id=outcome.target_id,
            target_id=item.source_id,
            fields={staging.SF_LINK_FIELD: outcome.target_id},
            rules=("SYNC-4",),
        )
    if item.object not in HS_LINK_PROPERTY:
        return None
    return LoadItem(
        seq=seq,
        target="hubspot",
        object=HS_OBJECT[item.object],
        action="update",
        source_id=outcome.target_id,
        target_id=item.source_id,
        fields={HS_LINK_PROPERTY[item.object]: outcome.target_id},
        rules=("SYNC-4",),
    )
