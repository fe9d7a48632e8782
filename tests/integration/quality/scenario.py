"""A small org and portal built for the quality tests: every figure the report shows is known.

Two Accounts linked to two companies, two Contacts linked to two contacts, one Opportunity linked
to one deal (with its contact role, association and pipeline), all owned by Alice on both sides,
and two unlinked Accounts that are probable duplicates (ACC-6). ``clean=True`` makes every
synced field agree; otherwise :data:`MISMATCHES` are seeded and one HubSpot contact has an
invalid email (quarantinable). HubSpot calculates its deal rollups itself (the emulator, like
HubSpot, from the associated deals), so they follow the deal's amount there.
"""

from __future__ import annotations

import copy
from typing import Any

from crm_sync.rules.normalize import salesforce_id18


def _sf_id(base15: str) -> str:
    """A valid 18-character Salesforce id from its 15-character form (the emulator checks ids)."""
    full = salesforce_id18(base15)
    assert full is not None
    return full


ALICE_SF = _sf_id("005Dm0000ALICE0")
INTEGRATION_SF = _sf_id("005Dm0000INTEGR")
RECORD_TYPE = _sf_id("012Dm0000RTNEWB")
ACME, GLOBEX = _sf_id("001Dm0000ACME00"), _sf_id("001Dm0000GLOBEX")
DUP_OLD, DUP_NEW = _sf_id("001Dm0000INITE1"), _sf_id("001Dm0000INITE2")
ANN, BOB = _sf_id("003Dm0000ANN000"), _sf_id("003Dm0000BOB000")
OPP = _sf_id("006Dm0000ACMEOP")
AUDIT = {"CreatedDate": "2026-02-01T09:00:00.000+0000", "LastModifiedDate": "2026-02-01T09:00:00.000+0000"}
AUDIT["SystemModstamp"] = AUDIT["LastModifiedDate"]
HS_AT = {"createdAt": "2026-02-01T09:00:00.000Z", "updatedAt": "2026-02-01T09:00:00.000Z"}

#: What differs in the mismatch variant: (object, field, kind, sf_id, hs_id, salesforce, hubspot).
MISMATCHES: tuple[tuple[str, str, str, str, str, Any, Any], ...] = (
    ("Account / companies", "Name", "mismatch", ACME, "1001", "Acme Logistics", "Acme Logistics Inc"),
    ("Contact / contacts", "Phone", "mismatch", BOB, "2002", "+1 212 555 0100", "+1 212 555 0199"),
    ("Contact / contacts", "Title", "missing_hubspot", ANN, "2001", "CFO", None),
    ("Opportunity / deals", "Amount", "mismatch", OPP, "3001", 5000.0, 4500.0),
)
#: The invalid email of the mismatch variant's unlinked HubSpot contact.
BAD_EMAIL_CONTACT = ("2003", "carl(at)initech.com")


