"""SYNC-2 field mapping and SYNC-3 most-recent-value-wins merge, with SYNC-4 value normalization.

Generic over object pairs (Account/companies, Contact/contacts, Lead/contacts,
Opportunity/deals): the caller hands over the linked pairs, both sides' staged frames and the
last-synced snapshot, and gets back, per target, which fields to write with which values, plus
the snapshot rows to store once those writes have been applied.

Why a three-way merge: comparing the two sides alone cannot tell *who* changed a value. With the
last-synced value (the snapshot) it can: a side that differs from the snapshot changed, one
that equals it did not (SYNC-3). Values are compared in a canonical form per value kind
(dates, numbers, stripped text, ``None`` == ``""``) so that two spellings of one value never
look like a change and never cause a write (SYNC-4).

Column-wise writes become plan rows through :func:`crm_sync.plan.plan_rows`
(:func:`writes_to_plan`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from crm_sync.catalog import FieldType, stream
from crm_sync.plan import Action, Target, empty_plan, iso_texts, json_safe, json_texts, plan_rows
from crm_sync.rules.normalize import as_text, as_timestamp, column, first_present
from crm_sync.rules.owners import OwnerMap, unmapped_owner_skips
from crm_sync.rules.value_maps import ValueMap, unmapped_reason, value_map
from crm_sync.settings import FieldMapping, MappingRule

ValueKind = Literal["string", "email", "url", "number", "date", "datetime", "boolean"]

#: Columns of the snapshot frame (RuleInputs.snapshot) and of the rows :class:`MergeResult` emits.
SNAPSHOT_COLUMNS: tuple[str, ...] = ("object", "sf_id", "hs_id", "sf_field", "hs_field", "value", "synced_at")


# --------------------------------------------------------------------------- ids


def text(values: pd.Series) -> pd.Series:
    """Ids as text: :func:`~crm_sync.rules.normalize.as_text`, except that a ``str``-typed Series
    (already text, e.g. an earlier ``as_text`` result or a staged id column) is taken as is.

    ``as_text`` strips every value in a Python pass; ids the rules produced or staging stored
    need no stripping, and at a million rows the repeated passes are what costs.
    """
    if isinstance(values.dtype, pd.StringDtype):
        return values
    return as_text(values)


# --------------------------------------------------------------------------- value kinds (SYNC-4)

_TEXT_TYPES: frozenset[str] = frozenset({"id", "string", "text", "picklist"})


def value_kind(sf_type: FieldType, hs_type: FieldType) -> ValueKind:
    """SYNC-4: the kind two mapped fields are compared as (the coarser of the two types wins).

    A Salesforce ``date`` mapped to a HubSpot ``datetime`` (CloseDate/closedate) compares
    dates, a ``number`` on either side compares numbers, and a URL on either side compares hosts
    (Website/domain), so that the representation each API returns never reads as a change.
    """
    types = {sf_type, hs_type}
    order: tuple[ValueKind, ...] = ("date", "datetime", "number", "boolean", "url", "email")
    return next((kind for kind in order if kind in types), "string")


def field_type(system: Literal["salesforce", "hubspot"], obj: str, name: str) -> FieldType:
    """The catalog type of a field, ``string`` for fields the catalog does not list."""
    try:
        return stream(system, obj).field(name).type
    except KeyError:
        return "string"


_SCHEME = r"^[a-z][a-z0-9+.\-]*://"
_HOST_TAIL = r"[/?#].*$"


def canonical(values: pd.Series, kind: ValueKind) -> pd.Series:
    """SYNC-4: the comparable form of staged values of one kind; blank (None, NaN, "") -> NA.

    * string: stripped text, line endings unified (``\\r\\n`` -> ``\\n``);
    * email: stripped, lower case (both CRMs treat addresses case-insensitively);
    * url: lower-case host without scheme, user info, ``www.``, port, path, query;
    * number: float (``"100.0"``, ``100``, ``"100"`` are one value), rounded to 6 decimals;
    * date: UTC midnight of the day (``2026-03-01`` == ``2026-03-01T00:00:00.000Z`` == epoch ms);
    * datetime: UTC, truncated to whole seconds (Salesforce keeps no milliseconds);
    * boolean: 1.0 / 0.0.
    """
    if kind in ("string", "email", "url"):
        text = as_text(values)
        if kind == "string":
            return text.str.replace("\r\n", "\n", regex=False)
        text = text.str.lower()
        if kind == "email":
            return text
        host = (
            text.str.replace(_SCHEME, "", regex=True)
            .str.replace(_HOST_TAIL, "", regex=True)
            .str.replace(r"^.*@", "", regex=True)
            .str.replace(r":\d+$", "", regex=True)
            .str.replace(r"^www\.", "", regex=True)
            .str.rstrip(".")
        )
        return host.where(host != "").astype("str")
    if kind == "number":
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            return values.astype("float64").round(6)
        return pd.to_numeric(as_text(values), errors="coerce").astype("float64").round(6)
    if kind == "boolean":
        text = as_text(values).str.lower()
        return text.map({"true": 1.0, "1": 1.0, "yes": 1.0, "false": 0.0, "0": 0.0, "no": 0.0}).astype(
            "float64"
        )
    if kind == "date":
        return calendar_days(values)
    stamps = as_timestamp(values)
    floored: pd.Series = stamps.dt.floor("s")
    return floored


def calendar_days(values: pd.Series) -> pd.Series:
    """Dates as the calendar day they name, at UTC midnight.

    A Salesforce date has no zone (``2026-03-01``) and a HubSpot date is midnight UTC (text or
    epoch milliseconds): both are that day. A value written with an offset
    (``2026-03-01T00:00:00+02:00``) names the day it shows, not the UTC day it falls on
    (2026-02-28), so a date never moves a day between the two CRMs.
    """
    stamps: pd.Series = as_timestamp(values).dt.floor("D")
    if values.empty or pd.api.types.is_datetime64_any_dtype(values.dtype):
        return stamps
    if pd.api.types.is_numeric_dtype(values.dtype):
        return stamps
    written = pd.to_datetime(values.astype(str).str[:10], format="%Y-%m-%d", utc=True, errors="coerce")
    days: pd.Series = written.astype(stamps.dtype).where(written.notna(), stamps)
    return days


def same(left: pd.Series, right: pd.Series) -> np.ndarray:
    """Element-wise equality of two canonical Series where NA equals NA (SYNC-4: None == "")."""
    if _python_text(left) and _python_text(right):
        # Text keys compared on their object arrays (no copy): a str never equals NaN, and
        # NaN, the only missing value these arrays hold, is the one value unequal to itself.
        a, b = left.to_numpy(dtype=object), right.to_numpy(dtype=object)
        return np.asarray((a == b) | (np.not_equal(a, a) & np.not_equal(b, b)), dtype=bool)
    equal = (left == right).to_numpy(dtype=bool, na_value=False)
    both_blank = left.isna().to_numpy() & right.isna().to_numpy()
    return np.asarray(equal | both_blank, dtype=bool)


def _python_text(values: pd.Series) -> bool:
    """Whether ``values`` is pandas' ``str`` dtype kept as Python strings, NaN for missing
    (its ``na_value`` is NaN, a float, rather than ``pd.NA``)."""
    dtype = values.dtype
    if not isinstance(dtype, pd.StringDtype):
        return False
    return dtype.storage == "python" and isinstance(dtype.na_value, float)


def format_for(
    canon: pd.Series, kind: ValueKind, target: FieldType, raw: pd.Series | None = None
) -> pd.Series:
    """The value to write into a target field of type ``target``, from canonical values.

    Dates go out as ``YYYY-MM-DD`` to date fields and as midnight UTC ISO 8601 to datetime
    fields; numbers as ``int`` when integral (Salesforce integer fields reject ``250.0``); hosts
    to text fields (HubSpot ``domain``), but the original URL (``raw``) to URL fields. Blank
    is ``None``, which clears the field.
    """
    index = canon.index
    if kind in ("date", "datetime"):
        return pd.Series(iso_texts(canon, "D" if target == "date" else "ms"), index=index, dtype=object)
    if kind == "number":
        # Integral values go out as ``int``, but only where a float holds them exactly: 1e300
        # stays 1e300 (and is quarantined by its target's range), never a wrapped int64.
        integral = canon.notna() & (canon == np.floor(canon)) & (canon.abs() < EXACT_INTEGER_LIMIT)
        obj = pd.Series(json_safe(canon), index=index, dtype=object)
        if bool(integral.any()):
            obj[integral] = canon[integral].astype("int64").astype(object)
        return obj
    if kind == "boolean":
        return pd.Series(json_safe(canon.map({1.0: True, 0.0: False})), index=index, dtype=object).where(
            canon.notna(), None
        )
    if kind == "url" and target == "url" and raw is not None:
        return pd.Series(json_safe(as_text(raw)), index=index, dtype=object)
    return pd.Series(json_safe(canon), index=index, dtype=object)


#: Integers up to 2**53 are exact in a float; beyond it a number is not written as ``int``.
EXACT_INTEGER_LIMIT = 2**53

_SNAPSHOT_TYPE: dict[str, FieldType] = {
    "date": "date",
    "datetime": "datetime",
    "number": "number",
    "boolean": "boolean",
}


def encode_snapshot(canon: pd.Series, kind: ValueKind) -> pd.Series:
    """JSON text of canonical values, as stored in the snapshot's ``value`` column (SYNC-3)."""
    out = format_for(canon, kind, _SNAPSHOT_TYPE.get(kind, "string"))
    return pd.Series(json_texts(out.tolist(), _encode_one), index=canon.index, dtype=object)


