"""Shared frame plumbing of the owners, contacts and accounts rules (private to crm_sync.rules).

Building plan rows one :class:`~crm_sync.plan.PlanRow` at a time costs seconds at 500,000
contacts, so the rules build whole columns at once here and hand :func:`plan_rows` arrays. The
helpers also read the staged link table and HubSpot associations defensively: a staging frame
that was never extracted is an empty frame without columns, and the rules must treat it as
"no records", not crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from crm_sync.plan import PLAN_COLUMNS, Target, check_plan
from crm_sync.rules.normalize import as_bool, as_text, column, object_array
from crm_sync.settings import FieldMapping

#: SYNC-2 rules under which a value flows into a record being *created* on each target. A new
#: record has no value of its own yet, so ``prefer_salesforce`` lets the HubSpot value through
#: when Salesforce is the target (Salesforce is blank), and ``always_salesforce`` never writes
#: to Salesforce.
CREATE_RULES: dict[str, frozenset[str]] = {
    "salesforce": frozenset({"two_way", "prefer_salesforce", "hubspot_to_salesforce"}),
    "hubspot": frozenset({"two_way", "prefer_salesforce", "always_salesforce"}),
}


def alive(frame: pd.DataFrame) -> pd.Series:
    """Rows that are not deleted: neither ``_deleted`` (staging) nor SF ``IsDeleted`` nor HS
    ``archived`` is true. Deleted records never match or link (CON-1, ACC-3, ACC-6)."""
    dead = as_bool(column(frame, "_deleted"))
    for name in ("IsDeleted", "archived"):
        if name in frame.columns:
            dead = dead | as_bool(frame[name])
    return ~dead


def _broadcast(value: Any, n: int) -> list[Any]:
    if value is None or isinstance(value, str):
        return [value] * n
    if isinstance(value, pd.Series):
        out: list[Any] = object_array(value).tolist()
        return out
    items = list(value)
    if len(items) != n:
        raise ValueError(f"plan column has {len(items)} values for {n} rows")
    return items


def plan_rows(
    n: int,
    *,
    target: Target,
    object: str,
    action: str | Sequence[str] | pd.Series,
    rules: Sequence[str] | pd.Series,
    source_id: Any = None,
    target_id: Any = None,
    fields: Sequence[Mapping[str, Any]] | None = None,
    reason: Any = None,
) -> pd.DataFrame:
    """A plan frame of ``n`` rows (``PLAN_COLUMNS``) from scalars or length-``n`` columns.

    ``rules`` is either one list of rule ids shared by every row or a Series of lists; each row
    gets its own list object so a later consumer can mutate one row safely. ``fields`` dicts are
    used as given (callers build one per row).
    """
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in PLAN_COLUMNS})
    if isinstance(rules, pd.Series):
        rule_lists = [list(r) for r in rules]
    else:
        shared = list(rules)
        rule_lists = [list(shared) for _ in range(n)]
    frame = pd.DataFrame(
        {
            "run_id": [""] * n,
            "target": [target] * n,
            "object": [object] * n,
            "action": _broadcast(action, n),
            "source_id": _broadcast(source_id, n),
            "target_id": _broadcast(target_id, n),
            "fields": list(fields) if fields is not None else [{} for _ in range(n)],
            "rules": rule_lists,
            "reason": _broadcast(reason, n),
        },
        columns=list(PLAN_COLUMNS),
        dtype="object",
    )
    check_plan(frame)
    return frame


def _python_values(values: pd.Series) -> list[Any]:
    """Column values as plain Python objects (JSON-friendly); timestamps as ISO 8601 text."""
    # Imported here: merge.py imports owners.py, which imports this module.
    from crm_sync.rules.merge import json_safe

    out: list[Any] = json_safe(values).tolist()
    return out


def field_dicts(
    n: int, columns: Mapping[str, pd.Series], *, base: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Per-row ``{field: value}`` dicts from aligned columns, leaving out missing values.

    ``base`` (optional, length ``n``) supplies dicts to extend; later columns win.
    """
    out: list[dict[str, Any]] = [dict(b) for b in base] if base else [{} for _ in range(n)]
    for name, series in columns.items():
        present = series.notna().to_numpy()
        if not present.any():
            continue
        values = _python_values(series)
        for i in np.flatnonzero(present):
            out[i][name] = values[i]
    return out


