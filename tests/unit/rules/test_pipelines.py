"""DEAL-2: record types <-> deal pipelines ("Salesforce - <record type>"), stages, stable keys."""

from __future__ import annotations

from typing import Any

import pandas as pd
from crm_sync.rules.pipelines import STANDARD_KEY, STANDARD_LABEL, name_pipelines, pipeline_keys, stage_lookup

from tests.unit.rules.deal_world import deal_inputs, hs, one, opp, pipeline_stages, record_types, rows


def run(**kwargs: Any) -> Any:
    return name_pipelines(deal_inputs(**kwargs))


def test_deal2_org_with_a_single_record_type_gets_the_standard_pipeline() -> None:
    result = run(rts=[("012A", "New Business")], pipelines=[], stages=[], link_rows=[])
    assert result.pipelines["label"].tolist() == [STANDARD_LABEL]
    assert result.pipelines["pipeline_key"].tolist() == [STANDARD_KEY]
    create = one(result.plan, action="create", source_id=STANDARD_KEY)
    assert create["fields"]["label"] == "Salesforce - Standard pipeline"
    assert create["rules"] == ["DEAL-2"]


def test_deal2_org_without_record_types_gets_the_standard_pipeline() -> None:
    result = run(rts=[], pipelines=[], stages=[], link_rows=[])
    assert result.pipelines["label"].tolist() == [STANDARD_LABEL]


def test_deal2_each_record_type_of_a_multi_record_type_org_gets_its_own_pipeline() -> None:
    result = run(rts=[("012A", "New Business"), ("012B", "Renewal")], pipelines=[], stages=[], link_rows=[])
    assert sorted(result.pipelines["label"]) == ["Salesforce - New Business", "Salesforce - Renewal"]
    creates = rows(result.plan, object="pipelines", action="create")
    assert sorted(r["source_id"] for r in creates) == ["012A", "012B"]


def test_deal2_new_pipeline_is_created_with_every_stage_in_picklist_order() -> None:
    result = run(rts=[("012A", "New Business"), ("012B", "Renewal")], pipelines=[], stages=[], link_rows=[])
    stages = one(result.plan, action="create", source_id="012A")["fields"]["stages"]
    assert [s["label"] for s in stages] == ["Prospecting", "Closed Won", "Closed Lost"]
    assert [s["displayOrder"] for s in stages] == [0, 1, 2]
    # HubSpot's won/lost convention: closed won is probability 1, closed lost 0.
    assert [s["metadata"] for s in stages] == [
        {"probability": "0.1", "isClosed": "false"},
        {"probability": "1.0", "isClosed": "true"},
        {"probability": "0.0", "isClosed": "true"},
    ]
    smap = result.stages[result.stages["pipeline_key"] == "012A"].set_index("stage_api_name")
    assert smap.loc["Closed Won", "hs_stage_id"] == "@pipelines:012A/Closed Won"
    assert bool(smap.loc["Closed Won", "is_won"])
    assert not bool(smap.loc["Closed Lost", "is_won"])


def test_deal2_record_type_rename_renames_its_pipeline_found_by_the_stable_key() -> None:
    result = run(
        rts=[("012A", "Enterprise"), ("012B", "Renewal")],
        pipelines=[
            {"id": "P1", "label": "Salesforce - New Business"},
            {"id": "P2", "label": "Salesforce - Renewal"},
        ],
        stages=pipeline_stages("P1", "P1") + pipeline_stages("P2", "P2"),
        link_rows=[("RecordType", "012A", "P1"), ("RecordType", "012B", "P2")],
    )
    update = one(result.plan, object="pipelines", action="update")
    assert (update["target_id"], update["fields"]) == ("P1", {"label": "Salesforce - Enterprise"})
    assert rows(result.plan, action="create") == []
    assert result.pipelines.set_index("pipeline_key").loc["012A", "hs_pipeline_id"] == "P1"


def test_deal2_a_second_record_type_renames_the_standard_pipeline_for_the_first_one() -> None:
    """One record type -> two: the standard pipeline stood for 012A; it becomes (and is renamed
    to) 012A's pipeline with its deals; only 012B gets a new pipeline."""
    result = run(
        rts=[("012A", "New Business"), ("012B", "Renewal")],
        pipelines=[{"id": "P1", "label": STANDARD_LABEL}],
        stages=pipeline_stages("P1", "P1"),
        link_rows=[("RecordType", STANDARD_KEY, "P1")],
        opps=[opp("006A", RecordTypeId="012A"), opp("006B", RecordTypeId="012A")],
    )
    assert result.pipelines.set_index("pipeline_key").loc["012A", "hs_pipeline_id"] == "P1"
    link = one(result.plan, object="pipelines", action="link")
    assert (link["source_id"], link["target_id"]) == ("012A", "P1")
    update = one(result.plan, object="pipelines", action="update")
    assert (update["target_id"], update["fields"]) == ("P1", {"label": "Salesforce - New Business"})
    assert [r["source_id"] for r in rows(result.plan, action="create")] == ["012B"]


