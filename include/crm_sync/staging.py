"""Staging: the schema every stage shares, and idempotent, chunked writes (SQLAlchemy Core).

Staging sits behind the Airflow connection ``crm_staging`` (a SQLite file by default, PostgreSQL
in docker-compose and CI); the same code runs on both, using each dialect's own
``INSERT ... ON CONFLICT``. It holds:

- one raw table per catalog :class:`~crm_sync.catalog.Stream` (``Stream.table``): one column per
  catalog field, named as the source names it, plus ``_deleted``, ``_run_id`` (the run that last
  *changed* the row), ``_extracted_at`` and ``_hash`` (content hash);
- ``hs_association`` (HubSpot association edges, each stored once in its catalog direction);
- ``sync_watermark`` (SYNC-1), ``sync_link``, ``sync_snapshot`` (SYNC-3), ``sync_import``,
  ``sync_run``, ``sync_log``, ``quarantine`` (SYNC-5) and ``plan``.

SYNC-4 (idempotent): raw writes are upserts keyed on the source id, and a row is written only when
its content hash changed, so re-reading an unchanged record (the overlap window, a re-run of the
same interval) writes nothing and leaves the tables byte-identical.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Engine

from crm_sync.catalog import ALL_STREAMS, ASSOCIATIONS_TABLE, FieldType, Stream
from crm_sync.plan import PLAN_COLUMNS
from crm_sync.rules.inputs import RowMask

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "crm_staging"
DEFAULT_SQLITE_NAME = "crm_sync_staging.db"
#: Rows per statement/transaction when the caller does not say (also the SOQL page size).
DEFAULT_CHUNK = 2_000


class StagingConfigError(RuntimeError):
    """The ``crm_staging`` connection cannot be turned into a database; the message says why."""


# -- types -------------------------------------------------------------------------------------


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware timestamps on every dialect, always returned in UTC.

    PostgreSQL stores ``timestamptz``; SQLite has no timezone type, so values are stored as naive
    UTC and given their UTC zone back on read. Rules and tests then compare datetimes the same
    way whichever database staging runs on.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {value!r}")
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" else aware

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        del dialect  # same handling on every dialect
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        result = cast(datetime, value)
        return result.replace(tzinfo=UTC) if result.tzinfo is None else result.astimezone(UTC)


def column_type(field_type: FieldType) -> sa.types.TypeEngine[Any]:
    """The staging column type for a catalog field type."""
    if field_type == "datetime":
        return UTCDateTime()
    if field_type == "date":
        return sa.Date()
    if field_type == "number":
        return sa.Float()
    if field_type == "boolean":
        return sa.Boolean()
    return sa.Text()


# -- schema ------------------------------------------------------------------------------------

metadata = sa.MetaData()


def _raw_table(stream: Stream) -> sa.Table:
    columns = [
        sa.Column(
            f.name, column_type(f.type), primary_key=f.name == stream.key, nullable=f.name != stream.key
        )
        for f in stream.fields
    ]
    columns += [
        sa.Column("_deleted", sa.Boolean(), nullable=False, default=False),
        sa.Column("_run_id", sa.Text()),
        sa.Column("_extracted_at", UTCDateTime()),
        sa.Column("_hash", sa.Text()),
    ]
    return sa.Table(stream.table, metadata, *columns)


RAW_TABLES: dict[str, sa.Table] = {s.table: _raw_table(s) for s in ALL_STREAMS}

associations = sa.Table(
    ASSOCIATIONS_TABLE,
    metadata,
    sa.Column("from_type", sa.Text(), primary_key=True),
    sa.Column("from_id", sa.Text(), primary_key=True),
    sa.Column("to_type", sa.Text(), primary_key=True),
    sa.Column("to_id", sa.Text(), primary_key=True),
    sa.Column("type_id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("_deleted", sa.Boolean(), nullable=False, default=False),
    sa.Column("_run_id", sa.Text()),
    sa.Column("_extracted_at", UTCDateTime()),
    sa.Index(f"ix_{ASSOCIATIONS_TABLE}_to", "to_type", "to_id"),
)

sync_watermark = sa.Table(
    "sync_watermark",
    metadata,
    sa.Column("stream", sa.Text(), primary_key=True),
    sa.Column("watermark", UTCDateTime()),
    sa.Column("pending", UTCDateTime()),
    sa.Column("pending_run_id", sa.Text()),
    sa.Column("updated_at", UTCDateTime()),
)

sync_link = sa.Table(
    "sync_link",
    metadata,
    sa.Column("object", sa.Text(), primary_key=True),
    sa.Column("sf_id", sa.Text(), primary_key=True),
    sa.Column("hs_id", sa.Text(), nullable=False),
    sa.Column("linked_at", UTCDateTime()),
    sa.Column("run_id", sa.Text()),
    sa.UniqueConstraint("object", "hs_id", name="uq_sync_link_object_hs_id"),
)

sync_snapshot = sa.Table(
    "sync_snapshot",
    metadata,
    sa.Column("object", sa.Text(), primary_key=True),
    sa.Column("sf_id", sa.Text(), primary_key=True),
    sa.Column("hs_id", sa.Text()),
    sa.Column("sf_field", sa.Text(), primary_key=True),
    sa.Column("hs_field", sa.Text()),
    sa.Column("value", sa.Text()),
    sa.Column("synced_at", UTCDateTime()),
    sa.Column("run_id", sa.Text()),
)

sync_import = sa.Table(
    "sync_import",
    metadata,
    sa.Column("object", sa.Text(), primary_key=True),
    sa.Column("sf_id", sa.Text(), primary_key=True),
    sa.Column("imported_at", UTCDateTime()),
    sa.Column("run_id", sa.Text()),
)

sync_run = sa.Table(
    "sync_run",
    metadata,
    sa.Column("run_id", sa.Text(), primary_key=True),
    sa.Column("dag_id", sa.Text()),
    sa.Column("logical_date", UTCDateTime()),
    sa.Column("data_interval_start", UTCDateTime()),
    sa.Column("data_interval_end", UTCDateTime()),
    sa.Column("dry_run", sa.Boolean()),
    sa.Column("status", sa.Text()),
    sa.Column("started_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
)

sync_log = sa.Table(
    "sync_log",
    metadata,
    sa.Column("run_id", sa.Text(), primary_key=True),
    sa.Column("stage", sa.Text(), primary_key=True),
    sa.Column("object", sa.Text(), primary_key=True),
    sa.Column("read", sa.Integer()),
    sa.Column("changed", sa.Integer()),
    sa.Column("deleted", sa.Integer()),
    sa.Column("quarantined", sa.Integer()),
    sa.Column("created", sa.Integer()),
    sa.Column("updated", sa.Integer()),
    sa.Column("skipped", sa.Integer()),
    sa.Column("duration_s", sa.Float()),
    sa.Column("started_at", UTCDateTime()),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("details", sa.Text()),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("stage", sa.Text(), primary_key=True),
    sa.Column("system", sa.Text(), primary_key=True),
    sa.Column("object", sa.Text(), primary_key=True),
    sa.Column("record_id", sa.Text(), primary_key=True),
    sa.Column("rule", sa.Text(), primary_key=True),
    sa.Column("reason", sa.Text()),
    sa.Column("payload", sa.Text()),
    sa.Column("first_seen_at", UTCDateTime()),
    sa.Column("last_seen_at", UTCDateTime()),
    sa.Column("last_run_id", sa.Text()),
    sa.Column("attempts", sa.Integer(), nullable=False, default=1),
    sa.Column("resolved_at", UTCDateTime()),
)

plan_table = sa.Table(
    "plan",
    metadata,
    sa.Column("run_id", sa.Text(), primary_key=True),
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
    *[sa.Column(c, sa.Text()) for c in PLAN_COLUMNS if c != "run_id"],
)

#: What each load wrote, per run and plan row (``seq``): a re-run of a load task skips rows already
#: written and resolves references from their ids, so a crash between two batches loses nothing.
load_journal = sa.Table(
    "load_journal",
    metadata,
    sa.Column("run_id", sa.Text(), primary_key=True),
    sa.Column("target", sa.Text(), primary_key=True),
    sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("object", sa.Text()),
    sa.Column("action", sa.Text()),
    sa.Column("source_id", sa.Text()),
    sa.Column("target_id", sa.Text()),
    sa.Column("ok", sa.Boolean(), nullable=False),
    sa.Column("error_code", sa.Text()),
    sa.Column("children", sa.Text()),
    sa.Column("written_at", UTCDateTime()),
)

#: Per-record write failures (dead letters), kept with the API's error until a later run writes
#: the record; ``attempts`` counts the runs that tried.
dead_letter = sa.Table(
    "dead_letter",
    metadata,
    sa.Column("target", sa.Text(), primary_key=True),
    sa.Column("object", sa.Text(), primary_key=True),
    sa.Column("record_key", sa.Text(), primary_key=True),
    sa.Column("action", sa.Text()),
    sa.Column("source_id", sa.Text()),
    sa.Column("target_id", sa.Text()),
    sa.Column("fields", sa.Text()),
    sa.Column("rules", sa.Text()),
    sa.Column("error_code", sa.Text()),
    sa.Column("message", sa.Text()),
    sa.Column("attempts", sa.Integer(), nullable=False, default=1),
    sa.Column("first_seen_at", UTCDateTime()),
    sa.Column("last_seen_at", UTCDateTime()),
    sa.Column("last_run_id", sa.Text()),
    sa.Column("resolved_at", UTCDateTime()),
)

#: Both CRMs' picklist / enumeration options (Salesforce describe ``picklistValues``, HubSpot
#: property ``options``), refreshed by each extraction of the object: what the SYNC-2 value maps
#: translate between.
picklist_options = sa.Table(
    "picklist_options",
    metadata,
    sa.Column("system", sa.Text(), primary_key=True),
    sa.Column("object", sa.Text(), primary_key=True),
    sa.Column("field", sa.Text(), primary_key=True),
    sa.Column("value", sa.Text(), primary_key=True),
    sa.Column("label", sa.Text()),
    sa.Column("active", sa.Boolean()),
)

#: Tables :func:`replace_frame` must never replace (they belong to the staging contract).
CORE_TABLES: frozenset[str] = frozenset(metadata.tables)


# -- engine ------------------------------------------------------------------------------------

_ENGINES: dict[str, Engine] = {}
_SCHEMA_READY: set[str] = set()
#: Advisory lock key ("crms") that serialises schema creation on PostgreSQL.
_SCHEMA_LOCK = 0x63726D73
_LOCK = threading.Lock()


def _lookup_connection(conn_id: str) -> Any | None:
    """The Airflow connection ``conn_id``, or ``None`` when it is not defined anywhere.

    The ``AIRFLOW_CONN_<ID>`` environment variable (JSON or URI) is read first and parsed without
    any Airflow runtime, so the ``crm-sync plan`` CLI resolves staging exactly as tasks do; then
    Airflow's own lookup (secrets backends, metastore).
    """
    from airflow.sdk.definitions.connection import Connection

    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if raw:
        text = raw.strip()
        return (
            Connection.from_json(text, conn_id=conn_id)
            if text.startswith("{")
            else Connection.from_uri(text, conn_id=conn_id)
        )
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def default_sqlite_path() -> Path:
    """``$AIRFLOW_HOME/crm_sync_staging.db`` (``AIRFLOW_HOME`` defaults to ``~/airflow``)."""
    home = os.environ.get("AIRFLOW_HOME") or str(Path("~/airflow").expanduser())
    return Path(home) / DEFAULT_SQLITE_NAME


def staging_url(conn_id: str = DEFAULT_CONN_ID) -> URL:
    """The SQLAlchemy URL of staging, from the Airflow connection or the default SQLite file."""
    conn = _lookup_connection(conn_id)
    if conn is None:
        return URL.create("sqlite", database=str(default_sqlite_path()))
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "sqlite":
        path = conn.host or conn.schema
        if not path:
            raise StagingConfigError(
                f"Airflow connection '{conn_id}' is type sqlite but names no file: set its host to the "
                "database path, e.g. AIRFLOW_CONN_CRM_STAGING="
                '\'{"conn_type": "sqlite", "host": "/path/staging.db"}\''
            )
        return URL.create("sqlite", database=str(Path(path).expanduser()))
    if conn_type in ("postgres", "postgresql"):
        extra = conn.extra_dejson or {}
        query = {
            k: str(v)
            for k, v in extra.items()
            if k in ("sslmode", "options", "application_name", "connect_timeout", "sslrootcert")
        }
        return URL.create(
            "postgresql+psycopg2",
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or None,
            port=conn.port or None,
            database=conn.schema or None,
            query=query,
        )
    raise StagingConfigError(
        f"Airflow connection '{conn_id}' has type {conn.conn_type!r}; staging supports sqlite and postgres"
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def engine_for_url(url: URL) -> Engine:
    """One engine per database for the process (tasks call staging many times per run)."""
    key = url.render_as_string(hide_password=False)
    with _LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            if url.get_backend_name() == "sqlite":
                if url.database:
                    Path(url.database).parent.mkdir(parents=True, exist_ok=True)
                engine = sa.create_engine(url, connect_args={"timeout": 30})
                sa.event.listen(engine, "connect", _sqlite_pragmas)
            elif url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg2":
                # ON CONFLICT upserts are not batched by SQLAlchemy's insertmanyvalues; without
                # execute_batch psycopg2 would make one round trip per row.
                engine = sa.create_engine(
                    url,
                    pool_pre_ping=True,
                    executemany_mode="values_plus_batch",
                    executemany_batch_page_size=500,
                )
            else:
                engine = sa.create_engine(url, pool_pre_ping=True)
            _ENGINES[key] = engine
        return engine


def staging_engine(conn_id: str = DEFAULT_CONN_ID) -> Engine:
    """The staging engine, resolved the same way for DAG tasks and the ``crm-sync`` CLI.

    Airflow connection ``crm_staging`` (sqlite: ``host`` is the file path; postgres: the usual
    fields), else the SQLite file ``$AIRFLOW_HOME/crm_sync_staging.db``. SQLite runs in WAL mode
    with a busy timeout so parallel extract tasks queue for the write lock instead of failing.
    """
    return engine_for_url(staging_url(conn_id))


def dispose_engines() -> None:
    """Close every cached engine (tests, and long-lived processes switching databases)."""
    with _LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()
        _SCHEMA_READY.clear()


def ensure_schema(engine: Engine) -> None:
    """Create every staging table and index that is missing; safe to call from every task."""
    key = engine.url.render_as_string(hide_password=False)
    if key in _SCHEMA_READY:
        return
    # The DAG starts a dozen extract tasks at once on a fresh database, each creating the schema.
    # PostgreSQL serialises them on an advisory lock; SQLite runs DDL outside transactions, so a
    # table created by another process between "check" and "create" is retried.
    # Retries back off (50 ms doubling, ~6 s in all) so a loaded machine's lock holder can finish.
    attempts = 8
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
                metadata.create_all(conn, checkfirst=True)
            break
        except sa.exc.DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    _SCHEMA_READY.add(key)


def now_utc() -> datetime:
    return datetime.now(UTC)


# -- generic upserts ---------------------------------------------------------------------------


def _insert(conn: Connection | Engine, table: sa.Table) -> Any:
    name = conn.dialect.name
    if name == "sqlite":
        return sqlite_dialect.insert(table)
    if name == "postgresql":
        return pg_dialect.insert(table)
    raise StagingConfigError(f"staging supports sqlite and postgresql, not {name}")


def table_for(engine: Engine | Connection, name: str | sa.Table) -> sa.Table:
    """A staging table by name: the contract tables from :data:`metadata`, others reflected."""
    if isinstance(name, sa.Table):
        return name
    if name in metadata.tables:
        return metadata.tables[name]
    return sa.Table(name, sa.MetaData(), autoload_with=engine)


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of at most ``size`` items, lazily (memory stays flat on big inputs)."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def upsert_on(
    conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], key_cols: Sequence[str]
) -> None:
    """Upsert ``rows`` (all with the same keys) inside an open transaction; last duplicate wins."""
    if not rows:
        return
    unique: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        unique[tuple(row[k] for k in key_cols)] = row
    values = list(unique.values())
    stmt = _insert(conn, table)
    update_cols = [c for c in values[0] if c not in key_cols]
    if update_cols:
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key_cols), set_={c: stmt.excluded[c] for c in update_cols}
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key_cols))
    conn.execute(stmt, values)


def upsert_rows(
    engine: Engine,
    table: str | sa.Table,
    rows: Iterable[Mapping[str, Any]],
    key_cols: Sequence[str],
    chunk_size: int = DEFAULT_CHUNK,
) -> int:
    """Upsert rows keyed on ``key_cols`` in chunks, one transaction per chunk; returns rows sent.

    Uses each dialect's ``INSERT ... ON CONFLICT DO UPDATE`` (SQLite and PostgreSQL), so a re-run
    replaces instead of duplicating (SYNC-4).
    """
    target = table_for(engine, table)
    total = 0
    for chunk in chunked(rows, chunk_size):
        with engine.begin() as conn:
            upsert_on(conn, target, chunk, key_cols)
        total += len(chunk)
    return total


# -- raw tables --------------------------------------------------------------------------------


@dataclass
class WriteResult:
    """What one write did to a raw table: rows created, updated, unchanged, newly deleted."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    changed_ids: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.created + self.updated

    def add(self, other: WriteResult) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted


