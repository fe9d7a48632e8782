"""The plan frame contract (DESIGN.md): its columns, its checks and its summary."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from crm_sync.plan import (
    ACTIONS,
    PLAN_COLUMNS,
    TARGETS,
    Action,
    PlanRow,
    Ref,
    Target,
    concat_plans,
    created_ref,
    created_refs,
    empty_plan,
    is_ref,
    iso_texts,
    json_texts,
    parse_ref,
    plan_frame,
    plan_rows,
    summarize,
)


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


def test_targets_and_actions_are_enums_with_the_contract_spellings() -> None:
    assert TARGETS == ("salesforce", "hubspot")
    assert ACTIONS == ("create", "update", "delete", "link", "associate", "skip", "quarantine")
    assert Action.ASSOCIATE == "associate"
    assert json.dumps([Target.HUBSPOT, Action.SKIP]) == '["hubspot", "skip"]'
    row = PlanRow("hubspot", "deals", "skip", rules=["DEAL-3"], reason="r")  # type: ignore[arg-type]
    assert row.target is Target.HUBSPOT
    assert row.action is Action.SKIP
    frame = plan_frame([row])
    assert type(frame.loc[0, "target"]) is str  # plain text in frames and staging


def test_a_created_ref_round_trips_through_parse_ref() -> None:
    """The loader resolves "@object:id" references: created_ref and parse_ref are inverses."""
    ref = created_ref("deals", "006A")
    assert ref == "@deals:006A"
    assert parse_ref(ref) == Ref("deals", "006A")
    assert str(parse_ref("@Opportunity:1234:5")) == "@Opportunity:1234:5"
    assert parse_ref("@pipelines:012A/Closed Won") == Ref("pipelines", "012A/Closed Won")
    for not_a_ref in ("006A", "", None, 12, "@", "@deals:", "@:1", "x@deals:1"):
        assert parse_ref(not_a_ref) is None
    refs = created_refs("contacts", pd.Series(["003A", "003B"]))
    assert refs.tolist() == ["@contacts:003A", "@contacts:003B"]
    assert is_ref(pd.Series(["@deals:1", "42", None])).tolist() == [True, False, False]


def test_plan_rows_carry_only_changed_fields_and_the_rules_of_those_fields() -> None:
    values = pd.DataFrame({"name": ["A", "B", "C"], "phone": ["1", "2", "3"]})
    mask = pd.DataFrame({"name": [True, False, False], "phone": [True, True, False]})
    plan = plan_rows(
        target=Target.HUBSPOT,
        object="companies",
        action=Action.UPDATE,
        values=values,
        mask=mask,
        target_id=pd.Series(["C1", "C2", "C3"]),
        rules=["SYNC-2"],
        column_rules={"name": ["SYNC-3"], "phone": ["OWN-5"]},
        row_rules={"ROLL-6": np.array([False, True, True])},
    )
    assert plan["target_id"].tolist() == ["C1", "C2"]  # C3 writes nothing: no row
    assert plan.loc[0, "fields"] == {"name": "A", "phone": "1"}
    assert plan.loc[0, "rules"] == ["SYNC-2", "SYNC-3", "OWN-5"]
    assert plan.loc[1, "fields"] == {"phone": "2"}
    assert plan.loc[1, "rules"] == ["SYNC-2", "OWN-5", "ROLL-6"]
    json.dumps(plan["fields"].tolist())  # plain JSON values only


def test_plan_rows_from_ready_fields_or_a_count_with_per_row_rules() -> None:
    made = plan_rows(
        target=Target.SALESFORCE,
        object="Lead",
        action=Action.CREATE,
        fields=[{"LastName": "A"}, {"LastName": "B"}],
        source_id=pd.Series(["1", "2"]),
        rules=pd.Series([["CON-2", "OWN-1"], ["CON-2", "OWN-2"]]),
    )
    assert made["fields"].tolist() == [{"LastName": "A"}, {"LastName": "B"}]
    assert made["rules"].tolist() == [["CON-2", "OWN-1"], ["CON-2", "OWN-2"]]
    skipped = plan_rows(
        target=Target.HUBSPOT, object="deals", action=Action.SKIP, count=2, rules=["DEAL-3"], reason="r"
    )
    assert skipped["fields"].tolist() == [{}, {}]
    assert skipped["reason"].tolist() == ["r", "r"]
    with pytest.raises(ValueError, match="plan rows"):
        plan_rows(target=Target.HUBSPOT, object="Account", action=Action.SKIP, count=1)


def test_json_texts_write_what_json_dumps_writes() -> None:
    values = ["plain", 'q"uote', "back\\slash", "caf\u00e9", "\x7f", "tab\t", "", None, 1.5, -0.0]
    values += [float("nan"), float("inf"), 3, 10**20, True, False, {"a": 1}]
    assert json_texts(values) == [json.dumps(v) for v in values]


def test_iso_texts_format_as_strftime_does() -> None:
    stamps = pd.Series(
        pd.to_datetime(["2026-03-01T01:02:03.456789Z", "1969-12-31T23:59:59.9999Z", None], utc=True)
    )
    millis = (stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z").tolist()
    assert iso_texts(stamps, "ms").tolist() == [*millis[:2], None]
    assert iso_texts(stamps, "D").tolist() == ["2026-03-01", "1969-12-31", None]