def create_field_columns(
    source: pd.DataFrame,
    mappings: Iterable[FieldMapping],
    target: Target,
    *,
    sf_object: str,
    hs_object: str,
) -> dict[str, pd.Series]:
    """SYNC-2 fields of a record created on ``target`` from ``source`` (the other system's rows).

    Only mappings whose rule lets a value flow toward ``target`` on a create are used (see
    :data:`CREATE_RULES`). Values are formatted exactly as the SYNC-3 merge writes them
    (:func:`crm_sync.rules.merge.format_for`: dates, integral numbers, a Website becoming a
    bare host in HubSpot's ``domain``), so the next run's merge sees no difference (SYNC-4).
    """
    # Imported here: merge.py imports owners.py, which imports this module.
    from crm_sync.rules.merge import canonical, field_type, format_for, value_kind

    out: dict[str, pd.Series] = {}
    for m in mappings:
        if m.rule not in CREATE_RULES[target]:
            continue
        src, dst = (m.hubspot, m.salesforce) if target == "salesforce" else (m.salesforce, m.hubspot)
        if src not in source.columns:
            continue
        sf_type = field_type("salesforce", sf_object, m.salesforce)
        hs_type = field_type("hubspot", hs_object, m.hubspot)
        kind = value_kind(sf_type, hs_type)
        raw = source[src]
        out[dst] = format_for(canonical(raw, kind), kind, sf_type if target == "salesforce" else hs_type, raw)
    return out


def link_pairs(links: pd.DataFrame, sf_objects: Iterable[str]) -> pd.DataFrame:
    """Rows of the staging link table for the given SF objects: ``object, sf_id, hs_id``.

    Ids are compared as text; a record linked twice keeps its most recent link (``linked_at``).
    """
    cols = ["object", "sf_id", "hs_id"]
    if links.empty or "sf_id" not in links.columns:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols})
    frame = pd.DataFrame(
        {
            "object": as_text(column(links, "object")),
            "sf_id": as_text(column(links, "sf_id")),
            "hs_id": as_text(column(links, "hs_id")),
            "linked_at": column(links, "linked_at").astype("str"),
        }
    )
    frame = frame[frame["object"].isin(list(sf_objects)) & frame["sf_id"].notna() & frame["hs_id"].notna()]
    frame = frame.sort_values("linked_at", ascending=False, kind="stable")
    return frame[cols].reset_index(drop=True)


#: Column spellings accepted for the staged HubSpot association table.
_ASSOC_FROM_TYPE = ("from_object", "from_type", "fromObjectType")
_ASSOC_TO_TYPE = ("to_object", "to_type", "toObjectType")
_ASSOC_FROM_ID = ("from_id", "fromObjectId")
_ASSOC_TO_ID = ("to_id", "toObjectId")


def _first_column(frame: pd.DataFrame, names: Sequence[str]) -> pd.Series:
    for name in names:
        if name in frame.columns:
            return frame[name]
    return column(frame, names[0])


def associations(hs_association: pd.DataFrame, from_object: str, to_object: str) -> pd.DataFrame:
    """HubSpot associations between two object types as ``from_id, to_id`` (text), both directions.

    Reads the staged ``hs_association`` table (columns ``from_object, from_id, to_object,
    to_id``; ``_deleted`` rows are removed associations). A row stored in the opposite direction
    (``companies`` -> ``contacts``) counts too; duplicates are dropped.
    """
    cols = ["from_id", "to_id"]
    if hs_association.empty:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols})
    keep = alive(hs_association)
    ftype = as_text(_first_column(hs_association, _ASSOC_FROM_TYPE))
    ttype = as_text(_first_column(hs_association, _ASSOC_TO_TYPE))
    fid = as_text(_first_column(hs_association, _ASSOC_FROM_ID))
    tid = as_text(_first_column(hs_association, _ASSOC_TO_ID))
    forward = keep & (ftype == from_object) & (ttype == to_object)
    backward = keep & (ftype == to_object) & (ttype == from_object)
    frame = pd.concat(
        [
            pd.DataFrame({"from_id": fid[forward], "to_id": tid[forward]}),
            pd.DataFrame({"from_id": tid[backward], "to_id": fid[backward]}),
        ],
        ignore_index=True,
    )
    frame = frame.dropna().drop_duplicates(ignore_index=True)
    return frame.astype("str")
