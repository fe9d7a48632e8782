"""The Salesforce emulator behaves like a default org where a sync notices it: picklists, the
custom External ID field an admin may not have created yet, and the usage header on writes.

Standard picklists are unrestricted in a default org (any value is stored); opportunity stages,
currencies and forecast categories are not. ``HubSpot_Id__c`` exists only where the admin made
it. Every REST answer, including per-record failures, carries ``Sforce-Limit-Info``.
"""

from __future__ import annotations

from typing import Any

import pytest
from crm_sandbox.salesforce.testing import SandboxSession, serve_salesforce, session_fixtures
from simple_salesforce.exceptions import SalesforceResourceNotFound

sandbox, _fresh, sf = session_fixtures()

UNRESTRICTED = [
    ("Account", "Industry"),
    ("Account", "Type"),
    ("Account", "Rating"),
    ("Lead", "LeadSource"),
    ("Lead", "Rating"),
    ("Lead", "Status"),
    ("Contact", "LeadSource"),
    ("Opportunity", "Type"),
    ("OpportunityContactRole", "Role"),
]
RESTRICTED = [
    ("Opportunity", "StageName"),
    ("Opportunity", "ForecastCategoryName"),
    ("Account", "CurrencyIsoCode"),
]


def describe_field(sf: Any, sobject: str, name: str) -> dict[str, Any]:
    fields = {f["name"]: f for f in getattr(sf, sobject).describe()["fields"]}
    return dict(fields[name])


@pytest.mark.parametrize(("sobject", "name"), UNRESTRICTED + RESTRICTED)
def test_describe_says_which_picklists_are_restricted(sf: Any, sobject: str, name: str) -> None:
    field = describe_field(sf, sobject, name)
    assert field["type"] == "picklist"
    assert field["restrictedPicklist"] is ((sobject, name) in RESTRICTED)
    assert field["picklistValues"], "the value list is still described"


def test_standard_picklists_store_values_outside_their_list(sf: Any) -> None:
    """REST, sObject Collections and Bulk API 2.0 all store an unknown Industry as given."""
    rest = sf.Account.create({"Name": "Rest", "Industry": "Alchemy", "Rating": "Lukewarm"})["id"]
    collection = sf.restful(
        "composite/sobjects/Account/HubSpot_Id__c",
        method="PATCH",
        json={"allOrNone": False, "records": [{"attributes": {"type": "Account"}, "Name": "Coll",
                                                "Industry": "Space Mining", "HubSpot_Id__c": "hs-mine"}]},
    )[0]  # fmt: skip
    bulk = sf.bulk2.Lead.insert(
        records=[{"LastName": "Bulk", "Company": "Co", "LeadSource": "Carrier Pigeon"}]
    )

    assert collection["success"] is True
    assert bulk[0]["numberRecordsFailed"] == 0
    assert sf.Account.get(rest)["Industry"] == "Alchemy"
    assert sf.Account.get(rest)["Rating"] == "Lukewarm"
    assert sf.Account.get(collection["id"])["Industry"] == "Space Mining"
    lead = sf.query("SELECT LeadSource FROM Lead WHERE LastName = 'Bulk'")["records"][0]
    assert lead["LeadSource"] == "Carrier Pigeon"


def test_restricted_picklists_still_reject_other_values_per_record(sf: Any) -> None:
    records = [
        {"attributes": {"type": "Opportunity"}, "Name": "Bad", "StageName": "Nearly Won",
         "CloseDate": "2026-05-01", "HubSpot_Id__c": "hs-bad"},
        {"attributes": {"type": "Opportunity"}, "Name": "Good", "StageName": "Prospecting",
         "CloseDate": "2026-05-01", "HubSpot_Id__c": "hs-good"},
    ]  # fmt: skip
    results = sf.restful(
        "composite/sobjects/Opportunity/HubSpot_Id__c",
        method="PATCH",
        json={"allOrNone": False, "records": records},
    )
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert (results[1]["success"], results[1]["created"]) == (True, True)


def test_collection_upsert_reports_created_then_updated(sandbox: SandboxSession) -> None:
    http = sandbox.http()
    url = f"{sandbox.url}/services/data/v59.0/composite/sobjects/Account/HubSpot_Id__c"
    body = {"allOrNone": False, "records": [{"attributes": {"type": "Account"}, "Name": "Twice",
                                              "HubSpot_Id__c": "hs-twice"}]}  # fmt: skip
    first = http.patch(url, json=body)
    second = http.patch(url, json=body)
    assert first.json()[0]["created"] is True
    assert second.json()[0]["created"] is False
    assert first.json()[0]["id"] == second.json()[0]["id"]
    used = [int(r.headers["Sforce-Limit-Info"].split("=")[1].split("/")[0]) for r in (first, second)]
    assert used[1] == used[0] + 1


def test_an_org_without_the_external_id_field_has_no_such_field() -> None:
    """An admin created ``HubSpot_Id__c`` on Account only: the other objects lack it everywhere."""
    with serve_salesforce({"salesforce": {}}, hubspot_id_objects=["Account"]) as endpoint:
        sf = endpoint.session.client()
        assert "HubSpot_Id__c" in {f["name"] for f in sf.Account.describe()["fields"]}
        assert "HubSpot_Id__c" not in {f["name"] for f in sf.Lead.describe()["fields"]}
        with pytest.raises(SalesforceResourceNotFound):
            sf.Lead.upsert("HubSpot_Id__c/hs-1", {"LastName": "L", "Company": "C"})
        with pytest.raises(SalesforceResourceNotFound):
            sf.restful(
                "composite/sobjects/Lead/HubSpot_Id__c",
                method="PATCH",
                json={"records": [{"attributes": {"type": "Lead"}, "HubSpot_Id__c": "x", "LastName": "L"}]},
            )
        job = endpoint.session.http().post(
            f"{endpoint.url}/services/data/v59.0/jobs/ingest",
            json={"object": "Lead", "operation": "upsert", "externalIdFieldName": "HubSpot_Id__c"},
        )
        assert job.status_code == 400
        assert job.json()[0]["errorCode"] == "INVALIDJOB"


def test_error_answers_carry_the_usage_header_too(sandbox: SandboxSession) -> None:
    """A sync reads its allowance from every answer, failures included."""
    http = sandbox.http()
    base = f"{sandbox.url}/services/data/v59.0"
    malformed = http.patch(f"{base}/composite/sobjects/Account/HubSpot_Id__c", data=b"{not json")
    missing = http.get(f"{base}/sobjects/Account/001000000000000AAA")
    assert (malformed.status_code, missing.status_code) == (400, 404)
    for answer in (malformed, missing):
        assert answer.headers["Sforce-Limit-Info"].startswith("api-usage=")
