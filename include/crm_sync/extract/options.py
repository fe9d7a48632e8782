"""Picklist and enumeration options of both CRMs, staged for the SYNC-2 value maps.

Salesforce's ``Type`` says ``New Customer`` where HubSpot's ``dealtype`` says ``newbusiness``
(labelled ``New Business``): the rules can only translate between the two when they know both
sides' options, values and labels. Extraction already reads them (describe, properties) to
check values; it stages them here too, replacing the object's previous options, so a value or
label added in either CRM is known from the next extraction on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from crm_sync import staging
from crm_sync.catalog import Stream


def _picklist_names(stream: Stream) -> set[str]:
    return {f.name for f in stream.fields if f.type == "picklist"}


def from_describe(describe: Mapping[str, Any], stream: Stream) -> list[dict[str, Any]]:
    """Option rows of the stream's catalog picklists from a Salesforce ``describe()`` result."""
    wanted = _picklist_names(stream)
    return [
        _row(
            ("salesforce", stream.name, f["name"]),
            v.get("value"),
            v.get("label"),
            active=v.get("active", True),
        )
        for f in describe.get("fields") or []
        if f.get("name") in wanted
        for v in f.get("picklistValues") or []
        if v.get("value") is not None
    ]


def from_properties(properties: Iterable[Mapping[str, Any]], stream: Stream) -> list[dict[str, Any]]:
    """Option rows of the stream's catalog enumerations from HubSpot's properties API."""
    wanted = _picklist_names(stream)
    return [
        _row(("hubspot", stream.name, p["name"]), o.get("value"), o.get("label"), active=not o.get("hidden"))
        for p in properties
        if p.get("name") in wanted
        for o in p.get("options") or []
        if o.get("value") is not None
    ]


def _row(where: tuple[str, str, str], value: Any, label: Any, *, active: Any) -> dict[str, Any]:
    system, obj, name = where
    return {
        "system": system,
        "object": obj,
        "field": name,
        "value": str(value),
        "label": None if label is None else str(label),
        "active": bool(active),
    }


def stage(engine: sa.Engine, system: str, obj: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Replace the staged options of one object (one transaction); returns rows written."""
    table = staging.picklist_options
    with engine.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.system == system, table.c.object == obj))
        staging.upsert_on(conn, table, list(rows), ["system", "object", "field", "value"])
    return len(rows)
