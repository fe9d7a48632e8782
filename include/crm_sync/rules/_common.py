"""Shared frame plumbing of the rule families (private to crm_sync.rules).

Building plan rows one :class:`~crm_sync.plan.PlanRow` at a time costs seconds at 500,000
contacts, so the rules build whole columns at once here and hand :func:`plan_rows` arrays. The
helpers also read the staged link table and HubSpot associations defensively: a staging frame
that was never extracted is an empty frame without columns, and the rules must treat it as
"no records", not crash.

Rows that several families decide the same way are built here once, so the families cannot
drift apart: the ``link`` rows of a pair found this run with its OWN-4 owners
(:func:`first_link_rows`), records created with their owners (:func:`salesforce_create_rows`
with OWN-1..3, :func:`hubspot_create_rows` with OWN-5), and the skip/quarantine rows of records
taken out by a sequence of checks (:func:`screen`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from crm_sync.plan import PLAN_COLUMNS, Target, check_plan, concat_plans, empty_plan
from crm_sync.rules.normalize import as_bool, as_text, column, object_array
from crm_sync.settings import FieldMapping

if TYPE_CHECKING:  # owners.py imports this module; its functions are imported where used
    from crm_sync.rules.owners import NewRecordObject, OwnerMap

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


#: Why records fail a check: fixed text, or text made from the mask of the records it takes out.
Reason = str | Callable[[np.ndarray], pd.Series]


@dataclass(frozen=True)
class Side:
    """Records a rule decides about, and where its rows about them land: ``target`` and
    ``object``, the records' ids (``source_id``) and, for pairs, their counterparts'
    (``target_id``; None for records without one)."""

    target: Target
    object: str
    source_id: pd.Series
    target_id: pd.Series | None = None

    def rows(
        self, action: str, rules: Sequence[str], reason: Any, mask: np.ndarray | None = None
    ) -> pd.DataFrame:
        """``action`` rows without fields for the records ``mask`` selects (all by default);
        ``reason``: one text, or one per selected record."""
        # Imported here: merge.py imports owners.py, which imports this module. Its plan_rows
        # shares one rules list among the rows (skips run to tens of thousands of rows a run).
        from crm_sync.rules.merge import plan_rows as build_rows

        if mask is None:
            mask = np.ones(len(self.source_id), dtype=bool)
        return build_rows(
            target=self.target,
            obj=self.object,
            action=action,
            values=pd.DataFrame(index=pd.RangeIndex(int(mask.sum()))),
            source_id=self.source_id[mask],
            target_id=None if self.target_id is None else self.target_id[mask],
            rules=rules,
            reason=reason,
            keep_empty=True,
        )

    def skip(self, rules: Sequence[str], failing: pd.Series | np.ndarray, reason: Reason) -> Check:
        """A check whose failing records are ``skip`` rows (see :func:`screen`)."""
        return Check(self, "skip", rules, _mask(failing), reason)

    def quarantine(self, rules: Sequence[str], failing: pd.Series | np.ndarray, reason: Reason) -> Check:
        """A check whose failing records are ``quarantine`` rows (see :func:`screen`)."""
        return Check(self, "quarantine", rules, _mask(failing), reason)


def _mask(failing: pd.Series | np.ndarray) -> np.ndarray:
    """A positional bool mask; a missing value does not fail the check."""
    if isinstance(failing, pd.Series):
        return np.asarray(failing.fillna(False).astype(bool).to_numpy(), dtype=bool)
    return np.asarray(failing, dtype=bool)


@dataclass(frozen=True)
class Check:
    """One reason records do not sync this run: ``action`` rows under ``rules`` for the records
    ``failing`` marks (positionally, aligned with ``side``), explained by ``reason``."""

    side: Side
    action: str
    rules: Sequence[str]
    failing: np.ndarray
    reason: Reason


def screen(plans: list[pd.DataFrame], *checks: Check) -> np.ndarray:
    """Apply ``checks`` in order to the same records (CON-1..3, DEAL-2/3/8/9; SYNC-5: the rest
    proceeds). Each takes the records still in play that fail it out as skip/quarantine rows,
    appended to ``plans``, so a record is reported once, under the first check it fails.
    Returns the mask of the records that pass them all."""
    passing = np.ones(len(checks[0].failing), dtype=bool)
    for check in checks:
        hit = passing & check.failing
        if hit.any():
            reason = check.reason if isinstance(check.reason, str) else check.reason(hit)
            plans.append(check.side.rows(check.action, check.rules, reason, hit))
        passing &= ~hit
    return passing


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


def _with_rule(base_rules: Iterable[Sequence[str]], flags: Iterable[bool], rule: str) -> pd.Series:
    """Per-row rule lists: each row's ``base_rules`` plus ``rule`` where its flag is set."""
    return pd.Series(
        [[*base, rule] if flag else list(base) for base, flag in zip(base_rules, flags, strict=True)],
        dtype=object,
    )


