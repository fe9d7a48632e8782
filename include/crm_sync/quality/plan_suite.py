"""The expectation suite of the sync plan: what the loaders may be handed.

The rules are tested, but the plan is what reaches the CRMs, so it is audited on its own terms
before any load (write-audit-publish):

* ``plan_single_create``: no two ``create`` rows for one source record on one target object
  (a second create would make a duplicate record: SYNC-4, DEAL-5);
* ``plan_update_linked``: an ``update`` names its target record, and an update carrying a source
  record updates the record that source is linked to (staged links, or a ``link`` row of this
  plan) — never an unrelated one;
* ``plan_deal_in_synced_pipeline``: every deal row the plan writes is in a synced pipeline
  (DEAL-3): its ``pipeline`` field, else the staged deal's pipeline;
* ``plan_pipeline_name``: a pipeline created or renamed is named ``Salesforce - [record type]``
  after a staged Opportunity record type, or ``Salesforce - Standard pipeline`` (DEAL-2);
* ``plan_enum_mapped``: every enumeration value written has a counterpart on the target: deal
  stage (the stage map), owner (``hubspot_owner_id`` / ``OwnerId``), lifecycle stage, Salesforce
  ``StageName`` and ``RecordTypeId``, and every picklist / enumeration whose options extraction
  staged (``picklist_options``: ``Type``, ``dealtype``, ``Industry``, ...), where any option the
  target CRM knows counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crm_sync.plan import REF_PREFIX
from crm_sync.quality.checks import Check, flag, in_set, passes
from crm_sync.rules.lifecycle import STAGE_ORDER
from crm_sync.rules.normalize import as_bool, as_text, column
from crm_sync.rules.pipelines import LABEL_PREFIX, STANDARD_LABEL

#: Plan object -> the Salesforce object its links are stored under (``sync_link.object``).
_LINK_OBJECT: dict[str, tuple[str, ...]] = {
    "Account": ("Account",),
    "Contact": ("Contact",),
    "Lead": ("Lead",),
    "Opportunity": ("Opportunity",),
    "companies": ("Account",),
    "contacts": ("Contact", "Lead"),
    "deals": ("Opportunity",),
}
_LIFECYCLE = frozenset((*STAGE_ORDER, "other"))


@dataclass(frozen=True)
class PlanReferences:
    """What the plan is checked against: links, pipelines, stages, owners, record types."""

    linked_pairs: frozenset[str] = field(default_factory=frozenset)
    synced_pipelines: frozenset[str] = field(default_factory=frozenset)
    pipeline_labels: frozenset[str] = field(default_factory=frozenset)
    stage_ids: frozenset[str] = field(default_factory=frozenset)
    deal_pipelines: Mapping[str, str] = field(default_factory=dict)
    hs_owner_ids: frozenset[str] = field(default_factory=frozenset)
    sf_user_ids: frozenset[str] = field(default_factory=frozenset)
    sf_stage_names: frozenset[str] = field(default_factory=frozenset)
    record_type_ids: frozenset[str] = field(default_factory=frozenset)
    #: (system, object) -> field -> option values the target CRM knows (``picklist_options``).
    options: Mapping[tuple[str, str], Mapping[str, frozenset[str]]] = field(default_factory=dict)


def _texts(values: pd.Series) -> frozenset[str]:
    return frozenset(as_text(values).dropna().tolist())


def plan_references(frames: Mapping[str, pd.DataFrame], plan: pd.DataFrame) -> PlanReferences:
    """:class:`PlanReferences` from staged frames (``sync_link``, ``rule_pipelines``,
    ``rule_pipeline_stages``, ``hs_pipeline_stage``, ``hs_deal``, ``hs_owner``, ``sf_user``,
    ``sf_opportunity_stage``, ``sf_record_type``) and the plan's own ``link`` rows."""

    def get(name: str) -> pd.DataFrame:
        return frames.get(name, pd.DataFrame())

    links = get("sync_link")
    pairs = set((as_text(column(links, "sf_id")) + "|" + as_text(column(links, "hs_id"))).dropna().tolist())
    link_rows = plan[plan["action"] == "link"]
    for target, source_id, target_id in zip(
        link_rows["target"], link_rows["source_id"], link_rows["target_id"], strict=True
    ):
        sf, hs = (target_id, source_id) if target == "salesforce" else (source_id, target_id)
        pairs.add(f"{sf}|{hs}")
    pipelines = get("rule_pipelines")
    stages = get("rule_pipeline_stages")
    hs_stages = get("hs_pipeline_stage")
    record_types = get("sf_record_type")
    rt_live = ~as_bool(column(record_types, "_deleted")) if not record_types.empty else pd.Series(dtype=bool)
    labels = {STANDARD_LABEL} | {
        LABEL_PREFIX + name for name in as_text(column(record_types, "Name")[rt_live]).dropna().tolist()
    }
    deals = get("hs_deal")
    deal_pipelines = dict(
        zip(as_text(column(deals, "id")).tolist(), as_text(column(deals, "pipeline")).tolist(), strict=True)
    )
    owners = get("hs_owner")
    live_owners = owners[~as_bool(column(owners, "archived"))] if not owners.empty else owners
    users = get("sf_user")
    active_users = (
        users[as_bool(column(users, "IsActive")) & ~as_bool(column(users, "_deleted"))]
        if not users.empty
        else users
    )
    sf_stages = get("sf_opportunity_stage")
    active_stages = sf_stages[as_bool(column(sf_stages, "IsActive"))] if not sf_stages.empty else sf_stages
    return PlanReferences(
        linked_pairs=frozenset(pairs),
        synced_pipelines=_texts(column(pipelines, "hs_pipeline_id")),
        pipeline_labels=frozenset(labels),
        stage_ids=_texts(column(stages, "hs_stage_id")) | _texts(column(hs_stages, "id")),
        deal_pipelines={k: v for k, v in deal_pipelines.items() if k is not None and v is not None},
        hs_owner_ids=_texts(column(live_owners, "id")),
        sf_user_ids=_texts(column(active_users, "Id")),
        sf_stage_names=_texts(column(active_stages, "ApiName")),
        record_type_ids=_texts(
            column(record_types[rt_live] if not record_types.empty else record_types, "Id")
        ),
        options=_options(get("picklist_options")),
    )