def _salesforce() -> dict[str, list[dict[str, Any]]]:
    user = {"IsActive": True, **AUDIT}
    return {
        "User": [
            {
                "Id": INTEGRATION_SF,
                "Username": "integration@northwind-demo.com",
                "FirstName": "Integration",
                "LastName": "User",
                "Email": "integration@northwind-demo.com",
                "Alias": "integ",
                **user,
            },
            {
                "Id": ALICE_SF,
                "Username": "alice@northwind-demo.com",
                "FirstName": "Alice",
                "LastName": "Nguyen",
                "Email": "alice@northwind-demo.com",
                "Alias": "alice",
                **user,
            },
        ],
        "RecordType": [
            {
                "Id": RECORD_TYPE,
                "Name": "New Business",
                "DeveloperName": "New_Business",
                "SobjectType": "Opportunity",
                "IsActive": True,
                **AUDIT,
            },
        ],
        "OpportunityStage": [
            {
                "ApiName": "Prospecting",
                "MasterLabel": "Prospecting",
                "SortOrder": 1,
                "DefaultProbability": 10,
                "IsClosed": False,
                "IsWon": False,
                "IsActive": True,
            },
            {
                "ApiName": "Closed Won",
                "MasterLabel": "Closed Won",
                "SortOrder": 2,
                "DefaultProbability": 100,
                "IsClosed": True,
                "IsWon": True,
                "IsActive": True,
            },
        ],
        "Account": [
            {
                "Id": ACME,
                "Name": "Acme Logistics",
                "Website": "https://www.acmelogistics.com",
                "BillingCity": "Chicago",
                "OwnerId": ALICE_SF,
                "HubSpot_Id__c": "1001",
                **AUDIT,
            },
            {
                "Id": GLOBEX,
                "Name": "Globex",
                "Website": "globex.com",
                "OwnerId": ALICE_SF,
                "HubSpot_Id__c": "1002",
                **AUDIT,
            },
            {
                "Id": DUP_OLD,
                "Name": "Initech LLC",
                "Website": "https://initech.com",
                "OwnerId": ALICE_SF,
                **AUDIT,
            },
            {
                "Id": DUP_NEW,
                "Name": "Initech, Inc.",
                "Website": "http://www.initech.com/about",
                "OwnerId": ALICE_SF,
                **AUDIT,
                "LastModifiedDate": "2026-03-01T09:00:00.000+0000",
                "SystemModstamp": "2026-03-01T09:00:00.000+0000",
            },
        ],
        "Contact": [
            {
                "Id": ANN,
                "FirstName": "Ann",
                "LastName": "Lee",
                "Email": "ann@acmelogistics.com",
                "Title": "CFO",
                "AccountId": ACME,
                "OwnerId": ALICE_SF,
                "HubSpot_Id__c": "2001",
                **AUDIT,
            },
            {
                "Id": BOB,
                "FirstName": "Bob",
                "LastName": "Ray",
                "Email": "bob@globex.com",
                "Phone": "+1 212 555 0100",
                "AccountId": GLOBEX,
                "OwnerId": ALICE_SF,
                "HubSpot_Id__c": "2002",
                **AUDIT,
            },
        ],
        "Opportunity": [
            {
                "Id": OPP,
                "Name": "Acme - Fleet",
                "AccountId": ACME,
                "RecordTypeId": RECORD_TYPE,
                "StageName": "Closed Won",
                "CloseDate": "2026-03-31",
                "Amount": 5000.0,
                "CurrencyIsoCode": "USD",
                "OwnerId": ALICE_SF,
                "HubSpot_Id__c": "3001",
                **AUDIT,
            },
        ],
        "OpportunityContactRole": [
            {"OpportunityId": OPP, "ContactId": ANN, "Role": "Decision Maker", **AUDIT}
        ],
    }


