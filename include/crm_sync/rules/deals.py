"""DEAL-1..DEAL-9: Salesforce Opportunities <-> HubSpot deals.

:func:`plan_deals` pairs Opportunities with deals and decides, for every record on either side,
what happens to it in this run:

* **Pairs** come from the staging link table, then the Opportunity's ``HubSpot_Id__c``, then the
  deal's ``salesforceopportunityid`` (DEAL-5 writes the deal id into the Opportunity in the same
  request that creates it, so a pair survives a lost link and a re-run never creates twice).
  Deleted records keep their pair, which is how deletes are recognised (DEAL-4).
* **DEAL-4**: an Opportunity deleted in Salesforce deletes (archives) its deal. A deal deleted
  in HubSpot does *not* delete the Opportunity: its link is cleared (``HubSpot_Id__c`` emptied,
  :attr:`DealsResult.cleared_links` for the report and the link table) and it is not re-created.
* **DEAL-3**: a deal outside the synced pipelines (:mod:`~crm_sync.rules.pipelines`) syncs in
  neither direction, and a linked deal moved out of them stops syncing (``skip`` rows).
* **DEAL-1/SYNC-3**: live pairs merge the mapped fields (``field_mappings.opportunities``), the
  stage (``StageName`` <-> ``dealstage`` through the pipeline's stage map), the owner (OWN-5,
  through the owner map) and the currency code, three-way against the snapshot; the pipeline
  follows the record type (DEAL-2).
* **DEAL-9**: an unlinked Opportunity creates a deal when created after
  ``sync_enabled_at.opportunities``, or modified after it, or imported by the backfill.
* **DEAL-5**: every unlinked deal in a synced pipeline creates an Opportunity (no matching, no
  dedup) carrying ``HubSpot_Id__c`` = deal id; the loader upserts on that external id.
* **DEAL-6**: contact roles <-> deal-contact associations, for contacts that sync to an SF
  Contact (not a Lead); a removal on either side removes the other, decided against the
  last-synced snapshot (:mod:`~crm_sync.rules.deal_contacts`). **DEAL-7**: a deal from
  Salesforce is associated with its Account's company when company sync is on and the
  Account is linked.
* **DEAL-8**: amounts are copied, never converted; ``CurrencyIsoCode`` <-> ``deal_currency_code``.
  In a multi-currency org (more than one distinct ``CurrencyIsoCode`` among live Opportunities,
  or ``multi_currency=True``) a record without a currency is quarantined.
* A deal whose stage is not a stage of its pipeline (or has no Salesforce counterpart), and an
  Opportunity whose ``StageName`` is not an active picklist stage, are quarantined.

Association plan rows (target ``hubspot``, object ``associations``, action ``associate``) carry
``fields = {"from_type", "from_id", "to_type", "to_id", "type_id"}`` in the staging table's
naming (HubSpot-defined type ids: deal->contact 3, deal->company 5). Ids of records created in
the same plan are :func:`~crm_sync.rules.merge.created_ref` placeholders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from crm_sync.plan import Action, Target, concat_plans, created_refs, empty_plan, plan_rows
from crm_sync.rules.deal_contacts import (
    ASSOCIATION_SNAPSHOT_COLUMNS,
    DealContactChanges,
    deal_contact_changes,
    next_association_snapshot,
)
from crm_sync.rules.enablement import since_enabled
from crm_sync.rules.inputs import RuleInputs
from crm_sync.rules.merge import (
    SNAPSHOT_COLUMNS,
    MergeField,
    MergeResult,
    PairSides,
    canonical,
    mapped_fields,
    merge_fields,
    modified_at,
    owner_field,
    owner_skips,
    same,
    unmapped_value_skips,
    writes_to_plan,
)
from crm_sync.rules.new_records import create_field_columns, new_record_owners
from crm_sync.rules.normalize import as_text, as_timestamp, column, salesforce_ids18, upper_codes
from crm_sync.rules.owners import OwnerMap, unmapped_owner_skips
from crm_sync.rules.pipelines import PIPELINE_LINK_OBJECT, pipeline_keys, stage_lookup
from crm_sync.rules.screening import Side, screen
from crm_sync.rules.staged import account_companies, alive, associations, link_pairs
from crm_sync.settings import SyncConfig

ASSOC_DEAL_TO_CONTACT = 3
ASSOC_DEAL_TO_COMPANY = 5

#: Every contact that syncs after this plan, as DEAL-6 needs it (ids or created refs).
CONTACT_LINK_COLUMNS: tuple[str, ...] = ("hs_id", "sf_object", "sf_id")
#: Every Account that syncs after this plan and its company (ids or created refs), for DEAL-7.
ACCOUNT_LINK_COLUMNS: tuple[str, ...] = ("sf_id", "hs_id")
#: Post-plan state of every live HubSpot deal (and every deal this plan creates): what the
#: rollups (ROLL-1..6) and lifecycle rules (ROLL-7) read. Persisted as ``rule_deal_state``.
DEAL_STATE_COLUMNS: tuple[str, ...] = (
    "deal_key",  # HubSpot deal id, or "@deals:<Opportunity Id>" when created by this plan
    "sf_id",  # the paired Opportunity (id or "@Opportunity:<deal id>"), else None
    "account_id",  # the Opportunity's AccountId (SF id or ref), else None
    "amount",  # float
    "currency",  # ISO code or None
    "created_at",  # datetime64 UTC
    "close_date",  # datetime64 UTC
    "is_closed",  # bool
    "is_won",  # bool
)
#: Post-plan deal <-> contact associations (``rule_deal_contacts``).
DEAL_CONTACT_COLUMNS: tuple[str, ...] = ("deal_key", "contact_key")
#: DEAL-4 links cleared because the HubSpot deal was deleted (``rule_cleared_links``).
CLEARED_LINK_COLUMNS: tuple[str, ...] = ("object", "sf_id", "hs_id", "reason")


@dataclass
class DealsResult:
    """What :func:`plan_deals` decided (see the module docstring)."""

    plan: pd.DataFrame
    deals: pd.DataFrame
    deal_contacts: pd.DataFrame
    cleared_links: pd.DataFrame
    snapshot: pd.DataFrame
    conflicts: pd.DataFrame
    multi_currency: bool
    currencies: tuple[str, ...]
    association_snapshot: pd.DataFrame = field(default_factory=lambda: _empty(ASSOCIATION_SNAPSHOT_COLUMNS))


# --------------------------------------------------------------------------- staged frames


#: Staged columns the deal rules read (besides the mapped fields).
_OPP_COLUMNS: tuple[str, ...] = (
    "Id", "IsDeleted", "_deleted", "HubSpot_Id__c", "StageName", "CurrencyIsoCode", "AccountId", "OwnerId",
    "CreatedDate", "LastModifiedDate", "SystemModstamp", "RecordTypeId", "Amount", "CloseDate",
)  # fmt: skip
_DEAL_COLUMNS: tuple[str, ...] = (
    "id", "_deleted", "archived", "salesforceopportunityid", "pipeline", "dealstage", "deal_currency_code",
    "hubspot_owner_id", "hs_lastmodifieddate", "lastmodifieddate", "amount", "createdate", "closedate",
)  # fmt: skip


def _unique(frame: pd.DataFrame, key: str, columns: Sequence[str]) -> pd.DataFrame:
    """The staged rows (one per ``key``, the last wins) with only ``columns`` (those present).

    Selecting the columns first keeps the copies the rules make small at a million rows.
    """
    if frame.empty or key not in frame.columns:
        return pd.DataFrame({key: pd.Series(dtype="str")})
    wanted = list(dict.fromkeys(c for c in columns if c in frame.columns))
    slim = frame[wanted]
    ids = as_text(slim[key])
    keep = (ids.notna() & ~ids.duplicated(keep="last")).to_numpy()
    return (slim if keep.all() else slim[keep]).reset_index(drop=True)


def _opp_frame(opp: pd.DataFrame, pipelines: pd.DataFrame, stages: pd.DataFrame) -> pd.DataFrame:
    """Opportunities reduced to what the deal rules decide on (positionally aligned with ``opp``)."""
    frame = pd.DataFrame(
        {
            "sf_id": as_text(column(opp, "Id")),
            "alive": alive(opp),
            "hs_ref": as_text(column(opp, "HubSpot_Id__c")),
            "stage": as_text(column(opp, "StageName")),
            "currency": upper_codes(as_text(column(opp, "CurrencyIsoCode"))),
            "account_id": as_text(column(opp, "AccountId")),
            "owner": as_text(column(opp, "OwnerId")),
            "created": as_timestamp(column(opp, "CreatedDate")),
            "modified": modified_at(opp, "LastModifiedDate", "SystemModstamp"),
            "pipeline_key": pipeline_keys(opp, pipelines),
        }
    )
    pid = (
        pipelines.set_index("pipeline_key")["hs_pipeline_id"]
        if not pipelines.empty
        else pd.Series(dtype=object)
    )
    frame["hs_pipeline_id"] = frame["pipeline_key"].map(pid)
    if stages.empty:
        for name in ("hs_stage_id", "is_closed", "is_won"):
            frame[name] = None
        frame["stage_ok"] = False
        return frame
    smap = stages.set_index(["pipeline_key", "stage_api_name"])
    keys = pd.MultiIndex.from_arrays([frame["pipeline_key"].astype(object), frame["stage"].astype(object)])
    found = smap.reindex(keys)
    frame["hs_stage_id"] = found["hs_stage_id"].to_numpy(dtype=object)
    frame["is_closed"] = found["is_closed"].to_numpy(dtype=object)
    frame["is_won"] = found["is_won"].to_numpy(dtype=object)
    frame["stage_ok"] = frame["hs_stage_id"].notna()
    return frame


def _deal_frame(
    deal: pd.DataFrame, lookup: pd.DataFrame, synced_ids: set[str], retired: set[str]
) -> pd.DataFrame:
    """Deals reduced to what the deal rules decide on (positionally aligned with ``deal``).

    ``follows``: the deal is in a synced pipeline, or in a crm-sync pipeline of a record type
    no longer synced (``retired``), where a linked deal follows its record type (DEAL-2).
    """
    frame = pd.DataFrame(
        {
            "hs_id": as_text(column(deal, "id")),
            "alive": alive(deal),
            "sf_ref": salesforce_ids18(column(deal, "salesforceopportunityid")),
            "pipeline": as_text(column(deal, "pipeline")),
            "dealstage": as_text(column(deal, "dealstage")),
            "currency": upper_codes(as_text(column(deal, "deal_currency_code"))),
            "owner": as_text(column(deal, "hubspot_owner_id")),
            "modified": modified_at(deal, "hs_lastmodifieddate", "lastmodifieddate"),
        }
    )
    frame["synced"] = frame["pipeline"].isin(synced_ids)
    frame["follows"] = frame["synced"] | frame["pipeline"].isin(retired)
    table = lookup.drop_duplicates(["hs_pipeline_id", "hs_stage_id"]).set_index(
        ["hs_pipeline_id", "hs_stage_id"]
    )
    keys = pd.MultiIndex.from_arrays([frame["pipeline"].astype(object), frame["dealstage"].astype(object)])
    found = table.reindex(keys)
    frame["stage_api"] = found["stage_api_name"].to_numpy(dtype=object)
    frame["is_closed"] = found["is_closed"].fillna(False).to_numpy(dtype=bool)
    frame["is_won"] = found["is_won"].fillna(False).to_numpy(dtype=bool)
    frame["stage_ok"] = frame["stage_api"].notna()
    return frame


def _positions(ids: pd.Series, wanted: pd.Series) -> np.ndarray:
    index = pd.Index(ids.to_numpy(dtype=object))
    return np.asarray(index.get_indexer(wanted.to_numpy(dtype=object)), dtype=np.int64)


def _pairs(inputs: RuleInputs, o: pd.DataFrame, d: pd.DataFrame) -> pd.DataFrame:
    """Opportunity <-> deal pairs, one-to-one, with row positions ``o`` and ``d`` (DEAL-4/5)."""
    links = link_pairs(inputs.links, ["Opportunity"])[["sf_id", "hs_id"]]
    by_opp = o.loc[o["hs_ref"].notna(), ["sf_id", "hs_ref"]].rename(columns={"hs_ref": "hs_id"})
    by_deal = d.loc[d["sf_ref"].notna(), ["sf_ref", "hs_id"]].rename(columns={"sf_ref": "sf_id"})
    cand = pd.concat(
        [links.assign(in_links=True), by_opp.assign(in_links=False), by_deal.assign(in_links=False)],
        ignore_index=True,
    )
    cand["o"] = _positions(o["sf_id"], cand["sf_id"])
    cand["d"] = _positions(d["hs_id"], cand["hs_id"])
    cand = cand[(cand["o"] >= 0) & (cand["d"] >= 0)]
    in_links = cand.groupby(["sf_id", "hs_id"], sort=False)["in_links"].transform("max")
    cand = cand.assign(in_links=in_links.astype(bool))
    cand = cand.drop_duplicates("sf_id").drop_duplicates("hs_id")
    return cand.reset_index(drop=True)


# --------------------------------------------------------------------------- field helpers


def _assoc_rows(
    *,
    from_ids: pd.Series,
    to_type: str,
    to_ids: pd.Series,
    type_id: int,
    source_id: pd.Series,
    rule: str,
    action: Action = Action.ASSOCIATE,
) -> pd.DataFrame:
    """Association rows (``associate`` adds, ``delete`` removes) in the staging table's naming."""
    n = len(from_ids)
    values = pd.DataFrame(
        {
            "from_type": ["deals"] * n,
            "from_id": from_ids.to_numpy(dtype=object),
            "to_type": [to_type] * n,
            "to_id": to_ids.to_numpy(dtype=object),
            "type_id": [type_id] * n,
        }
    )
    return plan_rows(
        target=Target.HUBSPOT,
        object="associations",
        action=action,
        values=values,
        source_id=source_id,
        rules=[rule],
        keep_empty=True,
    )