def _options(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, frozenset[str]]]:
    """Staged picklist options by (system, object) and field."""
    out: dict[tuple[str, str], dict[str, frozenset[str]]] = {}
    if frame.empty:
        return out
    for (system, obj, name), values in frame.groupby(["system", "object", "field"], sort=False)["value"]:
        out.setdefault((str(system), str(obj)), {})[str(name)] = frozenset(as_text(values).dropna().tolist())
    return out


def plan_suite(refs: PlanReferences) -> tuple[Check, ...]:
    """The checks of the plan suite (see the module docstring)."""
    return (
        Check(
            "plan_single_create",
            "expect_column_values_to_be_unique",
            "create_key",
            "a second create row for the same source record would make a duplicate (SYNC-4)",
        ),
        passes(
            "plan_update_linked",
            "update_linked",
            "update without a target record, or of a record its source is not linked to",
        ),
        in_set(
            "plan_deal_in_synced_pipeline",
            "deal_pipeline",
            refs.synced_pipelines,
            "the deal is not in a synced pipeline (DEAL-3)",
        ),
        in_set(
            "plan_pipeline_name",
            "pipeline_label",
            refs.pipeline_labels,
            "pipeline name does not follow 'Salesforce - [record type]' (DEAL-2)",
        ),
        Check(
            "plan_enum_mapped",
            "expect_column_values_to_be_null",
            "enum_problem",
            "an enumeration value has no counterpart on the target (SYNC-2)",
        ),
    )