def _set_defaults(columns: dict[str, pd.Series], rows: pd.DataFrame, defaults: Mapping[str, str]) -> None:
    """Fields a created record always gets, from ``rows`` column ``src``, unless a mapping wrote them."""
    for dst, src in defaults.items():
        columns.setdefault(dst, as_text(column(rows, src)))


def first_link_rows(
    pairs: pd.DataFrame,
    owners: OwnerMap,
    *,
    hs_object: str,
    link_properties: Mapping[str, str],
    base_rules: Sequence[Sequence[str]],
    sf_extra: Mapping[str, pd.Series] | None = None,
) -> pd.DataFrame:
    """The rows of pairs found this run (CON-1, ACC-3, ACC-6): two ``link`` rows each, owners per OWN-4.

    ``pairs`` (positional): ``sf_object``, ``sf_id``, ``hs_id``, the SF record's ``owner`` and
    ``hs_ref`` (its ``HubSpot_Id__c``), the HubSpot record's ``hs_owner`` and ``sf_ref`` (its
    current link property). The ``hubspot`` row (object ``hs_object``) writes the SF id into
    the link property of the pair's ``sf_object`` (``link_properties``: SF object -> property)
    and the ``salesforce`` row writes ``HubSpot_Id__c``, each only where the record does not
    already hold that id; both carry :func:`~crm_sync.rules.owners.owner_at_first_link`'s
    owner fields, the SF row then ``sf_extra``. Rules: the pair's ``base_rules`` plus ``OWN-4``
    where an owner is written. SF rows come grouped by object in ``link_properties`` order;
    then an OWN-4 ``skip`` row for each kept SF owner that maps to no HubSpot owner.
    """
    # Imported here: owners.py imports this module.
    from crm_sync.rules.owners import owner_at_first_link

    if pairs.empty:
        return empty_plan()
    pairs = pairs.reset_index(drop=True)
    n = len(pairs)
    decision = owner_at_first_link(pairs["owner"], pairs["hs_owner"], owners)
    own4 = (decision["hubspot_owner_id"].notna() | decision["OwnerId"].notna()).to_numpy()
    rules = _with_rule(base_rules, own4, "OWN-4")
    stale_ref = pairs["sf_ref"] != pairs["sf_id"]
    hs_columns = {
        prop: pairs["sf_id"].where((pairs["sf_object"] == sf_object) & stale_ref)
        for sf_object, prop in link_properties.items()
    }
    hs_columns["hubspot_owner_id"] = decision["hubspot_owner_id"]
    plans = [
        plan_rows(
            n,
            target="hubspot",
            object=hs_object,
            action="link",
            rules=rules,
            source_id=pairs["sf_id"],
            target_id=pairs["hs_id"],
            fields=field_dicts(n, hs_columns),
        )
    ]
    sf_fields = field_dicts(
        n,
        {
            "HubSpot_Id__c": pairs["hs_id"].where(pairs["hs_ref"] != pairs["hs_id"]),
            "OwnerId": decision["OwnerId"],
            **(sf_extra or {}),
        },
    )
    for sf_object in link_properties:
        mask = (pairs["sf_object"] == sf_object).to_numpy()
        plans.append(
            plan_rows(
                int(mask.sum()),
                target="salesforce",
                object=sf_object,
                action="link",
                rules=rules[mask],
                source_id=pairs.loc[mask, "hs_id"],
                target_id=pairs.loc[mask, "sf_id"],
                fields=[f for f, m in zip(sf_fields, mask, strict=True) if m],
            )
        )
    skipped = decision["skip_reason"].notna()
    plans.append(
        plan_rows(
            int(skipped.sum()),
            target="hubspot",
            object=hs_object,
            action="skip",
            rules=["OWN-4"],
            source_id=pairs.loc[skipped, "sf_id"],
            target_id=pairs.loc[skipped, "hs_id"],
            reason=decision.loc[skipped, "skip_reason"],
        )
    )
    return concat_plans(plans)