def write_raw_rows(
    conn: Connection,
    stream: Stream,
    rows: Sequence[Mapping[str, Any]],
    *,
    run_id: str,
    extracted_at: datetime,
) -> WriteResult:
    """Upsert parsed rows of ``stream`` inside an open transaction, writing only changed content.

    The stored ``_hash`` of each key is read first; rows with the same hash are skipped, so an
    unchanged re-read writes nothing and keeps ``_run_id``/``_extracted_at`` (SYNC-4).
    """
    table = RAW_TABLES[stream.table]
    key = stream.key
    latest: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        latest[str(row[key])] = row
    result = WriteResult()
    if not latest:
        return result
    existing: dict[str, tuple[str | None, bool]] = {}
    for part in chunked(latest, 5_000):
        query = sa.select(table.c[key], table.c._hash, table.c._deleted).where(table.c[key].in_(part))
        for rid, digest, was_deleted in conn.execute(query):
            existing[rid] = (digest, bool(was_deleted))
    changed: list[dict[str, Any]] = []
    for rid, row in latest.items():
        before = existing.get(rid)
        if before is not None and before[0] == row["_hash"]:
            result.unchanged += 1
            continue
        if before is None:
            result.created += 1
        else:
            result.updated += 1
        if row["_deleted"] and (before is None or not before[1]):
            result.deleted += 1
        changed.append({**row, "_run_id": run_id, "_extracted_at": extracted_at})
        result.changed_ids.append(rid)
    if changed:
        upsert_on(conn, table, changed, [key])
    return result


