"""Comparing linked pairs after normalisation: what counts as the same value, what is missing."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from crm_sync.quality.comparison import compare_all, compare_object, live_pairs
from crm_sync.rules.owners import OwnerMap, build_owner_map
from crm_sync.settings import SyncConfig, load_config

from tests.unit.quality.world import frame

ACCOUNTS = ("Account", "companies", "accounts", "sf_account", "hs_company")
DEALS = ("Opportunity", "deals", "opportunities", "sf_opportunity", "hs_deal")


@pytest.fixture(scope="module")
def config() -> SyncConfig:
    return load_config()


def _owners(config: SyncConfig) -> OwnerMap:
    users = frame(
        [{"Id": "005A", "Email": "Alice@Example.com ", "FirstName": "A", "LastName": "N", "IsActive": True}]
    )
    owners = frame([{"id": "901", "email": "alice@example.com", "firstName": "A", "lastName": "N"}])
    return build_owner_map(
        users.assign(_deleted=False), owners.assign(_deleted=False), config.integration_user_email
    )


def _frames(**tables: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {
        "sync_link": frame(
            [
                {"object": "Account", "sf_id": "001A", "hs_id": "1001"},
                {"object": "Account", "sf_id": "001B", "hs_id": "1002"},
                {"object": "Account", "sf_id": "001GONE", "hs_id": "1003"},
                {"object": "Opportunity", "sf_id": "006A", "hs_id": "3001"},
            ]
        ),
        **tables,
    }


def _accounts() -> dict[str, pd.DataFrame]:
    return _frames(
        sf_account=frame(
            [
                {
                    "Id": "001A",
                    "Name": "Acme",
                    "Website": "https://www.acme.com/about",
                    "NumberOfEmployees": 250.0,
                    "Phone": "555",
                    "OwnerId": "005A",
                },
                {
                    "Id": "001B",
                    "Name": "Globex",
                    "Website": None,
                    "NumberOfEmployees": None,
                    "Phone": None,
                    "OwnerId": "005A",
                    "BillingCity": "Oslo",
                },
            ],
            _deleted=False,
        ),
        hs_company=frame(
            [
                {
                    "id": "1001",
                    "name": "Acme ",
                    "domain": "acme.com",
                    "numberofemployees": "250",
                    "phone": "555",
                    "hubspot_owner_id": "901",
                },
                {
                    "id": "1002",
                    "name": "Globex Corp",
                    "domain": "globex.com",
                    "numberofemployees": None,
                    "phone": None,
                    "hubspot_owner_id": None,
                },
                {"id": "1003", "name": "Orphan", "domain": None},
            ],
            _deleted=False,
        ),
    )


def test_values_are_compared_in_the_merges_canonical_form(config: SyncConfig) -> None:
    result = compare_object(ACCOUNTS, _accounts(), config, _owners(config))
    assert (result.object, result.pairs, result.compared, result.records_missing) == (
        "Account / companies",
        3,
        2,
        1,
    )
    stats = {f.field: f for f in result.fields}
    # "Acme " vs "Acme" (stripped), 250.0 vs "250" (numbers), a URL vs its host, owners by email.
    assert stats["Name"].matches == 1
    assert stats["Name"].mismatches == 1
    assert stats["Name"].examples == [
        {
            "kind": "mismatch",
            "sf_id": "001B",
            "hs_id": "1002",
            "salesforce": "Globex",
            "hubspot": "Globex Corp",
        }
    ]
    assert (stats["NumberOfEmployees"].matches, stats["NumberOfEmployees"].compared) == (2, 2)
    assert (stats["Website"].matches, stats["Website"].missing_salesforce) == (1, 1)
    assert (stats["BillingCity"].missing_hubspot, stats["BillingCity"].matches) == (1, 1)
    assert (stats["owner"].matches, stats["owner"].missing_hubspot) == (1, 1)
    assert stats["Phone"].mismatch_rate == 0.0
    assert stats["Website"].mismatch_rate == 0.5
    assert "Industry" not in stats  # mapped with rule "none": not synced, not compared


def test_deals_compare_pipeline_and_stage_by_name_and_the_currency_code(config: SyncConfig) -> None:
    frames = _frames(
        sf_opportunity=frame(
            [
                {
                    "Id": "006A",
                    "Name": "Deal",
                    "StageName": "Closed Won",
                    "RecordTypeId": "012A",
                    "CurrencyIsoCode": "eur",
                    "CloseDate": "2026-03-31",
                    "Amount": 10.0,
                    "OwnerId": "005A",
                }
            ],
            _deleted=False,
        ),
        hs_deal=frame(
            [
                {
                    "id": "3001",
                    "dealname": "Deal",
                    "dealstage": "s9",
                    "pipeline": "101",
                    "deal_currency_code": "EUR",
                    "closedate": pd.Timestamp("2026-03-31T00:00:00Z"),
                    "amount": 10.0,
                    "hubspot_owner_id": "901",
                }
            ],
            _deleted=False,
        ),
        rule_pipelines=frame(
            [{"pipeline_key": "012A", "record_type_id": "012A", "label": "Salesforce - New Business"}]
        ),
        hs_pipeline=frame([{"id": "101", "label": "Salesforce - new business"}]),
        sf_opportunity_stage=frame([{"ApiName": "Closed Won", "MasterLabel": "Closed Won"}]),
        hs_pipeline_stage=frame([{"id": "s9", "pipeline_id": "101", "label": "Closed Won"}]),
    )
    result = compare_object(DEALS, frames, config, _owners(config))
    stats = {f.field: f for f in result.fields}
    for name in ("pipeline", "stage", "currency", "owner", "CloseDate", "Amount", "Name"):
        assert stats[name].matches == 1, name


def test_live_pairs_drop_links_whose_record_is_deleted() -> None:
    sf = frame([{"Id": "001A", "_deleted": False}, {"Id": "001B", "_deleted": True}])
    hs = frame([{"id": "1001", "_deleted": False}, {"id": "1002", "_deleted": False}])
    links = frame(
        [
            {"object": "Account", "sf_id": "001A", "hs_id": "1001"},
            {"object": "Account", "sf_id": "001B", "hs_id": "1002"},
        ]
    )
    pairs, missing = live_pairs(links, "Account", sf, hs)
    assert pairs.to_dict("records") == [{"sf_id": "001A", "hs_id": "1001"}]
    assert missing == 1


def test_company_sync_off_leaves_accounts_out(config: SyncConfig) -> None:
    off = dataclasses.replace(config, companies_sync=False)
    objects = [o.object for o in compare_all(_accounts(), off, _owners(off))]
    assert objects == ["Contact / contacts", "Lead / contacts", "Opportunity / deals"]