#: Reasons of the skip/quarantine rows, shared by linked pairs and unpaired records.
_SYNC_STOPPED = "; its sync stopped when it left the synced pipelines"
_DELETE_NOT_SYNCED = "; its Opportunity was deleted in Salesforce, but the deal no longer syncs: not archived"
_NO_PAIR_CURRENCY = (
    "DEAL-8: multi-currency org and neither side has a currency code; amounts are never synced without one"
)
_NO_OPP_CURRENCY = "DEAL-8: multi-currency org and the Opportunity has no CurrencyIsoCode"
_NO_DEAL_CURRENCY = "DEAL-8: multi-currency org and the deal has no deal_currency_code"


def _deal9_reason(enabled_at: pd.Timestamp) -> str:
    """DEAL-9: why an Opportunity older than sync enabled at does not create a deal."""
    return (
        f"DEAL-9: created before opportunities sync was enabled ({enabled_at.isoformat()}) "
        "and not modified since; import it with crm_backfill_opportunities"
    )


def _not_synced_reason(d: pd.DataFrame) -> pd.Series:
    """DEAL-3: why each deal of ``d`` (outside the synced pipelines) does not sync."""
    return (
        "DEAL-3: deal is in pipeline "
        + d["pipeline"].fillna("(none)").astype("str")
        + ", which is not a synced pipeline"
    )


