"""A backfill chunk plans its own neighbourhood of staging, not all of it.

Staging keeps every record any run has read, so planning a chunk over all of it costs time and
memory that grow with everything backfilled so far (N x chunks). A chunk only needs the records
whose plan its window can change, and every record those plans depend on. :func:`focus_inputs`
computes that neighbourhood, pure and vectorised, as the closure of the window's Opportunities
under every relation a rule reads:

- Salesforce structure: an Opportunity's Account, contact roles and their Contacts; an Account's
  Contacts and Opportunities (ROLL-*/ROLL-7 roll up all of them; DEAL-6/7 associate them);
  a Contact's other roles; a converted Lead's Contact and Account.
- Identity: Accounts and companies sharing an ACC-6/ACC-3 key (registrable domain or normalised
  name, so dedup groups and the company matching see every candidate), and Contacts, Leads and
  HubSpot contacts sharing an email (CON-1).
- Links: ``sync_link`` pairs and the link fields both CRMs carry (``HubSpot_Id__c``,
  ``salesforce*id``), both directions, so a linked record is never seen without its partner
  (it would look unlinked: DEAL-5 would create a duplicate, DEAL-4 would see a deletion).
- HubSpot associations between deals, contacts and companies, both directions.

The closure is a fixed point, so the chunk's plan for each record in it is the plan the whole of
staging would give that record; records outside it are left to the hourly sync (their plans do
not depend on the window). Small reference tables (users, owners, pipelines, stages, record
types, picklist options) are kept whole.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from crm_sync.rules.inputs import InputView, RowMask, RuleInputs
from crm_sync.rules.normalize import (
    as_text,
    column,
    company_name_keys,
    domain_keys,
    first_present,
    normalize_emails,
    salesforce_ids18,
)
from crm_sync.rules.staged import association_ends

#: Record tables the closure walks, and the column each is keyed by.
RECORD_KEYS: dict[str, str] = {
    "sf_account": "Id",
    "sf_contact": "Id",
    "sf_lead": "Id",
    "sf_opportunity": "Id",
    "hs_company": "id",
    "hs_contact": "id",
    "hs_deal": "id",
}
#: SF object of a link -> (its SF table, its HubSpot table, the HubSpot link property).
LINKED: dict[str, tuple[str, str, str]] = {
    "Account": ("sf_account", "hs_company", "salesforceaccountid"),
    "Contact": ("sf_contact", "hs_contact", "salesforcecontactid"),
    "Lead": ("sf_lead", "hs_contact", "salesforceleadid"),
    "Opportunity": ("sf_opportunity", "hs_deal", "salesforceopportunityid"),
}
#: HubSpot association object type -> staged table.
HS_TYPES: dict[str, str] = {"companies": "hs_company", "contacts": "hs_contact", "deals": "hs_deal"}
#: Stages that decide for the whole org (:func:`whole_org_inputs`): DEAL-2 names a pipeline
#: per record type in use by any Opportunity, not only by the window's.
WHOLE_ORG_STAGES: frozenset[str] = frozenset({"name_pipelines"})
#: The Opportunity columns those stages read (record type in use, alive or deleted).
WHOLE_ORG_OPPORTUNITY_COLUMNS = ("Id", "RecordTypeId", "IsDeleted", "_deleted")
#: The closure stops after this many rounds (each round adds at least one record).
MAX_ROUNDS = 50
#: What :func:`neighbourhood` and :data:`WHOLE_ORG_STAGES` read of staging: the key columns of
#: the record tables (ids, references, link fields, ACC-6/ACC-3 keys, emails), contact roles'
#: two ends, and associations, links and the small reference tables whole. A chunk finds its
#: neighbourhood in this view, then reads only the neighbourhood's rows (:func:`neighbourhood_view`).
KEY_VIEW = InputView(
    columns={
        "sf_account": ("Id", "HubSpot_Id__c", "Website", "Name"),
        "sf_contact": ("Id", "AccountId", "HubSpot_Id__c", "Email"),
        "sf_lead": ("Id", "HubSpot_Id__c", "Email", "ConvertedContactId", "ConvertedAccountId"),
        "sf_opportunity": ("Id", "AccountId", "HubSpot_Id__c", *WHOLE_ORG_OPPORTUNITY_COLUMNS[1:]),
        "sf_opportunity_contact_role": ("OpportunityId", "ContactId"),
        "hs_company": ("id", "salesforceaccountid", "domain", "website", "name"),
        "hs_contact": ("id", "salesforcecontactid", "salesforceleadid", "email"),
        "hs_deal": ("id", "salesforceopportunityid"),
    },
    skip=frozenset({"snapshot", "imported", "association_snapshot"}),
)

Ids = dict[str, set[str]]


def _text(frame: pd.DataFrame, name: str) -> pd.Series:
    return as_text(column(frame, name))


@dataclass
class _Edge:
    """Pairs ``(a, b)`` of record ids: ``a`` in table ``left`` pulls ``b`` in ``right``, and back."""

    left: str
    right: str
    a: pd.Series
    b: pd.Series

    def pull(self, ids: Ids) -> Ids:
        """Ids newly reachable over this edge from ``ids``, by table (both directions)."""
        out: Ids = {}
        seen_a, seen_b = ids[self.left], ids[self.right]
        found_b = set(self.b[self.a.isin(seen_a)].dropna()) - seen_b
        found_a = set(self.a[self.b.isin(seen_b)].dropna()) - seen_a
        for table, found in ((self.right, found_b), (self.left, found_a)):
            if found:
                out.setdefault(table, set()).update(found)
        return out


def _edge(left: str, a: pd.Series, right: str, b: pd.Series) -> _Edge:
    keep = a.notna() & b.notna()
    return _Edge(left, right, a[keep].reset_index(drop=True), b[keep].reset_index(drop=True))


def _structure_edges(inputs: RuleInputs) -> list[_Edge]:
    """Salesforce's own relations: Account, roles, Contacts, converted Leads."""
    opp, con, lead = inputs.sf_opportunity, inputs.sf_contact, inputs.sf_lead
    roles = inputs.sf_opportunity_contact_role
    return [
        _edge("sf_opportunity", _text(opp, "Id"), "sf_account", _text(opp, "AccountId")),
        _edge("sf_contact", _text(con, "Id"), "sf_account", _text(con, "AccountId")),
        _edge("sf_opportunity", _text(roles, "OpportunityId"), "sf_contact", _text(roles, "ContactId")),
        _edge(
            "sf_lead", _text(lead, "Id"), "sf_contact", salesforce_ids18(column(lead, "ConvertedContactId"))
        ),
        _edge(
            "sf_lead", _text(lead, "Id"), "sf_account", salesforce_ids18(column(lead, "ConvertedAccountId"))
        ),
    ]


