"""The pure orchestration of the rules: staged state -> the sync plan, stage by stage.

The ``crm_sync`` DAG runs the rules as seven tasks, in this order (DESIGN.md):
``match_contacts``, ``assign_owners``, ``dedup_accounts``, ``name_pipelines``, ``plan_deals``,
``compute_rollups``, ``build_plan``. Each task loads :class:`~crm_sync.rules.inputs.RuleInputs`
from staging, reads the tables earlier stages wrote (:data:`STAGE_NEEDS`), calls
:func:`run_stage` and persists every frame it returns under its table name
(:data:`STAGE_OUTPUTS`). Frames are scalar-typed (text, numbers, booleans, timestamps) except
the ``rule_plan_*`` tables, whose ``fields``/``rules`` columns hold dicts/lists (JSON text once
stored; :func:`decode_plan` reads them back). :func:`build_plan` runs all seven in-process for
tests, benchmarks and ``dry_run`` tooling; both paths give the same plan.

Why stages exchange frames and not objects: a task can be retried alone, and every
intermediate result (owner map, account groups, pipeline map, deal state, rollups) is a table a
person can query when asking why the plan says what it says.

Every stage is pure: no I/O, no clock (``inputs.now`` is the time), deterministic given its
inputs, so the same staging gives the same plan (SYNC-4).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crm_sync.plan import PLAN_COLUMNS, Target, check_plan, concat_plans, created_refs, empty_plan, json_safe
from crm_sync.rules import accounts as account_rules
from crm_sync.rules import contacts as contact_rules
from crm_sync.rules import owners as owner_rules
from crm_sync.rules.deal_contacts import ASSOCIATION_SNAPSHOT_COLUMNS, PLANNED_ASSOCIATION_SNAPSHOT_TABLE
from crm_sync.rules.deals import DEAL_CONTACT_COLUMNS, DEAL_STATE_COLUMNS
from crm_sync.rules.deals import plan_deals as deal_rules
from crm_sync.rules.inputs import RuleInputs
from crm_sync.rules.lifecycle import plan_lifecycle
from crm_sync.rules.limits import quarantine_unwritable
from crm_sync.rules.merge import (
    SNAPSHOT_COLUMNS,
    align_pairs,
    mapped_fields,
    merge_fields,
    modified_at,
    owner_field,
    owner_skips,
    unmapped_value_skips,
    writes_to_plan,
)
from crm_sync.rules.normalize import as_bool, as_text, column
from crm_sync.rules.pipelines import PIPELINE_COLUMNS, STAGE_COLUMNS
from crm_sync.rules.pipelines import name_pipelines as pipeline_rules
from crm_sync.rules.rollups import DIFFERENCE_COLUMNS, plan_rollups
from crm_sync.rules.stages import STAGE_NEEDS, STAGE_OUTPUTS, STAGES
from crm_sync.settings import FieldMapping, SyncConfig

Frames = dict[str, pd.DataFrame]

#: Column contracts of the tables (``rule_plan_*`` tables have :data:`~crm_sync.plan.PLAN_COLUMNS`).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "rule_contact_pairs": contact_rules.CONTACT_PAIR_COLUMNS,
    "rule_contact_qualifies": ("hs_id", "qualifies"),
    "rule_owner_hs": (
        "hs_owner_id",
        "email",
        "archived",
        "sf_user_id",
        "name_matches",
        "eligible_own1",
        "problem",
    ),
    "rule_owner_sf": ("sf_user_id", "email", "active", "hs_owner_id", "problem"),
    "rule_owner_meta": ("integration_user_id", "integration_user_email", "integration_problem"),
    "rule_account_groups": account_rules.DEDUP_GROUP_COLUMNS,
    "rule_possible_duplicates": account_rules.POSSIBLE_DUPLICATE_COLUMNS,
    "rule_account_pairs": account_rules.ACCOUNT_PAIR_COLUMNS,
    "rule_pipelines": PIPELINE_COLUMNS,
    "rule_pipeline_stages": STAGE_COLUMNS,
    "rule_deal_state": DEAL_STATE_COLUMNS,
    "rule_deal_contacts": DEAL_CONTACT_COLUMNS,
    "rule_cleared_links": ("object", "sf_id", "hs_id", "reason"),
    "rule_currency": ("multi_currency", "currencies"),
    "rule_deal_snapshot": SNAPSHOT_COLUMNS,
    "rule_deal_conflicts": ("object", "sf_id", "hs_id", "sf_field", "hs_field", "winner"),
    "rule_rollup_differences": DIFFERENCE_COLUMNS,
    PLANNED_ASSOCIATION_SNAPSHOT_TABLE: ASSOCIATION_SNAPSHOT_COLUMNS,
    "rule_snapshot": SNAPSHOT_COLUMNS,
    "rule_conflicts": ("object", "sf_id", "hs_id", "sf_field", "hs_field", "winner"),
}


# --------------------------------------------------------------------------- table helpers


def decode_plan(frame: pd.DataFrame) -> pd.DataFrame:
    """A plan frame read back from a table: JSON text in ``fields``/``rules`` -> dict/list,
    missing cells -> None. A frame that already holds dicts (in-process) is returned as is."""
    if frame.empty:
        return empty_plan()
    out = frame.reindex(columns=list(PLAN_COLUMNS))
    sample = out["fields"].to_numpy(dtype=object)
    present = sample[pd.notna(sample)]
    if not (len(present) and isinstance(present[0], str)):
        return out
    out = out.astype(object).where(out.notna(), None)
    for name, empty in (("fields", "{}"), ("rules", "[]")):
        out[name] = [json.loads(v if isinstance(v, str) else empty) for v in out[name].to_numpy(dtype=object)]
    return out


def _owner_map(
    tables: Mapping[str, pd.DataFrame], inputs: RuleInputs, config: SyncConfig
) -> owner_rules.OwnerMap:
    """The owner map from ``assign_owners``' tables, or built now when they are absent."""
    if "rule_owner_hs" not in tables or "rule_owner_meta" not in tables:
        return owner_rules.build_owner_map(inputs.sf_user, inputs.hs_owner, config.integration_user_email)
    meta = tables["rule_owner_meta"]
    row: dict[str, Any] = {str(k): v for k, v in meta.iloc[0].items()} if not meta.empty else {}

    def text(v: Any) -> str | None:
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)

    hs = _frame(tables, "rule_owner_hs").copy()
    sf = _frame(tables, "rule_owner_sf").copy()
    for frame, flags in ((hs, ("archived", "name_matches", "eligible_own1")), (sf, ("active",))):
        for flag in flags:
            frame[flag] = as_bool(column(frame, flag))
    for frame, key in ((hs, "hs_owner_id"), (sf, "sf_user_id")):
        frame[key] = as_text(column(frame, key))
    hs_cols = ["email", "archived", "sf_user_id", "name_matches", "eligible_own1", "problem"]
    sf_cols = ["email", "active", "hs_owner_id", "problem"]
    return owner_rules.OwnerMap(
        hs_owners=hs.set_index("hs_owner_id").reindex(columns=hs_cols),
        sf_users=sf.set_index("sf_user_id").reindex(columns=sf_cols),
        integration_user_id=text(row.get("integration_user_id")),
        integration_user_email=text(row.get("integration_user_email")) or config.integration_user_email,
        integration_problem=text(row.get("integration_problem")),
        quarantine=empty_plan(),
    )