def _picklist_reason(o: pd.DataFrame) -> pd.Series:
    """DEAL-2: why each Opportunity of ``o`` (stage not in the picklist) is quarantined."""
    return (
        "DEAL-2: StageName "
        + o["stage"].fillna("(none)").astype("str")
        + " is not an active stage of the Salesforce stage picklist"
    )


def _stage_reason(d: pd.DataFrame) -> pd.Series:
    """DEAL-2: why each deal of ``d`` (stage unknown to its pipeline) is quarantined."""
    return (
        "DEAL-2: dealstage "
        + d["dealstage"].fillna("(none)").astype("str")
        + " is not a stage of pipeline "
        + d["pipeline"].fillna("(none)").astype("str")
        + " with a Salesforce counterpart"
    )


# --------------------------------------------------------------------------- the rule


@dataclass(frozen=True)
class _Staged:
    """The staged deals world of one plan: decision frames (``o``, ``d``), the raw staged rows
    they were read from (positionally aligned), the Opportunity <-> deal ``pairs`` and whether
    the org is multi-currency (DEAL-8)."""

    o: pd.DataFrame
    d: pd.DataFrame
    opp_raw: pd.DataFrame
    deal_raw: pd.DataFrame
    pairs: pd.DataFrame
    multi: bool

    @property
    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        return self.o, self.d, self.opp_raw, self.deal_raw


def _staged_world(
    inputs: RuleInputs,
    config: SyncConfig,
    pipelines: pd.DataFrame,
    stages: pd.DataFrame,
    multi_currency: bool | None,
) -> tuple[_Staged, pd.DataFrame, tuple[str, ...]]:
    """The decision frames, their pairs, the stage lookup and the org's currencies (DEAL-8)."""
    mappings = config.mappings("opportunities")
    opp_raw = _unique(inputs.sf_opportunity, "Id", _OPP_COLUMNS + tuple(m.salesforce for m in mappings))
    deal_raw = _unique(inputs.hs_deal, "id", _DEAL_COLUMNS + tuple(m.hubspot for m in mappings))
    synced_ids = set(as_text(pipelines["hs_pipeline_id"]).dropna()) if not pipelines.empty else set()
    retired = set(link_pairs(inputs.links, [PIPELINE_LINK_OBJECT])["hs_id"]) - synced_ids
    lookup = stage_lookup(stages, inputs.hs_pipeline_stage, retired)
    o = _opp_frame(opp_raw, pipelines, stages)
    d = _deal_frame(deal_raw, lookup, synced_ids, retired)
    currencies = tuple(sorted(str(c) for c in o.loc[o["alive"], "currency"].dropna().unique()))
    multi = len(currencies) > 1 if multi_currency is None else multi_currency
    return _Staged(o, d, opp_raw, deal_raw, _pairs(inputs, o, d), multi), lookup, currencies


def _not_synced(
    inputs: RuleInputs,
    world: _Staged,
    lookup: pd.DataFrame,
    currencies: tuple[str, ...],
    deal_contacts_now: pd.DataFrame,
) -> DealsResult:
    """``deals.sync`` off: nothing planned, but the deal state still feeds the rollups."""
    empty_pairs = pd.DataFrame({"sf_key": [], "hs_key": [], "account_id": [], "origin": []})
    state = _deal_state(world.frames, world.pairs, None, sync_pairs=empty_pairs, deleted=set(), lookup=lookup)
    return DealsResult(
        plan=empty_plan(),
        deals=state,
        deal_contacts=_existing_deal_contacts(inputs, state, deal_contacts_now),
        cleared_links=_empty(CLEARED_LINK_COLUMNS),
        snapshot=_empty(SNAPSHOT_COLUMNS),
        conflicts=pd.DataFrame(),
        multi_currency=world.multi,
        currencies=currencies,
        association_snapshot=next_association_snapshot(inputs.association_snapshot),
    )


def plan_deals(
    inputs: RuleInputs,
    config: SyncConfig,
    *,
    pipelines: pd.DataFrame,
    stages: pd.DataFrame,
    owners: OwnerMap,
    contact_links: pd.DataFrame,
    account_links: pd.DataFrame,
    multi_currency: bool | None = None,
) -> DealsResult:
    """DEAL-1..DEAL-9 (with SYNC-2/3 for linked pairs and OWN-1..3/OWN-5 for owners).

    ``pipelines``/``stages``: :func:`~crm_sync.rules.pipelines.name_pipelines` output;
    ``owners``: :func:`~crm_sync.rules.owners.build_owner_map`; ``contact_links``
    (:data:`CONTACT_LINK_COLUMNS`) and ``account_links`` (:data:`ACCOUNT_LINK_COLUMNS`): what
    syncs after this plan, from the contact and account rules. ``multi_currency`` overrides the
    detection (DEAL-8). With ``deals.sync`` off nothing is planned, but the deal state (for
    the rollups) is still reported.
    """
    world, lookup, currencies = _staged_world(inputs, config, pipelines, stages, multi_currency)
    multi = world.multi
    deal_contacts_now = associations(inputs.hs_association, "deals", "contacts")
    deal_companies = associations(inputs.hs_association, "deals", "companies")
    if not config.deals_sync:
        return _not_synced(inputs, world, lookup, currencies, deal_contacts_now)

    plans: list[pd.DataFrame] = []
    po = world.o.iloc[world.pairs["o"].to_numpy()].reset_index(drop=True)
    pd_ = world.d.iloc[world.pairs["d"].to_numpy()].reset_index(drop=True)
    deleted_deals, cleared = _deletes(plans, po, pd_, world.pairs)
    mo, md = _screen_live_pairs(plans, po, pd_, multi)
    del po, pd_  # a copy of every pair's rows: free it before the merge copies the live ones
    merge = _merge_pairs(inputs, config, owners, stages, staged=world.frames, mo=mo, md=md)
    plans.extend(merge.plans)
    sync_pairs = pd.concat(
        [
            _sync_pairs(mo["sf_id"], md["hs_id"], mo["account_id"], "sf"),
            _opportunity_creates(plans, inputs, config, owners, world),
            _deal_creates(
                plans,
                inputs,
                config,
                owners,
                world,
                pipelines=pipelines,
                company_links=(deal_companies, account_links),
            ),
        ],
        ignore_index=True,
    )

    # ---- DEAL-6 / DEAL-7 associations -------------------------------------------------------------
    assoc_plans, contact_changes = _associations(
        inputs,
        config,
        sync_pairs,
        links=(contact_links, account_links),
        existing=(deal_contacts_now, deal_companies),
    )
    plans.extend(assoc_plans)
    state = _deal_state(
        world.frames, world.pairs, merge, sync_pairs=sync_pairs, deleted=deleted_deals, lookup=lookup
    )
    return DealsResult(
        plan=concat_plans(plans),
        deals=state,
        deal_contacts=_post_plan_deal_contacts(inputs, state, deal_contacts_now, contact_changes),
        cleared_links=cleared,
        snapshot=merge.snapshot,
        conflicts=merge.conflicts,
        multi_currency=multi,
        currencies=currencies,
        association_snapshot=contact_changes.snapshot,
    )


