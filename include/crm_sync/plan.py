"""The sync plan: what the rules decided to do to each target, one row per decision.

The plan is the product's central artefact. Users read it before anything is written
(``dry_run``), ``crm-sync plan`` prints it, validation audits it and the loaders apply it. Its row
shape is a public contract (see DESIGN.md): ``run_id, target, object, action, source_id,
target_id, fields, rules, reason``.

Rule functions return plan frames built with :func:`plan_frame`; ``fields`` holds only the
target fields to write (for updates: only the ones that change), ``rules`` the RULES.md ids
that decided the row, ``reason`` a sentence for ``skip`` and ``quarantine`` rows so a user can
ask why a record did not sync.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd

from crm_sync.rules.normalize import as_text


class Target(StrEnum):
    """The CRM a plan row writes to (its value is the contract's spelling)."""

    SALESFORCE = "salesforce"
    HUBSPOT = "hubspot"


class Action(StrEnum):
    """What a plan row does. ``link`` pairs two existing records; ``skip`` records a deliberate
    non-sync and ``quarantine`` a record the rules could not decide (both with a reason)."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    LINK = "link"
    ASSOCIATE = "associate"
    SKIP = "skip"
    QUARANTINE = "quarantine"


TARGETS: tuple[str, ...] = tuple(t.value for t in Target)
ACTIONS: tuple[str, ...] = tuple(a.value for a in Action)
SALESFORCE_OBJECTS: tuple[str, ...] = (
    "Account",
    "Contact",
    "Lead",
    "Opportunity",
    "OpportunityContactRole",
    "User",
)
HUBSPOT_OBJECTS: tuple[str, ...] = ("companies", "contacts", "deals", "pipelines", "associations")
#: numpy's object dtype by name: functions here take a parameter called ``object`` (the
#: contract's column name), which shadows the builtin.
OBJECT = np.dtype("O")
H = TypeVar("H", bound=Hashable)
PLAN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "target",
    "object",
    "action",
    "source_id",
    "target_id",
    "fields",
    "rules",
    "reason",
)


# --------------------------------------------------------------------------- references

#: First character of a reference to a record created by a ``create`` row of the same plan.
REF_PREFIX = "@"
_REF = re.compile(r"^@(?P<object>[A-Za-z][A-Za-z0-9_]*):(?P<source_id>.+)$", re.DOTALL)


@dataclass(frozen=True)
class Ref:
    """A record the same plan creates, named by its ``create`` row: ``object`` (the target's
    object name, e.g. ``deals`` or ``Opportunity``) and that row's ``source_id``.

    Rows that need the id of such a record (an association of a deal created from an
    Opportunity, a stage of a pipeline created this run, a contact role of an Opportunity
    created from a deal) carry ``"@<object>:<source_id>"`` (:func:`created_ref`) where the id
    would be. The loader parses it with :func:`parse_ref` and puts in the id the create
    returned (or the link stored for it). Keeping references in one plan makes one application
    of the plan reach the fixed point, so a re-run plans nothing (SYNC-4).
    """

    object: str
    source_id: str

    def __str__(self) -> str:
        return f"{REF_PREFIX}{self.object}:{self.source_id}"


def created_ref(object: str, source_id: str) -> str:
    """The reference text for the record the ``create`` row (``object``, ``source_id``) makes."""
    return str(Ref(object, source_id))


def created_refs(object: str, source_ids: pd.Series) -> pd.Series:
    """Vectorized :func:`created_ref`."""
    text = source_ids.to_numpy(dtype=OBJECT).astype(str)
    return pd.Series(np.char.add(f"{REF_PREFIX}{object}:", text), index=source_ids.index, dtype=OBJECT)


def parse_ref(value: object) -> Ref | None:
    """The :class:`Ref` a plan cell holds, or None for a real id, a blank or any other value."""
    if not isinstance(value, str) or not value.startswith(REF_PREFIX):
        return None
    found = _REF.match(value)
    return Ref(found["object"], found["source_id"]) if found else None


def is_ref(values: pd.Series) -> pd.Series:
    """True where a value is a :func:`created_ref` reference (vectorized)."""
    text = values.astype(object).where(values.notna(), None)
    return pd.Series(
        [isinstance(v, str) and v.startswith(REF_PREFIX) for v in text.to_numpy(dtype=object)],
        index=values.index,
        dtype=bool,
    )


@dataclass(frozen=True)
class PlanRow:
    """One decision. ``fields`` maps *target* field names to values; ``rules`` are RULES.md ids."""

    target: Target
    object: str
    action: Action
    source_id: str | None = None
    target_id: str | None = None
    fields: Mapping[str, Any] | None = None
    rules: Sequence[str] = ()
    reason: str | None = None

    def __post_init__(self) -> None:
        # Accept the contract's spellings ("hubspot", "create") and keep the enum members.
        try:
            object.__setattr__(self, "target", Target(self.target))
            object.__setattr__(self, "action", Action(self.action))
        except ValueError as exc:
            raise ValueError(f"plan rows with unknown target/action: {exc}") from None

    def as_dict(self, run_id: str = "") -> dict[str, Any]:
        return {
            "run_id": run_id,
            "target": str(self.target),
            "object": self.object,
            "action": str(self.action),
            "source_id": self.source_id,
            "target_id": self.target_id,
            "fields": dict(self.fields or {}),
            "rules": list(self.rules),
            "reason": self.reason,
        }


def plan_frame(rows: Iterable[PlanRow | Mapping[str, Any]] = (), run_id: str = "") -> pd.DataFrame:
    """Build a plan DataFrame with exactly :data:`PLAN_COLUMNS`, validating targets and actions."""
    records = [r.as_dict(run_id) if isinstance(r, PlanRow) else {**dict(r)} for r in rows]
    frame = pd.DataFrame.from_records(records, columns=list(PLAN_COLUMNS))
    if run_id:
        frame["run_id"] = run_id
    check_plan(frame)
    return frame


def empty_plan() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in PLAN_COLUMNS})


def check_plan(frame: pd.DataFrame) -> None:
    """Reject rows that break the contract early, where the rule that made them is known."""
    missing = [c for c in PLAN_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"plan frame lacks columns {missing}")
    if frame.empty:
        return
    bad_target = ~frame["target"].isin(TARGETS)
    bad_action = ~frame["action"].isin(ACTIONS)
    if bad_target.any() or bad_action.any():
        sample = frame.loc[bad_target | bad_action, ["target", "object", "action"]].head(3)
        raise ValueError(f"plan rows with unknown target/action: {sample.to_dict('records')}")
    bad_object = np.zeros(len(frame), dtype=bool)  # every target is known by now
    for target, objects in ((Target.SALESFORCE, SALESFORCE_OBJECTS), (Target.HUBSPOT, HUBSPOT_OBJECTS)):
        mine = (frame["target"] == target.value).to_numpy(dtype=bool)
        bad_object |= mine & ~frame["object"].isin(objects).to_numpy(dtype=bool)
    if bad_object.any():
        sample = frame.loc[bad_object, ["target", "object"]].head(3)
        raise ValueError(f"plan rows name objects their target does not have: {sample.to_dict('records')}")


def json_safe(values: pd.Series) -> np.ndarray:
    """An object array of plain Python scalars (None for missing) that ``json.dumps`` accepts.

    Plan ``fields`` are persisted as JSON and printed by ``crm-sync plan``: NaN is not valid
    JSON and timestamps are not serializable, so every value written into a plan row goes
    through here (datetimes become ISO 8601 UTC text with milliseconds).
    """
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return iso_texts(values, "ms")
    arr = np.asarray(values.to_numpy(dtype=object), dtype=object)
    missing = np.asarray(pd.isna(arr), dtype=bool)
    if missing.any():
        arr = arr.copy()
        arr[missing] = None
    return arr


def iso_texts(values: pd.Series, unit: Literal["ms", "D"]) -> np.ndarray:
    """Datetimes as ISO 8601 text in their own zone (the UTC the rules use): ``"ms"`` ->
    ``2026-01-02T03:04:05.678Z`` (milliseconds, truncated), ``"D"`` -> ``2026-01-02``;
    missing -> None. An object array, formatted by numpy in C: ``.dt.strftime`` formats each
    value in Python, which at a million plan cells is seconds. Each distinct instant is
    formatted once and equal cells share its text (a run's sync time on every snapshot row)."""
    wall = values.dt.tz_localize(None) if getattr(values.dtype, "tz", None) is not None else values
    stamps = wall.to_numpy().astype(f"datetime64[{unit}]")
    codes, uniques = pd.factorize(stamps.view("int64"))
    text = np.datetime_as_string(uniques.view(f"datetime64[{unit}]"), unit=unit)
    distinct = np.char.add(text, "Z").astype(object) if unit == "ms" else text.astype(object)
    out = distinct.take(codes) if len(distinct) else np.empty(len(codes), dtype=object)
    missing = np.isnat(stamps)
    if missing.any():
        out[missing] = None
    return np.asarray(out, dtype=object)


#: Text that ``json.dumps`` writes as itself between quotes: printable ASCII without ``"``/``\\``.
_JSON_VERBATIM = re.compile(r"[ !#-\[\]-~]*")


def json_texts(values: Iterable[Any], dumps: Callable[[Any], str] = json.dumps) -> list[str]:
    """``[dumps(v) for v in values]``, with the common cases (plain ASCII text, ``None``,
    finite floats, ints) written inline: at a million cells the per-value ``json.dumps`` call
    is what costs. The inline forms are exactly what ``json.dumps`` writes for them; ``dumps``
    decides every other value. Equal texts are one string (:func:`shared_texts`)."""
    return shared_texts(
        [
            f'"{v}"'
            if v.__class__ is str and _JSON_VERBATIM.fullmatch(v)
            else "null"
            if v is None
            else float.__repr__(v)
            if v.__class__ is float and math.isfinite(v)
            else int.__repr__(v)
            if v.__class__ is int
            else dumps(v)
            for v in values
        ]
    )


def shared_texts(texts: Iterable[H]) -> list[H]:
    """``texts`` with equal strings as one object. Plan and snapshot cells repeat the same
    text (a stage name, an amount, ``"USD"``, a skip reason) hundreds of thousands of times;
    one string each instead of one per cell is a few hundred MiB at a million Opportunities."""
    seen: dict[H, H] = {}
    return [seen.setdefault(t, t) for t in texts]


#: The ``fields`` of every row that writes none (skip, quarantine, link, associate rows): one
#: dict for all of them, never mutated (a merge copies before it updates).
_NO_FIELDS: dict[str, Any] = {}


def _shared_lists(lists: Iterable[list[str]]) -> list[list[str]]:
    """Equal rule lists as one list object (read-only, as rows of one pattern share theirs)."""
    seen: dict[tuple[str, ...], list[str]] = {}
    return [seen.setdefault(tuple(rules), rules) for rules in lists]


def _id_cells(ids: pd.Series | str | None, n: int, positions: np.ndarray) -> Any:
    """``source_id``/``target_id`` cells: one id for every row, or a column (ids as text)."""
    if ids is None or isinstance(ids, str):
        return ids
    values = ids.reset_index(drop=True)
    text = values if isinstance(values.dtype, pd.StringDtype) else as_text(values)
    cells = json_safe(text)
    if len(cells) != n:
        raise ValueError(f"plan id column has {len(cells)} values for {n} rows")
    return cells[positions]


def _mask_codes(m: np.ndarray, flags: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """One integer per row naming its pattern of written fields and row rules."""
    sub_mask = np.column_stack([m, *flags]) if flags else m
    width = sub_mask.shape[1]
    if width > 63:  # pragma: no cover - more than 63 fields per object is not configured
        raise ValueError("plan_rows supports at most 63 fields and row rules per row")
    weights = (1 << np.arange(width, dtype=np.uint64)).astype(np.uint64)
    codes = (sub_mask.astype(np.uint64) * weights).sum(axis=1) if width else np.zeros(len(m), np.uint64)
    return codes, width


def plan_rows(
    *,
    target: Target,
    object: str,
    action: Action,
    values: pd.DataFrame | None = None,
    mask: pd.DataFrame | None = None,
    fields: Sequence[Mapping[str, Any]] | None = None,
    count: int | None = None,
    source_id: pd.Series | str | None = None,
    target_id: pd.Series | str | None = None,
    rules: Sequence[str] | pd.Series = (),
    column_rules: Mapping[str, Sequence[str]] | None = None,
    row_rules: Mapping[str, np.ndarray | pd.Series] | None = None,
    reason: pd.Series | str | None = None,
    keep_empty: bool = False,
    run_id: str = "",
) -> pd.DataFrame:
    """The one builder of plan rows (:data:`PLAN_COLUMNS`), column-wise and vectorized.

    The rows' fields come from one of: ``values`` (one column per target field, JSON-safe or
    convertible) with ``mask`` (cells to write; default the non-blank ones); ``fields`` (one
    ready dict per row); or nothing (``count`` rows without fields: skips, deletes). With
    ``values`` a row is emitted when it writes a field, or always with ``keep_empty``; with
    ``fields`` or ``count`` every row is. Each row's ``rules`` are ``rules`` (shared, or a
    Series of per-row lists), then the ``column_rules`` of the fields it writes (so an update
    names exactly the rules that changed it), then each ``row_rules`` id whose mask is True for
    it (a condition that is not a field, e.g. DEAL-9). Rows sharing a mask pattern are built
    together: the Python work is per pattern and field, not per cell compared.
    """
    if values is not None:
        n = len(values)
    elif fields is not None:
        n = len(fields)
        keep_empty = True
    else:
        n = count or 0
        keep_empty = True
    _check_scalars(target, object, action)
    if n == 0:
        return empty_plan()
    cols = list(values.columns) if values is not None else []
    if values is not None and mask is None:
        mask = values.notna()
    m = (
        mask.reindex(columns=cols, fill_value=False).to_numpy(dtype=bool)
        if mask is not None and cols
        else np.zeros((n, 0), bool)
    )
    positions = np.flatnonzero(np.ones(n, dtype=bool) if keep_empty else m.any(axis=1))
    if len(positions) == 0:
        return empty_plan()
    extra = list((row_rules or {}).items())
    flags = [np.asarray(pd.Series(f).to_numpy(dtype=bool, na_value=False))[positions] for _, f in extra]
    codes, _ = _mask_codes(m[positions], flags)
    safe = {c: json_safe(values[c]) for c in cols} if values is not None else {}
    per_row_rules = (
        [list(r) for r in rules.to_numpy(dtype=OBJECT)[positions]] if isinstance(rules, pd.Series) else None
    )
    shared_rules = [] if isinstance(rules, pd.Series) else list(rules)
    fields_out = np.empty(len(positions), dtype=OBJECT)
    rules_out = np.empty(len(positions), dtype=OBJECT)
    col_rules = column_rules or {}
    for code in np.unique(codes):
        at = np.flatnonzero(codes == code)
        names = [c for j, c in enumerate(cols) if (int(code) >> j) & 1]
        flagged = [rule for j, (rule, _) in enumerate(extra) if (int(code) >> (len(cols) + j)) & 1]
        rows_pos = positions[at]
        if fields is not None:
            fields_out[at] = [dict(fields[i]) for i in rows_pos]
        elif names:
            columns = [safe[c][rows_pos] for c in names]
            fields_out[at] = [dict(zip(names, vals, strict=True)) for vals in zip(*columns, strict=True)]
        else:
            fields_out[at] = [_NO_FIELDS] * len(at)  # rows without fields share one (read-only)
        added = [*(r for c in names for r in col_rules.get(c, ())), *flagged]
        if per_row_rules is not None:
            rules_out[at] = _shared_lists(list(dict.fromkeys([*per_row_rules[i], *added])) for i in at)
            continue
        block = np.empty(len(at), dtype=OBJECT)
        block.fill(list(dict.fromkeys([*shared_rules, *added])))  # rows of one pattern share it (read-only)
        rules_out[at] = block
    reasons: Any = (
        np.asarray(shared_texts(json_safe(reason.reset_index(drop=True))[positions]), dtype=OBJECT)
        if isinstance(reason, pd.Series)
        else reason
    )
    frame = pd.DataFrame(
        {
            "run_id": run_id,
            "target": Target(target).value,
            "object": object,
            "action": Action(action).value,
            "source_id": _id_cells(source_id, n, positions),
            "target_id": _id_cells(target_id, n, positions),
            "fields": fields_out,
            "rules": rules_out,
            "reason": reasons,
        },
        columns=list(PLAN_COLUMNS),
        dtype=OBJECT,  # plan cells are None when empty, never NaN (pandas would infer ``str``)
    )
    return frame


def _check_scalars(target: Target, object: str, action: Action) -> None:
    """The contract check of :func:`check_plan` for rows that share target, object and action."""
    objects = SALESFORCE_OBJECTS if Target(target) is Target.SALESFORCE else HUBSPOT_OBJECTS
    if object not in objects:
        raise ValueError(f"plan rows name objects their target does not have: {target}/{object}")
    Action(action)


def concat_plans(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate plan frames (empty ones allowed) keeping the column order."""
    parts = [f for f in frames if not f.empty]
    if not parts:
        return empty_plan()
    return pd.concat(parts, ignore_index=True)[list(PLAN_COLUMNS)]


def summarize(plan: pd.DataFrame) -> pd.DataFrame:
    """Counts per target, object, action and rule: the human-readable plan summary.

    A row decided by several rules counts once under each of them, so the table answers
    "what did OWN-2 do this run?" directly.
    """
    if plan.empty:
        return pd.DataFrame(columns=["target", "object", "action", "rule", "count"])
    exploded = plan[["target", "object", "action", "rules"]].explode("rules")
    exploded["rule"] = exploded["rules"].fillna("-")
    counts = (
        exploded.groupby(["target", "object", "action", "rule"], sort=True).size().reset_index(name="count")
    )
    return counts