def prepare_plan(plan: pd.DataFrame, refs: PlanReferences) -> pd.DataFrame:
    """The frame :func:`plan_suite` reads, one row per plan row (same order as ``plan``)."""
    plan = plan.reset_index(drop=True)
    target = plan["target"].to_numpy(dtype=object)
    obj = plan["object"].to_numpy(dtype=object)
    action = plan["action"].to_numpy(dtype=object)
    source = as_text(plan["source_id"])
    target_id = as_text(plan["target_id"])
    fields = plan["fields"].to_numpy(dtype=object)
    out = pd.DataFrame({"record_id": target_id.fillna(source).fillna("(none)").to_numpy(dtype=object)})
    is_create = (action == "create") & source.notna().to_numpy()
    create_key = pd.Series(target + "|" + obj + "|" + source.fillna("").to_numpy(dtype=object), dtype=object)
    out["create_key"] = create_key.where(is_create)
    out["update_linked"] = _update_linked(
        target=target, obj=obj, action=action, source=source, target_id=target_id, refs=refs
    )
    writing = np.isin(action, ["create", "update"])
    ids = target_id.to_numpy(dtype=object)
    is_deal = (target == "hubspot") & (obj == "deals") & writing
    out["deal_pipeline"] = _at(len(plan), is_deal, lambda i: _deal_pipeline(fields[i], ids[i], refs))
    is_pipeline = (target == "hubspot") & (obj == "pipelines") & writing
    out["pipeline_label"] = _at(len(plan), is_pipeline, lambda i: (fields[i] or {}).get("label"))
    has_fields = np.fromiter((bool(f) for f in fields), dtype=bool, count=len(fields))
    enums = np.isin(action, ["create", "update", "link"]) & has_fields
    out["enum_problem"] = _at(len(plan), enums, lambda i: _enum_problem(target[i], obj[i], fields[i], refs))
    return out


def _at(n: int, where: np.ndarray, value: Callable[[int], Any]) -> np.ndarray:
    """An object column of ``n`` rows: ``value(i)`` at the positions ``where`` is true, else None."""
    out = np.full(n, None, dtype=object)
    for i in np.flatnonzero(where).tolist():
        out[i] = value(i)
    return out


def _update_linked(
    *,
    target: np.ndarray,
    obj: np.ndarray,
    action: np.ndarray,
    source: pd.Series,
    target_id: pd.Series,
    refs: PlanReferences,
) -> pd.Series:
    is_update = action == "update"
    has_target = target_id.notna().to_numpy()
    paired = is_update & has_target & source.notna().to_numpy() & np.isin(obj, list(_LINK_OBJECT))
    to_sf = target == "salesforce"
    sf = np.where(to_sf, target_id.to_numpy(dtype=object), source.to_numpy(dtype=object))
    hs = np.where(to_sf, source.to_numpy(dtype=object), target_id.to_numpy(dtype=object))
    keys = pd.Series(sf, dtype=object).astype("str") + "|" + pd.Series(hs, dtype=object).astype("str")
    known = keys.isin(refs.linked_pairs).to_numpy(dtype=bool, na_value=False)
    is_ref = target_id.str.startswith(REF_PREFIX).to_numpy(dtype=bool, na_value=False)
    ok = is_update & has_target & (~paired | known | is_ref)
    return flag(ok, is_update)


def _deal_pipeline(fields: Any, target_id: Any, refs: PlanReferences) -> str | None:
    pipeline = (fields or {}).get("pipeline")
    if pipeline is None and target_id is not None:
        pipeline = refs.deal_pipelines.get(str(target_id))
    return None if pipeline is None else str(pipeline)


def _enum_problem(target: str, obj: str, fields: Mapping[str, Any], refs: PlanReferences) -> str | None:
    """The first enumeration value in ``fields`` without a counterpart, as ``field=value``."""
    if target == "hubspot":
        checks: tuple[tuple[str, frozenset[str]], ...] = (
            ("dealstage", refs.stage_ids),
            ("hubspot_owner_id", refs.hs_owner_ids),
            ("lifecyclestage", _LIFECYCLE),
        )
    else:
        checks = (
            ("OwnerId", refs.sf_user_ids),
            ("StageName", refs.sf_stage_names),
            ("RecordTypeId", refs.record_type_ids),
        )
    for name, allowed in checks:
        value = fields.get(name)
        if value is None or value == "":
            continue
        text = str(value)
        if text not in allowed and not text.startswith(REF_PREFIX):
            return f"{name}={text}"
    for name, allowed in refs.options.get((target, obj), {}).items():
        value = fields.get(name)
        if value is not None and value != "" and str(value) not in allowed:
            return f"{name}={value}"
    return None