def test_deal2_back_to_one_record_type_the_standard_pipeline_inherits_its_pipeline() -> None:
    result = run(
        rts=[("012A", "New Business")],
        pipelines=[
            {"id": "P1", "label": "Salesforce - New Business"},
            {"id": "P2", "label": "Salesforce - Renewal"},
        ],
        stages=pipeline_stages("P1", "P1") + pipeline_stages("P2", "P2"),
        link_rows=[("RecordType", "012A", "P1"), ("RecordType", "012B", "P2")],
        opps=[opp("006A", RecordTypeId="012A")],
    )
    assert result.pipelines[["pipeline_key", "hs_pipeline_id"]].values.tolist() == [[STANDARD_KEY, "P1"]]
    assert one(result.plan, object="pipelines", action="update")["fields"] == {"label": STANDARD_LABEL}
    assert rows(result.plan, action="create") == []


def test_deal2_an_unlinked_pipeline_with_the_desired_label_is_adopted_not_duplicated() -> None:
    result = run(
        rts=[("012A", "New Business"), ("012B", "Renewal")],
        pipelines=[{"id": "P9", "label": "salesforce -  renewal"}],
        stages=pipeline_stages("P9", "P9"),
        link_rows=[],
    )
    link = one(result.plan, object="pipelines", action="link")
    assert (link["source_id"], link["target_id"]) == ("012B", "P9")
    assert [r["source_id"] for r in rows(result.plan, action="create")] == ["012A"]


def test_deal2_missing_stages_of_an_existing_pipeline_are_created() -> None:
    result = run(stages=pipeline_stages("P1", "P1")[:1])  # only "Prospecting" exists
    creates = rows(result.plan, object="pipelines", action="create")
    assert sorted(r["source_id"] for r in creates) == [
        f"{STANDARD_KEY}/Closed Lost",
        f"{STANDARD_KEY}/Closed Won",
    ]
    won = one(result.plan, source_id=f"{STANDARD_KEY}/Closed Won")["fields"]
    assert won == {
        "pipelineId": "P1",
        "label": "Closed Won",
        "displayOrder": 1,
        "metadata": {"probability": "1.0", "isClosed": "true"},
    }


def test_deal2_complete_linked_pipeline_plans_nothing() -> None:
    result = run()
    assert result.plan.empty
    assert result.stages["hs_stage_id"].tolist() == ["P1-1", "P1-2", "P1-3"]


def test_deal2_an_archived_linked_pipeline_is_replaced() -> None:
    result = run(pipelines=[{"id": "P1", "label": STANDARD_LABEL, "archived": True}])
    assert one(result.plan, action="create")["source_id"] == STANDARD_KEY


def test_deal2_inactive_record_types_count_only_while_opportunities_use_them() -> None:
    rts = pd.concat(
        [
            record_types(("012A", "New Business"), ("012B", "Renewal")),
            pd.DataFrame(
                [{"Id": "012X", "Name": "Retired", "SobjectType": "Opportunity", "IsActive": False}]
            ),
            pd.DataFrame([{"Id": "012C", "Name": "Case type", "SobjectType": "Case", "IsActive": True}]),
        ],
        ignore_index=True,
    )
    unused = run(sf_record_type=rts, pipelines=[], stages=[], link_rows=[])
    assert sorted(unused.pipelines["pipeline_key"]) == ["012A", "012B"]
    used = run(
        sf_record_type=rts, pipelines=[], stages=[], link_rows=[], opps=[opp("006A", RecordTypeId="012X")]
    )
    assert sorted(used.pipelines["pipeline_key"]) == ["012A", "012B", "012X"]


def test_deal2_opportunities_map_to_their_record_types_pipeline_or_the_standard_one() -> None:
    inputs = deal_inputs(
        rts=[("012A", "New Business"), ("012B", "Renewal")],
        opps=[opp("006A", RecordTypeId="012B"), opp("006B", RecordTypeId=None)],
        pipelines=[],
        stages=[],
        link_rows=[],
    )
    result = name_pipelines(inputs)
    # An Opportunity without a record type (master) goes to the standard pipeline, which is created.
    assert STANDARD_KEY in set(result.pipelines["pipeline_key"])
    keys = pipeline_keys(inputs.sf_opportunity, result.pipelines)
    assert keys.tolist() == ["012B", STANDARD_KEY]


def test_deal2_stage_lookup_reads_won_from_hubspot_metadata_outside_synced_pipelines() -> None:
    default_stages = [
        {
            "id": "closedwon",
            "pipeline_id": "default",
            "label": "Closed won",
            "probability": 1.0,
            "isClosed": True,
        },
        {
            "id": "closedlost",
            "pipeline_id": "default",
            "label": "Closed lost",
            "probability": 0.0,
            "isClosed": True,
        },
    ]
    result = run(
        pipelines=[{"id": "P1", "label": STANDARD_LABEL}, {"id": "default", "label": "Sales Pipeline"}],
        stages=[*pipeline_stages("P1", "P1"), *default_stages],
    )
    lookup = stage_lookup(result.stages, hs("pipeline_stages", *default_stages)).set_index("hs_stage_id")
    assert bool(lookup.loc["closedwon", "is_won"])
    assert not bool(lookup.loc["closedlost", "is_won"])
    assert lookup.loc["P1-2", "stage_api_name"] == "Closed Won"
    assert pd.isna(lookup.loc["closedwon", "stage_api_name"])
