"""The load runner's own guarantees, row by row: order, references, journal, links, dead letters.

The CRMs here are :class:`MemoryWriter` instances (the writers themselves are tested against the
sandbox through the real clients); what is asserted is what a user reads back in staging.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from crm_sync import staging
from crm_sync.load import bookkeeping, deadletters
from crm_sync.load.runner import UNRESOLVED, LoadRunner
from crm_sync.plan import PlanRow, plan_frame

from tests.unit.load.memory_writer import MemoryWriter

STAGES = pd.DataFrame(
    {
        "pipeline_key": ["RT1", "RT1"],
        "hs_pipeline_id": ["@pipelines:RT1", "@pipelines:RT1"],
        "stage_api_name": ["Prospecting", "Closed Won"],
        "stage_label": ["Prospecting", "Closed Won"],
        "hs_stage_id": ["@pipelines:RT1/Prospecting", "@pipelines:RT1/Closed Won"],
        "display_order": [0, 1],
        "probability": [0.1, 1.0],
        "is_closed": [False, True],
        "is_won": [False, True],
    }
)


def hubspot_plan() -> list[PlanRow]:
    """Rows deliberately listed out of dependency order."""
    return [
        PlanRow(
            "hubspot",
            "associations",
            "associate",
            source_id="OPP1",
            fields={
                "from_type": "deals",
                "from_id": "@deals:OPP1",
                "to_type": "companies",
                "to_id": "@companies:ACC1",
                "type_id": 5,
            },
            rules=["DEAL-7"],
        ),
        PlanRow(
            "hubspot",
            "deals",
            "create",
            source_id="OPP1",
            fields={
                "dealname": "Big deal",
                "pipeline": "@pipelines:RT1",
                "dealstage": "@pipelines:RT1/Prospecting",
                "salesforceopportunityid": "OPP1",
            },
            rules=["DEAL-1"],
        ),
        PlanRow(
            "hubspot",
            "companies",
            "create",
            source_id="ACC1",
            fields={"name": "Acme", "salesforceaccountid": "ACC1"},
            rules=["ACC-1"],
        ),
        PlanRow(
            "hubspot",
            "pipelines",
            "create",
            source_id="RT1",
            fields={
                "label": "Salesforce - New",
                "displayOrder": 1,
                "stages": [{"label": "Prospecting"}, {"label": "Closed Won"}],
            },
            rules=["DEAL-2"],
        ),
        PlanRow(
            "hubspot",
            "contacts",
            "create",
            source_id="CON1",
            fields={"email": "a@x.io", "salesforcecontactid": "CON1"},
            rules=["CON-3"],
        ),
        PlanRow(
            "hubspot",
            "contacts",
            "create",
            source_id="CON2",
            fields={"email": "REJECT", "salesforcecontactid": "CON2"},
            rules=["CON-3"],
        ),
        PlanRow("hubspot", "deals", "delete", source_id="OPP9", target_id="900", rules=["DEAL-4"]),
        PlanRow("hubspot", "contacts", "skip", source_id="CON3", reason="OWN-4: no owner", rules=["OWN-4"]),
    ]


def publish(engine: sa.Engine, run_id: str, rows: list[PlanRow]) -> None:
    staging.write_plan(engine, run_id, plan_frame(rows, run_id))
    staging.replace_run_rows(engine, "rule_pipeline_stages", STAGES, run_id)


def links(engine: sa.Engine) -> set[tuple[str, str, str]]:
    return {(r.object, r.sf_id, r.hs_id) for r in staging.read_frame(engine, "sync_link").itertuples()}


def open_dead_letters(engine: sa.Engine) -> pd.DataFrame:
    frame = staging.read_frame(engine, "dead_letter")
    return frame[frame["resolved_at"].isna()]


def run(engine: sa.Engine, run_id: str, hubspot: MemoryWriter, salesforce: MemoryWriter) -> LoadRunner:
    runner = LoadRunner(engine, run_id, hubspot, counterpart=salesforce, max_attempts=2)
    runner.run()
    return runner


def test_writes_in_dependency_order_and_resolves_created_ids(engine: sa.Engine) -> None:
    publish(engine, "r1", hubspot_plan())
    hubspot, salesforce = MemoryWriter("hubspot"), MemoryWriter("salesforce")
    runner = run(engine, "r1", hubspot, salesforce)

    assert [(o, a) for o, a, _ in hubspot.calls] == [
        ("pipelines", "create"),
        ("companies", "create"),
        ("contacts", "create"),
        ("deals", "create"),
        ("associations", "associate"),
        ("deals", "delete"),
    ]
    pipeline_id = next(iter(hubspot.records["pipelines"]))
    deal_id, deal = next(iter(hubspot.records["deals"].items()))
    company_id = next(iter(hubspot.records["companies"]))
    assert deal["pipeline"] == pipeline_id
    assert deal["dealstage"] == f"st{pipeline_id}-0"
    association = next(iter(hubspot.records["associations"].values()))
    assert (association["from_id"], association["to_id"]) == (deal_id, company_id)
    assert ("Account", "ACC1", company_id) in links(engine)
    assert ("Opportunity", "OPP1", deal_id) in links(engine)
    assert ("RecordType", "RT1", pipeline_id) in links(engine)
    # the Salesforce source records get the new HubSpot ids in HubSpot_Id__c (back-links)
    assert salesforce.records["Account"]["ACC1"] == {"HubSpot_Id__c": company_id}
    assert salesforce.records["Opportunity"]["OPP1"] == {"HubSpot_Id__c": deal_id}
    assert "CON2" not in salesforce.records.get("Contact", {})
    assert runner.counts.totals() == {"planned": 7, "written": 6, "failed": 1, "held": 0, "retried": 0}


def test_a_rejected_record_is_a_dead_letter_and_the_rest_of_its_batch_is_written(engine: sa.Engine) -> None:
    publish(engine, "r1", hubspot_plan())
    hubspot = MemoryWriter("hubspot")
    run(engine, "r1", hubspot, MemoryWriter("salesforce"))

    letters = open_dead_letters(engine)
    assert letters[["target", "object", "source_id", "error_code", "attempts"]].to_dict("records") == [
        {
            "target": "hubspot",
            "object": "contacts",
            "source_id": "CON2",
            "error_code": "INVALID_FIELD",
            "attempts": 1,
        }
    ]
    assert [r["email"] for r in hubspot.records["contacts"].values()] == ["a@x.io"]


def test_dead_letters_are_held_after_max_attempts_and_resolved_once_written(engine: sa.Engine) -> None:
    for run_id in ("r1", "r2"):
        publish(engine, run_id, hubspot_plan())
        run(engine, run_id, MemoryWriter("hubspot"), MemoryWriter("salesforce"))
    assert open_dead_letters(engine)["attempts"].tolist() == [2]

    publish(engine, "r3", hubspot_plan())
    hubspot = MemoryWriter("hubspot")
    runner = run(engine, "r3", hubspot, MemoryWriter("salesforce"))
    assert runner.counts.held[("contacts", "create")] == 1
    assert hubspot.calls[2] == ("contacts", "create", 1)  # only CON1 was sent

    fixed = [r for r in hubspot_plan() if r.source_id != "CON2"]
    fixed.append(
        PlanRow(
            "hubspot",
            "contacts",
            "create",
            source_id="CON2",
            fields={"email": "b@x.io", "salesforcecontactid": "CON2"},
        )
    )
    publish(engine, "r4", fixed)
    assert deadletters.release(engine, "hubspot") == 1
    fixed_run = run(engine, "r4", MemoryWriter("hubspot"), MemoryWriter("salesforce"))
    assert open_dead_letters(engine).empty
    assert fixed_run.counts.retried == {("contacts", "create"): 1}  # sync_log's "retried"


def test_a_reference_to_a_failed_create_waits_as_a_dead_letter(engine: sa.Engine) -> None:
    rows = hubspot_plan()
    rows[2] = PlanRow("hubspot", "companies", "create", source_id="ACC1", fields={"name": "REJECT"})
    publish(engine, "r1", rows)
    run(engine, "r1", MemoryWriter("hubspot"), MemoryWriter("salesforce"))

    codes = dict(
        zip(open_dead_letters(engine)["object"], open_dead_letters(engine)["error_code"], strict=True)
    )
    assert codes == {"companies": "INVALID_FIELD", "contacts": "INVALID_FIELD", "associations": UNRESOLVED}


def test_a_load_stopped_midway_is_finished_by_a_rerun_without_writing_anything_twice(
    engine: sa.Engine,
) -> None:
    publish(engine, "r1", hubspot_plan())
    first = MemoryWriter("hubspot", stop_after_calls=2)
    salesforce = MemoryWriter("salesforce")
    stopped = run(engine, "r1", first, salesforce)
    assert stopped.counts.stopped == "API allowance reserve reached"
    assert salesforce.calls == []  # back-links wait for a complete load

    second = MemoryWriter("hubspot", records=first.records)
    run(engine, "r1", second, salesforce)
    assert [(o, a) for o, a, _ in second.calls] == [
        ("contacts", "create"),
        ("deals", "create"),
        ("associations", "associate"),
        ("deals", "delete"),
    ]
    assert len(first.records["companies"]) == 1
    deal = next(iter(second.records["deals"].values()))
    assert deal["pipeline"] == next(iter(first.records["pipelines"]))
    assert {o for o, _, _ in salesforce.calls} == {"Account", "Opportunity", "Contact"}


def test_snapshot_advances_only_for_pairs_whose_writes_all_succeeded(engine: sa.Engine) -> None:
    rows = [
        PlanRow(
            "hubspot", "contacts", "update", source_id="SF1", target_id="HS1", fields={"jobtitle": "CTO"}
        ),
        PlanRow(
            "hubspot", "contacts", "update", source_id="SF2", target_id="HS2", fields={"jobtitle": "REJECT"}
        ),
    ]
    publish(engine, "r1", rows)
    proposed = pd.DataFrame(
        {
            "object": ["Contact", "Contact"],
            "sf_id": ["SF1", "SF2"],
            "hs_id": ["HS1", "HS2"],
            "sf_field": ["Title", "Title"],
            "hs_field": ["jobtitle", "jobtitle"],
            "value": ["CTO", "REJECT"],
            "synced_at": [pd.Timestamp("2026-01-01", tz="UTC")] * 2,
        }
    )
    staging.replace_run_rows(engine, "rule_snapshot", proposed, "r1")
    run(engine, "r1", MemoryWriter("hubspot"), MemoryWriter("salesforce"))

    assert bookkeeping.advance_snapshot(engine, "r1") == 1
    snapshot = staging.read_frame(engine, "sync_snapshot")
    assert snapshot[["sf_id", "value"]].to_dict("records") == [{"sf_id": "SF1", "value": "CTO"}]


@pytest.mark.parametrize("action", ["update", "link"])
def test_rows_of_existing_records_need_no_reference(engine: sa.Engine, action: str) -> None:
    rows = [
        PlanRow(
            "hubspot",
            "companies",
            action,
            source_id="ACC7",
            target_id="77",
            fields={"salesforceaccountid": "ACC7"},
        )
    ]
    publish(engine, "r1", rows)
    hubspot = MemoryWriter("hubspot")
    run(engine, "r1", hubspot, MemoryWriter("salesforce"))
    assert hubspot.records["companies"]["77"] == {"salesforceaccountid": "ACC7"}
    assert (("Account", "ACC7", "77") in links(engine)) is (action == "link")