def read_raw_rows(conn: Connection, stream: Stream, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Stored rows of ``stream`` by key (catalog fields plus ``_deleted``/``_hash``)."""
    table = RAW_TABLES[stream.table]
    found: list[dict[str, Any]] = []
    for part in chunked(ids, 5_000):
        query = sa.select(table).where(table.c[stream.key].in_(part))
        found.extend(dict(r._mapping) for r in conn.execute(query))
    return found


def live_keys(engine: Engine, stream: Stream) -> set[str]:
    """Keys of rows not marked deleted (for full-refresh streams, which are small)."""
    table = RAW_TABLES[stream.table]
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(sa.select(table.c[stream.key]).where(~table.c._deleted))}


# -- associations ------------------------------------------------------------------------------


@dataclass
class AssociationResult:
    """Edges read, newly stored (or revived), and removed (marked ``_deleted``)."""

    read: int = 0
    created: int = 0
    removed: int = 0

    def add(self, other: AssociationResult) -> None:
        self.read += other.read
        self.created += other.created
        self.removed += other.removed


def write_associations(
    conn: Connection,
    from_type: str,
    to_type: str,
    from_ids: Sequence[str],
    edges: Iterable[tuple[str, str, int]],
    *,
    run_id: str,
    extracted_at: datetime,
) -> AssociationResult:
    """Make the stored edges of ``from_ids`` (to ``to_type``) equal to ``edges``.

    ``edges`` is the complete current set for those records, as ``(from_id, to_id, type_id)``.
    New edges are inserted, edges that disappeared are marked ``_deleted`` (a removed association
    must reach the rules, ROLL-6), and unchanged edges are not touched (SYNC-4).
    """
    table = associations
    kinds = (from_type, to_type)
    current = {(str(f), str(t), int(k)) for f, t, k in edges}
    result = AssociationResult(read=len(current))
    if not from_ids:
        return result
    stored: dict[tuple[str, str, int], bool] = {}
    for part in chunked(from_ids, 5_000):
        query = sa.select(table.c.from_id, table.c.to_id, table.c.type_id, table.c._deleted).where(
            table.c.from_type == from_type, table.c.to_type == to_type, table.c.from_id.in_(part)
        )
        for f, t, k, deleted in conn.execute(query):
            stored[(f, t, int(k))] = bool(deleted)
    upserts: list[dict[str, Any]] = []
    for f, t, k in sorted(current):
        if stored.get((f, t, k), True):  # new, or stored as deleted
            result.created += 1
            upserts.append(_edge(kinds, (f, t, k), deleted=False, run_id=run_id, at=extracted_at))
    for (f, t, k), deleted in sorted(stored.items()):
        if not deleted and (f, t, k) not in current:
            result.removed += 1
            upserts.append(_edge(kinds, (f, t, k), deleted=True, run_id=run_id, at=extracted_at))
    if upserts:
        upsert_on(conn, table, upserts, ["from_type", "from_id", "to_type", "to_id", "type_id"])
    return result


def _edge(
    kinds: tuple[str, str], edge: tuple[str, str, int], *, deleted: bool, run_id: str, at: datetime
) -> dict[str, Any]:
    return {
        "from_type": kinds[0],
        "from_id": edge[0],
        "to_type": kinds[1],
        "to_id": edge[1],
        "type_id": edge[2],
        "_deleted": deleted,
        "_run_id": run_id,
        "_extracted_at": at,
    }


# -- watermarks (SYNC-1) -----------------------------------------------------------------------


@dataclass(frozen=True)
class Watermark:
    """A stream's committed watermark and the pending one a run recorded but has not committed."""

    stream: str
    watermark: datetime | None
    pending: datetime | None
    pending_run_id: str | None


def read_watermark(engine: Engine, stream: str) -> Watermark:
    """The watermark row for ``stream`` (e.g. ``salesforce.Account``); all ``None`` if absent."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(sync_watermark).where(sync_watermark.c.stream == stream)).first()
    if row is None:
        return Watermark(stream, None, None, None)
    return Watermark(stream, row.watermark, row.pending, row.pending_run_id)


def set_pending_watermark(engine: Engine, stream: str, value: datetime | None, run_id: str) -> bool:
    """Record the newest cursor this run read as ``pending``; returns whether anything was written.

    SYNC-1: a run with nothing newer than the committed watermark keeps it and writes nothing;
    the pending value becomes the watermark only through :func:`commit_watermarks` after a
    successful run.
    """
    if value is None:
        return False
    current = read_watermark(engine, stream)
    if current.watermark is not None and value <= current.watermark:
        return False
    if current.pending_run_id == run_id and current.pending is not None and value <= current.pending:
        return False
    with engine.begin() as conn:
        upsert_on(
            conn,
            sync_watermark,
            [
                {
                    "stream": stream,
                    "watermark": current.watermark,
                    "pending": value,
                    "pending_run_id": run_id,
                    "updated_at": now_utc(),
                }
            ],
            ["stream"],
        )
    return True


def commit_watermarks(engine: Engine, run_id: str) -> dict[str, str]:
    """Promote ``pending`` to ``watermark`` for every stream this run extracted (SYNC-1).

    Called only after a successful, non-dry-run finish, so a failed run is re-read next time.
    Returns ``{stream: new watermark ISO string}``.
    """
    ensure_schema(engine)
    promoted: dict[str, str] = {}
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(sync_watermark.c.stream, sync_watermark.c.pending).where(
                sync_watermark.c.pending_run_id == run_id
            )
        ).all()
        for stream, pending in rows:
            conn.execute(
                sa.update(sync_watermark)
                .where(sync_watermark.c.stream == stream)
                .values(watermark=pending, pending=None, pending_run_id=None, updated_at=now_utc())
            )
            promoted[stream] = pending.isoformat()
    return promoted


# -- quarantine (SYNC-5) -----------------------------------------------------------------------


def quarantine_rows(
    engine_or_conn: Engine | Connection,
    rows: Iterable[Mapping[str, Any]],
    *,
    stage: str,
    run_id: str,
    now: datetime | None = None,
) -> int:
    """Keep malformed or failed records with their reason (SYNC-5); returns rows written.

    Each row needs ``system``, ``object``, ``record_id``, ``rule``, ``reason`` and ``payload``
    (dict or JSON text). Re-quarantining the same record under the same rule in a *later* run
    bumps ``attempts`` and ``last_seen_at`` and re-opens it; the same run writing it again changes
    nothing, so task retries stay idempotent.
    """
    at = now or now_utc()
    values = [
        {
            "stage": stage,
            "system": r["system"],
            "object": r["object"],
            "record_id": str(r["record_id"]),
            "rule": r["rule"],
            "reason": r.get("reason"),
            "payload": r["payload"] if isinstance(r.get("payload"), str) else dumps(r.get("payload")),
            "first_seen_at": at,
            "last_seen_at": at,
            "last_run_id": run_id,
            "attempts": 1,
            "resolved_at": None,
        }
        for r in rows
    ]
    if not values:
        return 0
    if isinstance(engine_or_conn, Engine):
        with engine_or_conn.begin() as conn:
            _quarantine_on(conn, values)
    else:
        _quarantine_on(engine_or_conn, values)
    return len(values)


def _quarantine_on(conn: Connection, values: list[dict[str, Any]]) -> None:
    q = quarantine
    keys = ["stage", "system", "object", "record_id", "rule"]
    unique = list({tuple(v[k] for k in keys): v for v in values}.values())
    stmt = _insert(conn, q)
    ex = stmt.excluded
    same_run = q.c.last_run_id == ex.last_run_id
    stmt = stmt.on_conflict_do_update(
        index_elements=keys,
        set_={
            "reason": ex.reason,
            "payload": ex.payload,
            "attempts": sa.case((same_run, q.c.attempts), else_=q.c.attempts + 1),
            "last_seen_at": sa.case((same_run, q.c.last_seen_at), else_=ex.last_seen_at),
            "last_run_id": ex.last_run_id,
            "resolved_at": sa.null(),
        },
    )
    conn.execute(stmt, unique)


def resolve_quarantine(
    conn: Connection,
    *,
    stage: str,
    system: str,
    object_name: str,
    record_ids: Sequence[str],
    at: datetime,
    rule: str | None = None,
) -> int:
    """Mark open quarantine entries of these records resolved: a later pass over them was clean.

    ``rule`` narrows it to entries of that rule (a record may still fail another one).
    """
    if not record_ids:
        return 0
    q = quarantine
    total = 0
    for part in chunked(record_ids, 5_000):
        conditions = [
            q.c.stage == stage,
            q.c.system == system,
            q.c.object == object_name,
            q.c.record_id.in_(part),
            q.c.resolved_at.is_(None),
        ]
        if rule is not None:
            conditions.append(q.c.rule == rule)
        result = conn.execute(sa.update(q).where(*conditions).values(resolved_at=at))
        total += result.rowcount or 0
    return total


def open_quarantine_ids(engine: Engine, *, stage: str, system: str, object_name: str) -> list[str]:
    """Ids of records still in quarantine for this stage and object (retried on later runs)."""
    q = quarantine
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(q.c.record_id)
            .where(
                q.c.stage == stage, q.c.system == system, q.c.object == object_name, q.c.resolved_at.is_(None)
            )
            .distinct()
            .order_by(q.c.record_id)
        )
        return [r[0] for r in rows]


# -- runs and the sync log ---------------------------------------------------------------------


def record_run(
    engine: Engine,
    run_id: str,
    *,
    dag_id: str,
    logical_date: datetime | None = None,
    data_interval_start: datetime | None = None,
    data_interval_end: datetime | None = None,
    dry_run: bool = False,
    status: str = "running",
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> None:
    """Insert or replace the ``sync_run`` row of a run (the DAG's first and last tasks call it)."""
    ensure_schema(engine)
    with engine.begin() as conn:
        upsert_on(
            conn,
            sync_run,
            [
                {
                    "run_id": run_id,
                    "dag_id": dag_id,
                    "logical_date": logical_date,
                    "data_interval_start": data_interval_start,
                    "data_interval_end": data_interval_end,
                    "dry_run": dry_run,
                    "status": status,
                    "started_at": started_at or now_utc(),
                    "finished_at": finished_at,
                }
            ],
            ["run_id"],
        )


def abandon_runs(engine: Engine, dag_id: str, current_run_id: str) -> list[str]:
    """Mark runs of ``dag_id`` still ``running`` (a crashed or killed run) as ``abandoned``.

    ``crm_sync`` runs one at a time, so when a run starts, any other run still recorded as
    running will never finish: it is closed here so ``sync_run`` tells the truth.
    """
    ensure_schema(engine)
    with engine.begin() as conn:
        stale = [
            str(r)
            for r in conn.execute(
                sa.select(sync_run.c.run_id).where(
                    sync_run.c.dag_id == dag_id,
                    sync_run.c.status == "running",
                    sync_run.c.run_id != current_run_id,
                )
            ).scalars()
        ]
        _mark_abandoned(conn, stale)
    return stale


def abandon_run(engine: Engine, run_id: str) -> bool:
    """Mark one run ``abandoned`` if it is still ``running`` (a backfill chunk's killed attempt,
    once a new attempt of the chunk starts); returns whether it was."""
    ensure_schema(engine)
    with engine.begin() as conn:
        return _mark_abandoned(conn, [run_id]) > 0


def _mark_abandoned(conn: Connection, run_ids: Sequence[str]) -> int:
    if not run_ids:
        return 0
    return conn.execute(
        sa.update(sync_run)
        .where(sync_run.c.run_id.in_(run_ids), sync_run.c.status == "running")
        .values(status="abandoned", finished_at=now_utc())
    ).rowcount


def finish_run(engine: Engine, run_id: str, status: str, finished_at: datetime | None = None) -> None:
    """Set a run's final status and finish time, then prune older runs' rule rows.

    Every way a run ends (``crm_sync``'s finish and failure, a backfill chunk's commit or dry
    run) comes through here, so :func:`prune_run_rows` runs whenever a run is over.
    """
    with engine.begin() as conn:
        conn.execute(
            sa.update(sync_run)
            .where(sync_run.c.run_id == run_id)
            .values(status=status, finished_at=finished_at or now_utc())
        )
    pruned = prune_run_rows(engine)
    if pruned:
        log.info("pruned %d rule-table rows of runs before the latest of each DAG", pruned)


def latest_run_id(engine: Engine, dag_id: str = "crm_sync") -> str | None:
    """The most recent run of ``dag_id`` (by logical date, then start), for ``crm-sync plan``."""
    ensure_schema(engine)
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(sync_run.c.run_id)
            .where(sync_run.c.dag_id == dag_id)
            .order_by(sync_run.c.logical_date.desc(), sync_run.c.started_at.desc(), sync_run.c.run_id.desc())
            .limit(1)
        ).first()
    return None if row is None else str(row[0])


def log_run_stage(
    engine: Engine,
    run_id: str,
    stage: str,
    object_name: str,
    *,
    read: int = 0,
    changed: int = 0,
    deleted: int = 0,
    quarantined: int = 0,
    created: int = 0,
    updated: int = 0,
    skipped: int = 0,
    duration_s: float = 0.0,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Upsert this run's ``sync_log`` row for one stage and object (a re-run replaces its own row)."""
    ensure_schema(engine)
    with engine.begin() as conn:
        upsert_on(
            conn,
            sync_log,
            [
                {
                    "run_id": run_id,
                    "stage": stage,
                    "object": object_name,
                    "read": read,
                    "changed": changed,
                    "deleted": deleted,
                    "quarantined": quarantined,
                    "created": created,
                    "updated": updated,
                    "skipped": skipped,
                    "duration_s": round(duration_s, 3),
                    "started_at": started_at,
                    "finished_at": finished_at or now_utc(),
                    "details": dumps(dict(details or {})),
                }
            ],
            ["run_id", "stage", "object"],
        )


# -- links -------------------------------------------------------------------------------------

#: (SF object, SF raw table, HubSpot raw table, HubSpot property holding the SF id).
LINK_SOURCES: tuple[tuple[str, str, str, str], ...] = (
    ("Account", "sf_account", "hs_company", "salesforceaccountid"),
    ("Contact", "sf_contact", "hs_contact", "salesforcecontactid"),
    ("Lead", "sf_lead", "hs_contact", "salesforceleadid"),
    ("Opportunity", "sf_opportunity", "hs_deal", "salesforceopportunityid"),
)
SF_LINK_FIELD = "HubSpot_Id__c"


def refresh_links_from_staging(engine: Engine, run_id: str) -> dict[str, int]:
    """Derive ``sync_link`` pairs from the link fields both CRMs carry (RULES.md "Linked").

    SF ``HubSpot_Id__c`` and HS ``salesforceaccountid``/``salesforcecontactid``/
    ``salesforceleadid``/``salesforceopportunityid`` name the other side's record. Pairs both sides
    agree on are stored first, then pairs only Salesforce names, then pairs only HubSpot names;
    a candidate that conflicts with an existing link (same SF id or same HS id) is not stored, and
    existing links are never changed here. Deleted records do not link. Returns new links per
    object.
    """
    ensure_schema(engine)
    at = now_utc()
    inserted: dict[str, int] = {}
    with engine.begin() as conn:
        for obj, sf_name, hs_name, hs_field in LINK_SOURCES:
            sf = RAW_TABLES[sf_name].alias("sf")
            hs = RAW_TABLES[hs_name].alias("hs")
            sf_ok = sa.and_(sf.c[SF_LINK_FIELD].is_not(None), sf.c[SF_LINK_FIELD] != "", ~sf.c._deleted)
            hs_ok = sa.and_(hs.c[hs_field].is_not(None), hs.c[hs_field] != "", ~hs.c._deleted)
            agreed = (
                sa.select(sf.c.Id.label("link_sf_id"), hs.c.id.label("link_hs_id"))
                .select_from(sf.join(hs, sa.and_(hs.c[hs_field] == sf.c.Id, hs.c.id == sf.c[SF_LINK_FIELD])))
                .where(sf_ok, hs_ok)
                .order_by(sf.c.Id)
            )
            sf_only = (
                sa.select(sf.c.Id.label("link_sf_id"), sf.c[SF_LINK_FIELD].label("link_hs_id"))
                .where(sf_ok)
                .order_by(sf.c.Id)
            )
            hs_only = (
                sa.select(hs.c[hs_field].label("link_sf_id"), hs.c.id.label("link_hs_id"))
                .where(hs_ok)
                .order_by(hs.c.id)
            )
            count = 0
            for candidates in (agreed, sf_only, hs_only):
                sub = candidates.subquery()
                source = sa.select(
                    sa.literal(obj),
                    sub.c.link_sf_id,
                    sub.c.link_hs_id,
                    sa.literal(at, UTCDateTime()),
                    sa.literal(run_id),
                ).where(sa.true())
                stmt = (
                    _insert(conn, sync_link)
                    .from_select(["object", "sf_id", "hs_id", "linked_at", "run_id"], source)
                    .on_conflict_do_nothing()
                )
                count += conn.execute(stmt).rowcount or 0
            inserted[obj] = count
    return inserted


# -- frames for the rule tasks -----------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return _jsonable(item())
    if value is pd.NaT:
        return None
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(_jsonable(value), sort_keys=True)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, list | dict | tuple | set) else False
    except (TypeError, ValueError):
        return False


def _frame_column_type(series: pd.Series) -> sa.types.TypeEngine[Any]:
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(dtype):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(dtype):
        return sa.Float()
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return UTCDateTime()
    present = [v for v in series if not _is_missing(v)]
    if present and all(isinstance(v, bool) for v in present):
        return sa.Boolean()
    if present and all(isinstance(v, datetime | pd.Timestamp) for v in present):
        return UTCDateTime()
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return sa.BigInteger()
    if present and all(isinstance(v, float | int) and not isinstance(v, bool) for v in present):
        return sa.Float()
    return sa.Text()


def _cell(value: Any, col_type: sa.types.TypeEngine[Any]) -> Any:
    if isinstance(value, list | dict | tuple | set):
        return dumps(value)
    if _is_missing(value):
        return None
    if isinstance(col_type, UTCDateTime):
        return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value
    if isinstance(col_type, sa.Text):
        return value if isinstance(value, str) else str(_jsonable(value))
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def replace_frame(engine: Engine, table: str, frame: pd.DataFrame, run_id: str) -> int:
    """Replace the whole contents of a global state table with ``frame`` (idempotent re-runs).

    For tables that hold one current state for every run (DEAL-6's association snapshot); the
    rule stages' tables are per run (:func:`replace_run_rows`). The table is created from the
    frame's dtypes if missing (or re-created when its columns changed) with a ``_run_id`` column
    naming the run that wrote it; list/dict cells are stored as JSON text. One transaction:
    readers see the old or the new contents, never a mix. Returns rows written.
    """
    ensure_schema(engine)
    with engine.begin() as conn:
        target = _frame_table(conn, table, frame)
        conn.execute(sa.delete(target))
        return _insert_frame(conn, target, frame, run_id)


def replace_run_rows(engine: Engine, table: str, frame: pd.DataFrame, run_id: str) -> int:
    """Replace ``run_id``'s rows of a rule table with ``frame``, leaving other runs' rows alone.

    Rule tables (``rule_*``) are scoped by run, so an hourly sync and a backfill chunk (or two
    chunks) never overwrite each other's intermediate results, and a retried stage replaces only
    its own rows (SYNC-4). Created as :func:`replace_frame` does, with an index on ``_run_id``;
    a change of columns re-creates the table (other runs' rows of it are then gone). One
    transaction. Returns rows written.
    """
    ensure_schema(engine)
    with engine.begin() as conn:
        target = _frame_table(conn, table, frame)
        conn.execute(sa.delete(target).where(target.c._run_id == run_id))
        return _insert_frame(conn, target, frame, run_id)


def read_run_rows(engine: Engine, table: str, run_id: str, columns: Sequence[str] = ()) -> pd.DataFrame:
    """``run_id``'s rows of a rule table, without ``_run_id``; ``columns`` when never written."""
    ensure_schema(engine)
    if not sa.inspect(engine).has_table(table):
        return pd.DataFrame(columns=list(columns))
    target = table_for(engine, table)
    cols = list(target.c)  # _run_id too: a frame without columns still has its rows
    # Ordered as read_frame orders rule tables (by their first column), so reads are repeatable.
    frame = _select_frame(engine, cols, cols[:1], target.c._run_id == run_id)
    return frame.drop(columns=["_run_id"])


def latest_run_with_rows(engine: Engine, table: str) -> str | None:
    """The most recently started run that has rows in rule table ``table`` (``None``: none has)."""
    ensure_schema(engine)
    if not sa.inspect(engine).has_table(table):
        return None
    target = table_for(engine, table)
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(sync_run.c.run_id)
            .where(sync_run.c.run_id.in_(sa.select(target.c._run_id).distinct()))
            .order_by(sync_run.c.started_at.desc(), sync_run.c.run_id.desc())
            .limit(1)
        ).scalar()
    return None if value is None else str(value)


