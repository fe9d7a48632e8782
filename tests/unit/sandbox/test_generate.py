"""The scenario generator: deterministic, the requested sizes, referentially whole, realistic.

Scale tests and benchmarks trust these properties: the same seed must replay exactly, every
reference must resolve (or the emulators and the sync would fail on data, not on code), and the
situations the rules handle (ACC-6 duplicates, OWN-1/OWN-2 owner matches, linked pairs, DEAL-2
pipelines) must actually be present.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from crm_sandbox.generate import (
    KEY_PREFIXES,
    GeneratorConfig,
    generate,
    generate_file,
    generate_scenario,
    is_valid_salesforce_id,
    salesforce_id,
    salesforce_id_checksum,
    salesforce_ids,
)
from crm_sandbox.scenario import validate_scenario

SMALL = GeneratorConfig(
    seed=7,
    accounts=200,
    contacts_per_account=3,
    leads=150,
    opportunities=500,
    record_types=3,
    hubspot_companies=120,
    hubspot_contacts=300,
    hubspot_deals=250,
    linked_fraction=0.4,
    duplicate_fraction=0.05,
)


@pytest.fixture(scope="module")
def scenario() -> dict[str, Any]:
    return generate_scenario(SMALL)


def _text(config: GeneratorConfig) -> str:
    buffer = io.StringIO()
    generate(config, buffer)
    return buffer.getvalue()


def _by_id(records: list[dict[str, Any]], key: str = "Id") -> dict[str, dict[str, Any]]:
    return {str(r[key]): r for r in records}


def _domain(website: str) -> str:
    text = website.strip().lower()
    text = re.sub(r"^[a-z]+://", "", text)
    host = text.split("/")[0].split(":")[0]
    return host.removeprefix("www.")


# -- determinism -----------------------------------------------------------------------------------


def test_same_seed_and_options_give_identical_output() -> None:
    assert _text(SMALL) == _text(SMALL)


def test_generate_file_is_byte_identical_and_matches_stream(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    generate_file(SMALL, first)
    generate_file(SMALL, second)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_text(encoding="utf-8") == _text(SMALL)
    assert not list(tmp_path.glob("*.partial"))


def test_different_seed_gives_different_data() -> None:
    other = generate_scenario(GeneratorConfig(seed=8, accounts=200))
    base = generate_scenario(GeneratorConfig(seed=7, accounts=200))
    assert [a["Name"] for a in other["salesforce"]["Account"]] != [
        a["Name"] for a in base["salesforce"]["Account"]
    ]
    assert other["salesforce"]["Account"][0]["Id"] != base["salesforce"]["Account"][0]["Id"]


def test_changing_one_count_leaves_other_objects_alone() -> None:
    """Each object kind has its own random stream, so a bigger --leads does not reshuffle accounts."""
    a = generate_scenario(GeneratorConfig(seed=7, accounts=50, leads=10))
    b = generate_scenario(GeneratorConfig(seed=7, accounts=50, leads=40))
    assert [x["Name"] for x in a["salesforce"]["Account"]] == [x["Name"] for x in b["salesforce"]["Account"]]


def test_timestamps_come_from_the_seed_not_the_clock() -> None:
    config = GeneratorConfig(seed=1, accounts=20, as_of="2025-06-30T00:00:00Z", start="2023-01-01T00:00:00Z")
    data = generate_scenario(config)
    stamps = [
        r[k]
        for obj in ("Account", "Contact", "Lead", "Opportunity")
        for r in data["salesforce"][obj]
        for k in ("CreatedDate", "LastModifiedDate")
    ]
    assert max(stamps) <= "2025-06-30T00:00:00.000+0000"
    assert min(r["CreatedDate"] for r in data["salesforce"]["Account"]) >= "2023-01-01"


# -- sizes -----------------------------------------------------------------------------------------


def test_counts_match_the_options(scenario: dict[str, Any]) -> None:
    sf, hs = scenario["salesforce"], scenario["hubspot"]
    assert len(sf["Account"]) == 200
    assert len(sf["Contact"]) == 600
    assert len(sf["Lead"]) == 150
    assert len(sf["Opportunity"]) == 500
    assert len(sf["RecordType"]) == 3
    assert len(sf["OpportunityStage"]) == 10
    assert len(hs["companies"]) == 120
    assert len(hs["contacts"]) == 300
    assert len(hs["deals"]) == 250
    # DEAL-6: about one contact role per opportunity
    assert 0.5 * 500 < len(sf["OpportunityContactRole"]) < 1.5 * 500


def test_defaults_are_derived_from_accounts() -> None:
    resolved = GeneratorConfig(seed=1, accounts=1000).resolved()
    assert (resolved.leads, resolved.opportunities) == (1000, 2000)
    assert (resolved.hubspot_companies, resolved.hubspot_contacts, resolved.hubspot_deals) == (
        500,
        1500,
        1000,
    )
    assert resolved.users == 10


def test_the_streamed_counts_are_reported() -> None:
    counts = generate(GeneratorConfig(seed=3, accounts=10, opportunities=7), io.StringIO())
    assert counts["Account"] == 10
    assert counts["Opportunity"] == 7
    assert counts["Contact"] == 30


@pytest.mark.parametrize(
    ("changes", "option"),
    [
        ({"linked_fraction": 1.5}, "--linked-fraction"),
        ({"duplicate_fraction": -0.1}, "--duplicate-fraction"),
        ({"accounts": -1}, "--accounts"),
        ({"accounts": 0, "opportunities": 5}, "--opportunities"),
        ({"as_of": "2018-01-01T00:00:00Z"}, "--start"),
        ({"org_domain": "Not A Domain"}, "--org-domain"),
    ],
)
def test_bad_options_name_the_option(changes: dict[str, Any], option: str) -> None:
    base: dict[str, Any] = {"seed": 1, "accounts": 10}
    with pytest.raises(ValueError, match=re.escape(option)):
        GeneratorConfig(**{**base, **changes}).resolved()


def test_an_empty_org_is_valid() -> None:
    data = generate_scenario(GeneratorConfig(seed=1, accounts=0, users=1))
    assert data["salesforce"]["Account"] == []
    assert data["salesforce"]["User"][0]["Email"] == "integration@northwind-demo.com"
    validate_scenario(data)


# -- Salesforce Ids --------------------------------------------------------------------------------


def test_ids_are_valid_18_character_ids_with_the_right_prefix(scenario: dict[str, Any]) -> None:
    for obj, records in scenario["salesforce"].items():
        for record in records:
            assert is_valid_salesforce_id(record["Id"], KEY_PREFIXES[obj]), (obj, record["Id"])


def test_checksum_agrees_with_the_salesforce_emulator() -> None:
    """Two independent implementations of Salesforce's public algorithm must agree."""
    from crm_sandbox.salesforce.ids import checksum_suffix

    bodies = [i[:15] for i in salesforce_ids("006", 62**6 - 5, 50)] + ["001Dm0000ACMELG", "0035g00000AbCdE"]
    for body in bodies:
        assert salesforce_id_checksum(body) == checksum_suffix(body)
    assert salesforce_id_checksum("001000000000000") == "AAA"
    # chunk 1 "00DAA": bits 2,3,4 -> 28 -> "2"; all-upper chunks -> 31 -> "5"
    assert salesforce_id_checksum("00DAAAAAAAAAAAA") == "255"


