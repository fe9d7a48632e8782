"""HubSpot emulator: deal rollups on contacts and companies, calculated and read-only as in HubSpot.

``num_associated_deals``, ``first_deal_created_date``, ``recent_deal_close_date``,
``recent_deal_amount`` and ``total_revenue`` follow the record's associated deals (closed-won ones
for revenue and the recent close), through every way deals change: stage, amount, association,
archive. Writes to them are refused with ``READ_ONLY_VALUE``, per record (207) when the batch
inputs carry ``objectWriteTraceId``, else for the whole batch (400).
"""

from __future__ import annotations

import json
from typing import Any

import hubspot
import pytest
from crm_sandbox.hubspot.testing import client_fixtures
from hubspot.crm.companies import ApiException
from hubspot.crm.deals import SimplePublicObjectInput as DealInput

ROLLUPS = [
    "num_associated_deals",
    "first_deal_created_date",
    "recent_deal_close_date",
    "recent_deal_amount",
    "total_revenue",
]


def deal(rid: int, stage: str, amount: str, close: str, created: str) -> dict[str, Any]:
    props = {"dealname": f"D{rid}", "dealstage": stage, "amount": amount, "closedate": close}
    return {"id": str(rid), "properties": props, "createdAt": created}


SCENARIO: dict[str, Any] = {
    "hubspot": {
        "companies": [
            {"id": "101", "properties": {"name": "Acme"}},
            # A seeded rollup without deals behind it cannot exist in a portal: it is dropped.
            {"id": "102", "properties": {"name": "Empty", "total_revenue": "5"}},
        ],
        "contacts": [{"id": "201", "properties": {"email": "ann@acme.com"}}],
        "deals": [
            deal(301, "closedwon", "1000", "2024-03-01T00:00:00Z", "2024-01-05T00:00:00Z"),
            deal(302, "closedwon", "250.5", "2024-04-01T00:00:00Z", "2024-01-10T00:00:00Z"),
            deal(303, "appointmentscheduled", "99", "2024-05-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        ],
        "associations": [
            *({"from": ["deals", d], "to": ["companies", 101], "typeId": 341} for d in (301, 302, 303)),
            {"from": ["deals", 301], "to": ["contacts", 201], "typeId": 3},
        ],
    }
}

base_url, client = client_fixtures(SCENARIO)


def rollups(client: hubspot.HubSpot, object_type: str, rid: str) -> dict[str, Any]:
    record = client.crm.objects.basic_api.get_by_id(object_type, rid, properties=ROLLUPS)
    return {k: record.properties.get(k) for k in ROLLUPS}


def test_seeded_rollups_come_from_associated_deals(client: hubspot.HubSpot) -> None:
    assert rollups(client, "companies", "101") == {
        "num_associated_deals": "3",
        "first_deal_created_date": "2024-01-01T00:00:00.000Z",  # open deals count here
        "recent_deal_close_date": "2024-04-01T00:00:00.000Z",  # closed won only
        "recent_deal_amount": "250.5",
        "total_revenue": "1250.5",
    }
    assert rollups(client, "contacts", "201")["total_revenue"] == "1000"
    assert rollups(client, "companies", "102") == dict.fromkeys(ROLLUPS)


def test_rollups_follow_stage_amount_association_and_archive(client: hubspot.HubSpot) -> None:
    deals = client.crm.deals.basic_api
    deals.update("302", DealInput(properties={"dealstage": "closedlost"}))
    after_loss = rollups(client, "companies", "101")
    assert after_loss["total_revenue"] == "1000"
    assert after_loss["recent_deal_close_date"] == "2024-03-01T00:00:00.000Z"
    deals.update("301", DealInput(properties={"amount": "1100"}))
    assert rollups(client, "contacts", "201")["recent_deal_amount"] == "1100"
    client.crm.associations.v4.basic_api.create_default("deals", "303", "contacts", "201")
    assert rollups(client, "contacts", "201")["num_associated_deals"] == "2"
    deals.archive("301")
    assert rollups(client, "contacts", "201") == {
        "num_associated_deals": "1",
        "first_deal_created_date": "2024-01-01T00:00:00.000Z",
        "recent_deal_close_date": None,
        "recent_deal_amount": None,
        "total_revenue": None,
    }
    client.crm.associations.v4.basic_api.archive("deals", "303", "contacts", "201")
    assert rollups(client, "contacts", "201") == dict.fromkeys(ROLLUPS)


def test_a_rollup_change_moves_last_modified(client: hubspot.HubSpot) -> None:
    before = client.crm.companies.basic_api.get_by_id("101").updated_at
    client.crm.deals.basic_api.update("303", DealInput(properties={"dealstage": "closedwon"}))
    company = client.crm.companies.basic_api.get_by_id("101", properties=["total_revenue"])
    assert company.properties["total_revenue"] == "1349.5"
    assert company.updated_at > before


@pytest.mark.parametrize("name", ROLLUPS)
def test_writing_a_rollup_is_refused_as_read_only(client: hubspot.HubSpot, name: str) -> None:
    with pytest.raises(ApiException) as caught:
        client.crm.companies.basic_api.update("101", {"properties": {name: "1"}})
    assert caught.value.status == 400
    error = json.loads(caught.value.body)
    assert error["category"] == "VALIDATION_ERROR"
    assert [(e["code"], e["context"]["propertyName"]) for e in error["errors"]] == [
        ("READ_ONLY_VALUE", [name])
    ]


def test_batch_write_of_a_rollup_fails_one_record_with_trace_ids_else_the_batch(
    client: hubspot.HubSpot,
) -> None:
    inputs = [
        {"id": "101", "properties": {"name": "Acme Inc"}, "objectWriteTraceId": "a"},
        {"id": "102", "properties": {"total_revenue": "7"}, "objectWriteTraceId": "b"},
    ]
    response = client.crm.companies.batch_api.update({"inputs": inputs}, _preload_content=False)
    assert response.status == 207
    answer = json.loads(response.data)
    assert [r["id"] for r in answer["results"]] == ["101"]
    [error] = answer["errors"]
    assert error["context"]["objectWriteTraceId"] == ["b"]
    assert error["errors"][0]["code"] == "READ_ONLY_VALUE"
    untraced = [{k: v for k, v in i.items() if k != "objectWriteTraceId"} for i in inputs]
    with pytest.raises(ApiException) as caught:
        client.crm.companies.batch_api.update({"inputs": untraced})
    assert caught.value.status == 400