#: Prefix of the rule stages' tables, which :func:`prune_run_rows` keeps small.
RULE_TABLE_PREFIX = "rule_"


def prune_run_rows(engine: Engine) -> int:
    """Delete rule-table rows of runs that are neither running nor the latest finished of their DAG.

    Called when a run ends, so the run-scoped rule tables do not grow forever, while the last
    run of ``crm_sync`` and of each backfill stays queryable ("why does the plan say this").
    Rows of runs ``sync_run`` does not know are deleted too. Returns rows deleted.
    """
    ensure_schema(engine)
    keep = _runs_to_keep(engine)
    deleted = 0
    names = [n for n in sa.inspect(engine).get_table_names() if n.startswith(RULE_TABLE_PREFIX)]
    with engine.begin() as conn:
        for name in names:
            target = table_for(conn, name)
            if "_run_id" in target.c:
                stale = sa.or_(target.c._run_id.is_(None), target.c._run_id.not_in(keep))
                deleted += conn.execute(sa.delete(target).where(stale)).rowcount or 0
    return deleted


def _runs_to_keep(engine: Engine) -> list[str]:
    """Running runs, and the run of each DAG that finished last."""
    runs = read_frame(engine, sync_run, ["run_id", "dag_id", "status", "finished_at"])
    running = runs[runs["status"] == "running"]
    finished = runs[(runs["status"] != "running") & runs["finished_at"].notna()]
    latest = finished.sort_values(["finished_at", "run_id"]).groupby("dag_id", dropna=False).tail(1)
    return sorted({str(r) for r in (*running["run_id"], *latest["run_id"])})


