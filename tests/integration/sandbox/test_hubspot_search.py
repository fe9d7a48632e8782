"""HubSpot emulator: ``POST /crm/v3/objects/{type}/search`` through the real hubspot-api-client.

Covers every filter operator, OR-ed filter groups, sorting, offset paging, HubSpot's request
limits (5 groups, 6 filters per group, 18 filters, one sort, 200 per page) and the 10,000-result
cap that breaks naive incremental syncs (SYNC-1), all answered as the client's ``ApiException``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import hubspot
import pytest
from crm_sandbox.hubspot.testing import client_fixtures, hubspot_sandbox
from hubspot.crm.contacts import ApiException, PublicObjectSearchRequest, SimplePublicObjectInput


def contact(rid: int, updated: str, **props: str) -> dict[str, Any]:
    return {"id": str(rid), "properties": props, "createdAt": "2024-01-01T00:00:00Z", "updatedAt": updated}


SCENARIO: dict[str, Any] = {
    "hubspot": {
        # A custom number property: HubSpot's own number properties on contacts are calculated.
        "properties": {
            "contacts": [
                {
                    "name": "lifetime_points",
                    "label": "Lifetime points",
                    "type": "number",
                    "fieldType": "number",
                    "groupName": "contactinformation",
                }
            ]
        },
        "contacts": [
            contact(
                1, "2024-03-01T00:00:00Z", email="ann@acme.com", firstname="Ann Marie", lifetime_points="100"
            ),
            contact(
                2, "2024-03-02T00:00:00Z", email="bob@acme.com", firstname="Bob", lifetime_points="250.5"
            ),
            contact(
                3, "2024-03-03T00:00:00Z", email="cy@globex.io", firstname="Cy", lifecyclestage="customer"
            ),
            contact(4, "2024-03-04T00:00:00Z", email="di@globex.io", firstname="Di", lifetime_points="40"),
            contact(5, "2024-03-05T00:00:00Z", email="ed@initech.net", lastname="Ed"),
            contact(6, "2024-03-05T00:00:00Z", email="fay@acme.com", firstname="Fay", lifecyclestage="lead"),
            {**contact(7, "2024-03-06T00:00:00Z", email="gone@acme.com", firstname="Gone"), "archived": True},
        ],
    }
}


base_url, client = client_fixtures(SCENARIO)


def search(client: hubspot.HubSpot, *groups: list[dict[str, Any]], **kwargs: Any) -> Any:
    request = PublicObjectSearchRequest(filter_groups=[{"filters": g} for g in groups], **kwargs)
    return client.crm.contacts.search_api.do_search(request)


def ids(client: hubspot.HubSpot, *groups: list[dict[str, Any]], **kwargs: Any) -> list[str]:
    kwargs.setdefault("limit", 100)
    return [r.id for r in search(client, *groups, **kwargs).results]


def f(prop: str, op: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    out = {"propertyName": prop, "operator": op, **extra}
    if value is not None:
        out["value"] = value
    return out


def error_of(exc: ApiException) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(exc.body)
    return parsed


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([f("email", "EQ", "ANN@acme.com")], ["1"]),  # string equality ignores case
        ([f("firstname", "NEQ", "bob")], ["1", "3", "4", "5", "6"]),  # records without a value match NEQ
        ([f("lifetime_points", "GT", "100")], ["2"]),
        ([f("lifetime_points", "GTE", "100")], ["1", "2"]),
        ([f("lifetime_points", "LT", "100")], ["4"]),
        ([f("lifetime_points", "LTE", "100")], ["1", "4"]),
        ([f("lifetime_points", "BETWEEN", "40", highValue="100")], ["1", "4"]),
        ([f("lifecyclestage", "IN", values=["lead", "customer"])], ["3", "6"]),
        ([f("email", "IN", values=["cy@globex.io", "DI@globex.io"])], ["3"]),  # IN needs lowercase strings
        ([f("lifecyclestage", "NOT_IN", values=["lead"])], ["1", "2", "3", "4", "5"]),
        ([f("lastname", "HAS_PROPERTY")], ["5"]),
        ([f("lifetime_points", "NOT_HAS_PROPERTY")], ["3", "5", "6"]),
        ([f("email", "CONTAINS_TOKEN", "*@globex.io")], ["3", "4"]),
        ([f("firstname", "CONTAINS_TOKEN", "marie")], ["1"]),
        ([f("email", "NOT_CONTAINS_TOKEN", "*@acme.com")], ["3", "4", "5"]),
        ([f("email", "CONTAINS_TOKEN", "*@acme.com"), f("lifetime_points", "HAS_PROPERTY")], ["1", "2"]),
        ([f("hs_object_id", "GT", "4")], ["5", "6"]),
    ],
)
def test_filter_operators(
    client: hubspot.HubSpot, filters: list[dict[str, Any]], expected: list[str]
) -> None:
    assert ids(client, filters) == expected


@pytest.mark.parametrize("direction", ["ASCENDING", "DESCENDING"])
@pytest.mark.parametrize("after", [None, "1", "3"])
@pytest.mark.parametrize("excluded", [["2"], ["2", "4", "999"], ["1", "2", "3", "4", "5", "6"]])
def test_a_keyset_page_excluding_ids_matches_the_scanning_answer(
    client: hubspot.HubSpot, direction: str, after: str | None, excluded: list[str]
) -> None:
    """The incremental extractor's query (a range on the sort property minus the ids read at its
    lower bound) is served from the index; it must page and count exactly as a scan does."""
    keyset = [f("lastmodifieddate", "GTE", "2024-03-02"), f("hs_object_id", "NOT_IN", values=excluded)]
    scanned = [*keyset, f("hs_object_id", "HAS_PROPERTY")]  # a residual filter: the scanning path
    sort = [{"propertyName": "lastmodifieddate", "direction": direction}]
    paging = {"after": after} if after else {}
    fast = search(client, keyset, sorts=sort, limit=2, **paging)
    slow = search(client, scanned, sorts=sort, limit=2, **paging)
    assert [r.id for r in fast.results] == [r.id for r in slow.results]
    assert fast.total == slow.total
    assert not {r.id for r in fast.results} & set(excluded)


def test_filter_groups_are_ored(client: hubspot.HubSpot) -> None:
    found = ids(client, [f("email", "EQ", "ed@initech.net")], [f("lifetime_points", "GT", "200")])
    assert found == ["2", "5"]


def test_datetime_filters_take_epoch_millis_or_iso(client: hubspot.HubSpot) -> None:
    march_3 = "1709424000000"  # 2024-03-03T00:00:00Z
    by_millis = ids(
        client, [f("lastmodifieddate", "GTE", march_3), f("lastmodifieddate", "LT", "1709596800000")]
    )
    by_iso = ids(
        client,
        [f("lastmodifieddate", "BETWEEN", "2024-03-03T00:00:00Z", highValue="2024-03-04T23:59:59.999Z")],
    )
    assert by_millis == by_iso == ["3", "4"]


def test_sorting_by_last_modified_pages_in_order(client: hubspot.HubSpot) -> None:
    sort = [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}]
    first = search(client, [f("lastmodifieddate", "GTE", "2024-03-02")], sorts=sort, limit=2)
    assert first.total == 5
    assert [r.id for r in first.results] == ["6", "5"]  # ties on the timestamp: by id
    assert first.paging.next.after == "2"
    second = search(client, [f("lastmodifieddate", "GTE", "2024-03-02")], sorts=sort, limit=2, after="2")
    assert [r.id for r in second.results] == ["4", "3"]
    third = search(client, [f("lastmodifieddate", "GTE", "2024-03-02")], sorts=sort, limit=2, after="4")
    assert [r.id for r in third.results] == ["2"]
    assert third.paging is None


def test_sorting_by_a_number_puts_empty_values_last(client: hubspot.HubSpot) -> None:
    assert ids(client, sorts=["-lifetime_points"]) == ["2", "1", "4", "3", "5", "6"]
    assert ids(client, sorts=[{"propertyName": "lifetime_points", "direction": "ASCENDING"}]) == [
        "4", "1", "2", "3", "5", "6",
    ]  # fmt: skip


def test_no_filters_returns_everything_live_by_id(client: hubspot.HubSpot) -> None:
    response = search(client, limit=4)
    assert response.total == 6
    assert [r.id for r in response.results] == ["1", "2", "3", "4"]
    assert response.paging.next.after == "4"


def test_free_text_query_and_requested_properties(client: hubspot.HubSpot) -> None:
    response = search(client, query="globex", properties=["email", "lifecyclestage"], limit=10)
    assert [r.id for r in response.results] == ["3", "4"]
    assert response.results[0].properties["lifecyclestage"] == "customer"
    assert response.results[1].properties["lifecyclestage"] is None
    assert set(response.results[0].properties) == {
        "email", "lifecyclestage", "createdate", "hs_object_id", "lastmodifieddate",
    }  # fmt: skip


def test_writes_are_visible_to_the_next_search(client: hubspot.HubSpot) -> None:
    client.crm.contacts.basic_api.update("1", SimplePublicObjectInput(properties={"firstname": "Annie"}))
    recent = ids(client, [f("lastmodifieddate", "GT", "2025-01-01T00:00:00Z")])
    assert recent == ["1"]
    assert ids(client, [f("firstname", "EQ", "ann marie")]) == []
    assert ids(client, [f("firstname", "EQ", "annie")]) == ["1"]
    client.crm.contacts.basic_api.archive("1")
    assert ids(client, [f("lastmodifieddate", "GT", "2025-01-01T00:00:00Z")]) == []


@pytest.mark.parametrize(
    ("request_kwargs", "fragment"),
    [
        ({"filter_groups": [{"filters": [f("email", "HAS_PROPERTY")]}] * 6}, "filter groups"),
        ({"filter_groups": [{"filters": [f("email", "HAS_PROPERTY")] * 7}]}, "filters in a filter group"),
        ({"filter_groups": [{"filters": [f("email", "HAS_PROPERTY")] * 5}] * 4}, "Too many filters"),
        ({"limit": 201}, "maximum number of results per page is 200"),
        ({"sorts": ["email", "-firstname"]}, "one sort"),
        ({"filter_groups": [{"filters": [f("shoe_size", "EQ", "9")]}]}, "shoe_size"),
        ({"filter_groups": [{"filters": [f("email", "EQ")]}]}, "needs a 'value'"),
        ({"filter_groups": [{"filters": [f("lastmodifieddate", "GT", "yesterday")]}]}, "Invalid value"),
    ],
)
def test_invalid_search_requests_are_400(
    client: hubspot.HubSpot, request_kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.search_api.do_search(PublicObjectSearchRequest(**request_kwargs))
    assert caught.value.status == 400
    error = error_of(caught.value)
    assert error["category"] == "VALIDATION_ERROR"
    assert fragment in error["message"]


def test_companies_and_deals_search_on_hs_lastmodifieddate(base_url: str) -> None:
    """Companies and deals name their last-modified property ``hs_lastmodifieddate`` (SYNC-1)."""
    from hubspot.crm.companies import ApiException as CompaniesApiException
    from hubspot.crm.companies import PublicObjectSearchRequest as CompanySearch
    from hubspot.crm.deals import PublicObjectSearchRequest as DealSearch

    scenario = {
        "hubspot": {
            "companies": [
                {
                    "id": "11",
                    "properties": {"name": "Acme", "domain": "acme.com"},
                    "updatedAt": "2024-05-01T00:00:00Z",
                },
                {
                    "id": "12",
                    "properties": {"name": "Globex", "domain": "globex.io"},
                    "updatedAt": "2024-06-01T00:00:00Z",
                },
            ],
            "deals": [
                {
                    "id": "31",
                    "properties": {"dealname": "A", "dealstage": "closedwon"},
                    "updatedAt": "2024-05-01T00:00:00Z",
                },
                {
                    "id": "32",
                    "properties": {"dealname": "B", "dealstage": "qualifiedtobuy"},
                    "updatedAt": "2024-06-01T00:00:00Z",
                },
            ],
        }
    }
    since = [f("hs_lastmodifieddate", "GTE", "2024-05-15T00:00:00Z")]
    with hubspot_sandbox(scenario) as url:
        client = hubspot.HubSpot(access_token="test-token", host=url)
        companies = client.crm.companies.search_api.do_search(
            CompanySearch(filter_groups=[{"filters": since}])
        )
        assert [c.id for c in companies.results] == ["12"]
        assert "hs_lastmodifieddate" in companies.results[0].properties
        by_domain = client.crm.companies.search_api.do_search(
            CompanySearch(filter_groups=[{"filters": [f("domain", "EQ", "ACME.com")]}])
        )
        assert [c.id for c in by_domain.results] == ["11"]
        won = client.crm.deals.search_api.do_search(
            DealSearch(
                filter_groups=[
                    {"filters": [f("hs_is_closed_won", "EQ", "true"), f("pipeline", "EQ", "default")]}
                ]
            )
        )
        assert [d.id for d in won.results] == ["31"]
        with pytest.raises(CompaniesApiException) as caught:  # contacts' name for it does not exist here
            client.crm.companies.search_api.do_search(
                CompanySearch(filter_groups=[{"filters": [f("lastmodifieddate", "GTE", "2024-01-01")]}])
            )
        assert caught.value.status == 400


# -- the 10,000-result cap (needs a bigger portal) ----------------------------------------------------

BIG = 10_050


@pytest.fixture(scope="module")
def big_client() -> Iterator[hubspot.HubSpot]:
    contacts = [
        {
            "id": str(100 + i),
            "properties": {"email": f"u{i}@bulk.com"},
            "updatedAt": 1_704_067_200_000 + i * 1000,
        }
        for i in range(BIG)
    ]
    with hubspot_sandbox({"hubspot": {"contacts": contacts}}, search_per_second=1000) as url:
        yield hubspot.HubSpot(access_token="test-token", host=url)


def test_search_cannot_page_past_10000_results(big_client: hubspot.HubSpot) -> None:
    sort = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    group = [f("lastmodifieddate", "GTE", "2024-01-01T00:00:00Z")]
    last_page = search(big_client, group, sorts=sort, limit=200, after="9800")
    assert last_page.total == BIG
    assert len(last_page.results) == 200
    assert last_page.results[-1].id == str(100 + 9999)
    assert last_page.paging.next.after == "10000"  # HubSpot still offers the next page...
    with pytest.raises(ApiException) as caught:  # ...and refuses it
        search(big_client, group, sorts=sort, limit=200, after=last_page.paging.next.after)
    assert caught.value.status == 400
    assert error_of(caught.value)["category"] == "VALIDATION_ERROR"


def test_windowing_by_last_modified_reads_past_the_cap(big_client: hubspot.HubSpot) -> None:
    """The documented workaround: restart the window at the last timestamp seen (SYNC-1)."""
    sort = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    seen: set[str] = set()
    watermark = "0"
    while True:
        page = search(big_client, [f("lastmodifieddate", "GT", watermark)], sorts=sort, limit=200)
        if not page.results:
            break
        seen.update(r.id for r in page.results)
        watermark = page.results[-1].properties["lastmodifieddate"]
    assert len(seen) == BIG
