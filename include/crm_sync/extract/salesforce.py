"""Salesforce extraction: changed records of each catalog SObject into its staging table.

SYNC-1 (incremental, deletes included): each stream is read with

    SELECT <catalog fields> FROM <SObject>
    WHERE SystemModstamp > <committed watermark - overlap> [AND SystemModstamp <= <interval end>]
    ORDER BY SystemModstamp, Id

through ``queryAll``, so soft-deleted records (``IsDeleted = true``) arrive with the rest; a
stream without a watermark is loaded in full. ``SystemModstamp`` has second precision and a
transaction may commit after a later one, hence the overlap window; re-read rows whose content
is unchanged are not written again (SYNC-4). The newest ``SystemModstamp`` read becomes the
stream's *pending* watermark, committed only after the run succeeds.

Field lists come from the catalog, intersected with the org's ``describe()`` (a field the org
lacks, e.g. ``RecordTypeId`` in an org without Opportunity record types, is read as NULL rather
than failing the query); ``describe()`` also gives picklist values, and records holding an
unknown value are quarantined (SYNC-5).

REST vs Bulk API 2.0: the first REST page reports the result's ``totalSize``; above
``config.extract.bulk_threshold`` the read switches to a Bulk API 2.0 ``queryAll`` job whose CSV
result pages are streamed into staging. This costs one REST page instead of a separate
``COUNT()`` query on every run.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceMalformedRequest
from sqlalchemy.engine import Engine

from crm_sync import staging
from crm_sync.catalog import Stream
from crm_sync.extract import options as picklist_options
from crm_sync.extract.records import RecordParser, bulk_csv_record, parse_datetime
from crm_sync.extract.sink import STAGE, ExtractStats, StagingSink, log_stats
from crm_sync.settings import ExtractSettings

log = logging.getLogger(__name__)

#: Rows per Bulk API 2.0 result page: few calls (5x fewer than 2,000-row REST pages), while the
#: page held in memory (the client reads a whole page) stays a few tens of MB.
BULK_PAGE_ROWS = 10_000
#: Ids per SOQL ``IN`` list when re-reading quarantined records (keeps the URL short).
RETRY_IDS_PER_QUERY = 200
#: Query restarts allowed per read after ``INVALID_QUERY_LOCATOR``.
MAX_RESTARTS = 5
#: Fields every selected list keeps even if describe omits them (the query needs them).
_ESSENTIAL = ("Id",)


def soql_datetime(value: datetime) -> str:
    """A SOQL datetime literal in UTC, whole seconds (Salesforce stamps have second precision)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_soql(
    object_name: str,
    fields: Sequence[str],
    *,
    cursor: str | None,
    since: datetime | None,
    until: datetime | None,
    order: bool = True,
    after: tuple[datetime, str] | None = None,
) -> str:
    """The extraction SOQL for one stream (pure; unit-tested).

    ``after`` = ``(cursor value, Id)`` of the last record already processed resumes the ordered
    read just past it (keyset), e.g. when a query locator expired mid-read.
    """
    conditions = []
    if cursor and since is not None:
        conditions.append(f"{cursor} > {soql_datetime(since)}")
    if cursor and until is not None:
        conditions.append(f"{cursor} <= {soql_datetime(until)}")
    if cursor and after is not None:
        stamp = soql_datetime(after[0])
        conditions.append(f"({cursor} > {stamp} OR ({cursor} = {stamp} AND Id > {_quote(after[1])}))")
    text = f"SELECT {', '.join(fields)} FROM {object_name}"
    if conditions:
        text += " WHERE " + " AND ".join(conditions)
    if order:
        text += f" ORDER BY {cursor}, Id" if cursor else " ORDER BY Id"
    return text