def _frame_table(conn: Connection, table: str, frame: pd.DataFrame) -> sa.Table:
    """The rule or state table for ``frame``'s columns, created (or re-created) as needed."""
    if table in CORE_TABLES:
        raise ValueError(f"{table} is a staging contract table; only rule and state tables are replaced")
    inspector = sa.inspect(conn)
    found = inspector.has_table(table)
    existing = [(c["name"], type(c["type"]).__name__) for c in inspector.get_columns(table)] if found else []
    families = {name: _type_family(kind) for name, kind in existing}
    columns = [sa.Column(str(n), _column_type_for(frame[n], families.get(str(n)))) for n in frame.columns]
    columns.append(sa.Column("_run_id", sa.Text()))
    target = sa.Table(table, sa.MetaData(), *columns, sa.Index(f"ix_{table}_run_id", "_run_id"))
    if not found:
        target.create(conn)
        return target
    wanted = [(c.name, type(c.type.dialect_impl(conn.dialect)).__name__) for c in columns]
    if [n for n, _ in existing] != [n for n, _ in wanted] or not _same_types(existing, wanted):
        log.warning("%s: columns changed, table re-created (other runs' rows of it are gone)", table)
        target.drop(conn)
        target.create(conn)
    else:  # tables written before rule tables were run-scoped lack the index
        for index in target.indexes:
            index.create(conn, checkfirst=True)
    return target