def _link_edges(inputs: RuleInputs) -> list[_Edge]:
    """``sync_link`` pairs and the link fields on both sides' records."""
    links = inputs.links
    objects = _text(links, "object")
    edges = []
    for obj, (sf_table, hs_table, hs_field) in LINKED.items():
        mine = objects == obj
        sf, hs = getattr(inputs, sf_table), getattr(inputs, hs_table)
        edges += [
            _edge(sf_table, _text(links, "sf_id")[mine], hs_table, _text(links, "hs_id")[mine]),
            _edge(sf_table, _text(sf, "Id"), hs_table, _text(sf, "HubSpot_Id__c")),
            _edge(sf_table, salesforce_ids18(column(hs, hs_field)), hs_table, _text(hs, "id")),
        ]
    return edges


def _association_edges(inputs: RuleInputs) -> list[_Edge]:
    """HubSpot associations, deleted ones included (DEAL-6 reads their removal)."""
    from_type, from_id, to_type, to_id = association_ends(inputs.hs_association)
    edges = []
    for f_type, f_table in HS_TYPES.items():
        for t_type, t_table in HS_TYPES.items():
            mine = (from_type == f_type) & (to_type == t_type)
            if bool(mine.any()):
                edges.append(_edge(f_table, from_id[mine], t_table, to_id[mine]))
    return edges


def _key_edges(inputs: RuleInputs) -> list[_Edge]:
    """Shared identity keys: ACC-6/ACC-3 account keys and CON-1 emails, as edges to the key."""
    acc, co = inputs.sf_account, inputs.hs_company
    co_domain = first_present(_text(co, "domain"), _text(co, "website"))
    edges = [
        _edge("sf_account", _text(acc, "Id"), "key:domain", domain_keys(column(acc, "Website"))),
        _edge("sf_account", _text(acc, "Id"), "key:name", company_name_keys(column(acc, "Name"))),
        _edge("hs_company", _text(co, "id"), "key:domain", domain_keys(co_domain)),
        _edge("hs_company", _text(co, "id"), "key:name", company_name_keys(column(co, "name"))),
    ]
    for table, email in (("sf_contact", "Email"), ("sf_lead", "Email"), ("hs_contact", "email")):
        frame = getattr(inputs, table)
        edges.append(
            _edge(
                table, _text(frame, RECORD_KEYS[table]), "key:email", normalize_emails(column(frame, email))
            )
        )
    return edges


