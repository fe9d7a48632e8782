"""sObject collections (``/composite/sobjects``) in the Salesforce emulator, through
simple-salesforce's ``restful`` call: per-record results, ``allOrNone`` rollback, upsert by
external id (DEAL-5 relies on it), retrieve and the 200-record limit."""

from __future__ import annotations

from typing import Any

import pytest
from crm_sandbox.salesforce.testing import session_fixtures
from simple_salesforce.exceptions import SalesforceMalformedRequest

ROLLED_BACK = "ALL_OR_NONE_OPERATION_ROLLED_BACK"


sandbox, _fresh, sf = session_fixtures()


def rec(sobject: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": sobject}, **fields}


def account_id(sf: Any, name: str) -> str:
    return str(sf.query(f"SELECT Id FROM Account WHERE Name = '{name}'")["records"][0]["Id"])


def count(sf: Any, soql: str) -> int:
    return int(sf.query(soql)["totalSize"])


def test_create_collection_reports_each_record(sf: Any) -> None:
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": False,
            "records": [
                rec("Account", Name="Coll One"),
                rec("Contact", FirstName="No", Email="no@x.com"),  # LastName missing
                rec("Contact", LastName="Coll", Account={"HubSpot_Id__c": "hs-acme"}),
            ],
        },
    )
    assert results[0]["success"] is True
    assert results[0]["id"].startswith("001")
    assert results[1] == {
        "id": None,
        "success": False,
        "errors": [
            {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]",
             "fields": ["LastName"]}
        ],
    }  # fmt: skip
    assert results[2]["success"] is True
    contact = sf.Contact.get(results[2]["id"])
    assert contact["AccountId"] == account_id(sf, "Acme Corp")


def test_create_collection_all_or_none_rolls_back(sf: Any) -> None:
    before = count(sf, "SELECT Id FROM Account")
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": True,
            "records": [rec("Account", Name="Keep?"), rec("Account", Name="Bad", CurrencyIsoCode="XXX")],
        },
    )
    assert [r["success"] for r in results] == [False, False]
    rolled_back = (
        "Record rolled back because not all records were valid and the request was using AllOrNone header"
    )
    assert results[0] == {
        "id": None,
        "success": False,
        "errors": [{"statusCode": ROLLED_BACK, "message": rolled_back, "fields": []}],
    }
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert count(sf, "SELECT Id FROM Account") == before
    assert count(sf, "SELECT Id FROM Account WHERE Name = 'Keep?'") == 0


def test_update_collection_and_rollback_restores_values(sf: Any) -> None:
    acme, globex = account_id(sf, "Acme Corp"), account_id(sf, "Globex")
    ok = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "records": [rec("Account", Id=acme, Phone="+1 555"), rec("Account", Id=globex, Phone="+49 30")]
        },
    )
    assert [r["success"] for r in ok] == [True, True]
    assert [r["id"] for r in ok] == [acme, globex]
    assert sf.Account.get(globex)["Phone"] == "+49 30"

    mixed = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={
            "allOrNone": True,
            "records": [
                rec("Account", Id=acme, Phone="changed"),
                rec("Account", Id="001000000000000AAA", Phone="x"),
                rec("Account", Phone="no id"),
            ],
        },
    )
    assert [r["errors"][0]["statusCode"] for r in mixed] == [
        ROLLED_BACK,
        "INVALID_CROSS_REFERENCE_KEY",
        "MISSING_ARGUMENT",
    ]
    assert sf.Account.get(acme)["Phone"] == "+1 555"  # the first update was rolled back