def _deletes(
    plans: list[pd.DataFrame], po: pd.DataFrame, pd_: pd.DataFrame, pairs: pd.DataFrame
) -> tuple[set[str], pd.DataFrame]:
    """DEAL-4 deletes on either side, after DEAL-3, appended to ``plans``; ``po``/``pd_``: the
    paired Opportunity and deal rows. Returns (the deals archived, DEAL-4's cleared links)."""
    deleted_deals: set[str] = set()
    sf_deleted = (~po["alive"] & pd_["alive"]).to_numpy()
    moved_out = sf_deleted & ~pd_["follows"].to_numpy(dtype=bool)
    if moved_out.any():
        # DEAL-3 first: a deal moved out of the synced pipelines no longer syncs, deletes included.
        plans.append(
            Side(Target.HUBSPOT, "deals", po.loc[moved_out, "sf_id"], pd_.loc[moved_out, "hs_id"]).rows(
                Action.SKIP,
                ["DEAL-3", "DEAL-4"],
                _not_synced_reason(pd_[moved_out]) + _DELETE_NOT_SYNCED,
            )
        )
    sf_gone = sf_deleted & ~moved_out
    if sf_gone.any():
        plans.append(
            plan_rows(
                target=Target.HUBSPOT,
                object="deals",
                action=Action.DELETE,
                count=int(sf_gone.sum()),
                source_id=po.loc[sf_gone, "sf_id"],
                target_id=pd_.loc[sf_gone, "hs_id"],
                rules=["DEAL-4"],
            )
        )
        deleted_deals = set(pd_.loc[sf_gone, "hs_id"].tolist())
    hs_gone = (po["alive"] & ~pd_["alive"]).to_numpy()
    if not hs_gone.any():
        return deleted_deals, _empty(CLEARED_LINK_COLUMNS)
    return deleted_deals, _cleared_links(plans, po[hs_gone], pd_[hs_gone], pairs.loc[hs_gone, "in_links"])


def _cleared_links(
    plans: list[pd.DataFrame], gone_o: pd.DataFrame, gone_d: pd.DataFrame, in_links: pd.Series
) -> pd.DataFrame:
    """DEAL-4: deals deleted in HubSpot keep their Opportunity, whose link is cleared and
    reported (:data:`CLEARED_LINK_COLUMNS`); they are never re-created."""
    gone_o = gone_o.reset_index(drop=True)
    gone_d = gone_d.reset_index(drop=True)
    still_set = (gone_o["hs_ref"] == gone_d["hs_id"]).to_numpy(dtype=bool, na_value=False)
    if still_set.any():
        plans.append(
            plan_rows(
                target=Target.SALESFORCE,
                object="Opportunity",
                action=Action.UPDATE,
                values=pd.DataFrame({"HubSpot_Id__c": [None] * int(still_set.sum())}),
                mask=pd.DataFrame({"HubSpot_Id__c": [True] * int(still_set.sum())}),
                source_id=gone_d.loc[still_set, "hs_id"],
                target_id=gone_o.loc[still_set, "sf_id"],
                rules=["DEAL-4"],
            )
        )
    was_linked = still_set | in_links.to_numpy(dtype=bool)
    reason = (
        "DEAL-4: HubSpot deal "
        + gone_d["hs_id"]
        + " was deleted; Opportunity "
        + gone_o["sf_id"]
        + " is kept, its link cleared, and it is not re-created in HubSpot"
    )
    plans.append(
        Side(Target.HUBSPOT, "deals", gone_o["sf_id"], gone_d["hs_id"]).rows(Action.SKIP, ["DEAL-4"], reason)
    )
    return pd.DataFrame(
        {
            "object": "Opportunity",
            "sf_id": gone_o.loc[was_linked, "sf_id"].to_numpy(dtype=object),
            "hs_id": gone_d.loc[was_linked, "hs_id"].to_numpy(dtype=object),
            "reason": reason[was_linked].to_numpy(dtype=object),
        },
        columns=list(CLEARED_LINK_COLUMNS),
    )


