"""Validation before loading: each expectation of the staged and plan suites, row by row (SYNC-5).

Every test runs the real suites through Great Expectations (an ephemeral context) and through
crm-sync's row masks; ``validate`` refuses to answer when the two disagree, so each assertion
here also checks that GX counted the same rows.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from crm_sync.plan import PlanRow
from crm_sync.quality.gx import GxRunner
from crm_sync.quality.validation import Validation, breaches, gate_message, validate

from tests.unit.quality.world import frame, plan, staged_world


@pytest.fixture(scope="module")
def runner() -> GxRunner:
    return GxRunner()


def _run(runner: GxRunner, frames: dict[str, pd.DataFrame], rows: pd.DataFrame | None = None) -> Validation:
    return validate(frames, rows if rows is not None else plan(), runner=runner)


def _failures(result: Validation) -> set[tuple[str, str, str, str]]:
    f = result.failures
    return set(zip(f["system"], f["object"], f["record_id"], f["rule"], strict=True))


def _outcome(result: Validation, scope: str, system: str, obj: str) -> Any:
    return next(o for o in result.objects if (o.scope, o.system, o.object) == (scope, system, obj))


def test_a_clean_world_passes_every_expectation(runner: GxRunner) -> None:
    result = _run(runner, staged_world())
    assert result.failures.empty
    assert all(o.failed == 0 for o in result.objects)
    contacts = _outcome(result, "staged", "salesforce", "Contact")
    assert contacts.rows == 2
    assert set(contacts.by_check) == {"ids_not_null", "ids_unique", "email_valid", "owner_resolves"}


def test_staged_records_failing_an_expectation_are_named_with_their_values(runner: GxRunner) -> None:
    world = staged_world()
    world["hs_contact"] = frame(
        [
            {"id": "2001", "email": "ann(at)acme.com", "hubspot_owner_id": "901"},
            {"id": "2002", "email": "  bo@initech.com ", "hubspot_owner_id": "999"},
            {"id": "2003", "email": "gone@x", "hubspot_owner_id": None, "_deleted": True},
        ],
        _deleted=False,
    )
    world["sf_opportunity"] = frame(
        [
            {
                "Id": "006A",
                "StageName": "Prospecting",
                "CloseDate": "1066-10-14",
                "Amount": "lots",
                "OwnerId": "005A",
            },
            {"Id": "006B", "StageName": "Haggling", "CloseDate": None, "Amount": None, "OwnerId": "005A"},
        ],
        _deleted=False,
    )
    world["hs_deal"] = frame(
        [{"id": "3001", "pipeline": "101", "dealstage": "d1", "amount": 1.0, "hubspot_owner_id": "902"}],
        _deleted=False,
    )
    result = _run(runner, world)

    assert _failures(result) == {
        ("hubspot", "contacts", "2001", "email_valid"),
        ("hubspot", "contacts", "2002", "owner_resolves"),
        ("salesforce", "Opportunity", "006A", "date_parses:CloseDate"),
        ("salesforce", "Opportunity", "006A", "amount_numeric:Amount"),
        ("salesforce", "Opportunity", "006B", "stage_in_pipeline"),
        ("hubspot", "deals", "3001", "stage_in_pipeline"),  # d1 is a stage of another pipeline
    }
    email = result.failures.set_index("rule").loc["email_valid"]
    assert email["payload"] == {"id": "2001", "email": "ann(at)acme.com"}
    assert "not a valid email address" in email["reason"]
    contacts = _outcome(result, "staged", "hubspot", "contacts")
    assert (contacts.rows, contacts.failed) == (2, 2)  # the deleted contact is not checked
    opps = _outcome(result, "staged", "salesforce", "Opportunity")
    assert (opps.rows, opps.failed) == (2, 2)
    assert opps.by_check["amount_numeric:Amount"] == 1


def test_duplicate_and_missing_ids_are_caught(runner: GxRunner) -> None:
    world = staged_world()
    world["sf_lead"] = frame(
        [
            {"Id": "00QA", "Email": "a@b.co"},
            {"Id": "00QA", "Email": "c@d.co"},
            {"Id": None, "Email": "e@f.co"},
        ],
        _deleted=False,
    )
    result = _run(runner, world)
    leads = _outcome(result, "staged", "salesforce", "Lead")
    assert leads.by_check["ids_unique"] == 2
    assert leads.by_check["ids_not_null"] == 1
    assert ("salesforce", "Lead", "<row 2>", "ids_not_null") in _failures(result)


def test_plan_rows_of_failing_records_are_held_back_with_the_reason(runner: GxRunner) -> None:
    world = staged_world()
    world["hs_contact"] = frame(
        [{"id": "2002", "email": "bo-at-initech", "hubspot_owner_id": None}], _deleted=False
    )
    rows = plan(
        PlanRow("salesforce", "Lead", "create", source_id="2002", fields={"LastName": "Bo"}, rules=["CON-2"]),
        PlanRow(
            "hubspot",
            "contacts",
            "update",
            target_id="2002",
            fields={"num_associated_deals": 1},
            rules=["ROLL-1"],
        ),
        PlanRow("salesforce", "Lead", "skip", source_id="2002", rules=["CON-2"], reason="n/a"),
        PlanRow("hubspot", "contacts", "create", source_id="003B", fields={"lastname": "X"}, rules=["CON-3"]),
    )
    result = _run(runner, world, rows)
    assert sorted(result.plan_reasons) == [0, 1]  # the skip row stays a skip; 003B is fine
    assert result.plan_reasons[0].startswith("validate email_valid: hubspot contacts 2002:")


def test_the_plan_suite_catches_double_creates_unlinked_updates_pipelines_and_unmapped_values(
    runner: GxRunner,
) -> None:
    rows = plan(
        PlanRow(
            "hubspot", "deals", "create", source_id="006A", fields={"pipeline": "101", "dealstage": "s1"}
        ),
        PlanRow(
            "hubspot", "deals", "create", source_id="006A", fields={"pipeline": "101", "dealstage": "s1"}
        ),
        PlanRow("hubspot", "contacts", "update", source_id="003A", target_id="2001", fields={"phone": "1"}),
        PlanRow("hubspot", "contacts", "update", source_id="003B", target_id="2002", fields={"phone": "2"}),
        PlanRow("salesforce", "Contact", "update", source_id="2001", fields={"Phone": "3"}),
        PlanRow("hubspot", "deals", "update", target_id="3001", fields={"amount": 5}),
        PlanRow(
            "hubspot", "deals", "create", source_id="006B", fields={"pipeline": "default", "dealstage": "d1"}
        ),
        PlanRow("hubspot", "pipelines", "create", source_id="012A", fields={"label": "SF New Business"}),
        PlanRow(
            "hubspot", "deals", "create", source_id="006C", fields={"pipeline": "101", "dealstage": "zz"}
        ),
        PlanRow("hubspot", "contacts", "update", target_id="2002", fields={"lifecyclestage": "whale"}),
        PlanRow("salesforce", "Opportunity", "create", source_id="3009", fields={"OwnerId": "005Z"}),
    )
    result = _run(runner, staged_world(), rows)
    plan_failures = {(r, o) for _s, o, _r, r in _failures(result)}
    assert plan_failures == {
        ("plan_single_create", "deals"),
        ("plan_update_linked", "contacts"),
        ("plan_update_linked", "Contact"),
        ("plan_deal_in_synced_pipeline", "deals"),
        ("plan_pipeline_name", "pipelines"),
        ("plan_enum_mapped", "deals"),
        ("plan_enum_mapped", "contacts"),
        ("plan_enum_mapped", "Opportunity"),
    }
    assert sorted(result.plan_reasons) == [0, 1, 3, 4, 6, 7, 8, 9, 10]
    assert "dealstage=zz" in result.plan_reasons[8]
    deals = _outcome(result, "plan", "hubspot", "deals")
    assert (deals.rows, deals.failed) == (5, 4)


def test_the_gate_trips_above_the_threshold_only_over_enough_rows(runner: GxRunner) -> None:
    world = staged_world()
    world["hs_contact"] = frame(
        [{"id": str(i), "email": "bad" if i < 3 else f"p{i}@x.com"} for i in range(40)], _deleted=False
    )
    result = _run(runner, world)
    contacts = _outcome(result, "staged", "hubspot", "contacts")
    assert contacts.rate == pytest.approx(3 / 40)
    assert breaches(result.objects, 0.05, min_rows=50) == []
    assert breaches(result.objects, 0.10, min_rows=10) == []
    broken = breaches(result.objects, 0.05, min_rows=10)
    assert broken == [contacts]
    message = gate_message(broken, 0.05)
    assert "hubspot contacts: 3 of 40 rows fail (7.5%)" in message
    assert "email_valid (expect_column_values_to_match_regex)" in message
    assert "'email': 'bad'" in message


def test_picklist_values_must_be_options_the_target_crm_knows(runner: GxRunner) -> None:
    world = staged_world()
    world["picklist_options"] = frame(
        [
            {
                "system": "hubspot",
                "object": "deals",
                "field": "dealtype",
                "value": "newbusiness",
                "active": True,
            },
            {
                "system": "hubspot",
                "object": "deals",
                "field": "dealtype",
                "value": "oldbusiness",
                "active": False,
            },
            {"system": "salesforce", "object": "Opportunity", "field": "Type", "value": "New Customer"},
        ]
    )
    rows = plan(
        PlanRow("hubspot", "deals", "update", target_id="3001", fields={"dealtype": "newbusiness"}),
        PlanRow("hubspot", "deals", "update", target_id="3001", fields={"dealtype": "oldbusiness"}),
        PlanRow("hubspot", "deals", "update", target_id="3001", fields={"dealtype": "New Customer"}),
        PlanRow("salesforce", "Opportunity", "update", target_id="006A", fields={"Type": "newbusiness"}),
        PlanRow("salesforce", "Opportunity", "update", target_id="006A", fields={"Type": "New Customer"}),
    )
    result = _run(runner, world, rows)
    assert sorted(result.plan_reasons) == [2, 3]
    assert result.plan_reasons[2].endswith("dealtype=New Customer")
    assert result.plan_reasons[3].endswith("Type=newbusiness")