def test_upsert_collection_by_external_id(sf: Any) -> None:
    """DEAL-5: the HubSpot deal id travels in HubSpot_Id__c, so a retried upsert never duplicates."""
    payload = {
        "allOrNone": False,
        "records": [
            rec("Opportunity", HubSpot_Id__c="hs-d-big", Amount=60000),
            rec(
                "Opportunity",
                HubSpot_Id__c="hs-d-new",
                Name="New",
                StageName="Prospecting",
                CloseDate="2026-09-01",
            ),
            rec(
                "Opportunity",
                HubSpot_Id__c="hs-d-twice",
                Name="A",
                StageName="Prospecting",
                CloseDate="2026-09-01",
            ),
            rec(
                "Opportunity",
                HubSpot_Id__c="hs-d-twice",
                Name="B",
                StageName="Prospecting",
                CloseDate="2026-09-01",
            ),
            rec("Opportunity", Name="No key", StageName="Prospecting", CloseDate="2026-09-01"),
        ],
    }
    results = sf.restful("composite/sobjects/Opportunity/HubSpot_Id__c", method="PATCH", json=payload)
    assert [(r["success"], r.get("created")) for r in results[:2]] == [(True, False), (True, True)]
    assert [r["errors"][0]["statusCode"] for r in results[2:]] == [
        "DUPLICATE_EXTERNAL_ID", "DUPLICATE_EXTERNAL_ID", "MISSING_ARGUMENT",
    ]  # fmt: skip
    assert sf.Opportunity.get_by_custom_id("HubSpot_Id__c", "hs-d-big")["Amount"] == 60000.0

    again = sf.restful("composite/sobjects/Opportunity/HubSpot_Id__c", method="PATCH", json=payload)
    assert again[1] == {"id": results[1]["id"], "success": True, "errors": [], "created": False}
    assert count(sf, "SELECT Id FROM Opportunity WHERE HubSpot_Id__c = 'hs-d-new'") == 1


def test_upsert_collection_with_ambiguous_external_id(sf: Any) -> None:
    results = sf.restful(
        "composite/sobjects/Account/HubSpot_Id__c",
        method="PATCH",
        json={"records": [rec("Account", HubSpot_Id__c="hs-dup", Phone="1")]},
    )
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"


def test_delete_collection(sf: Any) -> None:
    acme, globex = account_id(sf, "Acme Corp"), account_id(sf, "Globex")
    refused = sf.restful(
        "composite/sobjects", method="DELETE", params={"ids": f"{globex},not-an-id", "allOrNone": "true"}
    )
    assert [r["errors"][0]["statusCode"] for r in refused] == [ROLLED_BACK, "MALFORMED_ID"]
    assert count(sf, "SELECT Id FROM Account WHERE Name = 'Globex'") == 1

    results = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{acme},{globex},{globex}"})
    assert [r["success"] for r in results] == [True, True, False]
    assert results[2] == {"id": globex, "success": False, "errors": [
        {"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]}  # fmt: skip
    assert count(sf, "SELECT Id FROM Account WHERE Name IN ('Acme Corp', 'Globex')") == 0


def test_retrieve_collection(sf: Any) -> None:
    acme = account_id(sf, "Acme Corp")
    rows = sf.restful(
        "composite/sobjects/Account",
        params={"ids": f"{acme[:15]},001000000000000AAA", "fields": "Name,Industry"},
    )
    assert rows[0]["Name"] == "Acme Corp"
    assert rows[0]["Industry"] == "Technology"
    assert set(rows[0]) == {"attributes", "Name", "Industry"}
    assert rows[1] is None
    posted = sf.restful(
        "composite/sobjects/Account", method="POST", json={"ids": [acme], "fields": ["Website"]}
    )
    assert posted[0]["Website"] == "https://www.acme.com/about"


def test_collections_are_limited_to_200_records(sf: Any) -> None:
    records = [rec("Account", Name=f"A{i}") for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.restful("composite/sobjects", method="POST", json={"records": records})
    assert exc.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert count(sf, "SELECT Id FROM Account WHERE Name LIKE 'A%' AND Name != 'Acme Corp'") == 0
    results = sf.restful("composite/sobjects", method="POST", json={"records": records[:200]})
    assert len(results) == 200
    assert all(r["success"] for r in results)
