"""HubSpotWriter through the real hubspot-api-client against the HubSpot emulator (no mocks).

Each test writes load items, then reads the portal back through the client: the state a user
sees in HubSpot, and the outcomes the runner bookkeeps. Faults (429 storms, a lost answer, one
bad record in a batch) are injected with ``/__sandbox/faults``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hubspot
import pytest
from crm_sandbox.hubspot.testing import client_fixtures, sandbox_call
from crm_sync.load.hubspot import HubSpotWriter
from crm_sync.load.hubspot_results import UNIQUE_PROPERTY
from crm_sync.load.writer import LoadItem, WriteOutcome

SCENARIO: dict[str, Any] = {
    "hubspot": {
        "companies": [{"id": "101", "properties": {"name": "Acme", "domain": "acme.com"}}],
        "contacts": [{"id": "201", "properties": {"email": "ada@acme.com", "firstname": "Ada"}}],
    }
}

base_url, client = client_fixtures(SCENARIO)


@pytest.fixture
def writer(client: hubspot.HubSpot) -> Iterator[HubSpotWriter]:
    w = HubSpotWriter(client, retry_budget=60.0, requests_per_10s=190)
    w.prepare()
    yield w
    w.close()


def item(seq: int, obj: str, action: str, fields: dict[str, Any], **ids: str | None) -> LoadItem:
    return LoadItem(
        seq=seq,
        target="hubspot",
        object=obj,
        action=action,
        source_id=ids.get("source_id"),
        target_id=ids.get("target_id"),
        fields=fields,
        rules=("TEST",),
    )


def company_creates(n: int, start: int = 0) -> list[LoadItem]:
    return [
        item(
            start + i,
            "companies",
            "create",
            {"name": f"Co {i}", "domain": f"co{i}.example"},
            source_id=f"001A{i:05d}",
        )
        for i in range(n)
    ]


def all_records(client: hubspot.HubSpot, object_type: str, *properties: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = client.crm.objects.basic_api.get_page(
            object_type, limit=100, after=after, properties=[UNIQUE_PROPERTY, *properties]
        )
        out.extend({"id": r.id, **r.properties} for r in page.results)
        if page.paging is None or page.paging.next is None:
            return out
        after = page.paging.next.after


def by_seq(outcomes: list[WriteOutcome]) -> dict[int, WriteOutcome]:
    return {o.seq: o for o in outcomes}


def test_prepare_creates_the_unique_property_once(client: hubspot.HubSpot, writer: HubSpotWriter) -> None:
    for object_type in ("companies", "contacts", "deals"):
        prop = client.crm.properties.core_api.get_by_name(object_type, UNIQUE_PROPERTY)
        assert prop.has_unique_value is True
    writer.prepare()  # a second run finds them and creates nothing
    stats = sandbox_call(writer_base(client), "GET", "stats")
    creates = [
        r for r in stats["requests"] if r["method"] == "POST" and r["path"].startswith("/crm/v3/properties")
    ]
    assert sum(r["count"] for r in creates) == 3


def writer_base(client: hubspot.HubSpot) -> str:
    return str(client.config["host"])


def test_creates_are_idempotent_upserts(client: hubspot.HubSpot, writer: HubSpotWriter) -> None:
    items = company_creates(250)
    first = by_seq(writer.write("companies", "create", items))
    assert all(o.ok for o in first.values()), [o for o in first.values() if not o.ok][:3]
    assert len(first) == 250
    second = by_seq(writer.write("companies", "create", items))
    assert {s: o.target_id for s, o in second.items()} == {s: o.target_id for s, o in first.items()}
    records = [r for r in all_records(client, "companies", "name") if r.get(UNIQUE_PROPERTY)]
    assert len(records) == 250
    assert {r[UNIQUE_PROPERTY]: r["id"] for r in records} == {
        i.source_id: first[i.seq].target_id for i in items
    }


def test_update_link_and_delete(client: hubspot.HubSpot, writer: HubSpotWriter) -> None:
    [created] = writer.write("companies", "create", company_creates(1))
    updated = writer.write(
        "companies",
        "update",
        [
            item(10, "companies", "update", {"name": "Renamed"}, target_id=created.target_id),
            item(11, "companies", "link", {"salesforceaccountid": "001X"}, target_id="101"),
        ],
    )
    assert all(o.ok for o in updated)
    names = {r["id"]: r for r in all_records(client, "companies", "name", "salesforceaccountid")}
    assert names[str(created.target_id)]["name"] == "Renamed"
    assert names["101"]["salesforceaccountid"] == "001X"
    deleted = writer.write(
        "companies",
        "delete",
        [
            item(12, "companies", "delete", {}, target_id="101"),
            item(13, "companies", "delete", {}, target_id="999"),
        ],
    )
    assert all(o.ok for o in deleted)  # a record already gone counts as deleted
    assert "101" not in {r["id"] for r in all_records(client, "companies")}
