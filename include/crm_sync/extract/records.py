"""Pure parsing of source records into typed staging rows, with quarantine reasons (SYNC-5).

Nothing here does I/O: extraction modules hand raw API records (Salesforce REST JSON, Bulk API 2.0
CSV rows, HubSpot objects) to a :class:`RecordParser` built from a catalog :class:`Stream`, and get
back either a staging row or the reasons the record is malformed. Keeping this pure means the
rules for "what is a bad record" are unit-tested without a server, and REST and Bulk reads of the
same record produce byte-identical rows (same values, same content hash), which is what lets a
re-read write nothing (SYNC-4).

SYNC-5 (nothing lost): a malformed record is never dropped and never fails the task; it becomes
one :class:`Quarantined` entry per broken rule, with the raw payload, and the rest proceeds.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from crm_sync.catalog import Field, FieldType, Stream

#: Quarantine rule ids for extraction problems; ``SYNC-5`` because quarantining is that rule.
MISSING_ID = "SYNC-5:missing_id"
MISSING_REQUIRED = "SYNC-5:missing_required"
UNPARSEABLE_DATE = "SYNC-5:unparseable_date"
UNPARSEABLE_NUMBER = "SYNC-5:unparseable_number"
UNPARSEABLE_BOOLEAN = "SYNC-5:unparseable_boolean"
#: No longer raised: a picklist value the metadata does not list (an inactive value, a value of
#: an unrestricted picklist) is staged, and the rules' value map decides per field (SYNC-2).
#: Kept so quarantine entries of older runs still read with their rule id.
UNKNOWN_PICKLIST_VALUE = "SYNC-5:unknown_picklist_value"
OVERSIZED_TEXT = "SYNC-5:oversized_text"

DELETED = "_deleted"
HASH = "_hash"

_TEXT_TYPES: frozenset[FieldType] = frozenset({"id", "string", "text", "email", "url", "picklist"})
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
#: Epoch values above this are milliseconds (HubSpot sends datetimes as epoch-ms strings).
_EPOCH_MS_THRESHOLD = 100_000_000_000


class UnparseableValueError(ValueError):
    """A field value that cannot be coerced to its catalog type; carries the quarantine rule."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(reason)
        self.rule = rule
        self.reason = reason


@dataclass(frozen=True)
class Quarantined:
    """One malformed record under one broken rule (SYNC-5), ready for the quarantine table."""

    record_id: str
    rule: str
    reason: str
    payload: Mapping[str, Any]


@dataclass
class ParsedBatch:
    """The outcome of parsing a batch: clean rows, and the quarantined records with reasons."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)

    @property
    def quarantined_ids(self) -> set[str]:
        return {q.record_id for q in self.quarantined}


# -- value coercion --------------------------------------------------------------------------


def parse_datetime(value: Any) -> datetime | None:
    """Parse a source timestamp to an aware UTC datetime.

    Accepts Salesforce's ``2024-01-31T12:00:00.000+0000``, ISO 8601 with ``Z`` or an offset,
    and epoch seconds/milliseconds (HubSpot stores datetime properties as epoch-ms strings).
    Naive values are taken as UTC: both CRMs only ever emit UTC.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, bool):
        raise UnparseableValueError(UNPARSEABLE_DATE, f"not a timestamp: {value!r}")
    elif isinstance(value, int | float) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        number = float(value)
        if not math.isfinite(number):
            raise UnparseableValueError(UNPARSEABLE_DATE, f"not a timestamp: {value!r}")
        seconds = number / 1000.0 if abs(number) >= _EPOCH_MS_THRESHOLD else number
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise UnparseableValueError(UNPARSEABLE_DATE, f"timestamp out of range: {value!r}") from exc
    elif isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError as exc:
            raise UnparseableValueError(UNPARSEABLE_DATE, f"unparseable timestamp {value!r}") from exc
    else:
        raise UnparseableValueError(UNPARSEABLE_DATE, f"not a timestamp: {value!r}")
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_date(value: Any) -> date | None:
    """Parse a calendar date (``2024-01-31``); a full timestamp keeps its UTC date."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError as exc:
            raise UnparseableValueError(UNPARSEABLE_DATE, f"unparseable date {value!r}") from exc
    parsed = parse_datetime(value)
    return parsed.date() if parsed else None


def parse_number(value: Any) -> float | None:
    """Parse a number; booleans, NaN and infinities are not numbers."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise UnparseableValueError(UNPARSEABLE_NUMBER, f"not a number: {value!r}")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace(",", ""))
        except ValueError as exc:
            raise UnparseableValueError(UNPARSEABLE_NUMBER, f"unparseable number {value!r}") from exc
    else:
        raise UnparseableValueError(UNPARSEABLE_NUMBER, f"not a number: {value!r}")
    if not math.isfinite(number):
        raise UnparseableValueError(UNPARSEABLE_NUMBER, f"not a finite number: {value!r}")
    return number