def _hubspot() -> dict[str, Any]:
    return {
        "owners": [
            {
                "id": "901",
                "email": "alice@northwind-demo.com",
                "firstName": "Alice",
                "lastName": "Nguyen",
                "userId": 7001,
                "archived": False,
                **HS_AT,
            },
        ],
        "pipelines": {
            "deals": [
                {
                    "id": "101",
                    "label": "Salesforce - Standard pipeline",
                    "displayOrder": 1,
                    "stages": [
                        {
                            "id": "s-prospecting",
                            "label": "Prospecting",
                            "displayOrder": 0,
                            "metadata": {"probability": "0.1", "isClosed": "false"},
                        },
                        {
                            "id": "s-won",
                            "label": "Closed Won",
                            "displayOrder": 1,
                            "metadata": {"probability": "1.0", "isClosed": "true"},
                        },
                    ],
                },
            ]
        },
        "companies": [
            {
                "id": "1001",
                "properties": {
                    "name": "Acme Logistics",
                    "domain": "acmelogistics.com",
                    "city": "Chicago",
                    "hubspot_owner_id": "901",
                    "salesforceaccountid": ACME,
                },
                **HS_AT,
            },
            {
                "id": "1002",
                "properties": {
                    "name": "Globex",
                    "domain": "globex.com",
                    "hubspot_owner_id": "901",
                    "salesforceaccountid": GLOBEX,
                },
                **HS_AT,
            },
        ],
        "contacts": [
            {
                "id": "2001",
                "properties": {
                    "email": "ann@acmelogistics.com",
                    "firstname": "Ann",
                    "lastname": "Lee",
                    "jobtitle": "CFO",
                    "hubspot_owner_id": "901",
                    "lifecyclestage": "customer",
                    "salesforcecontactid": ANN,
                },
                **HS_AT,
            },
            {
                "id": "2002",
                "properties": {
                    "email": "bob@globex.com",
                    "firstname": "Bob",
                    "lastname": "Ray",
                    "phone": "+1 212 555 0100",
                    "hubspot_owner_id": "901",
                    "lifecyclestage": "customer",
                    "salesforcecontactid": BOB,
                },
                **HS_AT,
            },
        ],
        "deals": [
            {
                "id": "3001",
                "properties": {
                    "dealname": "Acme - Fleet",
                    "amount": "5000",
                    "closedate": "2026-03-31T00:00:00.000Z",
                    "pipeline": "101",
                    "dealstage": "s-won",
                    "hubspot_owner_id": "901",
                    "deal_currency_code": "USD",
                    "salesforceopportunityid": OPP,
                },
                **HS_AT,
            },
        ],
        "associations": [
            {"from": ["contacts", "2001"], "to": ["companies", "1001"], "typeId": 1},
            {"from": ["contacts", "2002"], "to": ["companies", "1002"], "typeId": 1},
            {"from": ["deals", "3001"], "to": ["contacts", "2001"], "typeId": 3},
            {"from": ["deals", "3001"], "to": ["companies", "1001"], "typeId": 5},
        ],
    }


def build(*, clean: bool) -> dict[str, Any]:
    """The scenario (see the module docstring)."""
    scenario = {"salesforce": _salesforce(), "hubspot": _hubspot()}
    if clean:
        return scenario
    hs = scenario["hubspot"]
    hs["companies"][0]["properties"]["name"] = "Acme Logistics Inc"
    hs["contacts"][1]["properties"]["phone"] = "+1 212 555 0199"
    del hs["contacts"][0]["properties"]["jobtitle"]
    hs["deals"][0]["properties"]["amount"] = "4500"
    contact_id, email = BAD_EMAIL_CONTACT
    hs["contacts"].append(
        {
            "id": contact_id,
            "properties": {
                "email": email,
                "firstname": "Carl",
                "lastname": "Ortiz",
                "lifecyclestage": "customer",
                "hubspot_owner_id": "901",
            },
            **HS_AT,
        }
    )
    return scenario


def with_quarantined_pair(scenario: dict[str, Any]) -> dict[str, Any]:
    """``scenario`` with the linked HubSpot contact 2002 (Bob) holding an invalid email: validation
    holds back every write to or from that pair, so its differences outlive the sync."""
    out = copy.deepcopy(scenario)
    bob = next(c for c in out["hubspot"]["contacts"] if c["id"] == "2002")
    bob["properties"]["email"] = "bob(at)globex.com"
    return out


def with_bad_emails(scenario: dict[str, Any], good: int, bad: int) -> dict[str, Any]:
    """``scenario`` plus unlinked HubSpot contacts, ``bad`` of them with an invalid email."""
    out = copy.deepcopy(scenario)
    for i in range(good + bad):
        email = f"lead{i}(at)example.com" if i < bad else f"lead{i}@example.com"
        out["hubspot"]["contacts"].append(
            {
                "id": str(5000 + i),
                "properties": {
                    "email": email,
                    "firstname": "Lead",
                    "lastname": str(i),
                    "lifecyclestage": "customer",
                    "hubspot_owner_id": "901",
                },
                **HS_AT,
            }
        )
    return out
