"""Extraction for one chunk: an explicit window, never the hourly sync's watermarks.

Salesforce, per chunk kind (``window_conditions``, pure):

- ``opportunities``: the Opportunities created in ``[start, end)``, the Accounts they reference,
  their OpportunityContactRoles and those roles' Contacts. The references are SOQL semi-joins
  (``Id IN (SELECT AccountId FROM Opportunity WHERE ...)``), one query per object whatever the
  number of Ids; a semi-join may not nest another one, so Contacts filter the roles on the parent
  path ``Opportunity.CreatedDate`` instead (Salesforce SOQL reference, "Semi-Join and Anti-Join
  Limits").
- ``accounts`` (ACC-8): the Accounts with ``after < Id <= upto``.

A window is read whole, like the hourly sync reads a stream, through REST pages or, above
``extract.bulk_threshold`` rows, Bulk API 2.0. The small reference objects (User, RecordType,
OpportunityStage, Lead) and HubSpot are read incrementally under watermarks of their own
(``backfill:`` keys), so the first chunk reads them in full and later chunks only their changes,
while the hourly ``salesforce.*``/``hubspot.*`` watermarks never move.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crm_sync import staging
from crm_sync.backfill.windows import Chunk
from crm_sync.catalog import Stream, stream
from crm_sync.connections import (
    HUBSPOT_CONN_ID,
    SALESFORCE_CONN_ID,
    hubspot_errors,
    hubspot_hook,
    salesforce_batch_size,
    salesforce_client,
    salesforce_errors,
)
from crm_sync.extract.hubspot import HubSpotExtractor
from crm_sync.extract.records import RecordParser
from crm_sync.extract.salesforce import SalesforceExtractor, soql_datetime
from crm_sync.extract.sink import ExtractStats, StagingSink, log_stats
from crm_sync.settings import ExtractSettings

log = logging.getLogger(__name__)

#: Watermark key prefix of everything the backfill and the resync read incrementally.
WATERMARK_PREFIX = "backfill:"
#: Salesforce objects read incrementally (small, or needed whole for matching).
REFERENCE_OBJECTS: tuple[str, ...] = ("User", "RecordType", "OpportunityStage", "Lead")
#: HubSpot objects, all read incrementally (owners and pipelines are always read in full).
HUBSPOT_OBJECTS: tuple[str, ...] = ("owners", "pipelines", "companies", "contacts", "deals")


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def window_conditions(chunk: Chunk) -> dict[str, str]:
    """SOQL ``WHERE`` conditions of a chunk, by SObject, in extraction order (parents first)."""
    if chunk.kind == "accounts":
        lower = f"Id > {_quote(chunk.lo)} AND " if chunk.lo else ""
        return {"Account": f"{lower}Id <= {_quote(chunk.hi)}"}
    lo, hi = (soql_datetime(t) for t in chunk.window())
    created = f"CreatedDate >= {lo} AND CreatedDate < {hi}"
    via_role = f"Opportunity.CreatedDate >= {lo} AND Opportunity.CreatedDate < {hi}"
    return {
        "Account": f"Id IN (SELECT AccountId FROM Opportunity WHERE {created})",
        "Contact": f"Id IN (SELECT ContactId FROM OpportunityContactRole WHERE {via_role})",
        "Opportunity": created,
        "OpportunityContactRole": via_role,
    }


class WindowSalesforceExtractor(SalesforceExtractor):
    """Reads explicit windows (no watermark) and the reference objects (``backfill:`` keys)."""

    watermark_prefix = WATERMARK_PREFIX

    def extract_where(self, stream: Stream, where: str) -> ExtractStats:
        """Stage every record of ``stream`` matching ``where`` (deleted ones included)."""
        staging.ensure_schema(self.engine)
        stats = ExtractStats("salesforce", stream.name, stream.table)
        stats.extra["window"] = where
        fields, picklists = self.describe(stream, stats)
        sink = StagingSink(
            self.engine,
            stream,
            RecordParser(stream, picklists),
            stats,
            run_id=self.run_id,
            extracted_at=staging.now_utc(),
            chunk_size=self.settings.chunk_size,
        )
        select = f"SELECT {', '.join(fields)} FROM {stream.name} WHERE {where}"
        first = self.sf.query(f"{select} ORDER BY Id", include_deleted=True, headers=self.query_headers)
        stats.api_calls += 1
        total = int(first.get("totalSize", 0))
        if total > self.settings.bulk_threshold:
            stats.mode = "bulk"
            self._read_bulk(stream, select, sink, stats, total)
        else:
            stats.mode = "rest"
            self._read_pages(first, sink, stats)
        sink.flush()
        log.info(
            "salesforce %s window: read %d (%s), created %d, updated %d, %d API calls",
            stream.name,
            stats.read,
            stats.mode,
            stats.created,
            stats.updated,
            stats.api_calls,
        )
        log_stats(self.engine, self.run_id, stats)
        return stats

    def _read_pages(self, result: Mapping[str, Any], sink: StagingSink, stats: ExtractStats) -> None:
        while True:
            self._feed(sink, result.get("records") or [])
            if result.get("done", True) or not result.get("nextRecordsUrl"):
                return
            result = self.sf.query_more(
                result["nextRecordsUrl"], identifier_is_url=True, headers=self.query_headers
            )
            stats.api_calls += 1


class BackfillHubSpotExtractor(HubSpotExtractor):
    """HubSpot read incrementally under the ``backfill:`` watermarks."""

    watermark_prefix = WATERMARK_PREFIX


def extract_hubspot(extractor: HubSpotExtractor, name: str, until: datetime | None) -> ExtractStats:
    """One HubSpot object through ``extractor`` (owners and pipelines have their own calls)."""
    if name == "owners":
        return extractor.extract_owners()
    if name == "pipelines":
        return extractor.extract_pipelines()
    return extractor.extract_objects(stream("hubspot", name), until=until)


def seed_watermark(engine: Engine, key: str, at: datetime) -> bool:
    """Start the ``backfill:`` watermark of a window object at ``at`` if it has none.

    Its incremental read then covers only changes made since the backfill began; what was
    there before is read by the windows themselves, never by a full read of the object.
    """
    table = staging.sync_watermark
    with engine.begin() as conn:
        if conn.execute(sa.select(table.c.stream).where(table.c.stream == key)).first() is not None:
            return False
        conn.execute(sa.insert(table).values(stream=key, watermark=at, updated_at=staging.now_utc()))
    return True


def extract_chunk(
    engine: Engine,
    chunk: Chunk,
    *,
    run_id: str,
    settings: ExtractSettings,
    until: datetime,
    salesforce_conn_id: str = SALESFORCE_CONN_ID,
    hubspot_conn_id: str = HUBSPOT_CONN_ID,
) -> list[ExtractStats]:
    """Stage everything one chunk needs from both CRMs; returns each object's counts.

    Salesforce reference objects first; then the window objects' changes since the backfill
    began (the link fields earlier chunks wrote back, and edits users made meanwhile: a record
    changed during the backfill is staged with its newer value); then the window itself
    (parents before children); then HubSpot.
    """
    stats: list[ExtractStats] = []
    sf = salesforce_client(salesforce_conn_id)
    with salesforce_errors(salesforce_conn_id, f"https://{sf.sf_instance}"):
        sfx = WindowSalesforceExtractor(
            sf, engine, settings, run_id=run_id, batch_size=salesforce_batch_size(salesforce_conn_id)
        )
        for name in REFERENCE_OBJECTS if chunk.kind == "opportunities" else ("User",):
            stats.append(sfx.extract(stream("salesforce", name), until=until))
        windows = window_conditions(chunk)
        for name in windows:
            seed_watermark(engine, f"{WATERMARK_PREFIX}salesforce.{name}", until)
            stats.append(sfx.extract(stream("salesforce", name), until=until))
        for name, where in windows.items():
            stats.append(sfx.extract_where(stream("salesforce", name), where))
    hook = hubspot_hook(hubspot_conn_id)
    hs = hook.settings
    with hubspot_errors(hubspot_conn_id, hs.host):
        hsx = BackfillHubSpotExtractor(
            hook.get_conn(),
            engine,
            settings,
            run_id=run_id,
            timeout=hs.timeout,
            search_per_second=hs.search_per_second,
        )
        stats.extend(extract_hubspot(hsx, name, until) for name in HUBSPOT_OBJECTS)
    return stats