def test_vectorised_ids_equal_one_by_one_ids() -> None:
    assert salesforce_ids("00Q", 123_456, 100) == [salesforce_id("00Q", 123_456 + i) for i in range(100)]


def test_an_id_with_a_wrong_checksum_is_invalid() -> None:
    good = salesforce_id("001", 42)
    assert is_valid_salesforce_id(good)
    assert not is_valid_salesforce_id(good[:15] + "ZZZ")
    assert not is_valid_salesforce_id(good, "003")


def test_ids_are_unique_per_object(scenario: dict[str, Any]) -> None:
    for records in scenario["salesforce"].values():
        ids = [r["Id"] for r in records]
        assert len(ids) == len(set(ids))


# -- referential integrity -------------------------------------------------------------------------


def test_every_salesforce_reference_resolves(scenario: dict[str, Any]) -> None:
    sf = scenario["salesforce"]
    users = _by_id(sf["User"])
    accounts = _by_id(sf["Account"])
    contacts = _by_id(sf["Contact"])
    opportunities = _by_id(sf["Opportunity"])
    record_types = _by_id(sf["RecordType"])
    stages = {s["ApiName"] for s in sf["OpportunityStage"]}
    for obj in ("Account", "Contact", "Lead", "Opportunity"):
        for record in sf[obj]:
            assert record["OwnerId"] in users
    for record in sf["Contact"]:
        assert record.get("AccountId") is None or record["AccountId"] in accounts
    for record in sf["Opportunity"]:
        assert record["AccountId"] in accounts
        assert record["RecordTypeId"] in record_types
        assert record["StageName"] in stages
    for record in sf["OpportunityContactRole"]:
        assert record["OpportunityId"] in opportunities
        assert record["ContactId"] in contacts
        # DEAL-6: roles name contacts of the opportunity's own account
        assert contacts[record["ContactId"]].get("AccountId") in (
            opportunities[record["OpportunityId"]]["AccountId"],
            None,
        )