def parse_boolean(value: Any) -> bool | None:
    """Parse a boolean from JSON booleans or the strings both APIs use (``"true"``/``"false"``)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UnparseableValueError(UNPARSEABLE_BOOLEAN, f"not a boolean: {value!r}")


def parse_text(value: Any) -> str | None:
    """Text as-is; empty strings become NULL so REST (null) and Bulk/HubSpot ("") agree."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = value if isinstance(value, str) else str(value)
    return text if text != "" else None


_COERCERS: dict[FieldType, Callable[[Any], Any]] = {
    "datetime": parse_datetime,
    "date": parse_date,
    "number": parse_number,
    "boolean": parse_boolean,
}


def coerce(field_type: FieldType, value: Any) -> Any:
    """Coerce one raw value to the Python type staging stores for ``field_type``."""
    coercer = _COERCERS.get(field_type)
    return coercer(value) if coercer is not None else parse_text(value)


# -- hashing -----------------------------------------------------------------------------------


def _hash_default(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"unhashable staging value {value!r}")


def row_hash(values: Sequence[Any], deleted: bool) -> str:
    """Content hash of a coerced row: equal for equal content, whichever API read it.

    Staging compares it with the stored hash and writes only rows whose content changed, so an
    unchanged re-read (the overlap window, a re-run) writes nothing (SYNC-4).
    """
    encoded = json.dumps([*values, deleted], default=_hash_default, separators=(",", ":"))
    return hashlib.blake2b(encoded.encode(), digest_size=16).hexdigest()


def json_payload(raw: Mapping[str, Any]) -> str:
    """The raw record as JSON text for the quarantine table (never fails on odd values)."""
    clean = {k: v for k, v in raw.items() if k != "attributes"}
    return json.dumps(clean, default=str, sort_keys=True)


# -- records -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    name: str
    coerce: Callable[[Any], Any]
    required: bool
    is_id: bool
    max_length: int | None


class RecordParser:
    """Turns raw records of one catalog stream into staging rows or quarantine entries.

    ``picklists`` maps a picklist field name to its known values, as read from the source's
    own metadata (Salesforce describe, HubSpot property options). A value outside them never
    keeps a record out of staging: real orgs hold inactive values and values of unrestricted
    picklists, and whether a value has a counterpart on the other side is the value map's
    decision, per field (SYNC-2). A row holds one value per catalog field (named as the source
    names it), ``_deleted`` and ``_hash``.
    """

    def __init__(self, stream: Stream, picklists: Mapping[str, frozenset[str]] | None = None) -> None:
        self.stream = stream
        self.picklists = dict(picklists or {})
        self._plans = tuple(self._plan(f) for f in stream.fields)

    def _plan(self, f: Field) -> _Plan:
        return _Plan(
            name=f.name,
            coerce=_COERCERS.get(f.type) or parse_text,
            required=f.required,
            is_id=f.type == "id" and f.name == self.stream.key,
            max_length=f.max_length if f.type in _TEXT_TYPES else None,
        )

    def record_id(self, raw: Mapping[str, Any]) -> str:
        """The record's source id, or a stable stand-in derived from its content when missing."""
        value = parse_text(raw.get(self.stream.key))
        if value is not None and value.strip():
            return value
        digest = hashlib.blake2b(json_payload(raw).encode(), digest_size=8).hexdigest()
        return f"<missing {self.stream.key}:{digest}>"

    def parse(
        self, raw: Mapping[str, Any], deleted: bool | None = None
    ) -> dict[str, Any] | list[Quarantined]:
        """Parse one record: the staging row, or the quarantine entries (one per broken rule).

        ``deleted`` overrides the deletion flag (HubSpot's ``archived``); otherwise Salesforce's
        ``IsDeleted`` field decides.
        """
        row: dict[str, Any] = {}
        problems: dict[str, list[str]] = {}
        for plan in self._plans:
            raw_value = raw.get(plan.name)
            try:
                value = plan.coerce(raw_value)
            except UnparseableValueError as problem:
                problems.setdefault(problem.rule, []).append(f"{plan.name}: {problem.reason}")
                row[plan.name] = None
                continue
            if value is None or (isinstance(value, str) and plan.is_id and not value.strip()):
                if plan.required:
                    rule = MISSING_ID if plan.is_id else MISSING_REQUIRED
                    problems.setdefault(rule, []).append(f"{plan.name}: required value is missing")
                row[plan.name] = None
                continue
            if plan.max_length is not None and isinstance(value, str) and len(value) > plan.max_length:
                problems.setdefault(OVERSIZED_TEXT, []).append(
                    f"{plan.name}: {len(value)} characters exceed the limit of {plan.max_length}"
                )
            row[plan.name] = value
        if problems:
            record_id = self.record_id(raw)
            return [
                Quarantined(record_id, rule, "; ".join(reasons), raw) for rule, reasons in problems.items()
            ]
        is_deleted = bool(row.get("IsDeleted")) if deleted is None else deleted
        row[DELETED] = is_deleted
        row[HASH] = row_hash([row[p.name] for p in self._plans], is_deleted)
        return row

    def parse_many(
        self, raws: Sequence[Mapping[str, Any]], deleted: Sequence[bool | None] | None = None
    ) -> ParsedBatch:
        """Parse a batch; one bad record never stops the others (SYNC-5)."""
        batch = ParsedBatch()
        flags: Sequence[bool | None] = deleted if deleted is not None else [None] * len(raws)
        for raw, flag in zip(raws, flags, strict=True):
            result = self.parse(raw, flag)
            if isinstance(result, dict):
                batch.rows.append(result)
            else:
                batch.quarantined.extend(result)
        return batch

    def rehash(self, row: Mapping[str, Any], deleted: bool) -> dict[str, Any]:
        """A stored row with a new deletion flag and the matching hash (full-refresh deletes)."""
        updated = {name: row.get(name) for name in self.stream.field_names}
        updated[DELETED] = deleted
        updated[HASH] = row_hash([updated[n] for n in self.stream.field_names], deleted)
        return updated