def new_record_owners(
    records: pd.DataFrame, owners: OwnerMap, *, sf_object: NewRecordObject, rule: str
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """OWN-1..OWN-3 for SF records about to be created from HubSpot records (CON-2, ACC-4, DEAL-5).

    ``records`` (positional): ``hs_id`` and ``owner`` (the ``hubspot_owner_id``). A record whose
    owner cannot be resolved (the integration user is needed but unknown) is not created: it
    becomes a ``quarantine`` row with rules ``[rule, <owner rule>]`` (SYNC-5). Returns (those
    rows, the mask of records to create, their :func:`owner_for_new_sf_record` decisions).
    """
    # Imported here: owners.py imports this module.
    from crm_sync.rules.owners import owner_for_new_sf_record

    decision = owner_for_new_sf_record(records["owner"], sf_object, owners).reset_index(drop=True)
    bad = decision["quarantine_reason"].notna().to_numpy()
    quarantined = plan_rows(
        int(bad.sum()),
        target="salesforce",
        object=sf_object,
        action="quarantine",
        rules=pd.Series([[rule, r] for r in decision.loc[bad, "owner_rule"]], dtype=object),
        source_id=records["hs_id"].reset_index(drop=True)[bad],
        reason=decision.loc[bad, "quarantine_reason"],
    )
    ok = ~bad
    return quarantined, ok, decision[ok].reset_index(drop=True)


def salesforce_create_rows(
    records: pd.DataFrame,
    source: pd.DataFrame,
    owners: OwnerMap,
    *,
    sf_object: NewRecordObject,
    hs_object: str,
    mappings: Iterable[FieldMapping],
    rule: str,
    defaults: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SF records created from HubSpot records (CON-2, ACC-4), owners per OWN-1..OWN-3.

    ``records`` (positional): ``hs_id``, ``owner`` and ``row`` (position in ``source``, the
    staged HubSpot frame). Fields: the SYNC-2 create fields of ``mappings``, then ``defaults``
    (SF field -> HubSpot column) the mappings did not write, ``HubSpot_Id__c`` and the owner
    fields. Returns (quarantine rows of :func:`new_record_owners`, then ``create`` rows with
    rules ``[rule, <owner rule>]``; the created records).
    """
    # Imported here: owners.py imports this module.
    from crm_sync.rules.owners import new_record_owner_fields

    if records.empty:
        return empty_plan(), records
    records = records.reset_index(drop=True)
    quarantined, ok, decision = new_record_owners(records, owners, sf_object=sf_object, rule=rule)
    chosen = records[ok].reset_index(drop=True)
    rows = source.iloc[chosen["row"].to_numpy()].reset_index(drop=True)
    columns = create_field_columns(rows, mappings, "salesforce", sf_object=sf_object, hs_object=hs_object)
    _set_defaults(columns, rows, defaults or {})
    columns["HubSpot_Id__c"] = chosen["hs_id"]
    columns.update(new_record_owner_fields(decision, sf_object))
    created = plan_rows(
        len(chosen),
        target="salesforce",
        object=sf_object,
        action="create",
        rules=pd.Series([[rule, r] for r in decision["owner_rule"]], dtype=object),
        source_id=chosen["hs_id"],
        fields=field_dicts(len(chosen), columns),
    )
    return concat_plans([quarantined, created]), chosen


def hubspot_create_rows(
    records: pd.DataFrame,
    source: pd.DataFrame,
    owners: OwnerMap,
    *,
    sf_object: str,
    hs_object: str,
    mappings: Iterable[FieldMapping],
    link_property: str,
    base_rules: Sequence[Sequence[str]],
    defaults: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """HubSpot records created from SF records (CON-3, ACC-1/ACC-2), owner per OWN-5.

    ``records`` (positional): ``sf_id``, ``owner`` (``OwnerId``) and ``row`` (position in
    ``source``, the staged SF frame). Fields: the SYNC-2 create fields of ``mappings``, then
    ``defaults`` (HubSpot property -> SF column) the mappings did not write, the SF id in
    ``link_property`` and ``hubspot_owner_id`` where the owner maps by email. Rules: the
    record's ``base_rules`` plus ``OWN-5`` where an owner is written.
    """
    if records.empty:
        return empty_plan()
    records = records.reset_index(drop=True)
    rows = source.iloc[records["row"].to_numpy()].reset_index(drop=True)
    columns = create_field_columns(rows, mappings, "hubspot", sf_object=sf_object, hs_object=hs_object)
    _set_defaults(columns, rows, defaults or {})
    columns[link_property] = records["sf_id"]
    owner = owners.to_hubspot(records["owner"])
    columns["hubspot_owner_id"] = owner
    return plan_rows(
        len(records),
        target="hubspot",
        object=hs_object,
        action="create",
        rules=_with_rule(base_rules, owner.notna(), "OWN-5"),
        source_id=records["sf_id"],
        fields=field_dicts(len(records), columns),
    )


def account_companies(account_links: pd.DataFrame, company: str = "hs_id") -> pd.DataFrame:
    """Account -> company pairs (``account_id``, ``company``) from the account pairs (``sf_id``,
    ``hs_id``): complete pairs only, the first company per Account. DEAL-7 associates a deal
    with it, and the company rollups (ROLL-1..6) count the Account's deals."""
    return (
        pd.DataFrame(
            {
                "account_id": account_links["sf_id"].astype(object),
                company: account_links["hs_id"].astype(object),
            }
        )
        .dropna()
        .drop_duplicates("account_id")
    )


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
