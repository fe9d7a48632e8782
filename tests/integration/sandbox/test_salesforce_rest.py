"""Salesforce emulator REST resources, driven through the real simple-salesforce client.

Covers discovery (versions, resources, describe), sObject rows, upsert by external id, the
replication resources, limits, authentication, validation errors surfacing as simple-salesforce's
own exception classes, Lead assignment (OWN-2, OWN-3) and Airflow's SalesforceHook.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm_sandbox.generate import salesforce_id_checksum
from crm_sandbox.salesforce.testing import SandboxSession, sample, serve_salesforce, session_fixtures
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

sandbox, _fresh, sf = session_fixtures(airflow_env=True)


def one(sf: Any, soql: str) -> dict[str, Any]:
    records = sf.query(soql)["records"]
    assert len(records) == 1, records
    return dict(records[0])


def error_code(exc: pytest.ExceptionInfo[Any]) -> str:
    return str(exc.value.content[0]["errorCode"])


# -- discovery -----------------------------------------------------------------------------------


def test_versions_and_resources_are_listed(sandbox: SandboxSession, sf: Any) -> None:
    versions = sandbox.http().get(f"{sandbox.url}/services/data/").json()
    assert {"label": "API 59.0", "url": "/services/data/v59.0", "version": "59.0"} in versions
    resources = sf.restful("")
    assert resources["sobjects"] == "/services/data/v59.0/sobjects"
    assert resources["query"] == "/services/data/v59.0/query"


def test_every_api_version_is_served(sandbox: SandboxSession) -> None:
    old = sandbox.client(version="52.0")
    result = old.query("SELECT Id FROM Account WHERE Name = 'Globex'")
    assert result["records"][0]["attributes"]["url"].startswith("/services/data/v52.0/sobjects/Account/")


def test_global_describe_lists_the_emulated_objects(sf: Any) -> None:
    names = {o["name"]: o for o in sf.describe()["sobjects"]}
    assert set(names) >= {
        "User", "RecordType", "OpportunityStage", "Account", "Contact", "Lead", "Opportunity",
        "OpportunityContactRole",
    }  # fmt: skip
    assert names["Opportunity"]["keyPrefix"] == "006"
    assert names["Lead"]["keyPrefix"] == "00Q"
    assert sf.Account.metadata()["objectDescribe"]["keyPrefix"] == "001"


def test_describe_reports_fields_picklists_and_references(sf: Any) -> None:
    describe = sf.Opportunity.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    stage = fields["StageName"]
    assert stage["type"] == "picklist"
    assert stage["nillable"] is False
    values = [v["value"] for v in stage["picklistValues"]]
    assert values[0] == "Prospecting"
    assert "Closed Won" in values
    assert "Dormant" not in values  # inactive OpportunityStage
    hubspot = fields["HubSpot_Id__c"]
    assert (hubspot["externalId"], hubspot["unique"], hubspot["idLookup"]) == (True, True, True)
    account = fields["AccountId"]
    assert (account["type"], account["referenceTo"], account["relationshipName"]) == (
        "reference",
        ["Account"],
        "Account",
    )
    currency = fields["CurrencyIsoCode"]
    default = [v["value"] for v in currency["picklistValues"] if v["defaultValue"]]
    assert default == ["USD"]
    assert fields["IsWon"]["createable"] is False
    assert fields["Name"]["length"] == 120
    record_types = {rt["name"] for rt in describe["recordTypeInfos"]}
    assert {"New Business", "Renewal", "Master"} <= record_types
    lead_status = {f["name"]: f for f in sf.Lead.describe()["fields"]}["Status"]
    assert [v["value"] for v in lead_status["picklistValues"] if v["defaultValue"]] == [
        "Open - Not Contacted"
    ]


def test_only_objects_with_record_types_have_a_record_type_column() -> None:
    scenario = {
        "salesforce": {
            "RecordType": [{"Name": "Partner", "DeveloperName": "Partner", "SobjectType": "Account"}],
            "Account": [{"Name": "Typed"}],
            "Opportunity": [{"Name": "X", "StageName": "Prospecting", "CloseDate": "2026-01-01"}],
        }
    }
    with serve_salesforce(scenario) as endpoint:
        sf = endpoint.session.client()
        assert "RecordTypeId" not in {f["name"] for f in sf.Opportunity.describe()["fields"]}
        typed = sf.query("SELECT Name, RecordType.DeveloperName FROM Account")["records"][0]
        assert typed["RecordType"]["DeveloperName"] == "Partner"  # the default record type
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.query("SELECT Id, RecordType.Name FROM Opportunity")
        assert error_code(exc) == "INVALID_FIELD"


# -- rows ----------------------------------------------------------------------------------------


def test_create_get_update_delete_round_trip(sf: Any) -> None:
    created = sf.Account.create({"Name": "Hooli", "Website": "hooli.xyz", "NumberOfEmployees": 12})
    assert created["success"] is True
    assert created["errors"] == []
    rid = created["id"]
    assert len(rid) == 18
    assert rid.startswith("001")
    assert rid[15:] == salesforce_id_checksum(rid[:15])  # the real case-safe suffix

    ada = one(sf, "SELECT Id FROM User WHERE Username = 'ada@example.com'")["Id"]
    record = sf.Account.get(rid)
    assert record["Name"] == "Hooli"
    assert record["OwnerId"] == ada  # the session user: first active user of the scenario
    assert record["CreatedById"] == ada
    assert record["CurrencyIsoCode"] == "USD"
    assert record["IsDeleted"] is False
    assert record["CreatedDate"].endswith(".000+0000")
    assert sf.Account.get(rid[:15])["Id"] == rid  # 15-character ids are accepted
    assert set(sf.Account.get(rid, params={"fields": "Name,Website"})) == {"attributes", "Name", "Website"}

    assert sf.Account.update(rid, {"Website": "https://hooli.xyz", "NumberOfEmployees": None}) == 204
    record = sf.Account.get(rid)
    assert (record["Website"], record["NumberOfEmployees"]) == ("https://hooli.xyz", None)

    assert sf.Account.delete(rid) == 204
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Account.get(rid)
    assert error_code(exc) == "ENTITY_IS_DELETED"
    assert sf.query(f"SELECT Id FROM Account WHERE Id = '{rid}'")["totalSize"] == 0
    deleted = sf.query_all(f"SELECT Id, IsDeleted FROM Account WHERE Id = '{rid}'", include_deleted=True)
    assert deleted["records"][0]["IsDeleted"] is True


def test_post_to_a_record_is_not_allowed(sf: Any) -> None:
    globex = one(sf, "SELECT Id FROM Account WHERE Name = 'Globex'")["Id"]
    with pytest.raises(SalesforceGeneralError) as exc:
        sf.restful(f"sobjects/Account/{globex}", method="POST", json={"Name": "x"})
    assert exc.value.status == 405
    assert sf.Account.get(globex)["IsDeleted"] is False
    created = sf.restful("sobjects/Account/Id", method="POST", json={"Name": "Via Id"})  # API 37.0+ form
    assert sf.Account.get(created["id"])["Name"] == "Via Id"


def test_computed_and_derived_fields(sf: Any) -> None:
    cid = sf.Contact.create({"FirstName": "Eve", "LastName": "Evans"})["id"]
    assert sf.Contact.get(cid)["Name"] == "Eve Evans"
    acme = one(sf, "SELECT Id FROM Account WHERE Name = 'Acme Corp'")["Id"]
    oid = sf.Opportunity.create(
        {"Name": "Won", "StageName": "Closed Won", "CloseDate": "2026-02-01", "AccountId": acme, "Amount": 5}
    )["id"]
    won = sf.Opportunity.get(oid)
    assert (won["IsClosed"], won["IsWon"], won["Probability"], won["ForecastCategoryName"]) == (
        True,
        True,
        100.0,
        "Closed",
    )
    assert won["Amount"] == 5.0
    assert won["RecordTypeId"] == one(sf, "SELECT Id FROM RecordType WHERE Name = 'New Business'")["Id"]
    sf.Opportunity.update(oid, {"StageName": "Qualification"})
    reopened = sf.Opportunity.get(oid)
    assert (reopened["IsClosed"], reopened["IsWon"], reopened["Probability"]) == (False, False, 10.0)


def test_an_opportunity_has_one_primary_contact_role(sf: Any) -> None:
    """DEAL-6 reads contact roles; a new primary role demotes the previous one, as in Salesforce."""
    big = one(sf, "SELECT Id FROM Opportunity WHERE Name = 'Acme Big Deal'")["Id"]
    carol = one(sf, "SELECT Id FROM Contact WHERE LastName = 'Clark'")["Id"]
    created = sf.OpportunityContactRole.create({"OpportunityId": big, "ContactId": carol, "IsPrimary": True})
    role = created["id"]
    soql = f"SELECT Id, Contact.LastName FROM OpportunityContactRole WHERE OpportunityId = '{big}'"
    primaries = sf.query(soql + " AND IsPrimary = true")["records"]
    assert [(r["Id"], r["Contact"]["LastName"]) for r in primaries] == [(role, "Clark")]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.OpportunityContactRole.update(role, {"OpportunityId": big})
    assert error_code(exc) == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_every_write_stamps_the_modification_fields(sf: Any) -> None:
    before = one(sf, "SELECT Id, SystemModstamp, LastModifiedById FROM Account WHERE Name = 'Initech'")
    assert before["SystemModstamp"] == "2026-01-12T08:00:00.000+0000"
    sf.Account.update(before["Id"], {})  # a write that changes nothing still counts as a modification
    after = sf.Account.get(before["Id"])
    assert after["SystemModstamp"] > before["SystemModstamp"]
    assert after["LastModifiedDate"] == after["SystemModstamp"]


def test_upsert_creates_then_updates_by_external_id(sf: Any) -> None:
    created = sf.Account.upsert("HubSpot_Id__c/hs-new", {"Name": "Newco"}, raw_response=True)
    assert created.status_code == 201
    body = created.json()
    assert body["success"] is True
    assert body["created"] is True
    updated = sf.Account.upsert("HubSpot_Id__c/hs-new", {"Name": "Newco Inc"}, raw_response=True)
    assert updated.status_code == 200  # API 46.0+: 200 with a body
    assert updated.json() == {"id": body["id"], "success": True, "errors": [], "created": False}
    assert sf.Account.get_by_custom_id("HubSpot_Id__c", "hs-new")["Name"] == "Newco Inc"


def test_upsert_update_answers_204_before_api_46(sandbox: SandboxSession) -> None:
    sf = sandbox.client(version="45.0")
    assert sf.Account.upsert("HubSpot_Id__c/hs-acme", {"Industry": "Media"}) == 204
    assert sf.Account.get_by_custom_id("HubSpot_Id__c", "hs-acme")["Industry"] == "Media"


def test_external_id_matching_several_records_answers_300(sf: Any) -> None:
    with pytest.raises(SalesforceMoreThanOneRecord) as exc:
        sf.Account.upsert("HubSpot_Id__c/hs-dup", {"Name": "Umbrella"})
    assert exc.value.status == 300
    assert len(exc.value.content) == 2
    assert all(url.startswith("/services/data/v59.0/sobjects/Account/001") for url in exc.value.content)
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Account.get_by_custom_id("HubSpot_Id__c", "hs-dup")


def test_get_and_delete_by_external_id(sf: Any) -> None:
    globex = sf.Account.get_by_custom_id("HubSpot_Id__c", "HS-GLOBEX")  # case-insensitive, like a real org
    assert globex["Name"] == "Globex"
    assert sf.Account.delete("HubSpot_Id__c/hs-globex") == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get_by_custom_id("HubSpot_Id__c", "hs-globex")


def test_parent_reference_by_external_id(sf: Any) -> None:
    cid = sf.Contact.create({"LastName": "Ref", "Account": {"HubSpot_Id__c": "hs-globex"}})["id"]
    globex = one(sf, "SELECT Id FROM Account WHERE Name = 'Globex'")["Id"]
    assert sf.Contact.get(cid)["AccountId"] == globex
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Contact.create({"LastName": "Ref", "Account": {"HubSpot_Id__c": "hs-missing"}})
    assert error_code(exc) == "INVALID_FIELD"
    assert "Foreign key external ID: hs-missing not found" in exc.value.content[0]["message"]


def test_deleting_an_account_cascades_to_contacts_opportunities_and_roles(sf: Any) -> None:
    acme = one(sf, "SELECT Id FROM Account WHERE Name = 'Acme Corp'")["Id"]
    sf.Account.delete(acme)
    for soql in (
        f"SELECT Id FROM Contact WHERE AccountId = '{acme}'",
        f"SELECT Id FROM Opportunity WHERE AccountId = '{acme}'",
        "SELECT Id FROM OpportunityContactRole WHERE Opportunity.Name = 'Acme Big Deal'",
    ):
        assert sf.query(soql)["totalSize"] == 0
        deleted = sf.query_all(soql.replace("SELECT Id", "SELECT Id, IsDeleted"), include_deleted=True)[
            "records"
        ]
        assert deleted
        assert all(r["IsDeleted"] for r in deleted)


def test_converted_leads_cannot_be_updated(sf: Any) -> None:
    lead = one(sf, "SELECT Id, IsConverted, ConvertedContact.Email FROM Lead WHERE LastName = 'Converted'")
    assert lead["IsConverted"] is True
    assert lead["ConvertedContact"]["Email"] == "alice@acme.com"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Lead.update(lead["Id"], {"Title": "CEO"})
    assert error_code(exc) == "CANNOT_UPDATE_CONVERTED_LEAD"


# -- replication ---------------------------------------------------------------------------------


def test_updated_and_deleted_resources(sf: Any) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    rid = sf.Account.create({"Name": "Fresh"})["id"]
    globex = one(sf, "SELECT Id FROM Account WHERE Name = 'Globex'")["Id"]
    sf.Account.delete(globex)
    end = datetime.now(UTC) + timedelta(minutes=1)

    updated = sf.Account.updated(start, end)
    assert rid in updated["ids"]
    assert globex not in updated["ids"]
    assert set(updated) == {"ids", "latestDateCovered"}
    assert updated["latestDateCovered"].endswith(":00.000+0000")

    deleted = sf.Account.deleted(start, end)
    assert [r["id"] for r in deleted["deletedRecords"]] == [globex]
    assert set(deleted) == {"deletedRecords", "earliestDateAvailable", "latestDateCovered"}
    assert set(deleted["deletedRecords"][0]) == {"id", "deletedDate"}


def test_replication_window_is_validated(sf: Any) -> None:
    now = datetime.now(UTC)
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.updated(now - timedelta(days=31), now)
    assert error_code(exc) == "INVALID_REPLICATION_DATE"
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.deleted(now, now - timedelta(hours=1))
    assert error_code(exc) == "INVALID_REPLICATION_DATE"


# -- limits and sessions -------------------------------------------------------------------------


def test_limits_and_usage_header_count_every_call(sf: Any) -> None:
    first = sf.limits()["DailyApiRequests"]
    assert first["Max"] == 100_000
    sf.query("SELECT Id FROM Account")
    used_after_query = sf.api_usage["api-usage"].used
    assert sf.api_usage["api-usage"].total == 100_000
    second = sf.limits()["DailyApiRequests"]
    assert second["Remaining"] == first["Remaining"] - 2
    assert used_after_query == 100_000 - second["Remaining"] - 1


def test_daily_limit_exhausted_answers_403() -> None:
    with serve_salesforce(sample(), daily_api_limit=3) as endpoint:
        sf = endpoint.session.client()
        for _ in range(3):
            sf.query("SELECT Id FROM Account LIMIT 1")
        with pytest.raises(SalesforceRefusedRequest) as exc:
            sf.query("SELECT Id FROM Account LIMIT 1")
        assert error_code(exc) == "REQUEST_LIMIT_EXCEEDED"
        endpoint.session.reset()  # the sandbox reset restores the daily budget
        assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1


def test_sessions_outside_the_scenario_tokens_are_rejected() -> None:
    scenario = {**sample(), "tokens": ["good-session"]}
    with serve_salesforce(scenario) as endpoint:
        session = endpoint.session
        assert session.client("good-session").query("SELECT COUNT() FROM Account")["totalSize"] == 8
        with pytest.raises(SalesforceExpiredSession) as exc:
            session.client("stolen-session").query("SELECT COUNT() FROM Account")
        assert exc.value.content == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]


# -- validation errors ---------------------------------------------------------------------------


def _ids(sf: Any) -> dict[str, str]:
    return {
        "acme": one(sf, "SELECT Id FROM Account WHERE Name = 'Acme Corp'")["Id"],
        "ian": one(sf, "SELECT Id FROM User WHERE Username = 'ian@example.com'")["Id"],
        "legacy": one(sf, "SELECT Id FROM RecordType WHERE Name = 'Legacy'")["Id"],
    }


OPP = {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2026-05-01"}
WRITE_ERRORS = [
    ("Lead", {"LastName": "NoCompany"}, "REQUIRED_FIELD_MISSING", ["Company"]),
    ("Opportunity", {"Name": "Deal"}, "REQUIRED_FIELD_MISSING", ["StageName", "CloseDate"]),
    ("Account", {"Name": "X", "Colour__c": "red"}, "INVALID_FIELD", ["Colour__c"]),
    (
        "Opportunity",
        {**OPP, "StageName": "Won-ish"},
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ["StageName"],
    ),
    (
        "Opportunity",
        {**OPP, "StageName": "Dormant"},
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ["StageName"],
    ),
    (
        "Account",
        {"Name": "X", "CurrencyIsoCode": "XXX"},
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        ["CurrencyIsoCode"],
    ),
    ("Account", {"Name": "X", "OwnerId": "{ian}"}, "INACTIVE_OWNER_OR_USER", []),
    ("Account", {"Name": "X", "HubSpot_Id__c": "HS-ACME"}, "DUPLICATE_VALUE", ["HubSpot_Id__c"]),
    ("Contact", {"LastName": "X", "AccountId": "not-an-id"}, "MALFORMED_ID", ["AccountId"]),
    (
        "Contact",
        {"LastName": "X", "AccountId": "001000000000000AAA"},
        "INVALID_CROSS_REFERENCE_KEY",
        ["AccountId"],
    ),
    ("Contact", {"LastName": "X", "AccountId": "{ian}"}, "FIELD_INTEGRITY_EXCEPTION", ["AccountId"]),
    ("Opportunity", {**OPP, "RecordTypeId": "{legacy}"}, "INVALID_CROSS_REFERENCE_KEY", ["RecordTypeId"]),
    ("Contact", {"LastName": "X" * 81}, "STRING_TOO_LONG", ["LastName"]),
    ("Contact", {"LastName": "X", "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS", ["Email"]),
    ("Opportunity", {**OPP, "IsWon": True}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsWon"]),
    ("Account", {"Name": "X", "NumberOfEmployees": "many"}, "JSON_PARSER_ERROR", ["NumberOfEmployees"]),
]


@pytest.mark.parametrize(("sobject", "body", "code", "fields"), WRITE_ERRORS)
def test_invalid_writes_raise_salesforce_errors(
    sf: Any, sobject: str, body: dict[str, Any], code: str, fields: list[str]
) -> None:
    ids = _ids(sf)
    body = {k: v.format(**ids) if isinstance(v, str) and v.startswith("{") else v for k, v in body.items()}
    with pytest.raises(SalesforceMalformedRequest) as exc:
        getattr(sf, sobject).create(body)
    assert exc.value.status == 400
    assert exc.value.content[0]["errorCode"] == code
    assert exc.value.content[0]["fields"] == fields


def test_unknown_or_deleted_records_raise_not_found(sf: Any) -> None:
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Account.get("001000000000000AAA")
    assert error_code(exc) == "NOT_FOUND"
    with pytest.raises(SalesforceResourceNotFound):
        sf.NoSuchObject.get("001000000000000AAA")
    globex = one(sf, "SELECT Id FROM Account WHERE Name = 'Globex'")["Id"]
    sf.Account.delete(globex)
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Account.update(globex, {"Name": "Back"})
    assert error_code(exc) == "ENTITY_IS_DELETED"
    with pytest.raises(SalesforceResourceNotFound) as exc:
        sf.Account.delete(globex)
    assert error_code(exc) == "ENTITY_IS_DELETED"


def test_owner_change_to_inactive_user_is_refused(sf: Any) -> None:
    ids = _ids(sf)
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Account.update(ids["acme"], {"OwnerId": ids["ian"]})
    assert error_code(exc) == "INACTIVE_OWNER_OR_USER"


# -- lead assignment (OWN-2, OWN-3) --------------------------------------------------------------


def test_lead_assignment_header(sf: Any) -> None:
    """OWN-2/OWN-3: assignment rules run by default on REST, not with Sforce-Auto-Assign: FALSE."""
    users = {r["Username"]: r["Id"] for r in sf.query("SELECT Id, Username FROM User")["records"]}
    lead = {"LastName": "Prospect", "Company": "Prospectco"}

    default = sf.Lead.create(lead)["id"]
    assert sf.Lead.get(default)["OwnerId"] == users["rita@example.com"]  # the active rule's user

    off = sf.Lead.create(lead, headers={"Sforce-Auto-Assign": "FALSE"})["id"]
    assert sf.Lead.get(off)["OwnerId"] == users["ada@example.com"]  # the creating user

    chosen = sf.Lead.create(
        {**lead, "OwnerId": users["sam@example.com"]}, headers={"Sforce-Auto-Assign": "false"}
    )
    assert sf.Lead.get(chosen["id"])["OwnerId"] == users["sam@example.com"]

    partner_rule = one(sf, "SELECT Id FROM AssignmentRule WHERE Name = 'Partner leads'")["Id"]
    by_rule = sf.Lead.create(lead, headers={"Sforce-Auto-Assign": partner_rule})["id"]
    assert (
        sf.Lead.get(by_rule)["OwnerId"] == users["sam@example.com"]
    )  # a named rule applies even if inactive

    sf.Lead.update(off, {"Title": "VP"})  # updates run the rules too unless the header says FALSE
    assert sf.Lead.get(off)["OwnerId"] == users["rita@example.com"]
    sf.Lead.update(chosen["id"], {"Title": "VP"}, headers={"Sforce-Auto-Assign": "FALSE"})
    assert sf.Lead.get(chosen["id"])["OwnerId"] == users["sam@example.com"]


def test_without_an_active_rule_the_creating_user_owns_the_lead() -> None:
    scenario = sample()
    for rule in scenario["salesforce"]["AssignmentRule"]:
        rule["Active"] = False
    with serve_salesforce(scenario) as endpoint:
        sf = endpoint.session.client()
        ada = one(sf, "SELECT Id FROM User WHERE Username = 'ada@example.com'")["Id"]
        lid = sf.Lead.create({"LastName": "Prospect", "Company": "Prospectco"})["id"]
        assert sf.Lead.get(lid)["OwnerId"] == ada


# -- Airflow -------------------------------------------------------------------------------------


def test_airflow_salesforce_hook_reaches_the_emulator(sandbox: SandboxSession) -> None:
    from airflow.providers.salesforce.hooks.salesforce import SalesforceHook

    hook = SalesforceHook(salesforce_conn_id="salesforce_default", session_id="sandbox-session")
    result = hook.make_query("SELECT Id, Name FROM Account WHERE Industry = 'Technology'")
    assert [r["Name"] for r in result["records"]] == ["Acme Corp"]
    assert "HubSpot_Id__c" in hook.get_available_fields("Account")
    conn = hook.get_conn()
    assert conn.base_url == f"{sandbox.url}/services/data/v59.0/"