def _screen_live_pairs(
    plans: list[pd.DataFrame], po: pd.DataFrame, pd_: pd.DataFrame, multi: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The live pairs that merge: a pair that fails a check is reported under the first one
    (DEAL-3, DEAL-2, DEAL-8). DEAL-2 decides moves first: a deal left in the pipeline of a
    retired record type follows its Opportunity's record type instead of counting as outside."""
    live = (po["alive"] & pd_["alive"]).to_numpy()
    lo = po[live].reset_index(drop=True)
    ld = pd_[live].reset_index(drop=True)
    to_hs = Side(Target.HUBSPOT, "deals", lo["sf_id"], ld["hs_id"])
    to_sf = Side(Target.SALESFORCE, "Opportunity", ld["hs_id"], lo["sf_id"])
    ok = screen(
        plans,
        to_hs.skip(
            ["DEAL-3"],
            ~ld["follows"].to_numpy(dtype=bool),
            lambda hit: _not_synced_reason(ld[hit]) + _SYNC_STOPPED,
        ),
        to_sf.quarantine(
            ["DEAL-2"], ~ld["stage_ok"].to_numpy(dtype=bool), lambda hit: _stage_reason(ld[hit])
        ),
        to_hs.quarantine(
            ["DEAL-2"], ~lo["stage_ok"].to_numpy(dtype=bool), lambda hit: _picklist_reason(lo[hit])
        ),
        to_hs.quarantine(
            ["DEAL-8"], lo["currency"].isna() & ld["currency"].isna() & multi, _NO_PAIR_CURRENCY
        ),
    )
    return lo[ok].reset_index(drop=True), ld[ok].reset_index(drop=True)


def _opportunity_creates(
    plans: list[pd.DataFrame], inputs: RuleInputs, config: SyncConfig, owners: OwnerMap, world: _Staged
) -> pd.DataFrame:
    """Unpaired Opportunities: SF -> HS creates (DEAL-9); returns their sync pairs."""
    o, opp_raw = world.o, world.opp_raw
    enabled_at = pd.Timestamp(config.enabled_at("opportunities"))
    new_o_mask = (o["alive"] & ~o["sf_id"].isin(world.pairs["sf_id"])).to_numpy()
    new_o = o[new_o_mask].reset_index(drop=True)
    new_o_raw = opp_raw[new_o_mask].reset_index(drop=True)
    imported = as_text(column(inputs.imported, "sf_id"))[
        as_text(column(inputs.imported, "object")) == "Opportunity"
    ]
    is_new = since_enabled(new_o["created"], enabled_at)
    eligible = (
        is_new
        | since_enabled(new_o["modified"], enabled_at)
        | new_o["sf_id"].isin(imported.dropna()).to_numpy()
    )
    to_new_deal = Side(Target.HUBSPOT, "deals", new_o["sf_id"])
    create = screen(
        plans,
        to_new_deal.skip(["DEAL-9"], ~eligible, _deal9_reason(enabled_at)),
        to_new_deal.quarantine(
            ["DEAL-2"], ~new_o["stage_ok"].to_numpy(dtype=bool), lambda hit: _picklist_reason(new_o[hit])
        ),
        to_new_deal.quarantine(["DEAL-8"], new_o["currency"].isna() & world.multi, _NO_OPP_CURRENCY),
    )
    co = new_o[create].reset_index(drop=True)
    co_raw = new_o_raw[create].reset_index(drop=True)
    plans.extend(
        _hubspot_creates(config, owners, co, co_raw, before=~is_new[create], options=inputs.picklist_options)
    )
    return _sync_pairs(co["sf_id"], created_refs("deals", co["sf_id"]), co["account_id"], "sf")


def _deal_creates(
    plans: list[pd.DataFrame],
    inputs: RuleInputs,
    config: SyncConfig,
    owners: OwnerMap,
    world: _Staged,
    *,
    pipelines: pd.DataFrame,
    company_links: tuple[pd.DataFrame, pd.DataFrame],
) -> pd.DataFrame:
    """Unpaired deals: HS -> SF creates (DEAL-3, DEAL-5); returns their sync pairs.
    ``company_links``: (deal -> company associations, Account/company pairs)."""
    d, deal_raw = world.d, world.deal_raw
    new_d_mask = (d["alive"] & ~d["hs_id"].isin(world.pairs["hs_id"])).to_numpy()
    new_d = d[new_d_mask].reset_index(drop=True)
    new_d_raw = deal_raw[new_d_mask].reset_index(drop=True)
    to_new_opp = Side(Target.SALESFORCE, "Opportunity", new_d["hs_id"])
    make = screen(
        plans,
        to_new_opp.skip(
            ["DEAL-3"], ~new_d["synced"].to_numpy(dtype=bool), lambda hit: _not_synced_reason(new_d[hit])
        ),
        to_new_opp.quarantine(
            ["DEAL-2"], ~new_d["stage_ok"].to_numpy(dtype=bool), lambda hit: _stage_reason(new_d[hit])
        ),
        to_new_opp.quarantine(["DEAL-8"], new_d["currency"].isna() & world.multi, _NO_DEAL_CURRENCY),
    )
    cd = new_d[make].reset_index(drop=True)
    sf_created, created_ok = _salesforce_creates(
        config,
        owners,
        pipelines,
        cd=cd,
        cd_raw=new_d_raw[make].reset_index(drop=True),
        company_account=_company_accounts(*company_links, cd["hs_id"]),
        options=inputs.picklist_options,
    )
    plans.extend(sf_created)
    return _sync_pairs(
        created_refs("Opportunity", created_ok["hs_id"]), created_ok["hs_id"], created_ok["account_id"], "hs"
    )


def _post_plan_deal_contacts(
    inputs: RuleInputs, state: pd.DataFrame, now: pd.DataFrame, changes: DealContactChanges
) -> pd.DataFrame:
    """Deal -> contact associations after this plan (ROLL-1..7 read them): the live ones the
    plan keeps, plus the ones it adds (DEAL-6)."""
    removed = changes.delete_associations.rename(columns={"hs_key": "from_id", "contact_hs": "to_id"})
    still = _anti_join(now, ["from_id", "to_id"], removed, ["from_id", "to_id"])
    added = changes.create_associations
    new_contact_assoc = pd.DataFrame(
        {"deal_key": added["hs_key"].astype(object), "contact_key": added["contact_hs"].astype(object)}
    )
    return pd.concat(
        [_existing_deal_contacts(inputs, state, still), new_contact_assoc], ignore_index=True
    ).drop_duplicates(ignore_index=True)


def _sync_pairs(sf_key: pd.Series, hs_key: pd.Series, account_id: pd.Series, origin: str) -> pd.DataFrame:
    """Opportunity/deal pairs that sync after this plan (ids or created refs), with the
    Opportunity's Account and the side the pair came from (DEAL-6/DEAL-7 and the deal state)."""
    return pd.DataFrame({"sf_key": sf_key, "hs_key": hs_key, "account_id": account_id, "origin": origin})


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


# --------------------------------------------------------------------------- linked pairs


@dataclass
class _Merged:
    plans: list[pd.DataFrame]
    snapshot: pd.DataFrame
    conflicts: pd.DataFrame
    hs_values: pd.DataFrame  # post-merge HubSpot writes per live pair (positional), NaN = none
    hs_ids: pd.Series


def _keep_earliest_create_date(f: MergeField) -> MergeField:
    """DEAL-1: the create date flows SF -> HS, but never makes a deal younger.

    A deal created in HubSpot creates its Opportunity later (DEAL-5), so Salesforce's
    ``CreatedDate`` is the sync time, not when the deal was made; copying it back would move the
    deal's create date (and ROLL-2's first deal date) forward on the run after. So the HubSpot
    create date is written only where it is blank or later than Salesforce's.
    """
    if f.kind not in ("datetime", "date") or f.sf_field != "CreatedDate":
        return f
    hs_later = (f.hs_key > f.sf_key).to_numpy(dtype=bool, na_value=False) | f.hs_key.isna().to_numpy()
    return replace(f, hs_writable=pd.Series(hs_later, index=f.hs_key.index))


class _StageIds:
    """DEAL-2: the HubSpot stage id of a Salesforce stage in each pair's pipeline."""

    def __init__(self, stages: pd.DataFrame, pipeline_keys: pd.Series) -> None:
        self.ids = (
            stages.set_index(["pipeline_key", "stage_api_name"])["hs_stage_id"] if not stages.empty else None
        )
        self.pipeline_keys = pipeline_keys

    def __call__(self, sub: pd.Index, api: pd.Series) -> pd.Series:
        if self.ids is None:
            return pd.Series([None] * len(sub), index=sub, dtype=object)
        keys = pd.MultiIndex.from_arrays(
            [self.pipeline_keys.loc[sub].astype(object), api.loc[sub].astype(object)]
        )
        return pd.Series(self.ids.reindex(keys).to_numpy(dtype=object), index=sub, dtype=object)


def _deal_fields(
    inputs: RuleInputs,
    config: SyncConfig,
    owners: OwnerMap,
    sides: PairSides,
    *,
    mo: pd.DataFrame,
    md: pd.DataFrame,
    stage_ids: _StageIds,
) -> list[MergeField]:
    """The merged fields of a deal pair: DEAL-1's mapped fields, the stage through the pipeline's
    stage map (DEAL-2), the owner (OWN-5) and the currency code (DEAL-8)."""
    fields = [
        _keep_earliest_create_date(f)
        for f in mapped_fields(
            sides,
            config.mappings("opportunities"),
            sf_object="Opportunity",
            hs_object="deals",
            rules=("DEAL-1",),
            options=inputs.picklist_options,
        )
    ]
    sf_stage = mo["stage"].reset_index(drop=True)
    hs_stage = md["stage_api"].astype("str").reset_index(drop=True)
    sf_cur = mo["currency"].reset_index(drop=True)
    hs_cur = md["currency"].reset_index(drop=True)
    return [
        *fields,
        MergeField(
            sf_field="StageName",
            hs_field="dealstage",
            rule="two_way",
            kind="string",
            sf_key=sf_stage,
            hs_key=hs_stage,
            to_hs=lambda sub: stage_ids(sub, sf_stage),
            to_sf=lambda sub: hs_stage.loc[sub].astype(object),
            rules=("DEAL-1", "DEAL-2"),
        ),
        owner_field(
            owners,
            mo["owner"].reset_index(drop=True),
            md["owner"].reset_index(drop=True),
            rules=("DEAL-1", "OWN-5"),
        ),
        MergeField(
            sf_field="CurrencyIsoCode",
            hs_field="deal_currency_code",
            rule="two_way",
            kind="string",
            sf_key=sf_cur,
            hs_key=hs_cur,
            to_hs=lambda sub: sf_cur.loc[sub].astype(object),
            to_sf=lambda sub: hs_cur.loc[sub].astype(object),
            rules=("DEAL-8",),
        ),
    ]


def _follow_record_type(
    result: MergeResult, pairs: pd.DataFrame, mo: pd.DataFrame, md: pd.DataFrame, stage_ids: _StageIds
) -> None:
    """DEAL-2: the pipeline follows the record type; a move rewrites the stage for the new
    pipeline (the stage the merge settled on: Salesforce's unless HubSpot's won)."""
    hs_w, sf_w = result.hubspot, result.salesforce
    n = len(pairs)
    desired_pipeline = mo["hs_pipeline_id"].astype(object).reset_index(drop=True)
    move = ~same(as_text(desired_pipeline), md["pipeline"].reset_index(drop=True))
    if not move.any():
        return
    stage_written_to_sf = (
        sf_w.mask["StageName"].to_numpy(dtype=bool) if "StageName" in sf_w.mask.columns else np.zeros(n, bool)
    )
    sf_stage = mo["stage"].reset_index(drop=True)
    hs_stage = md["stage_api"].astype("str").reset_index(drop=True)
    api = sf_stage.where(~pd.Series(stage_written_to_sf), hs_stage)
    idx = pairs.index[move]
    hs_w.add("pipeline", desired_pipeline.loc[idx], move, ("DEAL-2",))
    current_mask = (
        hs_w.mask["dealstage"].to_numpy(dtype=bool) if "dealstage" in hs_w.mask.columns else np.zeros(n, bool)
    )
    current_vals = (
        hs_w.values["dealstage"]
        if "dealstage" in hs_w.values.columns
        else pd.Series([None] * n, dtype=object)
    )
    new_vals = current_vals.astype(object).copy()
    new_vals.loc[idx] = stage_ids(idx, api).to_numpy(dtype=object)
    hs_w.add("dealstage", new_vals, current_mask | move, ("DEAL-1", "DEAL-2"))


def _keep_naming_each_other(
    result: MergeResult, pairs: pd.DataFrame, mo: pd.DataFrame, md: pd.DataFrame
) -> None:
    """Both sides keep naming each other (RULES.md "Linked"): a missing or stale link id is written."""
    hs_link = md["sf_ref"].reset_index(drop=True)
    fix_hs = ~same(hs_link, as_text(pairs["sf_id"]))
    if fix_hs.any():
        result.hubspot.add(
            "salesforceopportunityid", pairs["sf_id"].where(pd.Series(fix_hs)), fix_hs, ("SYNC-4",)
        )
    sf_link = mo["hs_ref"].reset_index(drop=True)
    fix_sf = ~same(sf_link, as_text(pairs["hs_id"]))
    if fix_sf.any():
        result.salesforce.add(
            "HubSpot_Id__c", pairs["hs_id"].where(pd.Series(fix_sf)), fix_sf, ("DEAL-5", "SYNC-4")
        )


def _merge_pairs(
    inputs: RuleInputs,
    config: SyncConfig,
    owners: OwnerMap,
    stages: pd.DataFrame,
    *,
    staged: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame],
    mo: pd.DataFrame,
    md: pd.DataFrame,
) -> _Merged:
    """SYNC-3 over the live, synced, valid pairs: mapped fields, stage, owner, currency, pipeline.

    ``staged`` is (opportunity frame, deal frame, raw Opportunities, raw deals); ``mo``/``md``
    the paired rows of the first two.
    """
    o, d, opp_raw, deal_raw = staged
    if len(mo) == 0:
        return _Merged([], _empty(SNAPSHOT_COLUMNS), pd.DataFrame(), pd.DataFrame(), pd.Series(dtype=object))
    # Only the mapped fields are merged from the staged rows: copy those columns alone.
    mappings = config.mappings("opportunities")
    sf_cols = [c for c in dict.fromkeys(m.salesforce for m in mappings) if c in opp_raw.columns]
    hs_cols = [c for c in dict.fromkeys(m.hubspot for m in mappings) if c in deal_raw.columns]
    sf_rows = opp_raw[sf_cols].iloc[_positions(o["sf_id"], mo["sf_id"])].reset_index(drop=True)
    hs_rows = deal_raw[hs_cols].iloc[_positions(d["hs_id"], md["hs_id"])].reset_index(drop=True)
    pairs = pd.DataFrame(
        {"sf_id": mo["sf_id"].to_numpy(dtype=object), "hs_id": md["hs_id"].to_numpy(dtype=object)}
    )
    stage_ids = _StageIds(stages, mo["pipeline_key"])
    sides = PairSides(pairs, sf_rows, hs_rows)
    fields = _deal_fields(inputs, config, owners, sides, mo=mo, md=md, stage_ids=stage_ids)
    result = merge_fields(
        pairs,
        fields,
        inputs.snapshot,
        sf_object="Opportunity",
        sf_modified=mo["modified"],
        hs_modified=md["modified"],
        now=inputs.now,
    )
    _follow_record_type(result, pairs, mo, md, stage_ids)
    _keep_naming_each_other(result, pairs, mo, md)
    hs_w, sf_w = result.hubspot, result.salesforce
    sf_owner = mo["owner"].reset_index(drop=True)
    hs_owner = md["owner"].reset_index(drop=True)
    plans = [
        writes_to_plan(
            hs_w, target=Target.HUBSPOT, obj="deals", target_id=pairs["hs_id"], source_id=pairs["sf_id"]
        ),
        writes_to_plan(
            sf_w,
            target=Target.SALESFORCE,
            obj="Opportunity",
            target_id=pairs["sf_id"],
            source_id=pairs["hs_id"],
        ),
    ]
    plans.append(
        owner_skips(
            result,
            pairs=pairs,
            sf_owner=sf_owner,
            hs_owner=hs_owner,
            owners=owners,
            sf_object="Opportunity",
            hs_object="deals",
        )
    )
    plans.append(
        unmapped_value_skips(result, fields, pairs=pairs, sf_object="Opportunity", hs_object="deals")
    )
    masked = hs_w.values.where(hs_w.mask.reindex(columns=hs_w.values.columns, fill_value=False))
    return _Merged(plans, result.snapshot, result.conflicts, masked, pairs["hs_id"])