_JSON_PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f-\uffff]*')


def _encode_one(value: Any) -> str:
    """``json.dumps`` of one value, with a fast path for plain ASCII text (the common case)."""
    if isinstance(value, str) and _JSON_PLAIN.fullmatch(value):
        return f'"{value}"'
    return json.dumps(value)


def _decode_one(value: Any) -> Any:
    if not isinstance(value, str):
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
    value = value.strip()
    if not value or value == "null":
        return None
    if value[0] == '"' and value[-1] == '"' and len(value) > 1:
        return value[1:-1] if "\\" not in value else json.loads(value)
    return value


def decode_snapshot(values: pd.Series) -> pd.Series:
    """Stored snapshot JSON text -> raw values that :func:`canonical` reads.

    JSON strings without escapes are unquoted by slicing (only the rare strings with escapes go
    through ``json.loads``); numbers and booleans stay text, :func:`canonical` parses them per
    kind. One Python pass over the column, cheaper than a chain of pandas string methods.
    """
    raw = values.to_numpy(dtype=object)
    # The common case inline: a quoted string without escapes (no whitespace to strip around
    # the quotes) is its inside; _decode_one decides everything else.
    return pd.Series(
        [
            v[1:-1]
            if v.__class__ is str and len(v) > 1 and v[0] == '"' and v[-1] == '"' and "\\" not in v
            else _decode_one(v)
            for v in raw
        ],
        index=values.index,
        dtype=object,
    )