# -- source shapes -----------------------------------------------------------------------------


def flatten_hubspot_object(obj: Mapping[str, Any], stream: Stream) -> dict[str, Any]:
    """A HubSpot CRM object (``{"id", "properties", "createdAt", "updatedAt"}``) as one flat record.

    ``createdate`` and the cursor property fall back to the object's ``createdAt``/``updatedAt``
    so a record whose properties omit them still carries its timestamps.
    """
    props = obj.get("properties") or {}
    flat: dict[str, Any] = {name: props.get(name) for name in stream.field_names}
    flat["id"] = obj.get("id", props.get("hs_object_id"))
    if flat.get("createdate") in (None, ""):
        flat["createdate"] = obj.get("createdAt")
    if stream.cursor and flat.get(stream.cursor) in (None, ""):
        flat[stream.cursor] = obj.get("updatedAt")
    return flat


def flatten_hubspot_owner(owner: Mapping[str, Any]) -> dict[str, Any]:
    """A HubSpot owner as a flat record (owners carry their fields at the top level)."""
    return {
        "id": owner.get("id"),
        "email": owner.get("email"),
        "firstName": owner.get("firstName"),
        "lastName": owner.get("lastName"),
        "userId": owner.get("userId"),
        "archived": bool(owner.get("archived", False)),
        "updatedAt": owner.get("updatedAt"),
    }


def flatten_hubspot_pipeline(pipeline: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A HubSpot pipeline and its stages as flat records (stages carry ``pipeline_id``)."""
    record = {
        "id": pipeline.get("id"),
        "label": pipeline.get("label"),
        "displayOrder": pipeline.get("displayOrder"),
        "archived": bool(pipeline.get("archived", False)),
    }
    stages = []
    for stage in pipeline.get("stages") or []:
        metadata = stage.get("metadata") or {}
        stages.append(
            {
                "id": stage.get("id"),
                "pipeline_id": pipeline.get("id"),
                "label": stage.get("label"),
                "displayOrder": stage.get("displayOrder"),
                "probability": metadata.get("probability"),
                "isClosed": metadata.get("isClosed"),
                "archived": bool(stage.get("archived", False)),
            }
        )
    return record, stages


def bulk_csv_record(row: Mapping[str, str | None]) -> dict[str, Any]:
    """A Bulk API 2.0 CSV row: empty cells are NULL (the REST API sends null for them)."""
    return {k: (None if v == "" else v) for k, v in row.items()}
