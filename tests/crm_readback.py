"""Reading both CRMs back through the real clients, as a user checking a sync would.

Tests assert what ended up in Salesforce and HubSpot, not what crm-sync believes it wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hubspot import HubSpot
from simple_salesforce.api import Salesforce


def salesforce_rows(
    sf: Salesforce, sobject: str, fields: Sequence[str], where: str = ""
) -> list[dict[str, Any]]:
    """Every ``sobject`` record (``Id`` plus ``fields``), via SOQL."""
    soql = f"SELECT Id, {', '.join(fields)} FROM {sobject}" + (f" WHERE {where}" if where else "")
    return [{k: v for k, v in r.items() if k != "attributes"} for r in sf.query_all(soql)["records"]]


def salesforce_one(sf: Salesforce, sobject: str, fields: Sequence[str], where: str) -> dict[str, Any]:
    """The single record matching ``where``; fails when there are none or several (a duplicate)."""
    rows = salesforce_rows(sf, sobject, fields, where)
    assert len(rows) == 1, f"{sobject} WHERE {where}: expected exactly one record, found {rows}"
    return rows[0]


def hubspot_rows(hs: HubSpot, object_type: str, properties: Sequence[str]) -> list[dict[str, Any]]:
    """Every ``object_type`` record (``id`` plus ``properties``), via the CRM objects API."""
    api = getattr(hs.crm, object_type)
    return [{"id": o.id, **(o.properties or {})} for o in api.get_all(properties=list(properties))]


def hubspot_one(hs: HubSpot, object_type: str, properties: Sequence[str], **match: str) -> dict[str, Any]:
    """The single record whose properties equal ``match``; fails on none or several."""
    rows = [
        r
        for r in hubspot_rows(hs, object_type, [*properties, *match])
        if all(r.get(k) == v for k, v in match.items())
    ]
    assert len(rows) == 1, f"{object_type} {match}: expected exactly one record, found {rows}"
    return rows[0]


def hubspot_associations(hs: HubSpot, from_type: str, from_id: str, to_type: str) -> set[str]:
    """Ids of the ``to_type`` records associated with one record (associations v4)."""
    page = hs.crm.associations.v4.basic_api.get_page(from_type, from_id, to_type, limit=500)
    return {str(r.to_object_id) for r in page.results}


def hubspot_pipelines(hs: HubSpot) -> dict[str, dict[str, str]]:
    """Deal pipelines by label: their stage ids by stage label, plus ``"_id"``."""
    result: dict[str, dict[str, str]] = {}
    for pipeline in hs.crm.pipelines.pipelines_api.get_all("deals").results:
        result[pipeline.label] = {"_id": pipeline.id, **{s.label: s.id for s in pipeline.stages}}
    return result


#: What identifies a record to a person, per object, and its link field (whose presence counts).
_SF_STATE: dict[str, tuple[tuple[str, ...], str]] = {
    "Account": (("Name", "Website", "OwnerId"), "HubSpot_Id__c"),
    "Contact": (("Email", "Phone", "AccountId"), "HubSpot_Id__c"),
    "Lead": (("Email", "Company", "OwnerId"), "HubSpot_Id__c"),
    "Opportunity": (("Name", "StageName", "Amount", "Type"), "HubSpot_Id__c"),
}
_HS_STATE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "companies": (("name", "domain", "hubspot_owner_id"), ("salesforceaccountid",)),
    "contacts": (("email", "jobtitle", "hubspot_owner_id"), ("salesforcecontactid", "salesforceleadid")),
    "deals": (("dealname", "amount", "dealtype", "dealstage"), ("salesforceopportunityid",)),
}


def crm_state(sf: Salesforce, hs: HubSpot) -> dict[str, list[tuple[Any, ...]]]:
    """Both CRMs as a person would compare them, without generated ids: a duplicate, a missing
    record, a missing link or a different value shows up as a difference."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    for sobject, (fields, link) in _SF_STATE.items():
        rows = salesforce_rows(sf, sobject, [*fields, link])
        state[f"salesforce.{sobject}"] = sorted(
            ((*tuple(str(r[f]) for f in fields), bool(r[link])) for r in rows), key=str
        )
    roles = salesforce_rows(sf, "OpportunityContactRole", ["Opportunity.Name", "Contact.Email"])
    state["salesforce.OpportunityContactRole"] = sorted(
        (str((r.get("Opportunity") or {}).get("Name")), str((r.get("Contact") or {}).get("Email")))
        for r in roles
    )
    for object_type, (props, links) in _HS_STATE.items():
        rows = hubspot_rows(hs, object_type, [*props, *links])
        state[f"hubspot.{object_type}"] = sorted(
            ((*tuple(str(r.get(p)) for p in props), any(r.get(k) for k in links)) for r in rows), key=str
        )
    deals = {r["id"]: r["dealname"] for r in hubspot_rows(hs, "deals", ["dealname"])}
    state["hubspot.deal_contacts"] = sorted(
        (name, len(hubspot_associations(hs, "deals", deal_id, "contacts"))) for deal_id, name in deals.items()
    )
    return state