# --------------------------------------------------------------------------- the merge (SYNC-3)

#: Rule ids a write carries per mapping rule (SYNC-2 names the direction, SYNC-3 the merge).
RULE_IDS: dict[str, tuple[str, ...]] = {
    "two_way": ("SYNC-2", "SYNC-3"),
    "prefer_salesforce": ("SYNC-2",),
    "always_salesforce": ("SYNC-2",),
    "hubspot_to_salesforce": ("SYNC-2",),
    "none": ("SYNC-2",),
}

WriteValues = Callable[[pd.Index], pd.Series]


@dataclass(frozen=True)
class MergeField:
    """One field of a linked pair, prepared for :func:`merge_fields`.

    ``sf_key``/``hs_key`` are the canonical comparable values of both sides (aligned to the
    pairs); ``to_hs``/``to_sf`` give, for a subset of pair positions, the values to write to the
    other side when a side wins. Translated fields (deal stage via the pipeline, owner via
    email, OWN-5) pass their own keys and writers; ``hs_writable``/``sf_writable`` mark where a
    translation exists: a winning value without one is not written and not snapshotted.
    """

    sf_field: str
    hs_field: str
    rule: MappingRule
    kind: ValueKind
    sf_key: pd.Series
    hs_key: pd.Series
    to_hs: WriteValues
    to_sf: WriteValues
    rules: tuple[str, ...] = ()
    hs_writable: pd.Series | None = None
    sf_writable: pd.Series | None = None
    #: Picklist <-> enumeration pairs: both sides' raw values, for the reason of a value
    #: without a counterpart (:func:`unmapped_value_skips`).
    picklist_values: tuple[pd.Series, pd.Series] | None = None


@dataclass
class Writes:
    """Column-wise writes to one target object: ``values`` and the ``mask`` of cells to write.

    Rows are aligned with the pairs; ``column_rules`` names the rule ids each column's writes
    carry. :func:`plan_rows` turns it into plan rows.
    """

    values: pd.DataFrame
    mask: pd.DataFrame
    column_rules: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @staticmethod
    def empty(index: pd.Index) -> Writes:
        return Writes(pd.DataFrame(index=index), pd.DataFrame(index=index, dtype=bool), {})

    def add(self, name: str, values: pd.Series, mask: np.ndarray, rules: Sequence[str]) -> None:
        self.values[name] = values.reindex(self.values.index)
        self.mask[name] = np.asarray(mask, dtype=bool)
        self.column_rules[name] = tuple(rules)

    def any(self) -> np.ndarray:
        if self.mask.shape[1] == 0:
            return np.zeros(len(self.mask), dtype=bool)
        return np.asarray(self.mask.to_numpy(dtype=bool).any(axis=1), dtype=bool)


