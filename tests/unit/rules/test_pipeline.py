"""The rule orchestration end to end: staged state -> plan, stage by stage, idempotent (SYNC-4)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from crm_sync import staging
from crm_sync.plan import ACTIONS, PLAN_COLUMNS, summarize
from crm_sync.rules.pipeline import (
    STAGE_NEEDS,
    STAGE_OUTPUTS,
    STAGES,
    PlanResult,
    build_plan,
    coalesce_updates,
    run_stage,
)
from crm_sync.rules.rollups import ROLLUP_FIELDS
from sqlalchemy.engine import URL

from tests.unit.rules.deal_world import apply_plan, config, one, rows, world

RULES_MD = Path(__file__).resolve().parents[3] / "docs" / "rules.md"
RULE_ID = re.compile(r"^(SYNC|OWN|CON|ACC|DEAL|ROLL)-\d+$")


@pytest.fixture(scope="module")
def first() -> PlanResult:
    return build_plan(world(), config(), "run-1")


def _canonical(plan: pd.DataFrame) -> list[str]:
    """Plan rows as sorted JSON lines (row order aside, two equal plans are equal lists)."""
    cols = [c for c in PLAN_COLUMNS if c != "run_id"]
    return sorted(
        json.dumps({c: r[c] for c in cols}, sort_keys=True, default=str) for r in plan.to_dict("records")
    )


def test_plan_has_every_action_kind_and_the_contract_columns(first: PlanResult) -> None:
    assert tuple(first.plan.columns) == PLAN_COLUMNS
    assert set(first.plan["action"]) == set(ACTIONS)
    assert (first.plan["run_id"] == "run-1").all()


def test_every_plan_row_names_the_rule_ids_that_decided_it(first: PlanResult) -> None:
    known = set(re.findall(r"^\| ([A-Z]+-\d+) \|", RULES_MD.read_text(), re.M))
    assert known, "docs/rules.md lists the rule ids"
    for row in first.plan.to_dict("records"):
        assert row["rules"], f"row without rules: {row}"
        for rule in row["rules"]:
            assert RULE_ID.match(rule), rule
            assert rule in known, f"{rule} is not a rule id of docs/rules.md"
        if row["action"] in ("skip", "quarantine"):
            assert row["reason"], f"{row['action']} row without a reason: {row}"


def test_plan_rows_are_valid_json_with_null_not_nan(first: PlanResult) -> None:
    """``crm-sync plan --format jsonl`` prints these rows: empty cells must be null, not NaN."""
    json.dumps(first.plan.to_dict("records"), allow_nan=False)
    assert first.plan["target_id"].isna().any()  # creates have no target id...
    assert all(v is None for v in first.plan["target_id"] if not isinstance(v, str))  # ...as None


def test_same_inputs_give_the_same_plan(first: PlanResult) -> None:
    again = build_plan(world(), config(), "run-1")
    pd.testing.assert_frame_equal(first.plan, again.plan)


def test_second_plan_after_applying_the_first_has_no_creates_or_updates(first: PlanResult) -> None:
    """SYNC-4: one application of the plan is a fixed point; what remains are deliberate non-syncs."""
    applied = apply_plan(world(), first)
    second = build_plan(applied, config(), "run-2")
    assert set(second.plan["action"]) <= {"skip", "quarantine"}, second.plan[
        ~second.plan["action"].isin(["skip", "quarantine"])
    ].to_dict("records")
    third = build_plan(apply_plan(applied, second), config(), "run-3")
    assert _canonical(third.plan) == _canonical(second.plan)


def test_the_world_decides_what_the_rules_say(first: PlanResult) -> None:
    plan = first.plan
    # SYNC-3: both sides changed the name; SF was modified later. Only HubSpot changed the description.
    assert one(plan, object="deals", action="update", target_id="D1")["fields"] == {
        "dealname": "Renamed in SF",
        "amount": 1500,
    }
    assert one(plan, object="Opportunity", action="update", target_id="006L")["fields"] == {
        "Description": "from HubSpot"
    }
    # DEAL-2: the renamed record type renames its pipeline; the new one is created; a missing stage too.
    assert one(plan, object="pipelines", action="update")["fields"] == {"label": "Salesforce - New Business"}
    assert {r["source_id"] for r in rows(plan, object="pipelines", action="create")} == {
        "012B",
        "012A/Closed Lost",
    }
    # DEAL-4 both ways, DEAL-3, DEAL-9, DEAL-5, quarantine of an unknown stage.
    assert one(plan, action="delete")["target_id"] == "D4"
    assert one(plan, object="Opportunity", action="update", target_id="006KEEP")["fields"] == {
        "HubSpot_Id__c": None
    }
    assert {r["source_id"] for r in rows(plan, action="skip", object="deals")} >= {
        "006KEEP",
        "006MOVED",
        "006OLD",
    }
    assert one(plan, object="Opportunity", action="create")["fields"]["HubSpot_Id__c"] == "D7"
    assert one(plan, action="quarantine", source_id="D8")["rules"] == ["DEAL-2"]
    # Lifecycle rides on the same update as the contact's field merge (one row per record);
    # ROLL-1..6 are HubSpot's calculated properties: expected, never written.
    h1 = one(plan, object="contacts", action="update", target_id="H1")
    assert h1["fields"]["lifecyclestage"] == "customer"
    assert "ROLL-7" in h1["rules"]
    expected = first.rollups.set_index("record_id")
    assert expected.loc["H1", "total_revenue"] == 950  # D7 (250) + the deal 006N creates (700)
    assert first.cleared_links["sf_id"].tolist() == ["006KEEP"]


def test_no_plan_row_writes_a_hubspot_calculated_rollup(first: PlanResult) -> None:
    """ROLL-1..6: a real HubSpot rejects writes to its read-only calculated properties."""
    calculated = set(ROLLUP_FIELDS)
    written = [r for r in rows(first.plan) if calculated & set(r["fields"] or {})]
    assert written == []
    assert not {"ROLL-1", "ROLL-2", "ROLL-3", "ROLL-4", "ROLL-5", "ROLL-6"} & {
        rule for r in rows(first.plan) for rule in r["rules"]
    }
    assert set(first.rollup_differences["field"]) <= calculated
    assert not first.rollup_differences.empty


def test_side_products_for_the_quality_report(first: PlanResult) -> None:
    assert set(first.pipelines["pipeline_key"]) == {"012A", "012B"}
    assert {"group_id", "sf_id", "is_survivor"} <= set(first.account_groups.columns)
    assert {"hs_owner_id", "email", "sf_user_id"} <= set(first.owner_map.columns)
    assert {"object", "record_id", "total_revenue"} <= set(first.rollups.columns)
    assert list(first.quarantine["source_id"]) == [
        rows(first.plan, action="quarantine")[i]["source_id"] for i in range(len(first.quarantine))
    ]
    snap = first.snapshot
    assert {("006L", "Name"), ("006L", "Amount"), ("006L", "Description")} <= set(
        zip(snap["sf_id"], snap["sf_field"], strict=True)
    )
    assert summarize(first.plan)["count"].sum() >= len(first.plan)


def test_stages_through_staging_tables_give_the_same_plan(first: PlanResult, tmp_path: Path) -> None:
    """The DAG path: each stage's frames are stored with staging.replace_frame and read back
    with staging.read_frame by the next stage (types and JSON cells survive the round trip)."""
    engine = staging.engine_for_url(URL.create("sqlite", database=str(tmp_path / "staging.db")))
    inputs = world()
    for name in STAGES:
        tables = {t: staging.read_frame(engine, t) for t in STAGE_NEEDS[name]}
        out = run_stage(name, inputs, config(), tables, "run-1")
        assert set(out) == set(STAGE_OUTPUTS[name])
        for table, frame in out.items():
            staging.replace_frame(engine, table, frame, "run-1")
    stored = staging.read_frame(engine, "rule_plan")
    from crm_sync.rules.pipeline import decode_plan

    assert _canonical(decode_plan(stored)) == _canonical(first.plan)
    staging.dispose_engines()


def test_with_deal_and_company_sync_off_no_deal_pipeline_or_company_rows_are_planned() -> None:
    result = build_plan(world(), config(companies_sync=False, deals_sync=False), "run-off")
    objects = set(result.plan["object"])
    assert objects.isdisjoint(
        {"deals", "Opportunity", "pipelines", "OpportunityContactRole", "companies", "Account"}
    )
    assert {"contacts", "Lead"} & objects  # contacts still sync


def test_coalesce_updates_merges_rows_for_the_same_record() -> None:
    plan = pd.DataFrame(
        [
            {"run_id": "", "target": "hubspot", "object": "contacts", "action": "update", "source_id": "003A",
             "target_id": "H1", "fields": {"firstname": "A"}, "rules": ["SYNC-3"], "reason": None},
            {"run_id": "", "target": "hubspot", "object": "contacts", "action": "update", "source_id": None,
             "target_id": "H1", "fields": {"total_revenue": 5}, "rules": ["ROLL-5"], "reason": None},
            {"run_id": "", "target": "hubspot", "object": "contacts", "action": "update", "source_id": None,
             "target_id": "H2", "fields": {"total_revenue": 1}, "rules": ["ROLL-5"], "reason": None},
        ]
    )  # fmt: skip
    out = coalesce_updates(plan)
    assert len(out) == 2
    h1 = one(out, target_id="H1")
    assert h1["fields"] == {"firstname": "A", "total_revenue": 5}
    assert h1["rules"] == ["SYNC-3", "ROLL-5"]
    assert h1["source_id"] == "003A"


def test_unknown_stage_name_is_refused() -> None:
    with pytest.raises(KeyError, match="unknown rule stage"):
        run_stage("guess_owners", world(), config(), {})


def _fields(plan: pd.DataFrame, **match: Any) -> list[dict[str, Any]]:
    return [r["fields"] for r in rows(plan, **match)]
