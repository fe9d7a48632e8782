"""The plan frame contract (DESIGN.md): its columns, its checks and its summary."""

from __future__ import annotations

import pandas as pd
import pytest
from crm_sync.plan import PLAN_COLUMNS, PlanRow, concat_plans, empty_plan, plan_frame, summarize


def test_plan_frame_has_the_contract_columns_in_order() -> None:
    frame = plan_frame(
        [
            PlanRow(
                "hubspot", "companies", "create", source_id="001A", fields={"name": "Acme"}, rules=["ACC-1"]
            )
        ],
        run_id="r1",
    )
    assert tuple(frame.columns) == PLAN_COLUMNS
    assert frame.loc[0, "run_id"] == "r1"
    assert frame.loc[0, "fields"] == {"name": "Acme"}


@pytest.mark.parametrize(
    "row",
    [
        PlanRow("hubspot", "Account", "create"),  # a Salesforce object on the HubSpot side
        PlanRow("salesforce", "deals", "update"),
        {"target": "zoho", "object": "Account", "action": "create"},
        {"target": "hubspot", "object": "deals", "action": "merge"},
    ],
)
def test_plan_rejects_rows_outside_the_contract(row) -> None:
    with pytest.raises(ValueError, match="plan rows"):
        plan_frame([row])


def test_summary_counts_each_rule_of_a_row_once() -> None:
    frame = plan_frame(
        [
            PlanRow("salesforce", "Lead", "create", source_id="1", rules=["CON-2", "OWN-2"]),
            PlanRow("salesforce", "Lead", "create", source_id="2", rules=["CON-2"]),
            PlanRow("hubspot", "deals", "skip", source_id="3", rules=["DEAL-3"], reason="not synced"),
        ]
    )
    summary = summarize(frame).set_index(["target", "object", "action", "rule"])["count"]
    assert summary[("salesforce", "Lead", "create", "CON-2")] == 2
    assert summary[("salesforce", "Lead", "create", "OWN-2")] == 1
    assert summary[("hubspot", "deals", "skip", "DEAL-3")] == 1


def test_concat_of_empty_plans_is_an_empty_plan() -> None:
    merged = concat_plans([empty_plan(), pd.DataFrame(columns=list(PLAN_COLUMNS))])
    assert merged.empty
    assert tuple(merged.columns) == PLAN_COLUMNS
