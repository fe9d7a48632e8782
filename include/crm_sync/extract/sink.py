"""The staging side of extraction: buffer raw records, parse, and write them chunk by chunk.

Both source modules feed records into a :class:`StagingSink` one page at a time; it parses each
chunk (:mod:`crm_sync.extract.records`), writes the clean rows and the quarantined records in one
transaction, and keeps running counts. Memory is bounded by the chunk size, never the object's
size, so a million-record initial load runs in the same memory as a hundred-record one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from crm_sync import staging
from crm_sync.catalog import Stream
from crm_sync.extract.records import ParsedBatch, RecordParser, parse_datetime

log = logging.getLogger(__name__)

STAGE = "extract"


@dataclass
class ExtractStats:
    """What extracting one stream did; :meth:`as_xcom` is the small dict tasks return."""

    system: str
    object: str
    table: str
    mode: str = ""
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    resolved: int = 0
    api_calls: int = 0
    watermark: datetime | None = None
    previous_watermark: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def changed(self) -> int:
        return self.created + self.updated

    @property
    def duration_s(self) -> float:
        return time.monotonic() - self.started

    def as_xcom(self) -> dict[str, Any]:
        """Table name and counts only: XCom carries no data (DESIGN.md)."""
        return {
            "system": self.system,
            "object": self.object,
            "table": self.table,
            "mode": self.mode,
            "read": self.read,
            "changed": self.changed,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "quarantined": self.quarantined,
            "api_calls": self.api_calls,
            "watermark": self.watermark.isoformat() if self.watermark else None,
            **self.extra,
        }


class StagingSink:
    """Buffers raw records of one stream and writes them to staging in chunks.

    Per chunk, in one transaction: clean rows are upserted (only changed content is written),
    malformed records go to ``quarantine`` with their reasons (SYNC-5), and open quarantine
    entries of records that now read clean are resolved. The newest cursor value read is tracked
    for the watermark (SYNC-1), quarantined records included: they were read, and they are
    retried from the quarantine table rather than by re-reading the whole window.
    """

    def __init__(
        self,
        engine: Engine,
        stream: Stream,
        parser: RecordParser,
        stats: ExtractStats,
        *,
        run_id: str,
        extracted_at: datetime,
        chunk_size: int,
        open_quarantine: Iterable[str] = (),
    ) -> None:
        self.engine = engine
        self.stream = stream
        self.parser = parser
        self.stats = stats
        self.run_id = run_id
        self.extracted_at = extracted_at
        self.chunk_size = max(1, chunk_size)
        #: Ids still in quarantine: resolved when read clean; those the window does not
        #: re-read are retried by id afterwards (:meth:`unread_quarantined`).
        self.open_quarantine = set(open_quarantine)
        self._open_read: set[str] = set()
        self._quarantined_ids: set[str] = set()
        self.max_cursor: datetime | None = None
        #: Off while re-reading quarantined records: their cursor may lie outside this window.
        self.track_cursor = True
        self.last_flush: tuple[list[str], list[str]] = ([], [])
        self._raws: list[Mapping[str, Any]] = []
        self._flags: list[bool | None] = []

    def add(self, raw: Mapping[str, Any], deleted: bool | None = None) -> list[str] | None:
        """Buffer one record; when a chunk is full, write it and return its clean, live ids."""
        self._raws.append(raw)
        self._flags.append(deleted)
        if len(self._raws) >= self.chunk_size:
            return self.flush()
        return None

    @property
    def buffered(self) -> int:
        return len(self._raws)

    def flush(self) -> list[str]:
        """Write the buffered chunk; returns the ids of clean, non-deleted records in it.

        :attr:`last_flush` then holds ``(live ids, deleted ids)`` of the clean records written,
        for follow-up reads such as associations.
        """
        self.last_flush = ([], [])
        if not self._raws:
            return []
        raws, flags = self._raws, self._flags
        self._raws, self._flags = [], []
        if self.track_cursor:
            self._track_cursor(raws)
        if self.open_quarantine:
            key = self.stream.key
            self._open_read.update(str(r.get(key)) for r in raws if str(r.get(key)) in self.open_quarantine)
        batch = self.parser.parse_many(raws, flags)
        self._write(batch)
        key = self.stream.key
        live = [str(r[key]) for r in batch.rows if not r["_deleted"]]
        deleted = [str(r[key]) for r in batch.rows if r["_deleted"]]
        self.last_flush = (live, deleted)
        return live

    def unread_quarantined(self) -> list[str]:
        """Open quarantine ids this run has not read yet (retry them by id), sorted."""
        return sorted(self.open_quarantine - self._open_read)

    def _track_cursor(self, raws: list[Mapping[str, Any]]) -> None:
        cursor = self.stream.cursor
        if cursor is None:
            return
        for raw in raws:
            try:
                value = parse_datetime(raw.get(cursor))
            except ValueError:
                continue
            if value is not None and (self.max_cursor is None or value > self.max_cursor):
                self.max_cursor = value

    def _write(self, batch: ParsedBatch) -> None:
        s = self.stream
        with self.engine.begin() as conn:
            result = staging.write_raw_rows(
                conn, s, batch.rows, run_id=self.run_id, extracted_at=self.extracted_at
            )
            if batch.quarantined:
                staging.quarantine_rows(
                    conn,
                    (
                        {
                            "system": s.system,
                            "object": s.name,
                            "record_id": q.record_id,
                            "rule": q.rule,
                            "reason": q.reason,
                            "payload": {k: v for k, v in q.payload.items() if k != "attributes"},
                        }
                        for q in batch.quarantined
                    ),
                    stage=STAGE,
                    run_id=self.run_id,
                    now=self.extracted_at,
                )
            if self.open_quarantine and batch.rows:
                self.stats.resolved += staging.resolve_quarantine(
                    conn,
                    stage=STAGE,
                    system=s.system,
                    object_name=s.name,
                    record_ids=[str(r[s.key]) for r in batch.rows],
                    at=self.extracted_at,
                )
        st = self.stats
        st.read += len(batch.rows) + len(batch.quarantined_ids)
        st.created += result.created
        st.updated += result.updated
        st.unchanged += result.unchanged
        st.deleted += result.deleted
        new_ids = batch.quarantined_ids - self._quarantined_ids
        self._quarantined_ids |= new_ids
        st.quarantined += len(new_ids)
        if batch.quarantined:
            log.warning(
                "%s %s: quarantined %d malformed record(s) in this chunk, e.g. %s: %s",
                s.system,
                s.name,
                len(batch.quarantined_ids),
                batch.quarantined[0].record_id,
                batch.quarantined[0].reason,
            )


def log_stats(engine: Engine, run_id: str, stats: ExtractStats) -> None:
    """Store the stream's counts in ``sync_log`` (one row per run, stage and object)."""
    staging.log_run_stage(
        engine,
        run_id,
        STAGE,
        f"{stats.system}.{stats.object}",
        read=stats.read,
        changed=stats.changed,
        deleted=stats.deleted,
        quarantined=stats.quarantined,
        created=stats.created,
        updated=stats.updated,
        skipped=stats.unchanged,
        duration_s=stats.duration_s,
        details={
            "table": stats.table,
            "mode": stats.mode,
            "api_calls": stats.api_calls,
            "resolved": stats.resolved,
            "watermark": stats.watermark.isoformat() if stats.watermark else None,
            "previous_watermark": stats.previous_watermark.isoformat() if stats.previous_watermark else None,
            **stats.extra,
        },
    )
