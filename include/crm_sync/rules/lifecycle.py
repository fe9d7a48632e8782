"""ROLL-7 and ACC-7: lifecycle stages that follow deals, forward only.

HubSpot orders lifecycle stages ``subscriber < lead < marketingqualifiedlead <
salesqualifiedlead < opportunity < customer < evangelist``; ``other`` (and any custom stage
crm-sync does not know) is outside that order. Stages only ever move forward here:

* ROLL-7: a contact with an associated open deal becomes at least ``opportunity``; with a
  closed-won deal, ``customer``. A contact already further along (or in ``other`` / an unknown
  stage, which a person chose deliberately) is left alone.
* ACC-7: with company sync on, a company's stage is raised to the furthest (post-ROLL-7)
  stage among its associated contacts, so a contact's stage change reaches its company. It is
  computed from all current contacts rather than from "changes since last run", which gives
  the same result for a forward-only stage and stays idempotent (SYNC-4).

The deal state and associations are the post-plan ones (:mod:`crm_sync.rules.deals`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_sync.plan import Action, Target, concat_plans, plan_rows
from crm_sync.rules.normalize import as_text, column
from crm_sync.rules.staged import alive, associations

STAGE_ORDER: tuple[str, ...] = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
)
#: Rank of a blank stage (anything may be set) and of ``other``/unknown stages (never moved).
BLANK_RANK = 0
FROZEN_RANK = 99
_RANK = {name: i + 1 for i, name in enumerate(STAGE_ORDER)}
OPPORTUNITY_RANK = _RANK["opportunity"]
CUSTOMER_RANK = _RANK["customer"]

#: Columns of :attr:`LifecycleResult.contacts` / ``.companies`` (``rule_lifecycle``).
LIFECYCLE_COLUMNS: tuple[str, ...] = ("object", "record_id", "current", "desired")


def stage_rank(values: pd.Series) -> np.ndarray:
    """Position of each lifecycle stage in HubSpot's order (blank 0, ``other``/unknown 99)."""
    text = as_text(values).str.strip().str.lower()
    ranks = text.map(_RANK).to_numpy(dtype=float, na_value=np.nan)
    out = np.where(np.isnan(ranks), FROZEN_RANK, ranks)
    out = np.where(text.isna().to_numpy(), BLANK_RANK, out)
    return out.astype(np.int64)


def _stage_name(ranks: np.ndarray) -> np.ndarray:
    names = np.array([None, *STAGE_ORDER], dtype=object)
    safe = np.clip(ranks, 0, len(STAGE_ORDER))
    return np.asarray(names[safe], dtype=object)


@dataclass
class LifecycleResult:
    """Stage changes (:data:`LIFECYCLE_COLUMNS`, changed records only) and their plan rows."""

    changes: pd.DataFrame
    plan: pd.DataFrame


def _records(frame: pd.DataFrame) -> pd.DataFrame:
    ids = as_text(column(frame, "id"))
    out = pd.DataFrame({"record_id": ids, "stage": column(frame, "lifecyclestage")})
    out = out[alive(frame).to_numpy() & ids.notna().to_numpy()]
    return out.drop_duplicates("record_id", keep="last").reset_index(drop=True)


def contact_stage_floor(deal_contacts: pd.DataFrame, deals: pd.DataFrame) -> pd.Series:
    """ROLL-7: the lowest stage rank each contact's deals call for, indexed by contact key.

    ``customer`` with a closed-won deal, else ``opportunity`` with an open deal; contacts whose
    deals are all closed-lost get nothing.
    """
    if deal_contacts.empty or deals.empty:
        return pd.Series(dtype=np.int64)
    d = deals.drop_duplicates("deal_key").set_index("deal_key")
    is_won = deal_contacts["deal_key"].map(d["is_won"]).fillna(False).to_numpy(dtype=bool)
    known = deal_contacts["deal_key"].isin(d.index).to_numpy()
    is_open = known & ~deal_contacts["deal_key"].map(d["is_closed"]).fillna(True).to_numpy(dtype=bool)
    floor = np.where(is_won, CUSTOMER_RANK, np.where(is_open, OPPORTUNITY_RANK, BLANK_RANK))
    frame = pd.DataFrame({"contact": deal_contacts["contact_key"].to_numpy(dtype=object), "floor": floor})
    best = frame.groupby("contact", sort=True)["floor"].max()
    return best[best > BLANK_RANK].astype(np.int64)


