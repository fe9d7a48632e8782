"""Query building, keyset paging past the search cap, pacing and retry decisions (no network)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from crm_sync.catalog import stream
from crm_sync.extract.hubspot import SEARCH_CAP, SEARCH_LIMIT, KeysetPager, Pacer, search_body, to_ms
from crm_sync.extract.salesforce import build_id_soql, build_soql, picklists_from_describe
from hubspot_hook import HubSpotRetry, hubspot_retry
from urllib3.response import HTTPResponse

T0 = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


def test_incremental_soql_reads_the_window_with_deletes_in_cursor_then_id_order() -> None:
    """SYNC-1: SystemModstamp window, ordered by SystemModstamp and Id (ties at one second)."""
    text = build_soql(
        "Account", ["Id", "Name"], cursor="SystemModstamp", since=T0, until=datetime(2026, 1, 3, tzinfo=UTC)
    )
    assert text == (
        "SELECT Id, Name FROM Account WHERE SystemModstamp > 2026-01-02T03:04:05Z "
        "AND SystemModstamp <= 2026-01-03T00:00:00Z ORDER BY SystemModstamp, Id"
    )
    assert build_soql("User", ["Id"], cursor="SystemModstamp", since=None, until=None) == (
        "SELECT Id FROM User ORDER BY SystemModstamp, Id"
    )
    assert "ORDER BY" not in build_soql(
        "Lead", ["Id"], cursor="SystemModstamp", since=T0, until=None, order=False
    )
    assert build_id_soql("Lead", ["Id"], ["00Q1", "00Q'2"]) == (
        "SELECT Id FROM Lead WHERE Id IN ('00Q1', '00Q\\'2') ORDER BY Id"
    )


def test_extraction_fields_come_from_the_catalog() -> None:
    fields = stream("salesforce", "Opportunity").field_names
    text = build_soql("Opportunity", fields, cursor="SystemModstamp", since=None, until=None)
    assert all(f in text for f in ("StageName", "CloseDate", "HubSpot_Id__c", "IsDeleted"))


def test_describe_picklists_include_inactive_values() -> None:
    describe = {
        "fields": [
            {
                "name": "Industry",
                "picklistValues": [{"value": "Banking", "active": True}, {"value": "Old", "active": False}],
            },
            {"name": "Name", "picklistValues": []},
        ]
    }
    assert picklists_from_describe(describe, stream("salesforce", "Account")) == {
        "Industry": frozenset({"Banking", "Old"})
    }


BASE_MS = 1_767_323_045_000


def rec(rid: int, ms: int) -> dict[str, Any]:
    """A search result whose cursor is ``ms`` milliseconds after a fixed instant."""
    return {"id": str(rid), "properties": {"lastmodifieddate": str(BASE_MS + ms)}}


def test_keyset_pager_restarts_at_the_last_cursor_and_drops_ids_already_read() -> None:
    pager = KeysetPager("lastmodifieddate", lo_ms=BASE_MS)
    first = pager.accept([rec(1, 10), rec(2, 20), rec(3, 20)], has_more=True)
    assert [r["id"] for r in first] == ["1", "2", "3"]
    assert pager.next_request() == (BASE_MS + 20, 0, ["2", "3"])
    # Even if the server ignored the exclusion, ids already read are dropped client-side.
    second = pager.accept([rec(2, 20), rec(3, 20), rec(4, 20), rec(5, 30)], has_more=True)
    assert [r["id"] for r in second] == ["4", "5"]
    assert pager.next_request() == (BASE_MS + 30, 0, ["5"])
    last = pager.accept([rec(5, 30), rec(6, 31)], has_more=False)
    assert [r["id"] for r in last] == ["6"]
    assert pager.done


def test_keyset_pager_pages_by_offset_inside_a_tie_group_and_stops_at_the_cap() -> None:
    pager = KeysetPager("lastmodifieddate", lo_ms=BASE_MS + 5)
    page = [rec(i, 5) for i in range(SEARCH_LIMIT)]
    assert len(pager.accept(page, has_more=True)) == SEARCH_LIMIT
    assert pager.next_request() == (BASE_MS + 5, SEARCH_LIMIT, [])
    for n in range(1, SEARCH_CAP // SEARCH_LIMIT):
        assert not pager.capped
        pager.accept([rec(n * SEARCH_LIMIT + i, 5) for i in range(SEARCH_LIMIT)], has_more=True)
    assert pager.capped  # 10,000 records share one timestamp: keyset paging cannot go on


def test_search_body_is_one_sorted_range_on_the_cursor() -> None:
    body = search_body("hs_lastmodifieddate", ["dealname"], 1000, 2000, offset=400, exclude=["7"])
    assert body == {
        "filterGroups": [
            {
                "filters": [
                    {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "1000"},
                    {"propertyName": "hs_lastmodifieddate", "operator": "LTE", "value": "2000"},
                    {"propertyName": "hs_object_id", "operator": "NOT_IN", "values": ["7"]},
                ]
            }
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["dealname"],
        "limit": 200,
        "after": "400",
    }
    assert to_ms(T0) == 1_767_323_045_678


class FakeTime:
    """A clock that moves only when slept on, so pacing is tested without waiting."""

    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_pacer_waits_when_the_rolling_window_is_full() -> None:
    t = FakeTime()
    pacer = Pacer(search_per_second=2, sleep=t.sleep, clock=t.clock)
    headers = {"X-HubSpot-RateLimit-Max": "4", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
               "X-HubSpot-RateLimit-Remaining": "2"}  # fmt: skip
    for _ in range(3):
        pacer.before(search=False)
        pacer.after(headers)
        t.now += 1.0
    assert t.waits == []  # three calls in a window of four (one kept spare)
    pacer.before(search=False)
    assert t.waits == [pytest.approx(7.0)]  # until the first call leaves the 10 s window
    t.waits.clear()
    searches = Pacer(search_per_second=2, sleep=t.sleep, clock=t.clock)
    for _ in range(3):
        searches.before(search=True)
        searches.after({}, search=True)
    assert t.waits == [pytest.approx(1.01)]  # the third search within one second waits


def response(status: int, headers: dict[str, str]) -> HTTPResponse:
    return HTTPResponse(body=b"", headers=headers, status=status, preload_content=True)


def test_hubspot_retry_honours_retry_after_then_rate_limit_headers() -> None:
    retry = hubspot_retry()
    assert retry.get_retry_after(response(429, {"Retry-After": "3"})) == 3
    ten_secondly = {
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    assert retry.get_retry_after(response(429, ten_secondly)) == 10.0
    assert retry.get_retry_after(response(429, {"X-HubSpot-RateLimit-Secondly-Remaining": "0"})) == 1.0
    assert retry.get_retry_after(response(503, {})) is None  # exponential backoff instead
    assert retry.get_retry_after(response(429, {"Retry-After": "86400"})) == HubSpotRetry.MAX_WAIT_SECONDS
    assert [retry.is_retry("POST", 429), retry.is_retry("GET", 502), retry.is_retry("GET", 400)] == [
        True,
        True,
        False,
    ]
    assert isinstance(retry.new(total=1), HubSpotRetry)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_retryable_statuses_include_5xx_and_429_for_reads(status: int) -> None:
    assert hubspot_retry().is_retry("POST", status)


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05",
        "2026-01-02T05:04:05+02:00",
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    ],
)
def test_interval_end_from_airflow_is_normalised_to_utc(value: object) -> None:
    import pendulum
    from crm_sync.tasks.extract import as_utc

    assert as_utc(value) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # type: ignore[arg-type]
    assert as_utc(pendulum.datetime(2026, 1, 2, 3, 4, 5, tz="UTC")) == datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert as_utc(None) is None
