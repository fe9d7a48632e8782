"""SYNC-5: no value is changed silently on its way to a CRM.

A value the target field cannot hold would be rounded, clipped, wrapped or rejected by the
CRM: an ``AnnualRevenue`` of ``1e300`` is not a Salesforce currency, a close date in year
20026 is not a date either CRM stores, a 300-character Account name is cut. Instead of writing
something else than the source holds, the whole row becomes a ``quarantine`` row naming the
field, the value and the limit, and the record is retried on later runs (SYNC-5).

The limits are the targets' own:

* Salesforce numbers: a field's precision (total digits) and scale (decimal places), so the
  integer part has at most ``precision - scale`` digits and the value at most ``scale``
  decimals. Standard fields use their documented sizes (``Amount`` currency(16, 2),
  ``AnnualRevenue`` currency(18, 0), ``NumberOfEmployees`` int(8)); other numbers the maximum,
  18 digits.
* HubSpot numbers: exact up to 2**53 (a JSON number HubSpot stores as a double).
* Dates and datetimes, both sides: 1700-01-01 to 4000-12-31, Salesforce's valid range (a date
  HubSpot could hold but Salesforce could not would not survive the next two-way sync).
* Text: the target field's ``max_length`` in the catalog.

The check runs once over the finished plan (:func:`quarantine_unwritable`), so every rule that
writes a value (creates, SYNC-3 merges, links) is covered by one piece of code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crm_sync.catalog import ALL_STREAMS, Field
from crm_sync.plan import Action, Target

#: Salesforce (precision, scale) of the numbers crm-sync writes; other numbers get the maximum.
SALESFORCE_NUMBER_SIZES: Mapping[tuple[str, str], tuple[int, int]] = {
    ("Opportunity", "Amount"): (16, 2),
    ("Account", "AnnualRevenue"): (18, 0),
    ("Account", "NumberOfEmployees"): (8, 0),
}
SALESFORCE_MAX_PRECISION = 18
HUBSPOT_MAX_EXACT = 2**53
EARLIEST = pd.Timestamp("1700-01-01", tz="UTC")
LATEST = pd.Timestamp("4000-12-31T23:59:59", tz="UTC")
#: Actions whose fields are written to the target.
_WRITES = frozenset({Action.CREATE.value, Action.UPDATE.value, Action.LINK.value})


@dataclass(frozen=True)
class Limit:
    """What one target field can hold: numbers (``max_abs``, ``decimals``), dates, or text."""

    kind: str
    max_abs: float | None = None
    decimals: int | None = None
    max_length: int | None = None

    def problems(self, values: list[Any]) -> list[str | None]:
        """Why each value cannot be written unchanged, or None where it can (blanks always
        can). Vectorized: one pass to collect, array checks after."""
        if self.kind == "number":
            return _number_problems(values, self.max_abs, self.decimals)
        if self.kind == "date":
            return _date_problems(values)
        limit = self.max_length
        if limit is None:
            return [None] * len(values)
        return [
            f"{len(v)} characters exceed its limit of {limit}"
            if isinstance(v, str) and len(v) > limit
            else None
            for v in values
        ]


def _number_problems(values: list[Any], max_abs: float | None, decimals: int | None) -> list[str | None]:
    numbers = np.array(
        [float(v) if isinstance(v, int | float) and not isinstance(v, bool) else np.nan for v in values],
        dtype=float,
    )
    out: list[str | None] = [None] * len(values)
    present = np.array([isinstance(v, int | float) and not isinstance(v, bool) for v in values], dtype=bool)
    with np.errstate(invalid="ignore", over="ignore"):
        infinite = present & ~np.isfinite(numbers)
        too_big = present & ~infinite & (np.abs(numbers) >= (max_abs if max_abs is not None else np.inf))
        scale = 10.0 ** (decimals or 0)
        rounded = np.round(numbers * scale) / scale
        too_fine = present & ~infinite & ~too_big & (rounded != numbers) if decimals is not None else None
    for i in np.flatnonzero(infinite):
        out[i] = "is not a finite number"
    for i in np.flatnonzero(too_big):
        out[i] = f"is outside its range (|value| < {max_abs:.0e})"
    if too_fine is not None:
        for i in np.flatnonzero(too_fine):
            out[i] = f"has more than {decimals} decimal places"
    return out


def _date_problems(values: list[Any]) -> list[str | None]:
    texts = [v for v in values if isinstance(v, str)]
    if not texts:
        return [None] * len(values)
    # Plans repeat dates a lot: parse each distinct text once.
    distinct = pd.unique(pd.Series(texts, dtype=object))
    stamps = pd.to_datetime(pd.Series(distinct, dtype=object), utc=True, errors="coerce", format="ISO8601")
    inside = ((stamps >= EARLIEST) & (stamps <= LATEST)).to_numpy(dtype=bool, na_value=False)
    problem: dict[str, str] = {}
    for text, stamp, ok in zip(distinct, stamps, inside, strict=True):
        if pd.isna(stamp):
            problem[text] = "is not a date the target can store (1700-01-01 to 4000-12-31)"
        elif not ok:
            problem[text] = "is outside the dates the target can store (1700-01-01 to 4000-12-31)"
    if not problem:
        return [None] * len(values)
    return [problem.get(v) if isinstance(v, str) else None for v in values]


def _limit(target: str, obj: str, f: Field) -> Limit | None:
    if f.type == "number":
        if target == Target.HUBSPOT:
            return Limit("number", max_abs=float(HUBSPOT_MAX_EXACT))
        precision, scale = SALESFORCE_NUMBER_SIZES.get((obj, f.name), (SALESFORCE_MAX_PRECISION, 0))
        return Limit("number", max_abs=10.0 ** (precision - scale), decimals=scale or None)
    if f.type in ("date", "datetime"):
        return Limit("date")
    if f.max_length is not None:
        return Limit("text", max_length=f.max_length)
    return None


def target_limits() -> dict[tuple[str, str], dict[str, Limit]]:
    """Every limited field of every target object, from the catalog: (target, object) -> field -> limit."""
    out: dict[tuple[str, str], dict[str, Limit]] = {}
    for stream in ALL_STREAMS:
        for f in stream.fields:
            limit = _limit(stream.system, stream.name, f)
            if limit is not None:
                out.setdefault((stream.system, stream.name), {})[f.name] = limit
    return out


_LIMITS = target_limits()


def _written_cells(rows: pd.DataFrame, limits: Mapping[str, Limit]) -> dict[str, tuple[list[int], list[Any]]]:
    """The non-blank values the rows write into limited fields, per field: (positions, values).

    Rows come in few shapes (the rules build rows of one pattern of written fields together),
    so rows are grouped by the fields they write, in order, and each limited field is read
    from its rows in one comprehension. Fields are listed in the order the rows first write
    them (a row's reasons name its fields in that order). Plain lists, no tuple per row: at a
    million rows, tracked tuples would set off the garbage collector over the whole plan.
    """
    shapes: dict[tuple[str, ...], tuple[list[int], list[dict[str, Any]]]] = {}
    for pos, written in zip(rows.index.tolist(), rows["fields"].tolist(), strict=True):
        if written:
            at, dicts = shapes.setdefault(tuple(written), ([], []))
            at.append(pos)
            dicts.append(written)
    cells: dict[str, tuple[list[int], list[Any]]] = {}
    first: dict[str, tuple[int, int]] = {}  # field -> (first row writing it, its place there)
    for names, (positions, dicts) in shapes.items():
        for place, name in enumerate(names):
            if name not in limits:
                continue
            values = [written[name] for written in dicts]
            at = positions
            if None in values:
                kept = [i for i, value in enumerate(values) if value is not None]
                at, values = [positions[i] for i in kept], [values[i] for i in kept]
            if at:
                cell_at, cell_values = cells.setdefault(name, ([], []))
                cell_at.extend(at)
                cell_values.extend(values)
                first[name] = min(first.get(name, (at[0], place)), (at[0], place))
    return {name: cells[name] for name in sorted(cells, key=first.__getitem__)}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 42 else text[:40] + "..."


def quarantine_unwritable(plan: pd.DataFrame) -> pd.DataFrame:
    """SYNC-5: rows writing a value their target field cannot hold become ``quarantine`` rows.

    The reason names every offending field, its value and the limit; ``SYNC-5`` joins the rules.
    Other rows are returned as they are (one Python pass per limited field of the rows that
    write it, nothing per row otherwise).
    """
    if plan.empty:
        return plan
    plan = plan.reset_index(drop=True)
    writes = plan["action"].isin(list(_WRITES)).to_numpy(dtype=bool)
    reasons: dict[int, list[str]] = {}
    written = plan.loc[writes, ["target", "object", "fields"]]  # not a copy of every column
    for (target, obj), rows in written.groupby(["target", "object"], sort=False):
        limits = _LIMITS.get((str(target), str(obj)))
        if not limits:
            continue
        for name, (at, values) in _written_cells(rows, limits).items():
            for pos, value, problem in zip(at, values, limits[name].problems(values), strict=True):
                if problem is not None:
                    reasons.setdefault(pos, []).append(f"{name} {_shown(value)} {problem}")
    if not reasons:
        return plan
    actions = plan["action"].to_numpy(dtype=object).copy()
    rules = plan["rules"].to_numpy(dtype=object).copy()
    texts = plan["reason"].to_numpy(dtype=object).copy()
    for pos, why in reasons.items():
        actions[pos] = Action.QUARANTINE.value
        rules[pos] = list(dict.fromkeys([*rules[pos], "SYNC-5"]))
        texts[pos] = "SYNC-5: not written, the value would change on its way: " + "; ".join(why)
    out = plan.copy(deep=False)  # the three changed columns are replaced, the rest shared
    out["action"] = actions
    out["rules"] = rules
    out["reason"] = texts
    return out


__all__ = ["Limit", "quarantine_unwritable", "target_limits"]
