"""HubSpot extraction: owners, deal pipelines, companies, contacts, deals and their associations.

SYNC-1 (incremental, deletes included):

- companies/contacts/deals with a watermark are read through the search API, filtered on the
  object's last-modified property (``hs_lastmodifieddate``; ``lastmodifieddate`` on contacts)
  from ``watermark - overlap``, sorted by it. Paging is *keyset*, not offset: every request
  starts at the last cursor value read (``GTE``) and excludes the ids already read at exactly
  that value. So no query ever pages towards the search API's 10,000-result cap, and a record
  modified while the window is read cannot shift the pages and make another one be skipped (it
  moves to the end and is read there). Only a tie group of more than 10,000 records sharing one
  timestamp defeats keyset paging; the window is then read through the list endpoint instead.
- without a watermark (initial load) the list endpoint is used (limit 100, ``after``; no cap).
- archived records come from the list endpoint with ``archived=true`` every run and are staged
  with ``_deleted`` true; their associations are marked deleted.
- associations (contact→company, deal→contact, deal→company; ``catalog.HUBSPOT_ASSOCIATIONS``)
  are read with the v4 batch-read API for every record read, and the stored edges of those
  records are replaced: edges that disappeared are marked ``_deleted`` (ROLL-6 needs removed
  associations). HubSpot moves a record's last-modified date when its associations change, so
  the incremental read sees them.
- owners and pipelines (with stages) are small and read in full every run; records that vanished
  are marked deleted.

Responses are read raw (``_preload_content=False``) and decoded with ``json``: the generated
models cost more CPU than the whole rest of extraction. Calls are paced by HubSpot's rate-limit
headers (and the documented search limit per second) so a long extraction does not run into 429s;
429/5xx/timeouts that still happen are retried by the hook's urllib3 ``Retry``.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from crm_sync import staging
from crm_sync.catalog import HUBSPOT_ASSOCIATIONS, Stream
from crm_sync.catalog import stream as catalog_stream
from crm_sync.extract import options as picklist_options
from crm_sync.extract.records import (
    RecordParser,
    flatten_hubspot_object,
    flatten_hubspot_owner,
    flatten_hubspot_pipeline,
    parse_datetime,
)
from crm_sync.extract.sink import STAGE, ExtractStats, StagingSink, log_stats
from crm_sync.settings import ExtractSettings

log = logging.getLogger(__name__)

LIST_LIMIT = 100
SEARCH_LIMIT = 200
SEARCH_CAP = 10_000
#: Most ids one ``NOT_IN`` filter carries (HubSpot's limit on filter values).
MAX_EXCLUDED = 100
BATCH_READ_LIMIT = 100
#: Inputs per v4 association batch read (HubSpot's limit is 1,000).
ASSOCIATION_BATCH = 1_000
ASSOCIATION_PAGE = 500
NO_ASSOCIATIONS = "crm.associations.NO_ASSOCIATIONS_FOUND"
ASSOCIATION_READ_FAILED = "SYNC-5:association_read_failed"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime (exact integer arithmetic)."""
    return (value - _EPOCH) // timedelta(milliseconds=1)


def search_body(
    cursor: str,
    properties: Sequence[str],
    lo_ms: int,
    hi_ms: int | None,
    *,
    offset: int = 0,
    exclude: Sequence[str] = (),
) -> dict[str, Any]:
    """One keyset search request: ``cursor >= lo [<= hi]``, minus ``exclude`` ids, sorted (pure)."""
    filters: list[dict[str, Any]] = [{"propertyName": cursor, "operator": "GTE", "value": str(lo_ms)}]
    if hi_ms is not None:
        filters.append({"propertyName": cursor, "operator": "LTE", "value": str(hi_ms)})
    if exclude:
        filters.append({"propertyName": "hs_object_id", "operator": "NOT_IN", "values": list(exclude)})
    body: dict[str, Any] = {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": cursor, "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": SEARCH_LIMIT,
    }
    if offset:
        body["after"] = str(offset)
    return body


def record_cursor_ms(obj: Mapping[str, Any], cursor: str) -> int | None:
    """The cursor value of a HubSpot object in epoch ms (``None`` when absent or unparseable)."""
    props = obj.get("properties") or {}
    try:
        value = parse_datetime(props.get(cursor) or obj.get("updatedAt"))
    except ValueError:
        return None
    return to_ms(value) if value else None