def _contacts_result(tables: Mapping[str, pd.DataFrame]) -> contact_rules.ContactsResult:
    pairs = _frame(tables, "rule_contact_pairs")
    q = _frame(tables, "rule_contact_qualifies")
    qualifies = pd.Series(
        as_bool(column(q, "qualifies")).to_numpy(dtype=bool),
        index=pd.Index(as_text(column(q, "hs_id")), name="hs_id"),
    )
    return contact_rules.ContactsResult(plan=empty_plan(), pairs=pairs, qualifies=qualifies)


def contact_links(pairs: pd.DataFrame) -> pd.DataFrame:
    """Contact pairs -> ``hs_id, sf_object, sf_id`` with created refs for records still to be
    created (``@contacts:<sf id>`` / ``@Lead:<hs id>`` / ``@Contact:<hs id>``), for DEAL-6."""
    if pairs.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ("hs_id", "sf_object", "sf_id")})
    hs = as_text(pairs["hs_id"])
    sf = as_text(pairs["sf_id"])
    obj = as_text(pairs["sf_object"])
    hs_key = hs.astype(object).where(hs.notna(), created_refs("contacts", sf))
    sf_key = sf.astype(object).where(sf.notna(), ("@" + obj + ":" + hs).astype(object))
    return pd.DataFrame({"hs_id": hs_key, "sf_object": obj.astype(object), "sf_id": sf_key})


