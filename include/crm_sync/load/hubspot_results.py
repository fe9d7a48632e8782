"""Pure pieces of the HubSpot writer: request inputs from load items, outcomes from answers.

HubSpot reports per-record failures of a batch three ways, all handled here:

- a 207 multi-status whose ``errors`` carry the input's ``objectWriteTraceId`` (the writer sends
  the item's ``seq`` as that id, which is what makes HubSpot answer 207 rather than fail the whole
  batch), or the failing ``ids`` (missing records of an update);
- a whole-batch 400/409 naming the bad property or the duplicate value; the writer splits such a
  batch (:func:`split`) until the failing record stands alone, and its error becomes its outcome;
- a result entry missing for an input, which becomes a retryable ``NO_RESULT`` outcome.

The outcome's ``error_code`` is the most specific code HubSpot gives: the property-level ``code``
(``READ_ONLY_VALUE``, ``INVALID_OPTION``, ``PROPERTY_DOESNT_EXIST``...) when there is one, else
the error's ``category`` (``VALIDATION_ERROR``, ``CONFLICT``, ``OBJECT_NOT_FOUND``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from crm_sync.load.writer import LoadItem, WriteOutcome

#: The unique property holding the Salesforce id of a record crm-sync created (batch upsert key).
UNIQUE_PROPERTY = "crm_sync_salesforce_id"
#: Errors that are about the request's data, so retrying the same record cannot succeed.
PERMANENT_CATEGORIES = frozenset({"VALIDATION_ERROR", "CONFLICT", "OBJECT_NOT_FOUND", "INVALID_EMAIL"})

T = TypeVar("T")


def property_value(value: Any) -> Any:
    """A field value as HubSpot takes it: strings, numbers and booleans as they are, ``None``
    (or NaN, a frame's missing value) as the empty string (which clears the property), datetimes
    as ISO 8601 UTC, dates as the midnight-UTC ISO date HubSpot stores for date properties."""
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # a numpy scalar from a frame: the Python value it holds
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def properties_of(item: LoadItem) -> dict[str, Any]:
    return {name: property_value(value) for name, value in item.fields.items()}


def upsert_input(item: LoadItem) -> dict[str, Any]:
    """One ``batch/upsert`` input: keyed by the Salesforce id in the unique property."""
    properties = properties_of(item)
    properties[UNIQUE_PROPERTY] = str(item.source_id)  # set on create, whatever the portal does
    return {
        "id": str(item.source_id),
        "idProperty": UNIQUE_PROPERTY,
        "properties": properties,
        "objectWriteTraceId": str(item.seq),
    }


def update_input(item: LoadItem) -> dict[str, Any]:
    """One ``batch/update`` input: the HubSpot id and the changed properties."""
    return {"id": str(item.target_id), "properties": properties_of(item), "objectWriteTraceId": str(item.seq)}


def rounds(items: Sequence[LoadItem], key: Any) -> list[list[LoadItem]]:
    """Split items so no round holds two with the same ``key(item)`` (HubSpot rejects a batch
    that names one record twice); later duplicates go to later rounds, in order."""
    seen: dict[Any, int] = {}
    out: list[list[LoadItem]] = []
    for item in items:
        index = seen.get(key(item), 0)
        seen[key(item)] = index + 1
        if index == len(out):
            out.append([])
        out[index].append(item)
    return out


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def split(items: Sequence[T]) -> tuple[list[T], list[T]]:
    half = len(items) // 2
    return list(items[:half]), list(items[half:])


# -- errors --------------------------------------------------------------------------------------


def error_code(error: Mapping[str, Any]) -> str:
    """The most specific code of a HubSpot error (see module docstring)."""
    for detail in error.get("errors") or []:
        if isinstance(detail, Mapping) and detail.get("code"):
            return str(detail["code"])
    return str(error.get("category") or error.get("errorType") or "UNKNOWN_ERROR")


def failure(seq: int, error: Mapping[str, Any], target_id: str | None = None) -> WriteOutcome:
    category = str(error.get("category") or "")
    return WriteOutcome(
        seq=seq,
        target_id=target_id,
        error_code=error_code(error),
        message=str(error.get("message") or "")[:2000] or None,
        retryable=category not in PERMANENT_CATEGORIES,
    )


def _context(error: Mapping[str, Any], key: str) -> list[str]:
    context = error.get("context") or {}
    values = context.get(key) if isinstance(context, Mapping) else None
    return [str(v) for v in values] if isinstance(values, list) else []


def error_seqs(error: Mapping[str, Any], by_id: Mapping[str, Sequence[int]]) -> list[int]:
    """The seqs an entry of a batch's ``errors`` is about: by trace id, else by the ids it names."""
    traced = [int(t) for t in _context(error, "objectWriteTraceId") if t.lstrip("-").isdigit()]
    if traced:
        return traced
    return [seq for ident in _context(error, "ids") for seq in by_id.get(ident, ())]


# -- outcomes of a batch answer ------------------------------------------------------------------


def record_outcomes(
    items: Sequence[LoadItem],
    body: Any,
    *,
    key_of: Any,
    result_key: Any,
) -> list[WriteOutcome]:
    """Outcomes of a 200/207 batch answer: one per item, matched by trace id, else by key.

    ``key_of(item)`` and ``result_key(result)`` give the identity both sides share (the
    Salesforce id for upserts, the HubSpot id for updates).
    """
    body = body if isinstance(body, Mapping) else {}
    by_seq = {item.seq: item for item in items}
    by_key: dict[str, list[int]] = {}
    for item in items:
        by_key.setdefault(str(key_of(item)), []).append(item.seq)
    outcomes: dict[int, WriteOutcome] = {}
    for error in body.get("errors") or []:
        for seq in error_seqs(error, by_key):
            if seq in by_seq and seq not in outcomes:
                outcomes[seq] = failure(seq, error, by_seq[seq].target_id)
    for result in body.get("results") or []:
        trace = str(result.get("objectWriteTraceId") or "")
        seqs = [int(trace)] if trace.lstrip("-").isdigit() else by_key.get(str(result_key(result)), [])
        for seq in seqs:
            if seq in by_seq and seq not in outcomes:
                outcomes[seq] = WriteOutcome(seq=seq, target_id=str(result.get("id")))
    return [outcomes.get(item.seq) or _no_result(item) for item in items]


def _no_result(item: LoadItem) -> WriteOutcome:
    return WriteOutcome(
        seq=item.seq,
        target_id=item.target_id,
        error_code="NO_RESULT",
        message="HubSpot's batch answer named neither a result nor an error for this record",
    )


def whole_batch_error(item: LoadItem, status: int, body: Any) -> WriteOutcome:
    """The outcome of a single-record batch that HubSpot refused as a whole (400/404/409)."""
    error = dict(body) if isinstance(body, Mapping) else {"message": str(body)}
    error.setdefault("category", "VALIDATION_ERROR" if status == 400 else f"HTTP_{status}")
    return failure(item.seq, error, item.target_id)


def ok_all(items: Iterable[LoadItem]) -> list[WriteOutcome]:
    return [WriteOutcome(seq=item.seq, target_id=item.target_id) for item in items]


def unsupported(items: Iterable[LoadItem], what: str) -> list[WriteOutcome]:
    return [
        WriteOutcome(
            seq=i.seq, target_id=i.target_id, error_code="UNSUPPORTED", message=what, retryable=False
        )
        for i in items
    ]