@dataclass
class MergeResult:
    """What :func:`merge_fields` decided for a set of linked pairs (rows aligned with them).

    ``snapshot`` holds the post-merge value of every field whose stored snapshot is stale, in
    :data:`SNAPSHOT_COLUMNS`; the loader upserts it for pairs whose writes succeeded.
    ``conflicts`` lists the cells both sides changed (decided by modification time, SYNC-3).
    ``blocked`` maps ``"<target>:<field>"`` to the pair positions whose winning value had no
    translation (e.g. an owner without a counterpart, OWN-5) and was therefore not written.
    """

    hubspot: Writes
    salesforce: Writes
    snapshot: pd.DataFrame
    conflicts: pd.DataFrame
    blocked: dict[str, np.ndarray] = field(default_factory=dict)


def _side_wins(
    rule: MappingRule,
    sf_key: pd.Series,
    hs_key: pd.Series,
    snap_key: pd.Series,
    sf_later_or_tie: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SYNC-2/SYNC-3 decision per cell: (write to HS, write to SF, decided by time)."""
    n = len(sf_key)
    equal = same(sf_key, hs_key)
    sf_blank = sf_key.isna().to_numpy()
    hs_blank = hs_key.isna().to_numpy()
    sf_changed = ~same(sf_key, snap_key)
    hs_changed = ~same(hs_key, snap_key)
    none = np.zeros(n, dtype=bool)
    if rule == "none":
        return none, none, none
    if rule == "two_way":
        both = sf_changed & hs_changed & ~equal
        sf_wins = (sf_changed & ~hs_changed) | (both & sf_later_or_tie)
        hs_wins = (hs_changed & ~sf_changed) | (both & ~sf_later_or_tie)
        return sf_wins & ~equal, hs_wins & ~equal, both
    if rule == "prefer_salesforce":
        # SF wins unless blank; a blank SF field takes the HubSpot value.
        return ~sf_blank & ~equal, sf_blank & ~hs_blank & ~equal, none
    if rule == "always_salesforce":
        # HubSpot mirrors SF; a blank SF value clears HubSpot only when SF was cleared since
        # the last sync (never at first sync, where a blank means "unknown").
        return ~equal & (~sf_blank | sf_changed), none, none
    # hubspot_to_salesforce: the mirror image.
    return none, ~equal & (~hs_blank | hs_changed), none


def merge_fields(
    pairs: pd.DataFrame,
    fields: Sequence[MergeField],
    snapshot: pd.DataFrame,
    *,
    sf_object: str,
    sf_modified: pd.Series,
    hs_modified: pd.Series,
    now: datetime,
) -> MergeResult:
    """SYNC-3: decide, per linked pair and field, which side wins and what to write.

    ``pairs`` has ``sf_id`` and ``hs_id`` (one row per linked pair, positional alignment with
    every Series passed in). For each field the two canonical values are compared with the
    snapshot value: only one side changed -> it wins; both changed -> the later modification
    wins (``sf_modified`` vs ``hs_modified``), ties and unknown HubSpot times go to Salesforce;
    no change -> no write. A missing snapshot counts as blank, so at first sync a blank side
    is "unchanged" and is filled from the other, and two different values go to the later one.
    Directional rules (prefer/always Salesforce, HubSpot to Salesforce, none) are SYNC-2.
    """
    pairs = pairs.reset_index(drop=True)
    index = pairs.index
    hubspot = Writes.empty(index)
    salesforce = Writes.empty(index)
    snap = _snapshot_wide(pairs, snapshot, sf_object, [f.sf_field for f in fields])
    sf_mod = as_timestamp(sf_modified).reset_index(drop=True)
    hs_mod = as_timestamp(hs_modified).reset_index(drop=True)
    sf_later_or_tie = ((sf_mod >= hs_mod).to_numpy(dtype=bool, na_value=False)) | hs_mod.isna().to_numpy()
    snapshot_parts: list[pd.DataFrame] = []
    conflict_parts: list[pd.DataFrame] = []
    blocked_cells: dict[str, np.ndarray] = {}
    for f in fields:
        snap_raw = snap[f.sf_field] if f.sf_field in snap.columns else pd.Series([None] * len(pairs))
        cell = _decide(f, canonical(snap_raw.reset_index(drop=True), f.kind), sf_later_or_tie, blocked_cells)
        rules = (*RULE_IDS[f.rule], *f.rules)
        if cell.write_hs.any():
            hubspot.add(f.hs_field, _values_at(f.to_hs, index, cell.write_hs), cell.write_hs, rules)
        if cell.write_sf.any():
            salesforce.add(f.sf_field, _values_at(f.to_sf, index, cell.write_sf), cell.write_sf, rules)
        if rule_writes_back(f.rule) and cell.stale.any():
            pos = np.flatnonzero(cell.stale)
            value = encode_snapshot(cell.resolved.iloc[pos], f.kind).to_numpy()
            snapshot_parts.append(
                _cell_rows(pairs, pos, sf_object, f, value=value, synced_at=now.isoformat())
            )
        if cell.by_time.any():
            pos = np.flatnonzero(cell.by_time)
            winner = np.where(cell.write_hs[pos], "salesforce", "hubspot")
            conflict_parts.append(_cell_rows(pairs, pos, sf_object, f, winner=winner))
    snapshot_rows = _rows_or_empty(snapshot_parts, SNAPSHOT_COLUMNS)
    conflicts = _rows_or_empty(conflict_parts, CONFLICT_COLUMNS)
    return MergeResult(hubspot, salesforce, snapshot_rows, conflicts, blocked_cells)


#: Columns of :attr:`MergeResult.conflicts`.
CONFLICT_COLUMNS = ("object", "sf_id", "hs_id", "sf_field", "hs_field", "winner")


def _rows_or_empty(parts: list[pd.DataFrame], columns: Sequence[str]) -> pd.DataFrame:
    if parts:
        return pd.concat(parts, ignore_index=True)
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


@dataclass
class _Cells:
    """One field's SYNC-3 decision over every pair: who writes, the last-synced value once the
    writes are applied, and which cells' snapshot must change."""

    write_hs: np.ndarray
    write_sf: np.ndarray
    by_time: np.ndarray
    resolved: pd.Series
    stale: np.ndarray


def _synced(
    sf_key: pd.Series,
    hs_key: pd.Series,
    snap_key: pd.Series,
    writes: tuple[np.ndarray, np.ndarray],
    *,
    blocked: np.ndarray,
    kept: pd.Series,
) -> tuple[pd.Series, np.ndarray]:
    """The last-synced value after the writes ``(to HubSpot, to Salesforce)`` (a blocked cell
    keeps ``kept``), and the cells whose snapshot changes. Where both sides still differ after
    the writes (a directional rule that wrote nothing, a blocked translation) nothing was
    synced: the old snapshot stays, so the next run decides the same way instead of mistaking
    the untouched side for a change."""
    write_hs, write_sf = writes
    post_sf = sf_key.where(~pd.Series(write_sf), hs_key)
    post_hs = hs_key.where(~pd.Series(write_hs), sf_key)
    resolved = post_sf.where(~pd.Series(blocked), kept)
    stale = ~same(resolved, snap_key) & (blocked | same(post_sf, post_hs))
    return resolved, np.asarray(stale, dtype=bool)


def _decide(
    f: MergeField, snap_key: pd.Series, sf_later_or_tie: np.ndarray, blocked_cells: dict[str, np.ndarray]
) -> _Cells:
    """SYNC-3's winner per pair for field ``f``, minus the writes a target cannot take.

    A blocked cell keeps the target's current value as its last-synced value: the disagreement
    is then stable (the winner still "changed", the target did not), instead of flipping to the
    target once a write to another field makes it the later record.
    """
    sf_key = f.sf_key.reset_index(drop=True)
    hs_key = f.hs_key.reset_index(drop=True)
    write_hs, write_sf, by_time = _side_wins(f.rule, sf_key, hs_key, snap_key, sf_later_or_tie)
    blocked = np.zeros(len(snap_key), dtype=bool)
    kept = snap_key.copy()
    if f.hs_writable is not None:
        ok = f.hs_writable.to_numpy(dtype=bool, na_value=False)
        blocked_cells[f"hubspot:{f.hs_field}"] = np.flatnonzero(write_hs & ~ok)
        kept = kept.where(~pd.Series(write_hs & ~ok), hs_key)
        blocked |= write_hs & ~ok
        write_hs &= ok
    if f.sf_writable is not None:
        ok = f.sf_writable.to_numpy(dtype=bool, na_value=False)
        blocked_cells[f"salesforce:{f.sf_field}"] = np.flatnonzero(write_sf & ~ok)
        kept = kept.where(~pd.Series(write_sf & ~ok), sf_key)
        blocked |= write_sf & ~ok
        write_sf &= ok
    resolved, stale = _synced(sf_key, hs_key, snap_key, (write_hs, write_sf), blocked=blocked, kept=kept)
    return _Cells(write_hs, write_sf, by_time, resolved, stale)


def _cell_rows(
    pairs: pd.DataFrame, pos: np.ndarray, sf_object: str, f: MergeField, **extra: Any
) -> pd.DataFrame:
    """One row per cell of field ``f`` at pair positions ``pos`` (object, ids, field names), plus
    ``extra`` columns: the SYNC-3 snapshot rows and the conflict rows share this shape."""
    return pd.DataFrame(
        {
            "object": sf_object,
            "sf_id": pairs["sf_id"].to_numpy(dtype=object)[pos],
            "hs_id": pairs["hs_id"].to_numpy(dtype=object)[pos],
            "sf_field": f.sf_field,
            "hs_field": f.hs_field,
            **extra,
        }
    )


def rule_writes_back(rule: MappingRule) -> bool:
    """Fields under ``none`` have no synced value to remember."""
    return rule != "none"


def _values_at(writer: WriteValues, index: pd.Index, mask: np.ndarray) -> pd.Series:
    sub = index[mask]
    values = writer(sub)
    return pd.Series(values.to_numpy(dtype=object), index=sub, dtype=object)


def _snapshot_wide(
    pairs: pd.DataFrame, snapshot: pd.DataFrame, sf_object: str, sf_fields: Sequence[str]
) -> pd.DataFrame:
    """The stored snapshot values of ``pairs`` as one column per SF field (positional rows).

    Staging keys the snapshot by (object, sf_id, sf_field) and keeps the pair's hs_id: a
    snapshot stored for another HubSpot record (a relinked pair) does not apply. Rows are
    placed by one hash lookup of ``sf_id`` (no pivot over millions of rows).
    """
    out = pd.DataFrame(index=pd.RangeIndex(len(pairs)))
    if snapshot.empty or "sf_field" not in snapshot.columns or pairs.empty:
        return out
    # The snapshot holds every object: read the field names of this object's rows only.
    mine = (text(column(snapshot, "object")) == sf_object).to_numpy(dtype=bool)
    snap = snapshot[mine]
    keep = text(snap["sf_field"]).isin(list(sf_fields)).to_numpy(dtype=bool)
    if not keep.any():
        return out
    snap = snap[keep]
    if "synced_at" in snap.columns and snap.duplicated(["sf_id", "sf_field"]).any():
        snap = snap.sort_values("synced_at", kind="stable")  # the latest wins below
    sf_index = pd.Index(text(pairs["sf_id"]).to_numpy(dtype=object))
    pos = np.asarray(sf_index.get_indexer(text(snap["sf_id"]).to_numpy(dtype=object)), dtype=np.int64)
    found = pos >= 0
    pair_hs = text(pairs["hs_id"]).to_numpy(dtype=object)
    same_pair = np.zeros(len(pos), dtype=bool)
    same_pair[found] = text(snap["hs_id"]).to_numpy(dtype=object)[found] == pair_hs[pos[found]]
    values = snap["value"].to_numpy(dtype=object)
    snap_fields = text(snap["sf_field"]).to_numpy(dtype=object)
    for name in sf_fields:
        hit = same_pair & (snap_fields == name)
        if not hit.any():
            continue
        col = np.full(len(pairs), None, dtype=object)  # a blank decodes to None: decode only hits
        col[pos[hit]] = decode_snapshot(pd.Series(values[hit], dtype=object)).to_numpy(dtype=object)
        out[name] = col
    return out


# --------------------------------------------------------------------------- plain mapped fields


@dataclass(frozen=True)
class PairSides:
    """Both sides' staged rows of linked pairs, aligned positionally with the pairs frame."""

    pairs: pd.DataFrame
    sf: pd.DataFrame
    hs: pd.DataFrame


def align_pairs(pairs: pd.DataFrame, sf: pd.DataFrame, hs: pd.DataFrame) -> PairSides:
    """Look each pair's staged SF (by ``Id``) and HS (by ``id``) row up; missing rows are blank."""
    p = pairs.reset_index(drop=True)
    sf_rows = _lookup(sf, "Id", p["sf_id"])
    hs_rows = _lookup(hs, "id", p["hs_id"])
    return PairSides(p, sf_rows, hs_rows)


def _lookup(frame: pd.DataFrame, key: str, ids: pd.Series) -> pd.DataFrame:
    """Rows of ``frame`` whose ``key`` equals each of ``ids`` (positional; unknown ids -> blank)."""
    return lookup_rows(frame, key, ids)


def lookup_rows(frame: pd.DataFrame, key: str, ids: pd.Series) -> pd.DataFrame:
    """Rows of ``frame`` by ``key`` for each of ``ids``, positionally (unknown ids -> blank rows).

    Staging keeps one row per key; should a key repeat, the last row wins.
    """
    if frame.empty or key not in frame.columns:
        return pd.DataFrame(index=pd.RangeIndex(len(ids)))
    keys = text(frame[key])
    keep = (keys.notna() & ~keys.duplicated(keep="last")).to_numpy(dtype=bool)
    rows = frame if keep.all() else frame[keep]  # the reindex below copies: no copy before it
    indexed = rows.set_index(pd.Index(keys[keep].to_numpy(dtype=object)))
    out = indexed.reindex(text(ids).to_numpy(dtype=object))
    return out.reset_index(drop=True)


def mapped_fields(
    sides: PairSides,
    mappings: Sequence[FieldMapping],
    *,
    sf_object: str,
    hs_object: str,
    rules: Sequence[str] = (),
    options: pd.DataFrame | None = None,
) -> list[MergeField]:
    """SYNC-2: prepare the configured field mappings of one object pair for :func:`merge_fields`.

    Each mapping is compared as the :func:`value_kind` of its two catalog types; writes are
    formatted for the target field's type (:func:`format_for`). A picklist <-> enumeration
    pair goes through its value map (:mod:`~crm_sync.rules.value_maps`, ``options``): compared
    in Salesforce's spelling, written in the target's, and a value without a counterpart is
    not written (:func:`unmapped_value_skips` reports it).
    """
    out: list[MergeField] = []
    for m in mappings:
        values = value_map(m, sf_object=sf_object, hs_object=hs_object, options=options)
        if values is not None:
            out.append(_picklist_field(sides, m, values, rules))
            continue
        sf_type = field_type("salesforce", sf_object, m.salesforce)
        hs_type = field_type("hubspot", hs_object, m.hubspot)
        kind = value_kind(sf_type, hs_type)
        sf_raw = column(sides.sf, m.salesforce)
        hs_raw = column(sides.hs, m.hubspot)
        sf_key = canonical(sf_raw, kind)
        hs_key = canonical(hs_raw, kind)
        out.append(
            MergeField(
                sf_field=m.salesforce,
                hs_field=m.hubspot,
                rule=m.rule,
                kind=kind,
                sf_key=sf_key,
                hs_key=hs_key,
                to_hs=_writer(sf_key, kind, hs_type, sf_raw),
                to_sf=_writer(hs_key, kind, sf_type, hs_raw),
                rules=tuple(rules),
            )
        )
    return out


def _picklist_field(sides: PairSides, m: FieldMapping, values: ValueMap, rules: Sequence[str]) -> MergeField:
    """A picklist <-> enumeration pair compared in Salesforce's spelling (SYNC-2 value map)."""
    sf_raw = column(sides.sf, m.salesforce).reset_index(drop=True)
    hs_raw = column(sides.hs, m.hubspot).reset_index(drop=True)
    sf_as_hs, sf_unmapped = values.translate(sf_raw, to_hubspot=True)
    hs_as_sf, hs_unmapped = values.translate(hs_raw, to_hubspot=False)
    hs_compared = hs_as_sf.where(~pd.Series(hs_unmapped), as_text(hs_raw).astype(object))
    return MergeField(
        sf_field=m.salesforce,
        hs_field=m.hubspot,
        rule=m.rule,
        kind="string",
        sf_key=canonical(sf_raw, "string"),
        hs_key=canonical(hs_compared, "string"),
        to_hs=lambda sub: sf_as_hs.loc[sub],
        to_sf=lambda sub: hs_as_sf.loc[sub],
        rules=tuple(rules),
        hs_writable=pd.Series(~sf_unmapped),
        sf_writable=pd.Series(~hs_unmapped),
        picklist_values=(sf_raw, hs_raw),
    )


def unmapped_value_skips(
    result: MergeResult, fields: Sequence[MergeField], *, pairs: pd.DataFrame, sf_object: str, hs_object: str
) -> pd.DataFrame:
    """SYNC-2: a ``skip`` row per picklist value the merge wanted to write but that has no
    counterpart on the target; only that field is skipped, the rest of the record syncs."""
    parts: list[pd.DataFrame] = []
    p = pairs.reset_index(drop=True)
    for f in fields:
        if f.picklist_values is None:
            continue
        sf_raw, hs_raw = f.picklist_values
        for target, obj, key in (
            (Target.HUBSPOT, hs_object, f"hubspot:{f.hs_field}"),
            (Target.SALESFORCE, sf_object, f"salesforce:{f.sf_field}"),
        ):
            at = result.blocked.get(key, np.empty(0, np.int64))
            if len(at) == 0:
                continue
            to_hs = target is Target.HUBSPOT
            parts.append(
                plan_rows(
                    target=target,
                    object=obj,
                    action=Action.SKIP,
                    count=len(at),
                    source_id=(p["sf_id"] if to_hs else p["hs_id"]).iloc[at],
                    target_id=(p["hs_id"] if to_hs else p["sf_id"]).iloc[at],
                    rules=["SYNC-2"],
                    reason=unmapped_reason(
                        (sf_raw if to_hs else hs_raw).iloc[at],
                        source="Salesforce" if to_hs else "HubSpot",
                        source_field=f.sf_field if to_hs else f.hs_field,
                        target="HubSpot" if to_hs else "Salesforce",
                        target_field=f.hs_field if to_hs else f.sf_field,
                    ),
                )
            )
    return pd.concat(parts, ignore_index=True) if parts else empty_plan()


def _writer(canon: pd.Series, kind: ValueKind, target: FieldType, raw: pd.Series) -> WriteValues:
    def write(sub: pd.Index) -> pd.Series:
        return format_for(canon.loc[sub], kind, target, raw.loc[sub])

    return write


def modified_at(frame: pd.DataFrame, *names: str) -> pd.Series:
    """The first present of several modification-time columns (e.g. LastModifiedDate, SystemModstamp)."""
    present = [column(frame, n) for n in names]
    return as_timestamp(first_present(*present)) if present else pd.Series(dtype="datetime64[us, UTC]")


# --------------------------------------------------------------------------- diff against the target


def changed_mask(desired: pd.Series, current: pd.Series, kind: ValueKind) -> np.ndarray:
    """SYNC-4: True where a desired value differs from the target's staged value (canonically)."""
    return ~same(
        canonical(desired.reset_index(drop=True), kind), canonical(current.reset_index(drop=True), kind)
    )


# --------------------------------------------------------------------------- plan rows


def writes_to_plan(
    writes: Writes,
    *,
    target: Target,
    obj: str,
    target_id: pd.Series,
    source_id: pd.Series | None = None,
    rules: Sequence[str] = (),
    run_id: str = "",
) -> pd.DataFrame:
    """``update`` rows for a :class:`Writes` (only rows that write something, only those fields)."""
    if writes.values.shape[1] == 0:
        return empty_plan()
    return plan_rows(
        target=target,
        object=obj,
        action=Action.UPDATE,
        values=writes.values.reset_index(drop=True),
        mask=writes.mask.reset_index(drop=True),
        source_id=source_id,
        target_id=target_id,
        rules=rules,
        column_rules=writes.column_rules,
        run_id=run_id,
    )


# --------------------------------------------------------------------------- owners (OWN-5)


def owner_field(
    owners: OwnerMap, sf_owner: pd.Series, hs_owner: pd.Series, *, rules: Sequence[str] = ("OWN-5",)
) -> MergeField:
    """OWN-5: the owner as a two-way field of linked pairs (``OwnerId`` <-> ``hubspot_owner_id``).

    Both sides are compared by the owner's email (the only identity HubSpot owners and
    Salesforce users share), so the same person on both sides is "no change". A winning owner
    is written translated to the other side's id; one that does not map (no user/owner with
    that email) is not written (``MergeResult.blocked``; report it with :func:`owner_skips`).
    """
    sf_ids = text(sf_owner.reset_index(drop=True))
    hs_ids = text(hs_owner.reset_index(drop=True))
    to_hs = owners.to_hubspot(sf_ids).reset_index(drop=True)
    to_sf = owners.to_salesforce(hs_ids).reset_index(drop=True)
    return MergeField(
        sf_field="OwnerId",
        hs_field="hubspot_owner_id",
        rule="two_way",
        kind="email",
        sf_key=canonical(owners.salesforce_email(sf_ids).reset_index(drop=True), "email"),
        hs_key=canonical(owners.hubspot_email(hs_ids).reset_index(drop=True), "email"),
        to_hs=lambda sub: to_hs.loc[sub].astype(object),
        to_sf=lambda sub: to_sf.loc[sub].astype(object),
        rules=tuple(rules),
        hs_writable=to_hs.notna(),
        sf_writable=to_sf.notna(),
    )


def owner_skips(
    result: MergeResult,
    *,
    pairs: pd.DataFrame,
    sf_owner: pd.Series,
    hs_owner: pd.Series,
    owners: OwnerMap,
    sf_object: str,
    hs_object: str,
) -> pd.DataFrame:
    """OWN-5: ``skip`` rows for owners the merge wanted to write but could not translate."""
    parts: list[pd.DataFrame] = []
    p = pairs.reset_index(drop=True)
    for target in ("hubspot", "salesforce"):
        positions = result.blocked.get(
            "hubspot:hubspot_owner_id" if target == "hubspot" else "salesforce:OwnerId", np.empty(0, np.int64)
        )
        if len(positions) == 0:
            continue
        to_hubspot = target == "hubspot"
        parts.append(
            unmapped_owner_skips(
                target=Target.HUBSPOT if to_hubspot else Target.SALESFORCE,
                object=hs_object if to_hubspot else sf_object,
                target_ids=(p["hs_id"] if to_hubspot else p["sf_id"]).iloc[positions],
                source_ids=(p["sf_id"] if to_hubspot else p["hs_id"]).iloc[positions],
                owner_values=(sf_owner if to_hubspot else hs_owner).reset_index(drop=True).iloc[positions],
                owners=owners,
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else empty_plan()