def _frame(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """Table ``name`` as an earlier stage returned it; staging's ``_run_id`` bookkeeping column
    is dropped, and a missing table is an empty frame with the contract's columns."""
    frame = tables.get(name)
    if frame is None:
        cols = TABLE_COLUMNS.get(name, PLAN_COLUMNS if name.startswith("rule_plan_") else ())
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    return frame.drop(columns=["_run_id"], errors="ignore")


# --------------------------------------------------------------------------- the stages


def match_contacts(inputs: RuleInputs, config: SyncConfig, tables: Mapping[str, pd.DataFrame]) -> Frames:
    """CON-1..CON-3 (with OWN-1..4 for what they create or link): contact pairs and their rows."""
    owners = _owner_map(tables, inputs, config)
    result = contact_rules.match_contacts(inputs, config, owners)
    qualifies = pd.DataFrame(
        {
            "hs_id": result.qualifies.index.to_numpy(dtype=object),
            "qualifies": result.qualifies.to_numpy(dtype=bool),
        }
    )
    return {
        "rule_contact_pairs": result.pairs,
        "rule_contact_qualifies": qualifies,
        "rule_plan_contacts": result.plan,
    }


def assign_owners(inputs: RuleInputs, config: SyncConfig, _tables: Mapping[str, pd.DataFrame]) -> Frames:
    """OWN-1..OWN-5: the owner map (HubSpot owners <-> SF users by email) and its quarantine rows."""
    owners = owner_rules.build_owner_map(inputs.sf_user, inputs.hs_owner, config.integration_user_email)
    meta = pd.DataFrame(
        {
            "integration_user_id": [owners.integration_user_id],
            "integration_user_email": [owners.integration_user_email],
            "integration_problem": [owners.integration_problem],
        }
    )
    return {
        "rule_owner_hs": owners.hs_owners.reset_index(),
        "rule_owner_sf": owners.sf_users.reset_index(),
        "rule_owner_meta": meta,
        "rule_plan_owners": owners.quarantine,
    }


def dedup_accounts(inputs: RuleInputs, config: SyncConfig, tables: Mapping[str, pd.DataFrame]) -> Frames:
    """ACC-1..ACC-6: Account dedup groups, Account/company pairs and their rows."""
    owners = _owner_map(tables, inputs, config)
    contacts = _contacts_result(tables)
    # plan_accounts runs ACC-6 dedup on the frames it builds anyway (one pass over the
    # staged Accounts and companies instead of two).
    result = account_rules.plan_accounts(inputs, config, owners, contacts)
    return {
        "rule_account_groups": result.dedup.groups,
        "rule_possible_duplicates": result.dedup.possible,
        "rule_account_pairs": result.pairs,
        "rule_plan_accounts": result.plan,
    }


def name_pipelines(inputs: RuleInputs, config: SyncConfig, _tables: Mapping[str, pd.DataFrame]) -> Frames:
    """DEAL-2: the pipeline and stage maps, and the rows creating/renaming/linking pipelines.

    With ``deals.sync`` off the maps are still computed (rollups read deal outcomes through
    them) but nothing is created or renamed in HubSpot.
    """
    result = pipeline_rules(inputs)
    return {
        "rule_pipelines": result.pipelines,
        "rule_pipeline_stages": result.stages,
        "rule_plan_pipelines": result.plan if config.deals_sync else empty_plan(),
    }


def plan_deals(inputs: RuleInputs, config: SyncConfig, tables: Mapping[str, pd.DataFrame]) -> Frames:
    """DEAL-1..DEAL-9: deal/Opportunity rows, the post-plan deal state and DEAL-4's cleared links."""
    owners = _owner_map(tables, inputs, config)
    result = deal_rules(
        inputs,
        config,
        pipelines=_frame(tables, "rule_pipelines"),
        stages=_stage_frame(_frame(tables, "rule_pipeline_stages")),
        owners=owners,
        contact_links=contact_links(_frame(tables, "rule_contact_pairs")),
        account_links=_frame(tables, "rule_account_pairs"),
    )
    currency = pd.DataFrame(
        {"multi_currency": [result.multi_currency], "currencies": [",".join(result.currencies)]}
    )
    return {
        "rule_deal_state": result.deals,
        "rule_deal_contacts": result.deal_contacts,
        "rule_cleared_links": result.cleared_links,
        "rule_currency": currency,
        "rule_deal_snapshot": result.snapshot,
        "rule_deal_conflicts": result.conflicts,
        PLANNED_ASSOCIATION_SNAPSHOT_TABLE: result.association_snapshot,
        "rule_plan_deals": result.plan,
    }


def _stage_frame(stages: pd.DataFrame) -> pd.DataFrame:
    """The stage map with its flags as booleans (they may come back from a table as 0/1)."""
    if stages.empty:
        return stages
    out = stages.copy()
    for flag in ("is_closed", "is_won"):
        out[flag] = as_bool(column(out, flag))
    return out


def compute_rollups(inputs: RuleInputs, config: SyncConfig, tables: Mapping[str, pd.DataFrame]) -> Frames:
    """ROLL-1..ROLL-7 and ACC-7 from the post-plan deal state: the rollups HubSpot should show
    (expected values and differences, never written: HubSpot calculates them) and the
    lifecycle stage rows (written)."""
    deals = _frame(tables, "rule_deal_state").copy()
    if not deals.empty:
        deals["is_won"] = as_bool(column(deals, "is_won"))
        deals["is_closed"] = as_bool(column(deals, "is_closed"))
    deal_contacts = _frame(tables, "rule_deal_contacts")
    account_links = _frame(tables, "rule_account_pairs")
    rollups = plan_rollups(
        deals,
        deal_contacts,
        account_links,
        hs_contact=inputs.hs_contact,
        hs_company=inputs.hs_company,
        companies_sync=config.companies_sync,
    )
    lifecycle = plan_lifecycle(
        deals,
        deal_contacts,
        hs_contact=inputs.hs_contact,
        hs_company=inputs.hs_company,
        hs_association=inputs.hs_association,
        companies_sync=config.companies_sync,
    )
    return {
        "rule_rollups": rollups.rollups,
        "rule_rollup_differences": rollups.differences,
        "rule_currency_flags": rollups.currency_flags,
        "rule_lifecycle": lifecycle.changes,
        "rule_plan_rollups": lifecycle.plan,
    }


# --------------------------------------------------------------------------- build_plan


@dataclass
class PlanResult:
    """The plan and the side products the quality report and the loaders need.

    ``plan``: :data:`~crm_sync.plan.PLAN_COLUMNS`, ``run_id`` filled. ``snapshot``: SYNC-3
    values to upsert into ``sync_snapshot`` for pairs whose writes succeeded. ``quarantine``:
    the plan's quarantine rows. ``tables``: every stage table by name.
    """

    plan: pd.DataFrame
    account_groups: pd.DataFrame
    possible_duplicates: pd.DataFrame
    owner_map: pd.DataFrame
    pipelines: pd.DataFrame
    pipeline_stages: pd.DataFrame
    rollups: pd.DataFrame
    rollup_differences: pd.DataFrame
    currency_flags: pd.DataFrame
    lifecycle: pd.DataFrame
    cleared_links: pd.DataFrame
    quarantine: pd.DataFrame
    snapshot: pd.DataFrame
    conflicts: pd.DataFrame
    tables: Frames = field(default_factory=dict)


_PAIR_SPECS: tuple[tuple[str, str, str, str], ...] = (
    # (SF object, HS object, mapping group, HS modification field)
    ("Account", "companies", "accounts", "hs_lastmodifieddate"),
    ("Contact", "contacts", "contacts", "lastmodifieddate"),
    ("Lead", "contacts", "leads", "lastmodifieddate"),
)


@dataclass(frozen=True)
class _ObjectPairs:
    """One object pair's linked records for the SYNC-3 merge: the pairs (``sf_id``, ``hs_id``,
    ``how``), both sides' staged frames, the mapping group and HubSpot's modification field."""

    sf_object: str
    hs_object: str
    group: str
    hs_modified: str
    pairs: pd.DataFrame
    sf: pd.DataFrame
    hs: pd.DataFrame


def merge_linked_pairs(
    inputs: RuleInputs, config: SyncConfig, owners: owner_rules.OwnerMap, tables: Mapping[str, pd.DataFrame]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """SYNC-2/SYNC-3 (+OWN-5) for linked Account/company and Contact|Lead/contact pairs.

    Pairs are the account and contact stages' pairs whose both records exist (no created refs).
    Owners merge two-way only for pairs linked before this run (``how == "linked"``): a pair
    found this run gets its owners from OWN-4 on its ``link`` rows. Returns (plan rows,
    snapshot rows, conflicts).
    """
    account_pairs = _frame(tables, "rule_account_pairs")
    contact_pairs = _frame(tables, "rule_contact_pairs")
    contact_kind = as_text(column(contact_pairs, "sf_object"))
    sources = {
        "Account": (account_pairs, inputs.sf_account, inputs.hs_company),
        "Contact": (contact_pairs[contact_kind == "Contact"], inputs.sf_contact, inputs.hs_contact),
        "Lead": (contact_pairs[contact_kind == "Lead"], inputs.sf_lead, inputs.hs_contact),
    }
    results = [
        _merge_object(
            inputs, config, owners, _ObjectPairs(sf_object, hs_object, group, modified, *sources[sf_object])
        )
        for sf_object, hs_object, group, modified in _PAIR_SPECS
        if sf_object != "Account" or config.companies_sync
    ]
    plans = [r[0] for r in results]
    snaps = [r[1] for r in results if not r[1].empty]
    conflicts = [r[2] for r in results if not r[2].empty]
    snapshot = (
        pd.concat(snaps, ignore_index=True)
        if snaps
        else pd.DataFrame({c: pd.Series(dtype=object) for c in SNAPSHOT_COLUMNS})
    )
    conflict = pd.concat(conflicts, ignore_index=True) if conflicts else pd.DataFrame()
    return concat_plans(plans), snapshot, conflict


def _merge_object(
    inputs: RuleInputs, config: SyncConfig, owners: owner_rules.OwnerMap, objects: _ObjectPairs
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """SYNC-3 for one object pair: (plan rows, snapshot rows, conflicts)."""
    sf_object, hs_object, pairs = objects.sf_object, objects.hs_object, objects.pairs
    if pairs.empty:
        return empty_plan(), pd.DataFrame(), pd.DataFrame()
    sf_ids = as_text(column(pairs, "sf_id"))
    hs_ids = as_text(column(pairs, "hs_id"))
    real = (
        sf_ids.notna()
        & hs_ids.notna()
        & ~sf_ids.str.startswith("@").fillna(False).astype(bool)
        & ~hs_ids.str.startswith("@").fillna(False).astype(bool)
    )
    linked = (as_text(column(pairs, "how")) == "linked").fillna(False).astype(bool)
    p = pd.DataFrame({"sf_id": sf_ids[real], "hs_id": hs_ids[real], "linked": linked[real]}).reset_index(
        drop=True
    )
    if p.empty:
        return empty_plan(), pd.DataFrame(), pd.DataFrame()
    mappings = config.mappings(objects.group)
    sides = align_pairs(
        p,
        _columns(objects.sf, ["Id", "OwnerId", "LastModifiedDate", "SystemModstamp"], mappings, "salesforce"),
        _columns(objects.hs, ["id", "hubspot_owner_id", objects.hs_modified], mappings, "hubspot"),
    )
    fields = mapped_fields(
        sides,
        mappings,
        sf_object=sf_object,
        hs_object=hs_object,
        options=inputs.picklist_options,
    )
    owner_pairs = p["linked"].to_numpy(dtype=bool)
    sf_owner = as_text(column(sides.sf, "OwnerId")).where(pd.Series(owner_pairs))
    hs_owner = as_text(column(sides.hs, "hubspot_owner_id")).where(pd.Series(owner_pairs))
    if owner_pairs.any():
        fields.append(owner_field(owners, sf_owner, hs_owner))
    result = merge_fields(
        p[["sf_id", "hs_id"]],
        fields,
        inputs.snapshot,
        sf_object=sf_object,
        sf_modified=modified_at(sides.sf, "LastModifiedDate", "SystemModstamp"),
        hs_modified=modified_at(sides.hs, objects.hs_modified),
        now=inputs.now,
    )
    # Pairs not yet linked before this run leave their owners to OWN-4.
    for writes, name in ((result.hubspot, "hubspot_owner_id"), (result.salesforce, "OwnerId")):
        if name in writes.mask.columns:
            writes.mask[name] = writes.mask[name].to_numpy(dtype=bool) & owner_pairs
    plans = [
        writes_to_plan(
            result.hubspot, target=Target.HUBSPOT, obj=hs_object, target_id=p["hs_id"], source_id=p["sf_id"]
        ),
        writes_to_plan(
            result.salesforce,
            target=Target.SALESFORCE,
            obj=sf_object,
            target_id=p["sf_id"],
            source_id=p["hs_id"],
        ),
        owner_skips(
            result,
            pairs=p,
            sf_owner=sf_owner,
            hs_owner=hs_owner,
            owners=owners,
            sf_object=sf_object,
            hs_object=hs_object,
        ),
        unmapped_value_skips(result, fields, pairs=p, sf_object=sf_object, hs_object=hs_object),
    ]
    snap = result.snapshot
    if not owner_pairs.all() and not snap.empty:
        unlinked = set(p.loc[~p["linked"], "sf_id"])
        snap = snap[~((snap["sf_field"] == "OwnerId") & snap["sf_id"].isin(unlinked))]
    return concat_plans(plans), snap, result.conflicts


def _columns(
    frame: pd.DataFrame, names: list[str], mappings: Sequence[FieldMapping], side: str
) -> pd.DataFrame:
    """The columns of a staged frame the merge reads (``names`` and the mapped fields of
    ``side``): the pairs' rows are copied, and staged frames carry many more columns."""
    mapped = [m.salesforce if side == "salesforce" else m.hubspot for m in mappings]
    return frame[[c for c in dict.fromkeys([*names, *mapped]) if c in frame.columns]]


def coalesce_updates(plan: pd.DataFrame) -> pd.DataFrame:
    """One ``update`` row per target record: rows of several rules updating the same record
    (field merge, rollups, lifecycle) are combined, fields merged and rule ids unioned.

    The combined row takes the place of the first of its rows, so the plan keeps its order.
    Only records with several update rows are touched (one Python pass over those rows).
    """
    if plan.empty:
        return plan
    is_update = (plan["action"] == "update").to_numpy()
    target_id = plan["target_id"].to_numpy(dtype=object)
    candidates = np.flatnonzero(is_update & pd.notna(target_id))
    if len(candidates) < 2:
        return plan
    keys = pd.MultiIndex.from_arrays(
        [
            plan["target"].to_numpy(dtype=object)[candidates],
            plan["object"].to_numpy(dtype=object)[candidates],
            target_id[candidates],
        ]
    )
    dup = np.asarray(keys.duplicated(keep=False), dtype=bool)
    if not dup.any():
        return plan
    rows_ = candidates[dup]
    codes = pd.factorize(keys[dup])[0]
    fields_col = plan["fields"].to_numpy(dtype=object)
    rules_col = plan["rules"].to_numpy(dtype=object)
    source_col = plan["source_id"].to_numpy(dtype=object)
    merged_fields: dict[int, dict[str, Any]] = {}
    merged_rules: dict[int, list[str]] = {}
    first_row: dict[int, int] = {}
    source: dict[int, Any] = {}
    for code, row in zip(codes.tolist(), rows_.tolist(), strict=True):
        if code not in first_row:
            first_row[code] = row
            merged_fields[code] = dict(fields_col[row] or {})
            merged_rules[code] = list(rules_col[row] or [])
            source[code] = source_col[row]
            continue
        merged_fields[code].update(fields_col[row] or {})
        known = merged_rules[code]
        known.extend(r for r in (rules_col[row] or []) if r not in known)
        if source[code] is None:
            source[code] = source_col[row]
    keep = np.ones(len(plan), dtype=bool)
    keep[rows_] = False
    heads = np.fromiter(first_row.values(), dtype=np.int64, count=len(first_row))
    keep[heads] = True
    new_fields = fields_col.copy()
    new_rules = rules_col.copy()
    new_source = source_col.copy()
    for code, row in first_row.items():
        new_fields[row] = merged_fields[code]
        new_rules[row] = merged_rules[code]
        new_source[row] = source[code]
    replaced = {"fields": new_fields, "rules": new_rules, "source_id": new_source}
    return pd.DataFrame(
        {c: (replaced[c] if c in replaced else plan[c].to_numpy(dtype=object))[keep] for c in PLAN_COLUMNS},
        columns=list(PLAN_COLUMNS),
        dtype=object,
    )


def assemble_plan(
    inputs: RuleInputs, config: SyncConfig, tables: Mapping[str, pd.DataFrame], run_id: str
) -> PlanResult:
    """The ``build_plan`` stage: field merges of linked pairs, then every stage's rows -> the plan.

    Update rows for the same record are coalesced; rows writing a value the target cannot hold
    unchanged become quarantine rows (SYNC-5, :mod:`~crm_sync.rules.limits`); the result is
    checked against the plan contract and stamped with ``run_id``. Deterministic row order:
    stage order, then the order each rule produced.
    """
    owners = _owner_map(tables, inputs, config)
    merged, snapshot, conflicts = merge_linked_pairs(inputs, config, owners, tables)
    parts = [decode_plan(_frame(tables, f"rule_plan_{name}")) for name in _PLAN_PARTS]
    parts.insert(_PLAN_PARTS.index("deals"), merged)
    plan = quarantine_unwritable(coalesce_updates(concat_plans(parts)))
    plan = plan.reset_index(drop=True)
    plan["run_id"] = run_id
    for name in ("source_id", "target_id", "reason"):  # None, never NaN, in the contract's JSON
        plan[name] = pd.Series(json_safe(plan[name]), index=plan.index, dtype=object)
    check_plan(plan)
    deal_snapshot = _frame(tables, "rule_deal_snapshot")
    all_snapshot = (
        pd.concat([s for s in (snapshot, deal_snapshot) if not s.empty], ignore_index=True)
        if not (snapshot.empty and deal_snapshot.empty)
        else snapshot
    )
    deal_conflicts = _frame(tables, "rule_deal_conflicts")
    all_conflicts = (
        pd.concat([c for c in (conflicts, deal_conflicts) if not c.empty], ignore_index=True)
        if not (conflicts.empty and deal_conflicts.empty)
        else pd.DataFrame()
    )
    owner_map = _frame(tables, "rule_owner_hs")
    result_tables = dict(tables)
    result_tables.update({"rule_snapshot": all_snapshot, "rule_conflicts": all_conflicts, "rule_plan": plan})
    return PlanResult(
        plan=plan,
        account_groups=_frame(tables, "rule_account_groups"),
        possible_duplicates=_frame(tables, "rule_possible_duplicates"),
        owner_map=owner_map,
        pipelines=_frame(tables, "rule_pipelines"),
        pipeline_stages=_frame(tables, "rule_pipeline_stages"),
        rollups=_frame(tables, "rule_rollups"),
        rollup_differences=_frame(tables, "rule_rollup_differences"),
        currency_flags=_frame(tables, "rule_currency_flags"),
        lifecycle=_frame(tables, "rule_lifecycle"),
        cleared_links=_frame(tables, "rule_cleared_links"),
        quarantine=plan[plan["action"] == "quarantine"].reset_index(drop=True),
        snapshot=all_snapshot,
        conflicts=all_conflicts,
        tables=result_tables,
    )


#: Order in which the stages' rows appear in the plan.
_PLAN_PARTS: list[str] = ["owners", "contacts", "accounts", "pipelines", "deals", "rollups"]

StageFn = Callable[[RuleInputs, SyncConfig, Mapping[str, pd.DataFrame]], Frames]
_STAGE_FUNCTIONS: dict[str, StageFn] = {
    "match_contacts": match_contacts,
    "assign_owners": assign_owners,
    "dedup_accounts": dedup_accounts,
    "name_pipelines": name_pipelines,
    "plan_deals": plan_deals,
    "compute_rollups": compute_rollups,
}


def run_stage(
    name: str, inputs: RuleInputs, config: SyncConfig, tables: Mapping[str, pd.DataFrame], run_id: str = ""
) -> Frames:
    """Run one rule stage by its DAG task name; returns its tables (:data:`STAGE_OUTPUTS`).

    ``tables`` holds what earlier stages returned (read back from staging: any superset of
    :data:`STAGE_NEEDS` of this stage works). ``build_plan`` returns ``rule_snapshot``,
    ``rule_conflicts`` and ``rule_plan`` (the plan itself, to write with ``write_plan``).
    """
    if name == "build_plan":
        result = assemble_plan(inputs, config, tables, run_id)
        return {t: result.tables[t] for t in ("rule_snapshot", "rule_conflicts", "rule_plan")}
    if name not in _STAGE_FUNCTIONS:
        raise KeyError(f"unknown rule stage {name!r}; stages are {', '.join(STAGES)}")
    return _STAGE_FUNCTIONS[name](inputs, config, tables)


def build_plan(inputs: RuleInputs, config: SyncConfig, run_id: str) -> PlanResult:
    """All rule stages in DAG order, in-process: staged state -> :class:`PlanResult`.

    The same function the DAG's tasks compose one stage at a time; used by tests, the
    benchmark and tooling. Pure and deterministic (SYNC-4): the same inputs give the same plan.
    """
    tables: Frames = {}
    for name in STAGES[:-1]:
        tables.update(run_stage(name, inputs, config, tables, run_id))
    return assemble_plan(inputs, config, tables, run_id)


__all__ = [
    "STAGES",
    "STAGE_NEEDS",
    "STAGE_OUTPUTS",
    "TABLE_COLUMNS",
    "PlanResult",
    "assemble_plan",
    "assign_owners",
    "build_plan",
    "coalesce_updates",
    "compute_rollups",
    "contact_links",
    "decode_plan",
    "dedup_accounts",
    "match_contacts",
    "merge_linked_pairs",
    "name_pipelines",
    "plan_deals",
    "run_stage",
]
