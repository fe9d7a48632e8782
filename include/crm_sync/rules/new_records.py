"""Rows about records found or made this run: first links (OWN-4) and creates (OWN-1..3, OWN-5).

Several rule families decide these the same way, so the rows are built here once and the
families cannot drift apart: the ``link`` rows of a pair found this run with its OWN-4 owners
(:func:`first_link_rows`: CON-1, ACC-3, ACC-6), records created in Salesforce with their owners
(:func:`salesforce_create_rows` with OWN-1..3: CON-2, ACC-4, DEAL-5) and in HubSpot
(:func:`hubspot_create_rows` with OWN-5: CON-3, ACC-1/2). Values of a created record are
formatted exactly as the SYNC-3 merge writes them, so the next run sees no difference (SYNC-4).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from crm_sync.plan import Action, Target, concat_plans, empty_plan, json_safe, plan_rows
from crm_sync.rules.merge import canonical, field_type, format_for, value_kind
from crm_sync.rules.normalize import as_text, column
from crm_sync.rules.owners import (
    NewRecordObject,
    OwnerMap,
    new_record_owner_fields,
    owner_at_first_link,
    owner_for_new_sf_record,
)
from crm_sync.rules.value_maps import unmapped_reason, value_map
from crm_sync.settings import FieldMapping

#: SYNC-2 rules under which a value flows into a record being *created* on each target. A new
#: record has no value of its own yet, so ``prefer_salesforce`` lets the HubSpot value through
#: when Salesforce is the target (Salesforce is blank), and ``always_salesforce`` never writes
#: to Salesforce.
CREATE_RULES: dict[str, frozenset[str]] = {
    "salesforce": frozenset({"two_way", "prefer_salesforce", "hubspot_to_salesforce"}),
    "hubspot": frozenset({"two_way", "prefer_salesforce", "always_salesforce"}),
}


def _python_values(values: pd.Series) -> list[Any]:
    """Column values as plain Python objects (JSON-friendly); timestamps as ISO 8601 text."""
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
    source_ids: pd.Series | None = None,
    options: pd.DataFrame | None = None,
) -> tuple[dict[str, pd.Series], pd.DataFrame]:
    """SYNC-2 fields of a record created on ``target`` from ``source`` (the other system's rows).

    Only mappings whose rule lets a value flow toward ``target`` on a create are used (see
    :data:`CREATE_RULES`). Values are formatted exactly as the SYNC-3 merge writes them
    (:func:`crm_sync.rules.merge.format_for`: dates, integral numbers, a Website becoming a
    bare host in HubSpot's ``domain``), so the next run's merge sees no difference (SYNC-4).
    A picklist <-> enumeration value goes through its value map; one without a counterpart is
    left out and reported. Returns (the columns, SYNC-2 ``skip`` rows for those values, whose
    ``source_id`` is ``source_ids``, aligned with ``source``).
    """
    out: dict[str, pd.Series] = {}
    skips: list[pd.DataFrame] = []
    to_hubspot = target == Target.HUBSPOT
    for m in mappings:
        if m.rule not in CREATE_RULES[target]:
            continue
        src, dst = (m.salesforce, m.hubspot) if to_hubspot else (m.hubspot, m.salesforce)
        if src not in source.columns:
            continue
        values = value_map(m, sf_object=sf_object, hs_object=hs_object, options=options)
        if values is not None:
            out[dst], unmapped = values.translate(source[src], to_hubspot=to_hubspot)
            if unmapped.any() and source_ids is not None:
                skips.append(
                    _unmapped_rows(
                        source[src],
                        unmapped,
                        m,
                        target=target,
                        objects=(sf_object, hs_object),
                        ids=source_ids,
                    )
                )
            continue
        sf_type = field_type("salesforce", sf_object, m.salesforce)
        hs_type = field_type("hubspot", hs_object, m.hubspot)
        kind = value_kind(sf_type, hs_type)
        raw = source[src]
        out[dst] = format_for(canonical(raw, kind), kind, hs_type if to_hubspot else sf_type, raw)
    return out, concat_plans(skips)


def _unmapped_rows(
    raw: pd.Series,
    unmapped: np.ndarray,
    m: FieldMapping,
    *,
    target: Target,
    objects: tuple[str, str],
    ids: pd.Series,
) -> pd.DataFrame:
    """SYNC-2: the ``skip`` rows of created records whose picklist value has no counterpart;
    ``objects``: (SF object, HubSpot object), ``ids``: the source records' ids."""
    to_hubspot = target == Target.HUBSPOT
    sf_object, hs_object = objects
    return plan_rows(
        target=target,
        object=hs_object if to_hubspot else sf_object,
        action=Action.SKIP,
        count=int(unmapped.sum()),
        source_id=ids.reset_index(drop=True)[unmapped],
        rules=["SYNC-2"],
        reason=unmapped_reason(
            raw.reset_index(drop=True)[unmapped],
            source="Salesforce" if to_hubspot else "HubSpot",
            source_field=m.salesforce if to_hubspot else m.hubspot,
            target="HubSpot" if to_hubspot else "Salesforce",
            target_field=m.hubspot if to_hubspot else m.salesforce,
        ),
    )


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
            count=n,
            target=Target.HUBSPOT,
            object=hs_object,
            action=Action.LINK,
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
                count=int(mask.sum()),
                target=Target.SALESFORCE,
                object=sf_object,
                action=Action.LINK,
                rules=rules[mask],
                source_id=pairs.loc[mask, "hs_id"],
                target_id=pairs.loc[mask, "sf_id"],
                fields=[f for f, m in zip(sf_fields, mask, strict=True) if m],
            )
        )
    skipped = decision["skip_reason"].notna()
    plans.append(
        plan_rows(
            count=int(skipped.sum()),
            target=Target.HUBSPOT,
            object=hs_object,
            action=Action.SKIP,
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
    decision = owner_for_new_sf_record(records["owner"], sf_object, owners).reset_index(drop=True)
    bad = decision["quarantine_reason"].notna().to_numpy()
    quarantined = plan_rows(
        count=int(bad.sum()),
        target=Target.SALESFORCE,
        object=sf_object,
        action=Action.QUARANTINE,
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
    options: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """SF records created from HubSpot records (CON-2, ACC-4), owners per OWN-1..OWN-3.

    ``records`` (positional): ``hs_id``, ``owner`` and ``row`` (position in ``source``, the
    staged HubSpot frame). Fields: the SYNC-2 create fields of ``mappings``, then ``defaults``
    (SF field -> HubSpot column) the mappings did not write, ``HubSpot_Id__c`` and the owner
    fields. Returns (quarantine rows of :func:`new_record_owners`, then ``create`` rows with
    rules ``[rule, <owner rule>]``; the created records).
    """
    if records.empty:
        return empty_plan(), records
    records = records.reset_index(drop=True)
    quarantined, ok, decision = new_record_owners(records, owners, sf_object=sf_object, rule=rule)
    chosen = records[ok].reset_index(drop=True)
    rows = source.iloc[chosen["row"].to_numpy()].reset_index(drop=True)
    columns, unmapped = create_field_columns(
        rows,
        mappings,
        Target.SALESFORCE,
        sf_object=sf_object,
        hs_object=hs_object,
        source_ids=chosen["hs_id"],
        options=options,
    )
    _set_defaults(columns, rows, defaults or {})
    columns["HubSpot_Id__c"] = chosen["hs_id"]
    columns.update(new_record_owner_fields(decision, sf_object))
    created = plan_rows(
        count=len(chosen),
        target=Target.SALESFORCE,
        object=sf_object,
        action=Action.CREATE,
        rules=pd.Series([[rule, r] for r in decision["owner_rule"]], dtype=object),
        source_id=chosen["hs_id"],
        fields=field_dicts(len(chosen), columns),
    )
    return concat_plans([quarantined, created, unmapped]), chosen


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
    options: pd.DataFrame | None = None,
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
    columns, unmapped = create_field_columns(
        rows,
        mappings,
        Target.HUBSPOT,
        sf_object=sf_object,
        hs_object=hs_object,
        source_ids=records["sf_id"],
        options=options,
    )
    _set_defaults(columns, rows, defaults or {})
    columns[link_property] = records["sf_id"]
    owner = owners.to_hubspot(records["owner"])
    columns["hubspot_owner_id"] = owner
    created = plan_rows(
        count=len(records),
        target=Target.HUBSPOT,
        object=hs_object,
        action=Action.CREATE,
        rules=_with_rule(base_rules, owner.notna(), "OWN-5"),
        source_id=records["sf_id"],
        fields=field_dicts(len(records), columns),
    )
    return concat_plans([created, unmapped])
