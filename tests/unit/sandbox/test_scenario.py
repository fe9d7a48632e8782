"""Scenario files: shape errors name the bad key; the bundled demo is whole and covers the rules.

The demo (``include/crm_sandbox/scenarios/demo.json``) is what ``make demo`` runs and what the
rule tests lean on, so its promises are checked here: every reference resolves, the integration
user comes first, and the situations its README claims for each rule are really in the data.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from crm_sandbox.generate import KEY_PREFIXES, is_valid_salesforce_id
from crm_sandbox.scenario import (
    ScenarioError,
    bundled_path,
    bundled_scenarios,
    load_scenario,
    record_counts,
    resolve_scenario_path,
    validate_scenario,
)

SYNC_ENABLED_AT = "2026-01-01"


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    return load_scenario("demo")


# -- shape errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "where"),
    [
        ([], "scenario: must be an object"),
        ({"salesfroce": {}}, "salesfroce: unknown key"),
        ({"salesforce": []}, "salesforce: must be an object"),
        ({"salesforce": {"Acount": []}}, "salesforce.Acount: unknown key"),
        ({"salesforce": {"Account": {}}}, "salesforce.Account: must be a list"),
        ({"salesforce": {"Account": [{"Name": "a"}, "b"]}}, r"salesforce.Account\[1\]: must be an object"),
        ({"salesforce": {"Account": [{"Id": "001"}]}}, r"salesforce.Account\[0\].Id: must be a 15- or 18"),
        (
            {"salesforce": {"Account": [{"Id": "001000000000001AAA"}, {"Id": "001000000000001AAA"}]}},
            r"salesforce.Account\[1\].Id: duplicate Id",
        ),
        ({"hubspot": {"company": []}}, "hubspot.company: unknown key"),
        ({"hubspot": {"companies": [{"id": "abc"}]}}, r"hubspot.companies\[0\].id: must be numeric"),
        ({"hubspot": {"contacts": [{"id": 1}, {"id": "1"}]}}, r"hubspot.contacts\[1\].id: duplicate id 1"),
        ({"hubspot": {"deals": [{"properties": []}]}}, r"hubspot.deals\[0\].properties: must be an object"),
        ({"hubspot": {"deals": [{"props": {}}]}}, r"hubspot.deals\[0\].props: unknown key"),
        ({"hubspot": {"pipelines": {"tickets": []}}}, "hubspot.pipelines.tickets: unknown key"),
        (
            {"hubspot": {"pipelines": {"deals": [{"stages": []}]}}},
            r"hubspot.pipelines.deals\[0\].label: is required",
        ),
        (
            {"hubspot": {"pipelines": {"deals": [{"label": "P", "stages": [{"id": "s"}]}]}}},
            r"hubspot.pipelines.deals\[0\].stages\[0\].label: is required",
        ),
        (
            {"hubspot": {"associations": [{"from": ["contact", "1"], "to": ["companies", "2"]}]}},
            r"hubspot.associations\[0\].from: must be",
        ),
        (
            {
                "hubspot": {
                    "associations": [{"from": ["contacts", "1"], "to": ["companies", "2"], "typeId": "1"}]
                }
            },
            r"hubspot.associations\[0\].typeId: must be an integer",
        ),
        ({"hubspot": {"properties": {"tickets": []}}}, "hubspot.properties.tickets: unknown key"),
        ({"tokens": ["ok", ""]}, r"tokens\[1\]: must be a non-empty string"),
    ],
)
def test_shape_errors_name_the_key(scenario: Any, where: str) -> None:
    with pytest.raises(ScenarioError, match=where):
        validate_scenario(scenario, source="test.json")


def test_error_message_names_the_file() -> None:
    with pytest.raises(ScenarioError, match=r"^my-file.json: salesforce.Acount"):
        validate_scenario({"salesforce": {"Acount": []}}, source="my-file.json")


def test_a_valid_scenario_is_returned_unchanged() -> None:
    scenario = {
        "description": "two records",
        "salesforce": {"Account": [{"Name": "Acme"}], "AssignmentRule": []},
        "hubspot": {
            "owners": [{"id": "1", "email": "a@b.c"}],
            "companies": [{"id": "10", "properties": {"name": "Acme"}, "archived": True}],
            "associations": [],
        },
        "tokens": ["secret"],
    }
    before = copy.deepcopy(scenario)
    assert validate_scenario(scenario) is scenario
    assert scenario == before


def test_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "salesforce": {,\n}\n')
    with pytest.raises(ScenarioError, match=r"broken.json: not valid JSON: .* line 2 column"):
        load_scenario(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "missing.json")


def test_an_unknown_bundled_name_lists_the_bundled_ones() -> None:
    with pytest.raises(ScenarioError, match=r"no bundled scenario 'dmeo'; bundled: .*demo"):
        load_scenario("dmeo")


def test_bundled_scenarios_resolve_by_name_or_path(tmp_path: Path) -> None:
    assert "demo" in bundled_scenarios()
    assert resolve_scenario_path("demo") == bundled_path("demo")
    copy_path = tmp_path / "demo"  # a real file wins over a bundled name
    copy_path.write_text("{}")
    assert resolve_scenario_path(copy_path) == copy_path


def test_record_counts() -> None:
    counts = record_counts(
        {
            "salesforce": {"Account": [{}, {}], "Lead": []},
            "hubspot": {"deals": [{}], "pipelines": {"deals": [{"label": "x"}]}},
        }
    )
    assert counts == {"salesforce.Account": 2, "hubspot.deals": 1, "hubspot.pipelines": 1}


# -- the bundled demo ------------------------------------------------------------------------------


def _ids(demo: dict[str, Any], obj: str) -> set[str]:
    return {r["Id"] for r in demo["salesforce"][obj]}


def _by_id(records: list[dict[str, Any]], key: str = "Id") -> dict[str, dict[str, Any]]:
    return {str(r[key]): r for r in records}


def test_demo_integration_user_is_first_and_active(demo: dict[str, Any]) -> None:
    first = demo["salesforce"]["User"][0]
    assert first["Email"] == "integration@northwind-demo.com"
    assert first["IsActive"] is True


def test_demo_ids_are_valid(demo: dict[str, Any]) -> None:
    for obj, records in demo["salesforce"].items():
        for record in records:
            assert is_valid_salesforce_id(record["Id"], KEY_PREFIXES[obj]), (obj, record["Id"])


def test_demo_references_resolve(demo: dict[str, Any]) -> None:
    sf, hs = demo["salesforce"], demo["hubspot"]
    users, accounts, contacts = _ids(demo, "User"), _ids(demo, "Account"), _ids(demo, "Contact")
    opportunities, record_types = _ids(demo, "Opportunity"), _ids(demo, "RecordType")
    for obj in ("Account", "Contact", "Lead", "Opportunity"):
        for record in sf[obj]:
            assert record["OwnerId"] in users, record["Id"]
    for rule in sf["AssignmentRule"]:
        assert rule["AssignToId"] in users
    for record in sf["Contact"]:
        assert record.get("AccountId") is None or record["AccountId"] in accounts
    for record in sf["Opportunity"]:
        assert record["AccountId"] in accounts
        assert record["RecordTypeId"] in record_types
    for record in sf["OpportunityContactRole"]:
        assert record["OpportunityId"] in opportunities
        assert record["ContactId"] in contacts
    owners = {o["id"] for o in hs["owners"]}
    hs_ids = {kind: {r["id"] for r in hs[kind]} for kind in ("companies", "contacts", "deals")}
    for kind in hs_ids:
        for record in hs[kind]:
            owner = record["properties"].get("hubspot_owner_id")
            assert owner is None or owner in owners
    for assoc in hs["associations"]:
        for kind, record_id in (assoc["from"], assoc["to"]):
            assert record_id in hs_ids[kind], assoc
    links = {
        "salesforceaccountid": accounts,
        "salesforcecontactid": contacts,
        "salesforceleadid": _ids(demo, "Lead"),
        "salesforceopportunityid": opportunities,
    }
    for kind in hs_ids:
        for record in hs[kind]:
            for prop, targets in links.items():
                if prop in record["properties"]:
                    assert record["properties"][prop] in targets, (kind, record["id"], prop)
    for obj, kind in (("Account", "companies"), ("Contact", "contacts"), ("Opportunity", "deals")):
        for record in sf[obj]:
            if "HubSpot_Id__c" in record:
                assert record["HubSpot_Id__c"] in hs_ids[kind], record["Id"]


def test_demo_loads_into_both_emulators(demo: dict[str, Any]) -> None:
    from crm_sandbox.server import build_apps

    salesforce_app, hubspot_app = build_apps(demo)
    assert salesforce_app is not None
    assert hubspot_app is not None


def test_demo_covers_the_sync_enabled_at_boundary(demo: dict[str, Any]) -> None:
    """ACC-1/ACC-2/DEAL-9: records created before and after, and old ones modified after."""
    for obj in ("Account", "Opportunity"):
        records = demo["salesforce"][obj]
        before = [r for r in records if r["CreatedDate"] < SYNC_ENABLED_AT]
        after = [r for r in records if r["CreatedDate"] >= SYNC_ENABLED_AT]
        touched = [r for r in before if r["LastModifiedDate"] >= SYNC_ENABLED_AT]
        untouched = [r for r in before if r["LastModifiedDate"] < SYNC_ENABLED_AT]
        assert before, obj
        assert after, obj
        assert touched, obj
        assert untouched, obj


def test_demo_owner_situations(demo: dict[str, Any]) -> None:
    """OWN-1/OWN-2: exact (after case/space folding), name-only, inactive-user and no-user owners."""
    users = demo["salesforce"]["User"]

    def fold(text: str) -> str:
        return " ".join(text.split()).casefold()

    kinds = set()
    for owner in demo["hubspot"]["owners"]:
        name = (fold(owner["firstName"]), fold(owner["lastName"]))
        same_name = [u for u in users if (fold(u["FirstName"]), fold(u["LastName"])) == name]
        same_email = [u for u in users if fold(u["Email"]) == fold(owner["email"])]
        if same_name and same_email and same_name == same_email:
            kinds.add("exact-active" if same_name[0]["IsActive"] else "exact-inactive")
            if owner["email"] != same_email[0]["Email"]:
                kinds.add("exact-after-folding")
        elif same_name:
            kinds.add("name-only")
        elif same_email:
            kinds.add("email-only")
        else:
            kinds.add("no-user")
    assert kinds == {
        "exact-active",
        "exact-inactive",
        "exact-after-folding",
        "name-only",
        "email-only",
        "no-user",
    }
    unowned = [c for c in demo["hubspot"]["contacts"] if "hubspot_owner_id" not in c["properties"]]
    assert unowned, "OWN-3 needs unowned HubSpot records"


def test_demo_duplicate_accounts(demo: dict[str, Any]) -> None:
    """ACC-6: a website group (www./scheme/Inc./case) with a linked member, and a name-only group."""
    accounts = demo["salesforce"]["Account"]
    wayne = [a for a in accounts if "wayne" in a["Name"].lower()]
    assert len({a["Website"] for a in wayne}) == 3
    assert sum("HubSpot_Id__c" in a for a in wayne) == 1
    hooli = [a for a in accounts if a["Name"].lower().startswith("hooli")]
    assert len(hooli) == 2
    assert any("Website" not in a for a in hooli)


def test_demo_deal_situations(demo: dict[str, Any]) -> None:
    """DEAL-2..DEAL-8 need these records; the README promises them."""
    sf, hs = demo["salesforce"], demo["hubspot"]
    pipelines = {p["id"]: p["label"] for p in hs["pipelines"]["deals"]}
    rt_names = {rt["Name"] for rt in sf["RecordType"]}
    assert len(rt_names) >= 2
    # DEAL-2: at least one record type has no pipeline yet
    assert rt_names - {label.removeprefix("Salesforce - ") for label in pipelines.values()}
    opps = _by_id(sf["Opportunity"])
    deals = hs["deals"]
    # DEAL-4: a deleted opportunity that is linked, and an archived deal that is linked
    assert any(o.get("IsDeleted") and "HubSpot_Id__c" in o for o in opps.values())
    assert any(d.get("archived") and "salesforceopportunityid" in d["properties"] for d in deals)
    # DEAL-3: a deal in a pipeline that is not synced, one of them linked (moved out)
    unsynced = [d for d in deals if not pipelines[d["properties"]["pipeline"]].startswith("Salesforce - ")]
    assert any("salesforceopportunityid" in d["properties"] for d in unsynced)
    assert any("salesforceopportunityid" not in d["properties"] for d in unsynced)
    # DEAL-5: unlinked deals in synced pipelines
    assert any(
        "salesforceopportunityid" not in d["properties"]
        and pipelines[d["properties"]["pipeline"]].startswith("Salesforce - ")
        for d in deals
    )
    # DEAL-8: both currencies
    assert {"EUR", "USD"} <= {o["CurrencyIsoCode"] for o in opps.values()}
    # DEAL-6: contact roles
    assert len(sf["OpportunityContactRole"]) >= 5


def test_demo_rollup_story(demo: dict[str, Any]) -> None:
    """ROLL-4: Wile's won deals were created and closed in opposite orders; ROLL-6: Road Runner has none."""
    sf = demo["salesforce"]
    contacts = {f"{c['FirstName']} {c['LastName']}": c["Id"] for c in sf["Contact"]}
    opps = _by_id(sf["Opportunity"])
    roles = sf["OpportunityContactRole"]

    def won(contact: str) -> list[dict[str, Any]]:
        ids = {r["OpportunityId"] for r in roles if r["ContactId"] == contacts[contact]}
        return [opps[i] for i in ids if opps[i]["StageName"] == "Closed Won"]

    wile = won("Wile E. Coyote")
    assert len(wile) == 2
    by_created = max(wile, key=lambda o: o["CreatedDate"])
    by_closed = max(wile, key=lambda o: o["CloseDate"])
    assert by_created["Id"] != by_closed["Id"]
    assert won("Road Runner") == []