def _raise_stages(
    obj: str, records: pd.DataFrame, wanted: np.ndarray, rule: str
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """ROLL-7/ACC-7, forward only: each record's stage becomes the later of its own and
    ``wanted`` (a rank), unless it is ``other``/unknown. Returns (the changes, their ``update``
    rows under ``rule``, every record's resulting rank)."""
    current = stage_rank(records["stage"])
    desired = np.where(current != FROZEN_RANK, np.maximum(current, wanted), current)
    changed = desired != current
    changes = pd.DataFrame(
        {
            "object": obj,
            "record_id": records["record_id"].to_numpy(dtype=object)[changed],
            "current": _stage_name(current[changed]),
            "desired": _stage_name(desired[changed]),
        }
    )
    plan = plan_rows(
        target=Target.HUBSPOT,
        object=obj,
        action=Action.UPDATE,
        values=pd.DataFrame({"lifecyclestage": changes["desired"]}),
        target_id=changes["record_id"],
        rules=[rule],
    )
    return changes, plan, desired


def plan_lifecycle(
    deals: pd.DataFrame,
    deal_contacts: pd.DataFrame,
    *,
    hs_contact: pd.DataFrame,
    hs_company: pd.DataFrame,
    hs_association: pd.DataFrame,
    companies_sync: bool,
) -> LifecycleResult:
    """ROLL-7 on contacts, then ACC-7 on their companies (with company sync on), forward only.

    Contacts this plan creates (created refs in ``deal_contacts``) start blank, so they get the
    stage their deals call for. Rows: target ``hubspot``, objects ``contacts`` (rules
    ``["ROLL-7"]``) and ``companies`` (``["ACC-7"]``), fields ``{"lifecyclestage": ...}``.
    """
    contacts = _records(hs_contact)
    floor = contact_stage_floor(deal_contacts, deals)
    refs = [k for k in floor.index if isinstance(k, str) and k.startswith("@")]
    if refs:
        contacts = pd.concat([contacts, pd.DataFrame({"record_id": refs, "stage": None})], ignore_index=True)
    wanted = (
        floor.reindex(contacts["record_id"].to_numpy(dtype=object))
        .fillna(BLANK_RANK)
        .to_numpy(dtype=np.int64)
    )
    contact_changes, contact_plan, desired = _raise_stages("contacts", contacts, wanted, "ROLL-7")
    plans = [contact_plan]
    changes = [contact_changes]
    if companies_sync:
        contact_rank = pd.Series(desired, index=contacts["record_id"].to_numpy(dtype=object))
        contact_rank = contact_rank[(contact_rank > BLANK_RANK) & (contact_rank != FROZEN_RANK)]
        contact_rank = contact_rank[~contact_rank.index.duplicated(keep="last")]
        edges = associations(hs_association, "contacts", "companies")
        edges = edges[edges["from_id"].isin(contact_rank.index)]
        by_company = (
            pd.DataFrame({"company": edges["to_id"], "rank": edges["from_id"].map(contact_rank).to_numpy()})
            .groupby("company", sort=True)["rank"]
            .max()
        )
        companies = _records(hs_company)
        companies = companies[companies["record_id"].isin(by_company.index)].reset_index(drop=True)
        c_wanted = by_company.reindex(companies["record_id"].to_numpy(dtype=object)).to_numpy(dtype=np.int64)
        company_changes, company_plan, _ = _raise_stages("companies", companies, c_wanted, "ACC-7")
        plans.append(company_plan)
        changes.append(company_changes)
    frame = pd.concat(changes, ignore_index=True)[list(LIFECYCLE_COLUMNS)]
    return LifecycleResult(changes=frame, plan=concat_plans(plans))


__all__ = [
    "LIFECYCLE_COLUMNS",
    "STAGE_ORDER",
    "LifecycleResult",
    "contact_stage_floor",
    "plan_lifecycle",
    "stage_rank",
]