# --------------------------------------------------------------------------- creates


def _hubspot_creates(
    config: SyncConfig,
    owners: OwnerMap,
    co: pd.DataFrame,
    co_raw: pd.DataFrame,
    *,
    before: np.ndarray,
    options: pd.DataFrame,
) -> list[pd.DataFrame]:
    """DEAL-1/DEAL-2/DEAL-9: deals created from Opportunities (``source_id`` = Opportunity Id)."""
    if co.empty:
        return []
    columns, unmapped = create_field_columns(
        co_raw,
        config.mappings("opportunities"),
        Target.HUBSPOT,
        sf_object="Opportunity",
        hs_object="deals",
        source_ids=co["sf_id"],
        options=options,
    )
    owner = owners.to_hubspot(co["owner"])
    values = pd.DataFrame(columns)
    values["pipeline"] = co["hs_pipeline_id"].astype(object)
    values["dealstage"] = co["hs_stage_id"].astype(object)
    values["hubspot_owner_id"] = owner.astype(object)
    values["deal_currency_code"] = co["currency"].astype(object)
    values["salesforceopportunityid"] = co["sf_id"].astype(object)
    column_rules = {
        "hubspot_owner_id": ("OWN-5",),
        "deal_currency_code": ("DEAL-8",),
    }
    rows = plan_rows(
        target=Target.HUBSPOT,
        object="deals",
        action=Action.CREATE,
        values=values,
        source_id=co["sf_id"],
        rules=["DEAL-1", "DEAL-2", "SYNC-2"],
        column_rules=column_rules,
        row_rules={"DEAL-9": before},
        keep_empty=True,
    )
    skips = unmapped_owner_skips(
        target=Target.HUBSPOT,
        object="deals",
        target_ids=pd.Series([None] * len(co), dtype=object),
        source_ids=co["sf_id"],
        owner_values=co["owner"],
        owners=owners,
    )
    return [rows, skips, unmapped]


