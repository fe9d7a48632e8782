"""SYNC-2 mappings: built in for identity and DEAL-1 fields, extended by the config, checked early."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from crm_sync.catalog import stream
from crm_sync.cli import main
from crm_sync.mapping_check import online_problems
from crm_sync.mappings import BUILT_IN_MAPPINGS, MAPPING_PAIRS
from crm_sync.rules.accounts import plan_accounts
from crm_sync.rules.contacts import match_contacts
from crm_sync.settings import ConfigError, SyncConfig, default_config_path, parse_config

from tests.unit.rules.sync_frames import AFTER, config, contact_world, hs, one, sf


def _default() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(default_config_path().read_text())
    return raw


def _pairs(config: SyncConfig, group: str) -> list[tuple[str, str, str]]:
    return [(m.salesforce, m.hubspot, m.rule) for m in config.mappings(group)]


def test_a_config_without_field_mappings_still_maps_names_emails_domains_and_deal_fields() -> None:
    raw = _default()
    del raw["field_mappings"]
    cfg = parse_config(raw)
    assert _pairs(cfg, "accounts") == [
        ("Name", "name", "two_way"),
        ("Website", "domain", "prefer_salesforce"),
    ]
    person = [
        ("FirstName", "firstname", "two_way"),
        ("LastName", "lastname", "two_way"),
        ("Email", "email", "two_way"),
    ]
    assert _pairs(cfg, "contacts") == person
    assert _pairs(cfg, "leads") == [*person, ("Company", "company", "two_way")]
    assert _pairs(cfg, "opportunities") == [
        ("Name", "dealname", "two_way"),
        ("Amount", "amount", "two_way"),
        ("CloseDate", "closedate", "two_way"),
    ]


def test_field_mappings_add_to_and_override_the_built_ins() -> None:
    raw = _default()
    raw["field_mappings"] = {
        "accounts": [
            {"salesforce": "Phone", "hubspot": "phone", "rule": "two_way"},
            {"salesforce": "Name", "hubspot": "name", "rule": "prefer_salesforce"},
            {"salesforce": "Website", "hubspot": "website", "rule": "two_way"},
        ],
        "opportunities": [{"salesforce": "Amount", "hubspot": "amount", "rule": "none"}],
    }
    cfg = parse_config(raw)
    # Overridden built-ins give way (same SF field or same HubSpot property); added ones follow.
    assert _pairs(cfg, "accounts") == [
        ("Phone", "phone", "two_way"),
        ("Name", "name", "prefer_salesforce"),
        ("Website", "website", "two_way"),
    ]
    assert ("Amount", "amount", "none") in _pairs(cfg, "opportunities")
    assert len(_pairs(cfg, "opportunities")) == 3


def test_the_shipped_default_maps_exactly_what_its_file_lists() -> None:
    cfg = parse_config(_default())
    for group, entries in _default()["field_mappings"].items():
        assert _pairs(cfg, group) == [(e["salesforce"], e["hubspot"], e["rule"]) for e in entries]


@pytest.mark.parametrize("group", sorted(BUILT_IN_MAPPINGS))
def test_every_built_in_field_is_one_crm_sync_extracts(group: str) -> None:
    sf_object, hs_object = MAPPING_PAIRS[group]
    for m in BUILT_IN_MAPPINGS[group]:
        assert m.salesforce in stream("salesforce", sf_object).field_names
        assert m.hubspot in stream("hubspot", hs_object).field_names


MISSPELLED = [
    (
        lambda c: c["field_mappings"]["accounts"][0].update(salesforce="Nmae"),
        "field_mappings.accounts[0].salesforce",
        "'Nmae', not a field of Salesforce Account (did you mean 'Name'?)",
    ),
    (
        lambda c: c["field_mappings"]["contacts"][0].update(hubspot="fristname"),
        "field_mappings.contacts[0].hubspot",
        "'fristname', not a field of HubSpot contacts (did you mean 'firstname'?)",
    ),
    (
        lambda c: c["field_mappings"]["leads"][5].update(salesforce="company"),
        "field_mappings.leads[5].salesforce",
        "'company', not a field of Salesforce Lead (did you mean 'Company'?)",
    ),
    (
        lambda c: c["field_mappings"]["opportunities"].append(
            {"salesforce": "Region__c", "hubspot": "region", "rule": "two_way"}
        ),
        "field_mappings.opportunities[6].salesforce",
        "'Region__c', not a field of Salesforce Opportunity",
    ),
]


@pytest.mark.parametrize(("mutate", "key", "problem"), MISSPELLED)
def test_a_misspelled_field_on_either_side_fails_naming_the_key(mutate: Any, key: str, problem: str) -> None:
    raw = _default()
    mutate(raw)
    with pytest.raises(ConfigError, match=re.escape(f"key '{key}' is {problem}")):
        parse_config(raw, source="test.yaml")


def test_check_config_exits_2_naming_the_misspelled_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _default()
    raw["field_mappings"]["accounts"][0]["salesforce"] = "Nmae"
    bad = tmp_path / "c.yaml"
    bad.write_text(yaml.safe_dump(raw))
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "key 'field_mappings.accounts[0].salesforce' is 'Nmae'" in err
    assert "did you mean 'Name'?" in err


def _without_mappings(**kwargs: Any) -> SyncConfig:
    return dataclasses.replace(config(**kwargs), field_mappings={})


def test_acc1_without_field_mappings_creates_a_company_with_its_name_and_domain() -> None:
    account = {"Id": "001A", "Name": "Acme Inc.", "Website": "https://www.acme.com", "OwnerId": "005A"}
    staged, owners = contact_world(
        sf_account=sf("Account", {**account, "CreatedDate": AFTER, "LastModifiedDate": AFTER}),
        hs_company=hs("companies"),
    )
    cfg = _without_mappings()
    plan = plan_accounts(staged, cfg, owners, match_contacts(staged, cfg, owners)).plan
    row = one(plan, action="create")
    assert (row["fields"]["name"], row["fields"]["domain"]) == ("Acme Inc.", "acme.com")


def test_con3_without_field_mappings_creates_a_contact_with_its_names_and_email() -> None:
    contact = {"Id": "003A", "FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@acme.com"}
    staged, owners = contact_world(sf_contacts=[{**contact, "CreatedDate": AFTER, "LastModifiedDate": AFTER}])
    row = one(match_contacts(staged, _without_mappings(), owners).plan, action="create")
    assert {k: row["fields"][k] for k in ("firstname", "lastname", "email")} == {
        "firstname": "Ada",
        "lastname": "Lovelace",
        "email": "ada@acme.com",
    }


def test_online_problems_name_built_in_mappings_too() -> None:
    """A portal whose companies have no ``domain`` (an in-memory field list, not a CRM)."""

    def fields(side: str, obj: str) -> set[str]:
        names = set(stream(side, obj).field_names)  # type: ignore[arg-type]
        return names - {"domain"} if obj == "companies" else names

    raw = _default()
    del raw["field_mappings"]
    assert online_problems(parse_config(raw), fields) == [
        "key 'built-in accounts mapping Website <-> domain (hubspot side)' is 'domain', "
        "not a field of HubSpot companies in this portal"
    ]