def _insert_frame(conn: Connection, target: sa.Table, frame: pd.DataFrame, run_id: str) -> int:
    """Insert ``frame``'s rows tagged with ``run_id`` (JSON text for list/dict cells)."""
    names = [str(n) for n in frame.columns]
    types = [target.c[n].type for n in names]
    records = (
        {**{n: _cell(v, t) for n, v, t in zip(names, row, types, strict=True)}, "_run_id": run_id}
        for row in frame.itertuples(index=False, name=None)
    )
    written = 0
    for chunk in chunked(records, DEFAULT_CHUNK):
        conn.execute(sa.insert(target), chunk)
        written += len(chunk)
    return written


def _same_types(existing: list[tuple[str, str]], wanted: list[tuple[str, str]]) -> bool:
    """Loose type comparison of reflected vs wanted columns (reflection names types per dialect)."""
    return all(_type_family(a) == _type_family(b) for (_, a), (_, b) in zip(existing, wanted, strict=True))


def _type_family(name: str) -> str:
    """``BOOL``, ``INT``, ``FLOAT``, ``DATE`` or ``TEXT`` for a type's class name on any dialect."""
    upper = name.upper()
    for fam in ("BOOL", "INT", "FLOAT", "REAL", "DOUBLE", "NUMERIC", "TIMESTAMP", "DATE", "TEXT", "CHAR"):
        if fam in upper:
            return {
                "REAL": "FLOAT",
                "DOUBLE": "FLOAT",
                "NUMERIC": "FLOAT",
                "TIMESTAMP": "DATE",
                "CHAR": "TEXT",
            }.get(fam, fam)
    return upper