def _company_accounts(assoc: pd.DataFrame, account_links: pd.DataFrame, deal_ids: pd.Series) -> pd.Series:
    """For each deal, the SF Account of its associated company (the lowest company id that is
    linked), else NA: the AccountId of an Opportunity created from the deal. ``assoc``: the
    deal -> company associations."""
    if assoc.empty or account_links.empty:
        return pd.Series([None] * len(deal_ids), index=deal_ids.index, dtype=object)
    links = pd.DataFrame(
        {"to_id": as_text(account_links["hs_id"]), "account": account_links["sf_id"].astype(object)}
    )
    links = links.dropna().drop_duplicates("to_id")
    joined = assoc.merge(links, on="to_id").sort_values(["from_id", "to_id"], kind="stable")
    first = joined.drop_duplicates("from_id").set_index("from_id")["account"]
    return deal_ids.map(first).astype(object)


def _salesforce_creates(
    config: SyncConfig,
    owners: OwnerMap,
    pipelines: pd.DataFrame,
    *,
    cd: pd.DataFrame,
    cd_raw: pd.DataFrame,
    company_account: pd.Series,
    options: pd.DataFrame,
) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """DEAL-5: Opportunities created from deals, ``HubSpot_Id__c`` = deal id (upsert key)."""
    if cd.empty:
        return [], pd.DataFrame({"hs_id": pd.Series(dtype=object), "account_id": pd.Series(dtype=object)})
    quarantined, keep, decision = new_record_owners(cd, owners, sf_object="Opportunity", rule="DEAL-5")
    plans = [quarantined]
    cd = cd[keep].reset_index(drop=True)
    cd_raw = cd_raw[keep].reset_index(drop=True)
    account = company_account.reset_index(drop=True)[keep].reset_index(drop=True)
    columns, unmapped = create_field_columns(
        cd_raw,
        config.mappings("opportunities"),
        Target.SALESFORCE,
        sf_object="Opportunity",
        hs_object="deals",
        source_ids=cd["hs_id"],
        options=options,
    )
    plans.append(unmapped)
    values = pd.DataFrame(columns)
    values["StageName"] = cd["stage_api"].astype(object)
    rt = (
        pipelines.set_index("hs_pipeline_id")["record_type_id"]
        if not pipelines.empty
        else pd.Series(dtype=object)
    )
    values["RecordTypeId"] = cd["pipeline"].map(rt).astype(object)
    values["CurrencyIsoCode"] = cd["currency"].astype(object)
    values["OwnerId"] = decision["OwnerId"].astype(object)
    values["AccountId"] = account.astype(object)
    values["HubSpot_Id__c"] = cd["hs_id"].astype(object)
    row_rules = {r: (decision["owner_rule"] == r).to_numpy() for r in ("OWN-1", "OWN-2", "OWN-3")}
    plans.append(
        plan_rows(
            target=Target.SALESFORCE,
            object="Opportunity",
            action=Action.CREATE,
            values=values,
            source_id=cd["hs_id"],
            rules=["DEAL-5", "DEAL-1", "SYNC-2"],
            column_rules={"CurrencyIsoCode": ("DEAL-8",), "AccountId": ("DEAL-7",)},
            row_rules=row_rules,
            keep_empty=True,
        )
    )
    return plans, pd.DataFrame({"hs_id": cd["hs_id"].astype(object), "account_id": account.astype(object)})


# --------------------------------------------------------------------------- associations


def _associations(
    inputs: RuleInputs,
    config: SyncConfig,
    sync_pairs: pd.DataFrame,
    *,
    links: tuple[pd.DataFrame, pd.DataFrame],
    existing: tuple[pd.DataFrame, pd.DataFrame],
) -> tuple[list[pd.DataFrame], DealContactChanges]:
    """DEAL-6 (contact roles <-> deal-contact associations, :mod:`~crm_sync.rules.deal_contacts`)
    and DEAL-7 (deal -> Account's company).

    ``links``: (contact links, account links); ``existing``: the staged deal -> contact and
    deal -> company associations.
    """
    contact_links, account_links = links
    existing_assoc, have = existing
    plans: list[pd.DataFrame] = []
    contacts = (
        contact_links[as_text(contact_links["sf_object"]) == "Contact"]
        if not contact_links.empty
        else contact_links
    )
    contacts = pd.DataFrame(
        {
            "contact_hs": column(contacts, "hs_id").astype(object),
            "contact_sf": column(contacts, "sf_id").astype(object),
        }
    ).dropna()
    ocr = inputs.sf_opportunity_contact_role
    roles = pd.DataFrame(
        {
            "role_id": as_text(column(ocr, "Id")),
            "sf_key": as_text(column(ocr, "OpportunityId")),
            "contact_sf": as_text(column(ocr, "ContactId")),
        }
    )[alive(ocr).to_numpy()].dropna(subset=["sf_key", "contact_sf"])
    changes = deal_contact_changes(
        roles,
        existing_assoc.rename(columns={"from_id": "hs_key", "to_id": "contact_hs"}),
        sync_pairs,
        contacts,
        inputs.association_snapshot,
    )
    plans.extend(_deal_contact_rows(changes))
    # DEAL-7: deals from Salesforce -> the Account's company, when company sync is on.
    if config.companies_sync and not account_links.empty:
        companies = account_companies(account_links, "company")
        from_sf = sync_pairs[sync_pairs["origin"] == "sf"].dropna(subset=["account_id"])
        want = from_sf.merge(companies, on="account_id")
        add = _anti_join(
            want.drop_duplicates(["hs_key", "company"]), ["hs_key", "company"], have, ["from_id", "to_id"]
        )
        if not add.empty:
            plans.append(
                _assoc_rows(
                    from_ids=add["hs_key"],
                    to_type="companies",
                    to_ids=add["company"],
                    type_id=ASSOC_DEAL_TO_COMPANY,
                    source_id=add["sf_key"],
                    rule="DEAL-7",
                )
            )
    return plans, changes


def _deal_contact_rows(changes: DealContactChanges) -> list[pd.DataFrame]:
    """DEAL-6 plan rows: associations and roles created, roles deleted, associations removed."""
    added, roles, gone_roles, gone = (
        changes.create_associations,
        changes.create_roles,
        changes.delete_roles,
        changes.delete_associations,
    )
    return [
        _assoc_rows(
            from_ids=added["hs_key"],
            to_type="contacts",
            to_ids=added["contact_hs"],
            type_id=ASSOC_DEAL_TO_CONTACT,
            source_id=added["sf_key"],
            rule="DEAL-6",
        ),
        plan_rows(
            target=Target.SALESFORCE,
            object="OpportunityContactRole",
            action=Action.CREATE,
            values=pd.DataFrame(
                {
                    "OpportunityId": roles["sf_key"].astype(object),
                    "ContactId": roles["contact_sf"].astype(object),
                }
            ),
            source_id=roles["hs_key"],
            rules=["DEAL-6"],
            keep_empty=True,
        ),
        plan_rows(
            target=Target.SALESFORCE,
            object="OpportunityContactRole",
            action=Action.DELETE,
            count=len(gone_roles),
            source_id=gone_roles["hs_key"],
            target_id=gone_roles["role_id"],
            rules=["DEAL-6"],
        ),
        _assoc_rows(
            from_ids=gone["hs_key"],
            to_type="contacts",
            to_ids=gone["contact_hs"],
            type_id=ASSOC_DEAL_TO_CONTACT,
            source_id=gone["sf_key"],
            rule="DEAL-6",
            action=Action.DELETE,
        ),
    ]