def test_demo_contact_matching_situations(demo: dict[str, Any]) -> None:
    """CON-1: an email on both a Contact and a Lead; one on several Contacts; CON-2: one with no email."""
    sf = demo["salesforce"]
    contact_emails = [c["Email"].lower() for c in sf["Contact"]]
    lead_emails = {lead["Email"].lower() for lead in sf["Lead"]}
    hs_emails = [c["properties"].get("email") for c in demo["hubspot"]["contacts"]]
    assert any(e in lead_emails and e in contact_emails for e in hs_emails if e)
    assert any(e and contact_emails.count(e) > 1 for e in hs_emails)
    assert None in hs_emails


def test_demo_readme_names_every_rule() -> None:
    readme = bundled_path("demo").with_name("README.md").read_text(encoding="utf-8")
    table = {m.group(1) for m in re.finditer(r"^\| \*\*([A-Z]+-\d+)", readme, flags=re.MULTILINE)}
    ranges = {m.group(1) for m in re.finditer(r"^\| \*\*([A-Z]+-\d+\.\.\d+)", readme, flags=re.MULTILINE)}
    expected = (
        {f"OWN-{i}" for i in range(1, 6)}
        | {f"CON-{i}" for i in range(1, 4)}
        | {f"ACC-{i}" for i in range(1, 9)}
        | {f"DEAL-{i}" for i in range(1, 10)}
        | {"SYNC-1", "SYNC-2", "SYNC-3", "ROLL-6", "ROLL-7"}
    )
    assert expected <= table
    assert "ROLL-1..5" in ranges


def test_demo_file_is_indented_for_people() -> None:
    text = bundled_path("demo").read_text(encoding="utf-8")
    assert text.startswith('{\n  "description"')
    assert json.loads(text)["salesforce"]["User"][0]["Id"]
