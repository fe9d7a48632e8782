"""Chunk planning: windows over CreatedDate and ACC-8's Id ranges, keyed independently of runs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from crm_sync.backfill.extract import window_conditions
from crm_sync.backfill.windows import ACC8_MAX_CHUNK, Chunk, plan_id_ranges, plan_windows


def test_windows_cover_the_range_half_open_and_the_last_one_is_shorter() -> None:
    chunks = plan_windows("2023-01-01", "2023-03-15", 30)
    assert [(c.lo[:10], c.hi[:10]) for c in chunks] == [
        ("2023-01-01", "2023-01-31"),
        ("2023-01-31", "2023-03-02"),
        ("2023-03-02", "2023-03-15"),
    ]
    assert [c.index for c in chunks] == [0, 1, 2]
    assert chunks[0].window() == (datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 31, tzinfo=UTC))


def test_a_chunk_key_depends_on_its_window_only_so_a_rerun_finds_it() -> None:
    first = plan_windows("2023-01-01", "2024-01-01", 90)
    again = plan_windows(datetime(2023, 1, 1, 17, 30, tzinfo=UTC), "2024-01-01T00:00:00Z", 90)
    assert [c.key for c in first] == [c.key for c in again]
    assert Chunk.from_xcom(first[1].as_xcom()) == first[1]


@pytest.mark.parametrize(
    ("start", "end", "days", "message"),
    [("2023-01-01", "2023-01-01", 30, "must be after"), ("2023-01-01", "2024-01-01", 0, "chunk_days")],
)
def test_bad_params_fail_naming_the_param(start: str, end: str, days: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_windows(start, end, days)


def test_account_ranges_hold_at_most_the_chunk_size_and_cover_every_id() -> None:
    ids = [f"001{i:05d}" for i in range(10)] + ["00100003"]  # a duplicate
    chunks = plan_id_ranges(ids, 4, scope="m1")
    assert [(c.lo, c.hi, c.expected) for c in chunks] == [
        ("", "00100003", 4),
        ("00100003", "00100007", 4),
        ("00100007", "00100009", 2),
    ]
    assert all(c.key.endswith("@m1") for c in chunks)


def test_acc8_caps_a_chunk_at_200000_companies() -> None:
    with pytest.raises(ValueError, match="ACC-8"):
        plan_id_ranges(["001"], ACC8_MAX_CHUNK + 1)


def test_window_queries_read_the_referenced_records_with_semi_joins() -> None:
    chunk = plan_windows("2023-01-01", "2023-02-01", 31)[0]
    where = window_conditions(chunk)
    created = "CreatedDate >= 2023-01-01T00:00:00Z AND CreatedDate < 2023-02-01T00:00:00Z"
    assert list(where) == ["Account", "Contact", "Opportunity", "OpportunityContactRole"]
    assert where["Opportunity"] == created
    assert where["Account"] == f"Id IN (SELECT AccountId FROM Opportunity WHERE {created})"
    assert where["Contact"].startswith(
        "Id IN (SELECT ContactId FROM OpportunityContactRole WHERE Opportunity."
    )
    ranges = window_conditions(plan_id_ranges(["001A", "001B", "001C"], 2)[1])
    assert ranges == {"Account": "Id > '001B' AND Id <= '001C'"}