def test_every_hubspot_reference_resolves(scenario: dict[str, Any]) -> None:
    hs = scenario["hubspot"]
    owners = {o["id"] for o in hs["owners"]}
    ids = {kind: {r["id"] for r in hs[kind]} for kind in ("companies", "contacts", "deals")}
    stages = {p["id"]: {s["id"] for s in p["stages"]} for p in hs["pipelines"]["deals"]}
    for kind in ids:
        for record in hs[kind]:
            owner = record["properties"].get("hubspot_owner_id")
            assert owner is None or owner in owners
    for deal in hs["deals"]:
        assert deal["properties"]["dealstage"] in stages[deal["properties"]["pipeline"]]
    for assoc in hs["associations"]:
        for kind, record_id in (assoc["from"], assoc["to"]):
            assert record_id in ids[kind], assoc


def test_links_point_both_ways(scenario: dict[str, Any]) -> None:
    """A linked pair holds the link on both sides: HubSpot_Id__c and the salesforce*id property."""
    sf, hs = scenario["salesforce"], scenario["hubspot"]
    pairs = [
        ("Account", "companies", "salesforceaccountid"),
        ("Contact", "contacts", "salesforcecontactid"),
        ("Lead", "contacts", "salesforceleadid"),
        ("Opportunity", "deals", "salesforceopportunityid"),
    ]
    for obj, kind, prop in pairs:
        hs_by_id = _by_id(hs[kind], "id")
        linked = [r for r in sf[obj] if "HubSpot_Id__c" in r]
        assert linked, obj
        for record in linked:
            assert hs_by_id[record["HubSpot_Id__c"]]["properties"][prop] == record["Id"]
        back = [r for r in hs[kind] if prop in r["properties"]]
        assert len(back) == len(linked)


def test_linked_fraction_is_respected(scenario: dict[str, Any]) -> None:
    hs = scenario["hubspot"]
    linked_companies = sum("salesforceaccountid" in c["properties"] for c in hs["companies"])
    linked_deals = sum("salesforceopportunityid" in d["properties"] for d in hs["deals"])
    assert linked_companies == round(0.4 * 120)
    assert linked_deals == round(0.4 * 250)


# -- realism where the rules look ------------------------------------------------------------------


def test_duplicate_accounts_at_the_requested_fraction(scenario: dict[str, Any]) -> None:
    """ACC-6: duplicates share a normalised domain and name, differing only in www./scheme/suffix/case."""
    accounts = scenario["salesforce"]["Account"]
    groups = Counter(_domain(a["Website"]) for a in accounts if a.get("Website"))
    extra = sum(size - 1 for size in groups.values())
    assert extra == round(0.05 * 200)
    raw_sites = Counter(a["Website"] for a in accounts if a.get("Website"))
    assert all(count == 1 for count in raw_sites.values()), "duplicates must differ in their raw website"

    def norm_name(name: str) -> list[str]:
        name = re.sub(r"[^a-z0-9 ]", "", name.lower())
        return re.sub(r"\b(inc|llc|ltd|gmbh|corp|co|ag|sa)\b", "", name).split()

    by_domain: dict[str, set[str]] = {}
    for a in accounts:
        if a.get("Website"):
            by_domain.setdefault(_domain(a["Website"]), set()).add(" ".join(norm_name(a["Name"])))
    assert all(len(names) == 1 for names in by_domain.values())


def test_users_include_the_integration_user_first_and_inactive_users(scenario: dict[str, Any]) -> None:
    users = scenario["salesforce"]["User"]
    assert users[0]["Email"] == "integration@northwind-demo.com"
    assert users[0]["IsActive"] is True
    assert any(not u["IsActive"] for u in users)


def test_owners_mostly_match_users_by_name_and_email_but_not_all() -> None:
    """OWN-1/OWN-2 need both: owners that match a user exactly, and ones that do not."""
    data = generate_scenario(GeneratorConfig(seed=11, accounts=5000, opportunities=0, leads=0))
    users = {
        (u["FirstName"].strip().lower(), u["LastName"].strip().lower(), u["Email"].lower())
        for u in data["salesforce"]["User"]
    }
    user_emails = {u[2] for u in users}
    owners = data["hubspot"]["owners"]
    exact = [
        o
        for o in owners
        if (o["firstName"].strip().lower(), o["lastName"].strip().lower(), o["email"].lower()) in users
    ]
    unmatched_email = [o for o in owners if o["email"].lower() not in user_emails]
    assert len(exact) > len(owners) / 2
    assert unmatched_email


