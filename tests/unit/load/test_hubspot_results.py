"""The HubSpot writer's pure pieces: values as HubSpot takes them, batch answers into outcomes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from crm_sync.load.hubspot_associations import primary_request
from crm_sync.load.hubspot_results import (
    UNIQUE_PROPERTY,
    error_code,
    property_value,
    record_outcomes,
    rounds,
    upsert_input,
)
from crm_sync.load.writer import LoadItem


def item(seq: int, source_id: str | None = None, target_id: str | None = None, **fields: Any) -> LoadItem:
    return LoadItem(seq, "hubspot", "companies", "create", source_id, target_id, fields, ())


def test_values_are_sent_as_hubspot_takes_them() -> None:
    paris = timezone(timedelta(hours=1))
    assert property_value(None) == ""  # clears the property
    assert property_value(float("nan")) == ""
    assert property_value(datetime(2024, 1, 2, 3, 4, 5, tzinfo=paris)) == "2024-01-02T02:04:05.000Z"
    naive = datetime(2024, 1, 2, 3, 4, 5)  # noqa: DTZ001 - a naive value from a frame is UTC
    assert property_value(naive) == "2024-01-02T03:04:05.000Z"
    assert property_value(date(2024, 1, 2)) == "2024-01-02"
    assert [property_value(v) for v in (True, 7, 2.5, "x")] == [True, 7, 2.5, "x"]


def test_an_upsert_is_keyed_and_traced() -> None:
    sent = upsert_input(item(12, "001A", name="Acme", closedate=datetime(2024, 3, 1, tzinfo=UTC)))
    assert sent == {
        "id": "001A",
        "idProperty": UNIQUE_PROPERTY,
        "properties": {"name": "Acme", "closedate": "2024-03-01T00:00:00.000Z", UNIQUE_PROPERTY: "001A"},
        "objectWriteTraceId": "12",
    }


def test_rounds_never_name_a_record_twice() -> None:
    items = [item(1, "a"), item(2, "b"), item(3, "a"), item(4, "a")]
    assert [[i.seq for i in r] for r in rounds(items, lambda i: i.source_id)] == [[1, 2], [3], [4]]


def test_the_most_specific_error_code_wins() -> None:
    detailed = {"category": "VALIDATION_ERROR", "errors": [{"code": "INVALID_OPTION", "message": "..."}]}
    assert error_code(detailed) == "INVALID_OPTION"
    assert error_code({"category": "CONFLICT"}) == "CONFLICT"
    assert error_code({"errorType": "RATE_LIMIT"}) == "RATE_LIMIT"


def test_outcomes_match_results_by_trace_or_key_and_report_what_is_missing() -> None:
    items = [item(1, "001A"), item(2, "001B"), item(3, "001C"), item(4, "001D")]
    body = {
        "results": [
            {"id": "901", "objectWriteTraceId": "1", "properties": {}},
            {"id": "902", "properties": {UNIQUE_PROPERTY: "001B"}},  # a portal that echoes no trace
        ],
        "errors": [
            {
                "category": "VALIDATION_ERROR",
                "message": "bad",
                "context": {"objectWriteTraceId": ["3"]},
                "errors": [{"code": "READ_ONLY_VALUE"}],
            }
        ],
    }
    outcomes = record_outcomes(
        items, body, key_of=lambda i: i.source_id, result_key=lambda r: r["properties"].get(UNIQUE_PROPERTY)
    )
    assert [(o.seq, o.target_id, o.error_code, o.retryable) for o in outcomes] == [
        (1, "901", None, True),
        (2, "902", None, True),
        (3, None, "READ_ONLY_VALUE", False),
        (4, None, "NO_RESULT", True),
    ]


def test_primary_company_requests_from_either_side() -> None:
    def assoc(from_type: str, from_id: str, to_type: str, to_id: str, type_id: int) -> LoadItem:
        fields = {
            "from_type": from_type,
            "from_id": from_id,
            "to_type": to_type,
            "to_id": to_id,
            "type_id": type_id,
        }
        return LoadItem(1, "hubspot", "associations", "associate", None, None, fields, ())

    assert primary_request(assoc("deals", "3", "companies", "1", 5)) == (5, "3", "1")
    assert primary_request(assoc("companies", "1", "contacts", "2", 2)) == (1, "2", "1")
    assert primary_request(assoc("deals", "3", "companies", "1", 341)) is None
    assert primary_request(assoc("deals", "3", "contacts", "2", 3)) is None