class KeysetPager:
    """The state of a keyset-paged search window (pure, so its edge cases are unit-tested).

    Each query asks for ``cursor >= lo_ms``. A page ending on a later cursor value restarts the
    query at that value; the records already read at exactly that value are excluded by id
    (``NOT_IN``, when at most :data:`MAX_EXCLUDED` of them) so they are not read twice, and are
    dropped client-side in any case. A page entirely inside one tie group pages on by offset
    within it; a tie group larger than the 10,000-result cap sets :attr:`capped`.
    """

    def __init__(self, cursor: str, lo_ms: int) -> None:
        self.cursor = cursor
        self.lo_ms = lo_ms
        self.offset = 0
        self.seen_at_lo: set[str] = set()
        self.exclude: list[str] = []
        self.done = False

    def next_request(self) -> tuple[int, int, list[str]]:
        """``(lo_ms, offset, ids to exclude)`` of the next query."""
        return self.lo_ms, self.offset, self.exclude

    @property
    def capped(self) -> bool:
        """True when the next page would cross the 10,000-result cap inside one tie group."""
        return self.offset + SEARCH_LIMIT > SEARCH_CAP

    def accept(self, results: Sequence[Mapping[str, Any]], has_more: bool) -> list[Mapping[str, Any]]:
        fresh = [r for r in results if str(r.get("id")) not in self.seen_at_lo]
        if not results or not has_more:
            self.done = True
            return fresh
        stamps = [record_cursor_ms(r, self.cursor) for r in results]
        last = stamps[-1]
        if last is not None and last > self.lo_ms:
            tie = sorted(
                (str(r.get("id")) for r, ms in zip(results, stamps, strict=True) if ms == last), key=_id_order
            )
            self.seen_at_lo = set(tie)
            self.exclude = tie if len(tie) <= MAX_EXCLUDED else []
            self.lo_ms = last
            self.offset = 0
        else:
            self.seen_at_lo.update(str(r.get("id")) for r in results)
            self.offset += len(results)
        return fresh


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), value) if value.isdigit() else (0, value)