def _anti_join(left: pd.DataFrame, on: list[str], right: pd.DataFrame, right_on: list[str]) -> pd.DataFrame:
    """Rows of ``left`` whose ``on`` key pair is not among ``right``'s ``right_on`` pairs."""
    if left.empty or right.empty:
        return left.reset_index(drop=True)
    keys = right[right_on].astype(object).drop_duplicates()
    keys.columns = pd.Index(on)
    probe = left[on].astype(object).merge(keys.assign(_hit=True), on=on, how="left")
    hit = probe["_hit"].notna().to_numpy()
    return left[~hit].reset_index(drop=True)


def _existing_deal_contacts(inputs: RuleInputs, state: pd.DataFrame, assoc: pd.DataFrame) -> pd.DataFrame:
    """Live deal -> contact associations (``assoc``) whose deal survives this plan (ROLL-6:
    deleted deals and removed associations drop out)."""
    live_deals = state["deal_key"]
    assoc = assoc[assoc["from_id"].isin(live_deals)]
    contacts = inputs.hs_contact
    if not contacts.empty:
        live_contacts = as_text(column(contacts, "id"))[alive(contacts)].dropna()
        assoc = assoc[assoc["to_id"].isin(live_contacts)]
    return pd.DataFrame(
        {"deal_key": assoc["from_id"].astype(object), "contact_key": assoc["to_id"].astype(object)}
    ).reset_index(drop=True)


# --------------------------------------------------------------------------- post-plan state


def _deal_state(
    staged: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame],
    pairs: pd.DataFrame,
    merge: _Merged | None,
    *,
    sync_pairs: pd.DataFrame,
    deleted: set[str],
    lookup: pd.DataFrame,
) -> pd.DataFrame:
    """ROLL inputs: every live deal after this plan (writes applied) plus the deals it creates."""
    o, d, opp_raw, deal_raw = staged
    keep = d["alive"].to_numpy(dtype=bool) & ~d["hs_id"].isin(deleted).to_numpy()
    hs = d[keep].reset_index(drop=True)
    raw = deal_raw[keep].reset_index(drop=True)
    amount = canonical(column(raw, "amount"), "number")
    created = canonical(column(raw, "createdate"), "datetime")
    close = canonical(column(raw, "closedate"), "datetime")
    currency = hs["currency"].astype(object)
    pipeline = hs["pipeline"].astype(object)
    dealstage = hs["dealstage"].astype(object)
    if merge is not None and not merge.hs_values.empty:
        typed = {
            "amount": (amount, "number"),
            "createdate": (created, "datetime"),
            "closedate": (close, "datetime"),
        }
        plain = {"deal_currency_code": currency, "pipeline": pipeline, "dealstage": dealstage}
        _apply_deal_writes(merge, hs["hs_id"], typed, plain)
    outcome = lookup.drop_duplicates(["hs_pipeline_id", "hs_stage_id"]).set_index(
        ["hs_pipeline_id", "hs_stage_id"]
    )
    found = outcome.reindex(pd.MultiIndex.from_arrays([pipeline, dealstage]))
    pair_sf = pairs.set_index("hs_id")["sf_id"] if not pairs.empty else pd.Series(dtype=object)
    sp = sync_pairs.drop_duplicates("hs_key").set_index("hs_key") if not sync_pairs.empty else None
    sf_key = hs["hs_id"].map(pair_sf).astype(object)
    account = pd.Series([None] * len(hs), dtype=object)
    if sp is not None:
        sf_key = sf_key.fillna(hs["hs_id"].map(sp["sf_key"]))
        account = hs["hs_id"].map(sp["account_id"]).astype(object)
    existing = pd.DataFrame(
        {
            "deal_key": hs["hs_id"].astype(object),
            "sf_id": sf_key.astype(object),
            "account_id": account,
            "amount": amount.astype("float64"),
            "currency": currency,
            "created_at": created,
            "close_date": close,
            "is_closed": found["is_closed"].fillna(False).to_numpy(dtype=bool),
            "is_won": found["is_won"].fillna(False).to_numpy(dtype=bool),
        }
    )
    parts = [existing]
    if sp is not None:
        made = sync_pairs[
            (sync_pairs["origin"] == "sf") & sync_pairs["hs_key"].astype("str").str.startswith("@")
        ]
        if not made.empty:
            parts.append(_created_deal_state(made, o, opp_raw))
    state = pd.concat(parts, ignore_index=True)
    return state[list(DEAL_STATE_COLUMNS)]


def _apply_deal_writes(
    merge: _Merged,
    hs_ids: pd.Series,
    typed: dict[str, tuple[pd.Series, str]],
    plain: dict[str, pd.Series],
) -> None:
    """Apply the SYNC-3 writes this plan makes to deals onto their state columns (in place):
    ``typed`` columns take canonical values of their kind, ``plain`` ones the written text."""
    pos = _positions(hs_ids, merge.hs_ids.astype("str"))
    ok = pos >= 0
    w = merge.hs_values.iloc[np.flatnonzero(ok)]
    at = pos[ok]
    for name, (target, kind) in typed.items():
        if name in w.columns:
            has = w[name].notna().to_numpy()
            target.iloc[at[has]] = canonical(w[name][has], kind).to_numpy()  # type: ignore[arg-type]
    for name, target_obj in plain.items():
        if name in w.columns:
            has = w[name].notna().to_numpy()
            target_obj.iloc[at[has]] = w[name][has].to_numpy(dtype=object)


def _created_deal_state(made: pd.DataFrame, o: pd.DataFrame, opp_raw: pd.DataFrame) -> pd.DataFrame:
    """The state of the deals this plan creates from Opportunities (for the rollups)."""
    pos = _positions(o["sf_id"], made["sf_key"].astype("str"))
    src = opp_raw.iloc[pos].reset_index(drop=True)
    so = o.iloc[pos].reset_index(drop=True)
    return pd.DataFrame(
        {
            "deal_key": made["hs_key"].to_numpy(dtype=object),
            "sf_id": made["sf_key"].to_numpy(dtype=object),
            "account_id": so["account_id"].astype(object),
            "amount": canonical(column(src, "Amount"), "number"),
            "currency": so["currency"].astype(object),
            "created_at": canonical(column(src, "CreatedDate"), "datetime"),
            "close_date": canonical(column(src, "CloseDate"), "datetime"),
            "is_closed": so["is_closed"].fillna(False).astype(bool),
            "is_won": so["is_won"].fillna(False).astype(bool),
        }
    )


__all__ = [
    "ACCOUNT_LINK_COLUMNS",
    "CLEARED_LINK_COLUMNS",
    "CONTACT_LINK_COLUMNS",
    "DEAL_CONTACT_COLUMNS",
    "DEAL_STATE_COLUMNS",
    "DealsResult",
    "plan_deals",
]