def test_contacts_use_their_accounts_domain(scenario: dict[str, Any]) -> None:
    accounts = _by_id(scenario["salesforce"]["Account"])
    with_site = [c for c in scenario["salesforce"]["Contact"] if c.get("AccountId")]
    matching = 0
    for contact in with_site:
        account = accounts[contact["AccountId"]]
        if account.get("Website") and contact["Email"].endswith("@" + _domain(account["Website"])):
            matching += 1
    assert matching > 0.9 * len(with_site)
    assert any("AccountId" not in c for c in scenario["salesforce"]["Contact"]), "private contacts (ACC-4)"


def test_hubspot_contact_emails_are_unique(scenario: dict[str, Any]) -> None:
    emails = [c["properties"]["email"] for c in scenario["hubspot"]["contacts"] if "email" in c["properties"]]
    assert len(emails) == len(set(emails))
    assert len(emails) < len(scenario["hubspot"]["contacts"]), "some contacts have no email (CON-2)"


def test_opportunities_spread_over_years_stages_currencies_and_types(scenario: dict[str, Any]) -> None:
    opps = scenario["salesforce"]["Opportunity"]
    assert len({o["CreatedDate"][:4] for o in opps}) >= 5
    assert len({o["StageName"] for o in opps}) >= 6
    assert {"USD", "EUR"} <= {o["CurrencyIsoCode"] for o in opps}
    assert len({o["RecordTypeId"] for o in opps}) == 3
    assert any(
        o.get("IsDeleted")
        for o in generate_scenario(GeneratorConfig(seed=2, accounts=500))["salesforce"]["Opportunity"]
    )
    before = [o for o in opps if o["CreatedDate"] < "2026-01-01"]
    modified_after = [o for o in before if o["LastModifiedDate"] >= "2026-01-01"]
    assert before, "DEAL-9 needs opportunities created before sync enabled at"
    assert modified_after, "DEAL-9 needs old opportunities modified after sync enabled at"


def test_pipelines_are_named_after_record_types(scenario: dict[str, Any]) -> None:
    """DEAL-2: one "Salesforce - <record type>" pipeline each, plus HubSpot's default one."""
    labels = [p["label"] for p in scenario["hubspot"]["pipelines"]["deals"]]
    names = [rt["Name"] for rt in scenario["salesforce"]["RecordType"]]
    assert labels == ["Sales Pipeline", *[f"Salesforce - {n}" for n in names]]
    single = generate_scenario(GeneratorConfig(seed=1, accounts=10, record_types=1))
    assert [p["label"] for p in single["hubspot"]["pipelines"]["deals"]] == [
        "Sales Pipeline",
        "Salesforce - Standard pipeline",
    ]


def test_linked_deals_sit_in_their_record_types_pipeline(scenario: dict[str, Any]) -> None:
    rt_names = {rt["Id"]: rt["Name"] for rt in scenario["salesforce"]["RecordType"]}
    opps = _by_id(scenario["salesforce"]["Opportunity"])
    labels = {p["id"]: p["label"] for p in scenario["hubspot"]["pipelines"]["deals"]}
    in_default = 0
    for deal in scenario["hubspot"]["deals"]:
        props = deal["properties"]
        if "salesforceopportunityid" in props:
            opp = opps[props["salesforceopportunityid"]]
            assert labels[props["pipeline"]] == f"Salesforce - {rt_names[opp['RecordTypeId']]}"
            assert props["deal_currency_code"] == opp["CurrencyIsoCode"]
        elif props["pipeline"] == "default":
            in_default += 1
    assert in_default > 0, "DEAL-3 needs deals outside the synced pipelines"


def test_output_validates_and_loads_into_both_emulators(scenario: dict[str, Any]) -> None:
    validate_scenario(scenario)
    from crm_sandbox.server import build_apps

    salesforce_app, hubspot_app = build_apps(scenario)
    assert salesforce_app is not None
    assert hubspot_app is not None


def test_company_names_stay_unique_far_beyond_the_name_pools() -> None:
    """Combination indices map to distinct names, also in the numbered tiers used at 1M accounts."""
    from crm_sandbox.generate import _build_pools, _CompanyNames

    names = _CompanyNames(_build_pools(1).last_names)
    same_offset_every_tier = [tier * names.base + 5 for tier in range(200)]
    assert len({names.name(i) for i in same_offset_every_tier}) == 200
    spread = list(range(0, 200 * names.base, names.base // 7 + 1))
    assert len({names.name(i) for i in spread}) == len(spread)