class Pacer:
    """Client-side mirror of HubSpot's rolling windows, so extraction stays under the limits.

    The general limit is learnt from ``X-HubSpot-RateLimit-Max``/``-Interval-Milliseconds`` of
    responses; the search limit (not advertised in headers) is configured (``search_per_second``,
    0 disables it).
    """

    def __init__(
        self,
        search_per_second: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sleep = sleep
        self.clock = clock
        self.calls: deque[float] = deque()
        self.searches: deque[float] = deque()
        self.max_calls: int | None = None
        self.interval = 10.0
        self.search_per_second = search_per_second

    def before(self, *, search: bool) -> None:
        now = self.clock()
        if self.max_calls:
            while self.calls and self.calls[0] <= now - self.interval:
                self.calls.popleft()
            if len(self.calls) >= max(1, self.max_calls - 1):
                self._wait(self.calls[0] + self.interval - now)
        if search and self.search_per_second > 0:
            now = self.clock()
            limit = max(1, int(self.search_per_second))
            while self.searches and self.searches[0] <= now - 1.0:
                self.searches.popleft()
            if len(self.searches) >= limit:
                self._wait(self.searches[0] + 1.01 - now)

    def after(self, headers: Mapping[str, str], *, search: bool = False) -> None:
        """Record a finished call. Completion times are used: the server saw the request no
        later than that, so waiting for them to leave the window is always enough."""
        now = self.clock()
        self.calls.append(now)
        if search:
            self.searches.append(now)
        maximum = headers.get("X-HubSpot-RateLimit-Max")
        interval = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
        if maximum and maximum.isdigit():
            self.max_calls = int(maximum)
        if interval and interval.isdigit():
            self.interval = int(interval) / 1000.0
        remaining = headers.get("X-HubSpot-RateLimit-Remaining")
        if remaining is not None and remaining.isdigit() and int(remaining) == 0:
            self._wait(self.interval / max(1, self.max_calls or 1) * 10)  # someone else shares the token

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.sleep(seconds)


class HubSpotExtractor:
    """Reads the HubSpot catalog streams of one portal into staging (one instance per task)."""

    #: Prefix of this extractor's ``sync_watermark`` keys. The backfill reads with its own
    #: prefix so that it never moves the hourly sync's watermarks.
    watermark_prefix: str = ""

    def __init__(
        self,
        client: Any,
        engine: Engine,
        settings: ExtractSettings,
        *,
        run_id: str,
        timeout: float = 60.0,
        search_per_second: float = 5.0,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.run_id = run_id
        self.timeout = timeout
        self.pacer = Pacer(search_per_second)
        crm = client.crm
        # Each generated API object owns a connection pool: build them once and reuse them.
        self.objects = crm.objects.basic_api
        self.objects_search = crm.objects.search_api
        self.objects_batch = crm.objects.batch_api
        self.assoc_batch = crm.associations.v4.batch_api
        self.assoc_basic = crm.associations.v4.basic_api
        self.owners_api = crm.owners.owners_api
        self.pipelines_api = crm.pipelines.pipelines_api
        self.properties_api = crm.properties.core_api
        self._stats: ExtractStats | None = None

    # -- transport -----------------------------------------------------------------------------
    def _call(self, method: Callable[..., Any], *args: Any, search: bool = False, **kwargs: Any) -> Any:
        """Call a generated API method and decode its JSON body ourselves (see module docstring)."""
        self.pacer.before(search=search)
        response = method(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
        try:
            data = response.data
            headers = response.headers
        finally:
            response.release_conn()
        self.pacer.after(headers, search=search)
        if self._stats is not None:
            self._stats.api_calls += 1
        return json.loads(data) if data else {}

    # -- metadata ------------------------------------------------------------------------------
    def picklists(self, stream: Stream) -> dict[str, frozenset[str]]:
        """Options of the stream's catalog picklist (enumeration) properties, from the portal."""
        wanted = {f.name for f in stream.fields if f.type == "picklist"}
        if not wanted:
            return {}
        body = self._call(self.properties_api.get_all, stream.name)
        picklist_options.stage(
            self.engine,
            "hubspot",
            stream.name,
            picklist_options.from_properties(body.get("results") or [], stream),
        )
        result: dict[str, frozenset[str]] = {}
        for prop in body.get("results") or []:
            options = prop.get("options") or []
            if prop.get("name") in wanted and options:
                result[prop["name"]] = frozenset(str(o.get("value")) for o in options)
        return result

    def _sink(
        self, stream: Stream, parser: RecordParser, stats: ExtractStats, open_quarantine: Sequence[str] = ()
    ) -> StagingSink:
        return StagingSink(
            self.engine,
            stream,
            parser,
            stats,
            run_id=self.run_id,
            extracted_at=staging.now_utc(),
            chunk_size=self.settings.chunk_size,
            open_quarantine=open_quarantine,
        )

    # -- CRM objects ---------------------------------------------------------------------------
    def extract_objects(self, stream: Stream, *, until: datetime | None = None) -> ExtractStats:
        """Extract companies, contacts or deals (and their associations) into staging."""
        if stream.cursor is None:
            raise ValueError(f"{stream.name} has no cursor; use extract_owners/extract_pipelines")
        engine = self.engine
        staging.ensure_schema(engine)
        key = f"{self.watermark_prefix}hubspot.{stream.name}"
        stats = ExtractStats("hubspot", stream.name, stream.table)
        self._stats = stats
        committed = staging.read_watermark(engine, key).watermark
        stats.previous_watermark = committed
        since = committed - self.settings.overlap if committed else None
        parser = RecordParser(stream, self.picklists(stream))
        open_ids = staging.open_quarantine_ids(engine, stage=STAGE, system="hubspot", object_name=stream.name)
        sink = self._sink(stream, parser, stats, open_ids)
        pairs = [(f, t) for f, t in HUBSPOT_ASSOCIATIONS if f == stream.name]
        assoc_totals = {f"{f}->{t}": staging.AssociationResult() for f, t in pairs}
        properties = [n for n in stream.field_names if n != "id"]
        started = staging.now_utc()

        def write(live: list[str], deleted: list[str]) -> None:
            self._associations(stream, pairs, live, deleted, assoc_totals)

        if since is None:
            stats.mode = "list"
            log.info("hubspot %s: initial full load through the list endpoint", stream.name)
            for obj in self._list(stream, properties, archived=False):
                self._add(sink, stream, obj, False, write)
        else:
            stats.mode = "search"
            log.info("hubspot %s: changes since %s through search", stream.name, since)
            for obj in self._search(stream, properties, since, until, stats):
                self._add(sink, stream, obj, False, write)
        self._flush(sink, write)
        sink.track_cursor = False  # what follows is not limited to this window
        retry = [i for i in sink.unread_quarantined() if i.isdigit()]
        for obj in self._batch_read(stream, properties, retry):
            self._add(sink, stream, obj, False, write)
        self._flush(sink, write)
        for obj in self._list(stream, properties, archived=True):
            self._add(sink, stream, obj, True, write)
        self._flush(sink, write)
        watermark = sink.max_cursor
        if stats.mode == "list" and watermark is not None:
            # A record changed while a long list scan ran may sit behind the scan position; the
            # next run must start no later than this scan did.
            watermark = min(watermark, started)
        stats.watermark = watermark
        staging.set_pending_watermark(engine, key, watermark, self.run_id)
        stats.extra["associations"] = {
            name: {"read": r.read, "created": r.created, "removed": r.removed}
            for name, r in assoc_totals.items()
        }
        self._finish(stats)
        return stats

    def _add(
        self,
        sink: StagingSink,
        stream: Stream,
        obj: Mapping[str, Any],
        archived: bool,
        write: Callable[[list[str], list[str]], None],
    ) -> None:
        if sink.add(flatten_hubspot_object(obj, stream), deleted=archived) is not None:
            write(*sink.last_flush)

    @staticmethod
    def _flush(sink: StagingSink, write: Callable[[list[str], list[str]], None]) -> None:
        sink.flush()
        write(*sink.last_flush)

    def _list(
        self, stream: Stream, properties: Sequence[str], *, archived: bool
    ) -> Iterator[Mapping[str, Any]]:
        after: str | None = None
        page = 0
        while True:
            kwargs: dict[str, Any] = {
                "limit": LIST_LIMIT,
                "properties": list(properties),
                "archived": archived,
            }
            if after:
                kwargs["after"] = after
            body = self._call(self.objects.get_page, stream.name, **kwargs)
            page += 1
            results = body.get("results") or []
            yield from results
            if page % 50 == 0 or not archived:
                log.info(
                    "hubspot %s: %slist page %d (%d records)",
                    stream.name,
                    "archived " if archived else "",
                    page,
                    len(results),
                )
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def _search(
        self,
        stream: Stream,
        properties: Sequence[str],
        since: datetime,
        until: datetime | None,
        stats: ExtractStats,
    ) -> Iterator[Mapping[str, Any]]:
        cursor = stream.cursor
        assert cursor is not None
        pager = KeysetPager(cursor, to_ms(since))
        hi_ms = to_ms(until) if until else None
        page = 0
        while not pager.done:
            if pager.capped:
                lo = datetime.fromtimestamp(pager.lo_ms / 1000, tz=UTC)
                log.warning(
                    "hubspot %s: more than %d records share %s; reading the rest of the window through "
                    "the list endpoint",
                    stream.name,
                    SEARCH_CAP,
                    lo.isoformat(),
                )
                stats.extra["list_fallback"] = True
                yield from self._list_window(stream, properties, pager.lo_ms, hi_ms, pager.seen_at_lo)
                return
            lo_ms, offset, exclude = pager.next_request()
            body = self._call(
                self.objects_search.do_search,
                stream.name,
                search_body(cursor, properties, lo_ms, hi_ms, offset=offset, exclude=exclude),
                search=True,
            )
            page += 1
            results = body.get("results") or []
            has_more = bool(((body.get("paging") or {}).get("next") or {}).get("after"))
            fresh = pager.accept(results, has_more)
            log.info(
                "hubspot %s: search page %d, %d new of %d (%s matching from the current position)",
                stream.name,
                page,
                len(fresh),
                len(results),
                body.get("total"),
            )
            yield from fresh

    def _list_window(
        self, stream: Stream, properties: Sequence[str], lo_ms: int, hi_ms: int | None, skip: set[str]
    ) -> Iterator[Mapping[str, Any]]:
        cursor = stream.cursor
        assert cursor is not None
        for obj in self._list(stream, properties, archived=False):
            stamp = record_cursor_ms(obj, cursor)
            if stamp is None or stamp < lo_ms or (hi_ms is not None and stamp > hi_ms):
                continue
            if str(obj.get("id")) not in skip:
                yield obj

    def _batch_read(
        self, stream: Stream, properties: Sequence[str], ids: Sequence[str]
    ) -> Iterator[Mapping[str, Any]]:
        """SYNC-5: re-read records still in quarantine by id (batch read, 100 per call)."""
        for start in range(0, len(ids), BATCH_READ_LIMIT):
            part = ids[start : start + BATCH_READ_LIMIT]
            body = self._call(
                self.objects_batch.read,
                stream.name,
                {"inputs": [{"id": i} for i in part], "properties": list(properties)},
                archived=False,
            )
            yield from body.get("results") or []
        if ids:
            log.info("hubspot %s: retried %d quarantined record(s)", stream.name, len(ids))

    # -- associations ----------------------------------------------------------------------------
    def _associations(
        self,
        stream: Stream,
        pairs: Sequence[tuple[str, str]],
        live: Sequence[str],
        deleted: Sequence[str],
        totals: dict[str, staging.AssociationResult],
    ) -> None:
        at = staging.now_utc()
        for from_type, to_type in pairs:
            name = f"{from_type}->{to_type}"
            for start in range(0, len(live), ASSOCIATION_BATCH):
                part = list(live[start : start + ASSOCIATION_BATCH])
                edges, failed = self._read_edges(from_type, to_type, part)
                if failed:
                    edges_retry, failed = self._read_edges(from_type, to_type, failed)
                    edges.extend(edges_retry)
                    self._quarantine_edges(stream, to_type, failed)
                known = [i for i in part if i not in set(failed)]
                with self.engine.begin() as conn:
                    result = staging.write_associations(
                        conn, from_type, to_type, known, edges, run_id=self.run_id, extracted_at=at
                    )
                totals[name].add(result)
            if deleted:
                with self.engine.begin() as conn:
                    result = staging.write_associations(
                        conn, from_type, to_type, list(deleted), [], run_id=self.run_id, extracted_at=at
                    )
                totals[name].removed += result.removed
        del stream

    def _read_edges(
        self, from_type: str, to_type: str, ids: Sequence[str]
    ) -> tuple[list[tuple[str, str, int]], list[str]]:
        """Edges of ``ids`` to ``to_type`` and the ids whose read failed (not "no associations")."""
        body = self._call(
            self.assoc_batch.get_page,
            from_type,
            to_type,
            {"inputs": [{"id": i} for i in ids]},
        )
        edges: list[tuple[str, str, int]] = []
        for result in body.get("results") or []:
            from_id = str((result.get("from") or {}).get("id"))
            edges.extend(_edges_of(from_id, result.get("to") or []))
            after = ((result.get("paging") or {}).get("next") or {}).get("after")
            while after:
                more = self._call(
                    self.assoc_basic.get_page,
                    from_type,
                    from_id,
                    to_type,
                    after=after,
                    limit=ASSOCIATION_PAGE,
                )
                edges.extend(_edges_of(from_id, more.get("results") or []))
                after = ((more.get("paging") or {}).get("next") or {}).get("after")
        failed: list[str] = []
        for error in body.get("errors") or []:
            if error.get("subCategory") == NO_ASSOCIATIONS:
                continue
            context = error.get("context") or {}
            failed.extend(str(i) for i in (context.get("ids") or context.get("fromObjectId") or []))
        return edges, failed

    def _quarantine_edges(self, stream: Stream, to_type: str, failed: Sequence[str]) -> None:
        if not failed:
            return
        log.warning(
            "hubspot %s: associations to %s of %d record(s) could not be read",
            stream.name,
            to_type,
            len(failed),
        )
        staging.quarantine_rows(
            self.engine,
            [
                {
                    "system": "hubspot",
                    "object": stream.name,
                    "record_id": i,
                    "rule": ASSOCIATION_READ_FAILED,
                    "reason": f"reading its associations to {to_type} failed twice; stored edges were kept",
                    "payload": {"id": i, "to_type": to_type},
                }
                for i in failed
            ],
            stage=STAGE,
            run_id=self.run_id,
        )

    # -- owners and pipelines ------------------------------------------------------------------
    def extract_owners(self) -> ExtractStats:
        """All owners, active and archived; owners that vanished are marked deleted."""
        stream = catalog_stream("hubspot", "owners")
        staging.ensure_schema(self.engine)
        stats = ExtractStats("hubspot", stream.name, stream.table, mode="full")
        self._stats = stats
        sink = self._sink(stream, RecordParser(stream), stats)
        seen: set[str] = set()
        for archived in (False, True):
            after: str | None = None
            while True:
                kwargs: dict[str, Any] = {"limit": LIST_LIMIT, "archived": archived}
                if after:
                    kwargs["after"] = after
                body = self._call(self.owners_api.get_page, **kwargs)
                for owner in body.get("results") or []:
                    flat = flatten_hubspot_owner(owner)
                    seen.add(str(flat["id"]))
                    sink.add(flat, deleted=bool(flat["archived"]))
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
        sink.flush()
        mark_unseen_deleted(self.engine, stream, seen, stats, run_id=self.run_id)
        self._finish(stats)
        return stats

    def extract_pipelines(self, object_type: str = "deals") -> ExtractStats:
        """Deal pipelines and their stages (``hs_pipeline``, ``hs_pipeline_stage``), in full."""
        pipelines = catalog_stream("hubspot", "pipelines")
        stages = catalog_stream("hubspot", "pipeline_stages")
        staging.ensure_schema(self.engine)
        stats = ExtractStats("hubspot", pipelines.name, pipelines.table, mode="full")
        stage_stats = ExtractStats("hubspot", stages.name, stages.table, mode="full")
        self._stats = stats
        body = self._call(self.pipelines_api.get_all, object_type)
        pipe_sink = self._sink(pipelines, RecordParser(pipelines), stats)
        stage_sink = self._sink(stages, RecordParser(stages), stage_stats)
        seen_pipelines: set[str] = set()
        seen_stages: set[str] = set()
        for raw in body.get("results") or []:
            record, stage_records = flatten_hubspot_pipeline(raw)
            seen_pipelines.add(str(record["id"]))
            pipe_sink.add(record, deleted=bool(record["archived"]))
            for stage in stage_records:
                seen_stages.add(str(stage["id"]))
                stage_sink.add(stage, deleted=bool(stage["archived"]))
        pipe_sink.flush()
        stage_sink.flush()
        mark_unseen_deleted(self.engine, pipelines, seen_pipelines, stats, run_id=self.run_id)
        mark_unseen_deleted(self.engine, stages, seen_stages, stage_stats, run_id=self.run_id)
        stats.extra["stages"] = stage_stats.as_xcom()
        log_stats(self.engine, self.run_id, stage_stats)
        self._finish(stats)
        return stats

    def _finish(self, stats: ExtractStats) -> None:
        log.info(
            "hubspot %s: read %d, created %d, updated %d, deleted %d, quarantined %d (%s, %d API calls)",
            stats.object,
            stats.read,
            stats.created,
            stats.updated,
            stats.deleted,
            stats.quarantined,
            stats.mode,
            stats.api_calls,
        )
        log_stats(self.engine, self.run_id, stats)
        self._stats = None


def _edges_of(from_id: str, rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, int]]:
    edges = []
    for row in rows:
        to_id = str(row.get("toObjectId"))
        for kind in row.get("associationTypes") or []:
            if kind.get("typeId") is not None:
                edges.append((from_id, to_id, int(kind["typeId"])))
    return edges


def mark_unseen_deleted(
    engine: Engine, stream: Stream, seen: set[str], stats: ExtractStats, *, run_id: str
) -> int:
    """Full-refresh streams: stored live rows absent from this complete read are marked deleted."""
    gone = sorted(staging.live_keys(engine, stream) - seen)
    if not gone:
        return 0
    parser = RecordParser(stream)
    with engine.begin() as conn:
        rows = [parser.rehash(r, True) for r in staging.read_raw_rows(conn, stream, gone)]
        result = staging.write_raw_rows(conn, stream, rows, run_id=run_id, extracted_at=staging.now_utc())
    stats.updated += result.updated
    stats.deleted += result.deleted
    log.info("hubspot %s: %d record(s) no longer exist and were marked deleted", stream.name, len(gone))
    return len(gone)
