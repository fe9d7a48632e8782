"""SYNC-5: a value the target field cannot hold unchanged is quarantined, never altered."""

from __future__ import annotations

import pandas as pd
from crm_sync.plan import PlanRow, plan_frame
from crm_sync.rules.limits import quarantine_unwritable
from crm_sync.rules.merge import format_for

from tests.unit.rules.sync_frames import one


def test_a_huge_number_is_never_wrapped_into_an_int64() -> None:
    """AnnualRevenue 1e300 was planned as -9223372036854775808."""
    out = format_for(pd.Series([1e300, 2500.0, None], dtype="float64"), "number", "number")
    assert out.tolist() == [1e300, 2500, None]


def _row(target: str, obj: str, action: str, key: str, fields: dict[str, object]) -> PlanRow:
    ids = {"source_id": key} if action == "create" else {"target_id": key}
    return PlanRow(target, obj, action, fields=fields, rules=["DEAL-1"], **ids)  # type: ignore[arg-type]


def test_values_the_target_cannot_hold_turn_their_row_into_quarantine_with_the_reason() -> None:
    plan = quarantine_unwritable(
        plan_frame(
            [
                _row("salesforce", "Account", "create", "c1", {"AnnualRevenue": 1e300}),
                _row("hubspot", "deals", "update", "d1", {"closedate": "20026-01-01T00:00:00.000Z"}),
                _row("salesforce", "Account", "update", "001A", {"Name": "x" * 256}),
                _row("salesforce", "Opportunity", "update", "006A", {"Amount": 12.345}),
                _row("hubspot", "companies", "create", "001B", {"annualrevenue": 1e300}),
                _row(
                    "salesforce",
                    "Opportunity",
                    "update",
                    "006B",
                    {"Amount": 12.34, "CloseDate": "2026-03-01"},
                ),
            ]
        )
    )
    revenue = one(plan, source_id="c1")
    assert revenue["action"] == "quarantine"
    assert revenue["rules"] == ["DEAL-1", "SYNC-5"]
    assert "AnnualRevenue 1e+300 is outside its range" in revenue["reason"]
    assert revenue["fields"] == {"AnnualRevenue": 1e300}  # kept for the quarantine entry
    assert "is not a date" in one(plan, target_id="d1")["reason"]
    assert "256 characters exceed its limit of 255" in one(plan, target_id="001A")["reason"]
    assert "more than 2 decimal places" in one(plan, target_id="006A")["reason"]
    assert one(plan, source_id="001B")["action"] == "quarantine"
    fine = one(plan, target_id="006B")
    assert (fine["action"], fine["rules"]) == ("update", ["DEAL-1"])