@dataclass
class Focus:
    """The ids a chunk plans, by record table, and how the closure got there."""

    ids: Ids = field(default_factory=dict)
    rounds: int = 0

    def counts(self) -> dict[str, int]:
        return {table: len(self.ids.get(table, ())) for table in RECORD_KEYS}


def neighbourhood(inputs: RuleInputs, seeds: Mapping[str, Collection[str]]) -> Focus:
    """The closure of ``seeds`` (ids by record table) under every relation the rules read."""
    edges = [
        *_structure_edges(inputs),
        *_link_edges(inputs),
        *_association_edges(inputs),
        *_key_edges(inputs),
    ]
    tables = {*RECORD_KEYS, *(e.left for e in edges), *(e.right for e in edges)}
    ids: Ids = {t: set() for t in tables}
    for table, values in seeds.items():
        ids[table].update(str(v) for v in values)
    frontier = True
    rounds = 0
    while frontier and rounds < MAX_ROUNDS:
        rounds += 1
        frontier = False
        for edge in edges:
            for table, found in edge.pull(ids).items():
                ids[table] |= found
                frontier = True
    return Focus({t: v for t, v in ids.items() if not t.startswith("key:")}, rounds)


def _in(name: str, ids: Iterable[str]) -> RowMask:
    wanted = set(ids)

    def mask(frame: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.bool_]]:
        return _text(frame, name).isin(wanted).to_numpy(dtype=bool)

    return mask


def _links_mask(ids: Ids) -> RowMask:
    def mask(links: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.bool_]]:
        objects, sf_ids = _text(links, "object"), _text(links, "sf_id")
        keep = ~objects.isin(list(LINKED))  # reference links (record type <-> pipeline) stay whole
        for obj, (sf_table, _, _) in LINKED.items():
            keep |= (objects == obj) & sf_ids.isin(ids[sf_table])
        return keep.to_numpy(dtype=bool)

    return mask


def _associations_mask(ids: Ids) -> RowMask:
    def mask(assoc: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.bool_]]:
        from_type, from_id, _, _ = association_ends(assoc)
        keep = np.zeros(len(assoc), dtype=bool)
        for f_type, f_table in HS_TYPES.items():
            keep |= ((from_type == f_type) & from_id.isin(ids[f_table])).to_numpy(dtype=bool)
        return keep

    return mask


def row_masks(ids: Ids) -> dict[str, RowMask]:
    """Per :class:`RuleInputs` attribute, the rows a neighbourhood keeps; reference tables
    (users, owners, pipelines, stages, record types, picklist options) are not named: whole."""
    sf_ids = set().union(*(ids[LINKED[o][0]] for o in LINKED))
    opportunities = ids["sf_opportunity"]
    return {
        **{table: _in(key, ids[table]) for table, key in RECORD_KEYS.items()},
        "sf_opportunity_contact_role": _in("OpportunityId", opportunities),
        "hs_association": _associations_mask(ids),
        "links": _links_mask(ids),
        "snapshot": _in("sf_id", sf_ids),
        "imported": _in("sf_id", sf_ids),
        "association_snapshot": _in("opportunity_id", opportunities),
    }


def neighbourhood_view(focus: Focus) -> InputView:
    """Staging as a chunk plans it: only the rows of ``focus``'s neighbourhood, read while
    streaming so the rest of staging is never held."""
    return InputView(rows=row_masks(focus.ids))


def focus_inputs(inputs: RuleInputs, seeds: Mapping[str, Collection[str]]) -> tuple[RuleInputs, Focus]:
    """``inputs`` restricted to the neighbourhood of ``seeds`` (see the module docstring)."""
    focus = neighbourhood(inputs, seeds)
    focused = replace(inputs)
    for attribute, mask in row_masks(focus.ids).items():
        frame = getattr(inputs, attribute)
        setattr(focused, attribute, frame if frame.empty else frame[mask(frame)].reset_index(drop=True))
    return focused, focus


def whole_org_inputs(inputs: RuleInputs) -> RuleInputs:
    """What :data:`WHOLE_ORG_STAGES` read: reference tables, reference links and every
    Opportunity's record type; small, so a chunk can drop the rest of staging before planning."""
    opp = inputs.sf_opportunity
    links = inputs.links
    return RuleInputs(
        now=inputs.now,
        sf_record_type=inputs.sf_record_type,
        sf_opportunity_stage=inputs.sf_opportunity_stage,
        sf_opportunity=opp[[c for c in WHOLE_ORG_OPPORTUNITY_COLUMNS if c in opp.columns]],
        hs_pipeline=inputs.hs_pipeline,
        hs_pipeline_stage=inputs.hs_pipeline_stage,
        links=links[~_text(links, "object").isin(list(LINKED)).to_numpy()] if not links.empty else links,
        picklist_options=inputs.picklist_options,
    )