def _quote(value: str) -> str:
    """A SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def build_id_soql(object_name: str, fields: Sequence[str], ids: Sequence[str]) -> str:
    """SOQL re-reading specific records by id (quarantine retries)."""
    quoted = ", ".join(_quote(i) for i in ids)
    return f"SELECT {', '.join(fields)} FROM {object_name} WHERE Id IN ({quoted}) ORDER BY Id"


def picklists_from_describe(describe: Mapping[str, Any], stream: Stream) -> dict[str, frozenset[str]]:
    """Allowed values of the stream's catalog picklist fields, from a ``describe()`` result.

    Inactive values count as known: old records legitimately keep them.
    """
    wanted = {f.name for f in stream.fields if f.type == "picklist"}
    result: dict[str, frozenset[str]] = {}
    for f in describe.get("fields") or []:
        name = f.get("name")
        values = f.get("picklistValues") or []
        if name in wanted and values:
            result[name] = frozenset(str(v.get("value")) for v in values if v.get("value") is not None)
    return result


def parse_bulk_page(page: str) -> Iterator[dict[str, Any]]:
    """Records of one Bulk API 2.0 CSV result page (empty cells are NULL)."""
    for row in csv.DictReader(io.StringIO(page)):
        yield bulk_csv_record(row)


class SalesforceExtractor:
    """Reads catalog streams from one org into staging (one instance per task)."""

    #: Prefix of this extractor's ``sync_watermark`` keys. The backfill reads with its own
    #: prefix so that it never moves the hourly sync's watermarks.
    watermark_prefix: str = ""

    def __init__(
        self,
        sf: Salesforce,
        engine: Engine,
        settings: ExtractSettings,
        *,
        run_id: str,
        bulk_page_rows: int = BULK_PAGE_ROWS,
        batch_size: int | None = None,
    ) -> None:
        self.sf = sf
        self.engine = engine
        self.settings = settings
        self.run_id = run_id
        self.bulk_page_rows = bulk_page_rows
        #: REST page size; Salesforce's default (2000) unless the connection asks for less.
        self.query_headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else {}

    # -- metadata ------------------------------------------------------------------------------
    def describe(self, stream: Stream, stats: ExtractStats) -> tuple[list[str], dict[str, frozenset[str]]]:
        """Catalog fields the org has, and picklist values; all catalog fields if describe fails."""
        try:
            description = getattr(self.sf, stream.name).describe()
            stats.api_calls += 1
        except SalesforceError as exc:
            if getattr(exc, "status", None) in (401, 403):
                raise
            log.warning(
                "salesforce %s: describe failed (%s); selecting every catalog field", stream.name, exc
            )
            return list(stream.field_names), {}
        available = {f.get("name") for f in description.get("fields") or []}
        fields = [n for n in stream.field_names if n in available or n in _ESSENTIAL]
        missing = [n for n in stream.field_names if n not in fields]
        if missing:
            log.warning(
                "salesforce %s: the org has no field(s) %s; they are staged as NULL",
                stream.name,
                ", ".join(missing),
            )
        picklist_options.stage(
            self.engine, "salesforce", stream.name, picklist_options.from_describe(description, stream)
        )
        return fields, picklists_from_describe(description, stream)

    # -- extraction ----------------------------------------------------------------------------
    def extract(self, stream: Stream, *, until: datetime | None = None) -> ExtractStats:
        """Extract one stream's changes since its watermark into staging; returns the counts."""
        engine = self.engine
        staging.ensure_schema(engine)
        key = f"{self.watermark_prefix}salesforce.{stream.name}"
        stats = ExtractStats("salesforce", stream.name, stream.table)
        committed = staging.read_watermark(engine, key).watermark
        stats.previous_watermark = committed
        since = committed - self.settings.overlap if committed else None
        fields, picklists = self.describe(stream, stats)
        parser = RecordParser(stream, picklists)
        open_ids = staging.open_quarantine_ids(
            engine, stage=STAGE, system="salesforce", object_name=stream.name
        )
        sink = StagingSink(
            engine,
            stream,
            parser,
            stats,
            run_id=self.run_id,
            extracted_at=staging.now_utc(),
            chunk_size=self.settings.chunk_size,
            open_quarantine=open_ids,
        )
        soql = build_soql(stream.name, fields, cursor=stream.cursor, since=since, until=until)
        log.info(
            "salesforce %s: %s",
            stream.name,
            "initial full load" if since is None else f"changes since {since}",
        )
        self._read(stream, fields=fields, soql=soql, since=since, until=until, sink=sink, stats=stats)
        sink.flush()
        retry = sink.unread_quarantined()
        if retry:
            self._retry_quarantined(stream, fields, retry, sink, stats)
        stats.watermark = sink.max_cursor
        staging.set_pending_watermark(engine, key, sink.max_cursor, self.run_id)
        log.info(
            "salesforce %s: read %d, created %d, updated %d, deleted %d, quarantined %d (%s, %d API calls)",
            stream.name,
            stats.read,
            stats.created,
            stats.updated,
            stats.deleted,
            stats.quarantined,
            stats.mode,
            stats.api_calls,
        )
        log_stats(engine, self.run_id, stats)
        return stats

    def _read(
        self,
        stream: Stream,
        *,
        fields: Sequence[str],
        soql: str,
        since: datetime | None,
        until: datetime | None,
        sink: StagingSink,
        stats: ExtractStats,
    ) -> None:
        first = self.sf.query(soql, include_deleted=True, headers=self.query_headers)
        stats.api_calls += 1
        total = int(first.get("totalSize", 0))
        if total > self.settings.bulk_threshold:
            stats.mode = "bulk"
            log.info(
                "salesforce %s: %d rows exceed bulk_threshold %d; reading through Bulk API 2.0",
                stream.name,
                total,
                self.settings.bulk_threshold,
            )
            bulk_soql = build_soql(
                stream.name, fields, cursor=stream.cursor, since=since, until=until, order=False
            )
            self._read_bulk(stream, bulk_soql, sink, stats, total)
            return
        stats.mode = "rest"
        result = first
        page = 1
        last: tuple[datetime, str] | None = None
        restarts = 0
        while True:
            records = result.get("records") or []
            self._feed(sink, records)
            if records and stream.cursor:
                stamp = parse_datetime(records[-1].get(stream.cursor))
                last = (stamp, str(records[-1]["Id"])) if stamp else last
            log.info(
                "salesforce %s: page %d, %d of %d rows", stream.name, page, stats.read + sink.buffered, total
            )
            if result.get("done", True) or not result.get("nextRecordsUrl"):
                break
            try:
                result = self.sf.query_more(
                    result["nextRecordsUrl"], identifier_is_url=True, headers=self.query_headers
                )
            except SalesforceMalformedRequest as exc:
                if (
                    "INVALID_QUERY_LOCATOR" not in str(exc.content)
                    or last is None
                    or restarts >= MAX_RESTARTS
                ):
                    raise
                # The server dropped the cursor (expired, or consumed by a request whose answer
                # timed out before reaching us): resume the ordered read after the last record.
                restarts += 1
                log.warning("salesforce %s: query locator invalid; resuming after %s %s", stream.name, *last)
                resume = build_soql(
                    stream.name, fields, cursor=stream.cursor, since=since, until=until, after=last
                )
                result = self.sf.query(resume, include_deleted=True, headers=self.query_headers)
            stats.api_calls += 1
            page += 1

    def _read_bulk(
        self, stream: Stream, soql: str, sink: StagingSink, stats: ExtractStats, total: int
    ) -> None:
        job = getattr(self.sf.bulk2, stream.name)
        pages: Iterable[str] = job.query_all(
            soql,
            max_records=self.bulk_page_rows,
            wait=self.settings.bulk_poll_seconds,  # simple-salesforce sleeps this before its first poll
        )
        stats.api_calls += 2  # job creation + at least one status poll
        for number, page in enumerate(pages, start=1):
            stats.api_calls += 1
            self._feed(sink, parse_bulk_page(page))
            log.info(
                "salesforce %s: bulk page %d, %d of %d rows",
                stream.name,
                number,
                stats.read + sink.buffered,
                total,
            )

    def _retry_quarantined(
        self,
        stream: Stream,
        fields: Sequence[str],
        ids: Sequence[str],
        sink: StagingSink,
        stats: ExtractStats,
    ) -> None:
        """SYNC-5: re-read records still in quarantine, so a fixed record (or metadata) clears it.

        Runs after the window was read; the retried records' cursors are not counted, since
        they may lie outside this window.
        """
        real_ids = [i for i in ids if not i.startswith("<")]
        sink.track_cursor = False
        for start in range(0, len(real_ids), RETRY_IDS_PER_QUERY):
            part = real_ids[start : start + RETRY_IDS_PER_QUERY]
            result = self.sf.query(build_id_soql(stream.name, fields, part), include_deleted=True)
            stats.api_calls += 1
            while True:
                self._feed(sink, result.get("records") or [])
                if result.get("done", True) or not result.get("nextRecordsUrl"):
                    break
                result = self.sf.query_more(result["nextRecordsUrl"], identifier_is_url=True)
                stats.api_calls += 1
        sink.flush()
        if real_ids:
            log.info("salesforce %s: retried %d quarantined record(s)", stream.name, len(real_ids))

    @staticmethod
    def _feed(sink: StagingSink, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            sink.add(record)


def extract_streams(
    extractor: SalesforceExtractor, streams: Iterable[Stream], *, until: datetime | None = None
) -> list[ExtractStats]:
    """Extract several streams in catalog order (used by benchmarks and scripts)."""
    return [extractor.extract(s, until=until) for s in streams]