#: The type a frame column of each family is written as.
_FAMILY_TYPES: dict[str, type[sa.types.TypeEngine[Any]]] = {
    "BOOL": sa.Boolean,
    "INT": sa.BigInteger,
    "FLOAT": sa.Float,
    "DATE": UTCDateTime,
    "TEXT": sa.Text,
}


def _column_type_for(series: pd.Series, existing_family: str | None) -> sa.types.TypeEngine[Any]:
    """``series``'s column type; a column without values, or ints for a float column, keeps the
    existing column's type, so one run's empty or integral output does not re-create a rule
    table and drop the other runs' rows."""
    inferred = _frame_column_type(series)
    if existing_family is None or _type_family(type(inferred).__name__) == existing_family:
        return inferred
    widening = _type_family(type(inferred).__name__) == "INT" and existing_family == "FLOAT"
    if widening or all(_is_missing(v) for v in series):
        return _FAMILY_TYPES.get(existing_family, sa.Text)()
    return inferred


#: Rows a filtered read (:func:`read_frame` with ``keep``) holds before filtering them.
FILTER_PAGE_ROWS = 50_000


def read_frame(
    engine: Engine,
    table: str | sa.Table,
    columns: Sequence[str] | None = None,
    keep: RowMask | None = None,
) -> pd.DataFrame:
    """A staging table as a DataFrame (timestamps as UTC-aware datetimes on every dialect).

    ``keep`` reads only the rows it keeps: the table is streamed in pages of
    :data:`FILTER_PAGE_ROWS` and each page filtered before the next is read, so memory follows
    the rows kept, not the table (a backfill chunk reading its neighbourhood of a large staging).
    """
    ensure_schema(engine)
    target = table_for(engine, table)
    cols = [target.c[c] for c in columns] if columns else list(target.c)
    key_cols = [c for c in target.primary_key.columns if c in cols] or cols[:1]
    return _select_frame(engine, cols, key_cols, keep=keep)


def _select_frame(
    engine: Engine,
    cols: Sequence[sa.Column[Any]],
    order_by: Sequence[sa.Column[Any]],
    where: sa.ColumnElement[bool] | None = None,
    keep: RowMask | None = None,
) -> pd.DataFrame:
    """Selected columns as a DataFrame, timestamps as UTC; only the rows ``keep`` keeps.

    Timestamps come back as the driver gives them (text on SQLite, aware datetimes on
    PostgreSQL) and are converted once per column, not once per cell: at a million rows the
    per-cell conversion, and pandas probing SQLAlchemy rows, dominated the rule tasks.
    """
    stamps = {c.name for c in cols if isinstance(c.type, UTCDateTime | sa.DateTime)}
    raw = [sa.type_coerce(c, sa.Text()).label(c.name) if c.name in stamps else c for c in cols]
    stmt = sa.select(*raw).order_by(*order_by)
    if where is not None:
        stmt = stmt.where(where)
    names = [c.name for c in cols]
    with engine.connect() as conn:
        if keep is None:
            rows = [tuple(row) for row in conn.execute(stmt)]
        else:
            rows = _kept_rows(conn.execution_options(yield_per=FILTER_PAGE_ROWS).execute(stmt), names, keep)
    frame = pd.DataFrame(rows, columns=names)
    for name in stamps:
        frame[name] = _utc_column(frame[name])
    return frame


def _kept_rows(result: sa.CursorResult[Any], names: list[str], keep: RowMask) -> list[tuple[Any, ...]]:
    """The rows of a streamed result that ``keep`` keeps, page by page (raw driver values, so
    the frame built from them infers its types as a read of those rows alone would)."""
    rows: list[tuple[Any, ...]] = []
    for page in result.partitions():
        values = [tuple(row) for row in page]
        mask = keep(pd.DataFrame(values, columns=names))
        rows.extend(itertools.compress(values, mask.tolist()))
    return rows


def _utc_column(values: pd.Series) -> pd.Series:
    """Staged timestamps as UTC (SQLite keeps naive UTC text, PostgreSQL aware values)."""
    present = values.dropna()
    if present.empty or isinstance(present.iloc[0], str):
        return pd.to_datetime(values, utc=True, format="ISO8601")
    return pd.to_datetime(values, utc=True)


def write_plan(engine: Engine, run_id: str, frame: pd.DataFrame) -> int:
    """Store a run's plan, replacing that run's rows in one transaction (SYNC-4)."""
    ensure_schema(engine)
    missing = [c for c in PLAN_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"plan frame lacks columns {missing}")
    rows = []
    for seq, rec in enumerate(frame[list(PLAN_COLUMNS)].to_dict("records")):
        row: dict[str, Any] = {"run_id": run_id, "seq": seq}
        for col in PLAN_COLUMNS:
            if col == "run_id":
                continue
            value = rec[col]
            if col in ("fields", "rules"):
                empty: Any = {} if col == "fields" else []
                row[col] = dumps(empty if _is_missing(value) else value)
            else:
                row[col] = None if _is_missing(value) else str(value)
        rows.append(row)
    with engine.begin() as conn:
        conn.execute(sa.delete(plan_table).where(plan_table.c.run_id == run_id))
        for chunk in chunked(rows, DEFAULT_CHUNK):
            conn.execute(sa.insert(plan_table), chunk)
    return len(rows)


def read_plan(engine: Engine, run_id: str) -> pd.DataFrame:
    """A run's plan in order, with ``fields`` as dicts and ``rules`` as lists."""
    ensure_schema(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(plan_table).where(plan_table.c.run_id == run_id).order_by(plan_table.c.seq)
        ).all()
    records = []
    for r in rows:
        m = r._mapping
        rec = {c: m[c] for c in PLAN_COLUMNS}
        rec["fields"] = json.loads(m["fields"]) if m["fields"] else {}
        rec["rules"] = json.loads(m["rules"]) if m["rules"] else []
        records.append(rec)
    return pd.DataFrame.from_records(records, columns=list(PLAN_COLUMNS))


def table_dump(engine: Engine, table: str | sa.Table) -> list[tuple[Any, ...]]:
    """Every row of a table in key order (tests and audits compare dumps for idempotence)."""
    target = table_for(engine, table)
    order = list(target.primary_key.columns) or list(target.c)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(target).order_by(*order))]
