"""DEAL-1..DEAL-9: Opportunities <-> deals (creates, merges, deletes, pipelines, contacts, currency)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from crm_sync.rules.deal_contacts import ASSOCIATION_SNAPSHOT_COLUMNS, next_association_snapshot
from crm_sync.rules.deals import DealsResult, plan_deals
from crm_sync.rules.owners import build_owner_map
from crm_sync.rules.pipelines import name_pipelines

from tests.unit.rules.deal_world import (
    AFTER,
    BEFORE,
    INTEGRATION_EMAIL,
    LATER,
    config,
    deal,
    deal_inputs,
    one,
    opp,
    pipeline_stages,
    rows,
    sf,
    snapshot,
)


def run(
    *,
    contact_links: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    account_links: list[tuple[str, str]] = (),  # type: ignore[assignment]
    cfg: Any = None,
    multi_currency: bool | None = None,
    **kwargs: Any,
) -> DealsResult:
    inputs = deal_inputs(**kwargs)
    pipes = name_pipelines(inputs)
    return plan_deals(
        inputs,
        cfg or config(),
        pipelines=pipes.pipelines,
        stages=pipes.stages,
        owners=build_owner_map(inputs.sf_user, inputs.hs_owner, INTEGRATION_EMAIL),
        contact_links=pd.DataFrame(contact_links, columns=["hs_id", "sf_object", "sf_id"]),
        account_links=pd.DataFrame(account_links, columns=["sf_id", "hs_id"]),
        multi_currency=multi_currency,
    )


# --------------------------------------------------------------------------- DEAL-1 creates


def test_deal1_new_opportunity_creates_a_deal_with_the_salesforce_fields() -> None:
    result = run(
        opps=[
            opp("006A", Name="Big deal", Amount=1200.0, CloseDate="2026-10-15", Type="New", Description="d")
        ]
    )
    row = one(result.plan, object="deals", action="create")
    assert row["source_id"] == "006A"
    assert row["target_id"] is None
    assert row["fields"] == {
        "dealname": "Big deal",
        "closedate": "2026-10-15T00:00:00.000Z",
        "dealtype": "New",
        "description": "d",
        "amount": 1200,
        "createdate": "2026-03-01T00:00:00.000Z",
        "pipeline": "P1",
        "dealstage": "P1-1",
        "hubspot_owner_id": "100",
        "deal_currency_code": "USD",
        "salesforceopportunityid": "006A",
    }
    assert {"DEAL-1", "DEAL-2", "SYNC-2", "OWN-5", "DEAL-8"} <= set(row["rules"])


def test_deal1_new_deal_creates_an_opportunity_without_a_create_date() -> None:
    """HS -> SF fields exclude the create date: it is Salesforce's own."""
    result = run(
        deals=[deal("9001", dealname="From HS", amount="99.5", closedate="2026-11-01T00:00:00.000Z")]
    )
    row = one(result.plan, object="Opportunity", action="create")
    assert row["fields"]["Name"] == "From HS"
    assert row["fields"]["Amount"] == 99.5
    assert row["fields"]["CloseDate"] == "2026-11-01"
    assert row["fields"]["StageName"] == "Prospecting"
    assert "CreatedDate" not in row["fields"]


def test_deal1_linked_pair_syncs_changed_fields_only_most_recent_wins() -> None:
    result = run(
        opps=[opp("006A", Name="SF name", LastModifiedDate=LATER, HubSpot_Id__c="9001")],
        deals=[
            deal(
                "9001",
                dealname="HS name",
                amount="1000",
                description="HS text",
                salesforceopportunityid="006A",
            )
        ],
        link_rows=[("RecordType", "__standard__", "P1"), ("Opportunity", "006A", "9001")],
        snapshot=snapshot(
            ("Opportunity", "006A", "9001", "Name", "dealname", "old"),
            ("Opportunity", "006A", "9001", "Description", "description", None),
        ),
    )
    to_hs = one(result.plan, object="deals", action="update")
    assert to_hs["fields"] == {"dealname": "SF name"}  # both changed: SF modified later
    to_sf = one(result.plan, object="Opportunity", action="update")
    assert to_sf["fields"] == {"Description": "HS text"}  # only HubSpot changed
    assert {"DEAL-1", "SYNC-3"} <= set(to_hs["rules"])


def test_deal1_stage_changed_in_hubspot_updates_the_stage_name() -> None:
    result = run(
        opps=[opp("006A", HubSpot_Id__c="9001")],
        deals=[deal("9001", dealstage="P1-2", salesforceopportunityid="006A", hs_lastmodifieddate=LATER)],
        snapshot=snapshot(("Opportunity", "006A", "9001", "StageName", "dealstage", "Prospecting")),
    )
    assert one(result.plan, object="Opportunity", action="update")["fields"] == {"StageName": "Closed Won"}


def test_deal1_stage_changed_in_salesforce_moves_the_deal_to_the_matching_stage() -> None:
    result = run(
        opps=[opp("006A", StageName="Closed Lost", HubSpot_Id__c="9001")],
        deals=[deal("9001", salesforceopportunityid="006A")],
        snapshot=snapshot(("Opportunity", "006A", "9001", "StageName", "dealstage", "Prospecting")),
    )
    update = one(result.plan, object="deals", action="update")
    assert update["fields"] == {"dealstage": "P1-3"}
    assert "DEAL-2" in update["rules"]


def test_deal1_create_date_never_makes_a_hubspot_deal_younger() -> None:
    """A deal made in HubSpot keeps its earlier create date after its Opportunity is created."""
    result = run(
        opps=[opp("006A", CreatedDate=LATER, HubSpot_Id__c="9001")],
        deals=[deal("9001", createdate=AFTER, salesforceopportunityid="006A")],
    )
    assert rows(result.plan, action="update") == []


def test_deal1_missing_link_ids_are_written_back_on_both_sides() -> None:
    result = run(
        opps=[opp("006A")],
        deals=[deal("9001")],
        link_rows=[("RecordType", "__standard__", "P1"), ("Opportunity", "006A", "9001")],
    )
    assert one(result.plan, object="deals", action="update")["fields"] == {"salesforceopportunityid": "006A"}
    assert one(result.plan, object="Opportunity", action="update")["fields"] == {"HubSpot_Id__c": "9001"}


# --------------------------------------------------------------------------- DEAL-2 pipelines


def test_deal2_record_type_decides_the_pipeline_of_a_new_deal() -> None:
    result = run(
        rts=[("012A", "New Business"), ("012B", "Renewal")],
        pipelines=[{"id": "P1", "label": "Salesforce - New Business"}],
        link_rows=[("RecordType", "012A", "P1")],
        opps=[opp("006A", RecordTypeId="012A"), opp("006B", RecordTypeId="012B", StageName="Closed Won")],
    )
    a = one(result.plan, object="deals", action="create", source_id="006A")["fields"]
    b = one(result.plan, object="deals", action="create", source_id="006B")["fields"]
    assert (a["pipeline"], a["dealstage"]) == ("P1", "P1-1")
    # A pipeline this plan creates is referenced, resolved by the loader after creating it.
    assert (b["pipeline"], b["dealstage"]) == ("@pipelines:012B", "@pipelines:012B/Closed Won")


def test_deal2_record_type_change_moves_the_deal_with_a_stage_of_the_new_pipeline() -> None:
    result = run(
        rts=[("012A", "New Business"), ("012B", "Renewal")],
        pipelines=[
            {"id": "P1", "label": "Salesforce - New Business"},
            {"id": "P2", "label": "Salesforce - Renewal"},
        ],
        stages=pipeline_stages("P1", "P1") + pipeline_stages("P2", "P2"),
        link_rows=[("RecordType", "012A", "P1"), ("RecordType", "012B", "P2")],
        opps=[opp("006A", RecordTypeId="012B", HubSpot_Id__c="9001")],
        deals=[deal("9001", pipeline="P1", dealstage="P1-1", salesforceopportunityid="006A")],
    )
    assert one(result.plan, object="deals", action="update")["fields"] == {
        "pipeline": "P2",
        "dealstage": "P2-1",
    }


def test_deal2_before_deal3_a_deal_in_a_retired_record_type_pipeline_follows_its_record_type() -> None:
    """Back to one record type: a linked deal left in the retired record type's pipeline moves
    to the pipeline of its Opportunity, keeping its stage; it is not a DEAL-3 skip."""
    result = run(
        rts=[("012A", "New Business")],
        pipelines=[
            {"id": "P1", "label": "Salesforce - New Business"},
            {"id": "P2", "label": "Salesforce - Renewal"},
        ],
        stages=pipeline_stages("P1", "P1") + pipeline_stages("P2", "P2"),
        link_rows=[("RecordType", "012A", "P1"), ("RecordType", "012B", "P2")],
        opps=[opp("006A", RecordTypeId="012A", StageName="Closed Won", HubSpot_Id__c="9001")],
        deals=[deal("9001", pipeline="P2", dealstage="P2-2", salesforceopportunityid="006A")],
    )
    assert rows(result.plan, action="skip") == []
    assert one(result.plan, object="deals", action="update")["fields"] == {
        "pipeline": "P1",
        "dealstage": "P1-2",
    }


def test_deal2_new_deal_whose_stage_is_missing_from_its_pipeline_is_quarantined() -> None:
    result = run(deals=[deal("9001", dealstage="contractsent")])
    row = one(result.plan, action="quarantine")
    assert (row["target"], row["object"], row["source_id"]) == ("salesforce", "Opportunity", "9001")
    assert "contractsent" in row["reason"]
    assert rows(result.plan, action="create") == []


def test_deal2_linked_deal_whose_stage_is_missing_from_its_pipeline_is_quarantined_not_merged() -> None:
    result = run(
        opps=[opp("006A", Name="changed", HubSpot_Id__c="9001")],
        deals=[deal("9001", dealstage="gone", salesforceopportunityid="006A")],
    )
    assert one(result.plan, action="quarantine")["target_id"] == "006A"
    assert rows(result.plan, action="update") == []


def test_deal2_opportunity_with_a_stage_outside_the_picklist_is_quarantined() -> None:
    result = run(opps=[opp("006A", StageName="Negotiation")])
    row = one(result.plan, action="quarantine")
    assert (row["object"], row["source_id"], row["rules"]) == ("deals", "006A", ["DEAL-2"])


# --------------------------------------------------------------------------- DEAL-3


def test_deal3_unlinked_deal_in_a_pipeline_that_is_not_synced_is_skipped() -> None:
    result = run(
        pipelines=[
            {"id": "P1", "label": "Salesforce - Standard pipeline"},
            {"id": "default", "label": "Sales Pipeline"},
        ],
        deals=[deal("9001", pipeline="default", dealstage="appointmentscheduled")],
    )
    row = one(result.plan, action="skip")
    assert (row["object"], row["source_id"], row["rules"]) == ("Opportunity", "9001", ["DEAL-3"])
    assert rows(result.plan, action="create") == []


def test_deal3_deal_moved_out_of_the_synced_pipelines_stops_syncing_both_ways() -> None:
    result = run(
        opps=[opp("006A", Name="changed in SF", LastModifiedDate=LATER, HubSpot_Id__c="9001")],
        deals=[
            deal(
                "9001",
                pipeline="default",
                dealstage="x",
                dealname="changed in HS",
                salesforceopportunityid="006A",
            )
        ],
        snapshot=snapshot(("Opportunity", "006A", "9001", "Name", "dealname", "old")),
    )
    row = one(result.plan, action="skip")
    assert (row["source_id"], row["target_id"], row["rules"]) == ("006A", "9001", ["DEAL-3"])
    assert rows(result.plan, action="update") == []
    assert rows(result.plan, action="create") == []


# --------------------------------------------------------------------------- DEAL-4


def test_deal4_opportunity_deleted_in_salesforce_deletes_its_deal() -> None:
    result = run(
        opps=[opp("006A", IsDeleted=True, HubSpot_Id__c="9001")],
        deals=[deal("9001", salesforceopportunityid="006A")],
    )
    row = one(result.plan, action="delete")
    assert (row["target"], row["object"], row["source_id"], row["target_id"]) == (
        "hubspot",
        "deals",
        "006A",
        "9001",
    )
    assert row["rules"] == ["DEAL-4"]
    assert "9001" not in set(result.deals["deal_key"])  # and it leaves the rollups


def test_deal3_before_deal4_a_deal_moved_out_of_the_synced_pipelines_is_never_archived() -> None:
    """DEAL-3 decides first: deleting the Opportunity of a deal that left the synced pipelines
    leaves the deal alone in HubSpot."""
    result = run(
        pipelines=[
            {"id": "P1", "label": "Salesforce - Standard pipeline"},
            {"id": "default", "label": "Sales Pipeline"},
        ],
        opps=[opp("006A", IsDeleted=True, HubSpot_Id__c="9001")],
        deals=[deal("9001", pipeline="default", dealstage="x", salesforceopportunityid="006A")],
    )
    assert rows(result.plan, action="delete") == []
    row = one(result.plan, action="skip")
    assert (row["source_id"], row["target_id"]) == ("006A", "9001")
    assert row["rules"][0] == "DEAL-3"
    assert "not archived" in row["reason"]


def test_deal4_deal_deleted_in_hubspot_keeps_the_opportunity_and_clears_the_link() -> None:
    result = run(
        opps=[opp("006A", HubSpot_Id__c="9001")],
        deals=[deal("9001", salesforceopportunityid="006A", _deleted=True)],
        link_rows=[("RecordType", "__standard__", "P1"), ("Opportunity", "006A", "9001")],
    )
    assert rows(result.plan, action="delete") == []
    clear = one(result.plan, object="Opportunity", action="update")
    assert (clear["target_id"], clear["fields"], clear["rules"]) == (
        "006A",
        {"HubSpot_Id__c": None},
        ["DEAL-4"],
    )
    assert result.cleared_links[["object", "sf_id", "hs_id"]].values.tolist() == [
        ["Opportunity", "006A", "9001"]
    ]
    assert "deleted" in one(result.plan, action="skip")["reason"]
    assert rows(result.plan, action="create") == []  # not re-created in HubSpot


def test_deal4_after_the_link_is_cleared_the_opportunity_is_still_not_recreated() -> None:
    result = run(
        opps=[opp("006A", LastModifiedDate=LATER)],
        deals=[deal("9001", salesforceopportunityid="006A", _deleted=True)],
    )
    assert rows(result.plan, action="create") == []
    assert rows(result.plan, action="update") == []
    assert result.cleared_links.empty  # reported once, when the link was cleared
    assert one(result.plan, action="skip")["rules"] == ["DEAL-4"]


# --------------------------------------------------------------------------- DEAL-5


def test_deal5_unlinked_deal_creates_an_opportunity_carrying_the_deal_id_for_upsert() -> None:
    result = run(deals=[deal("9001")])
    row = one(result.plan, object="Opportunity", action="create")
    assert row["source_id"] == "9001"
    assert row["fields"]["HubSpot_Id__c"] == "9001"
    assert "DEAL-5" in row["rules"]


def test_deal5_rerun_of_an_unlinked_deal_never_creates_a_second_opportunity() -> None:
    """The first run's Opportunity exists (upserted with HubSpot_Id__c) but no link was stored."""
    result = run(
        deals=[deal("9001")],
        opps=[opp("006NEW", HubSpot_Id__c="9001", CreatedDate=LATER, LastModifiedDate=LATER)],
    )
    assert rows(result.plan, action="create") == []
    assert one(result.plan, object="deals", action="update")["fields"] == {
        "salesforceopportunityid": "006NEW"
    }


def test_deal5_no_dedup_a_deal_never_matches_an_existing_opportunity() -> None:
    result = run(
        deals=[deal("9001", dealname="Same", amount="5")], opps=[opp("006A", Name="Same", Amount=5.0)]
    )
    assert one(result.plan, object="Opportunity", action="create")["source_id"] == "9001"
    assert one(result.plan, object="deals", action="create")["source_id"] == "006A"


def test_deal5_owner_of_the_new_opportunity_follows_own1_else_the_integration_user() -> None:
    result = run(
        deals=[
            deal("9001", hubspot_owner_id="100"),
            deal("9002", hubspot_owner_id="999"),
            deal("9003", hubspot_owner_id=None),
        ]
    )
    owners = {
        r["source_id"]: (r["fields"]["OwnerId"], r["rules"]) for r in rows(result.plan, action="create")
    }
    assert owners["9001"][0] == "005ALICE"
    assert "OWN-1" in owners["9001"][1]
    assert owners["9002"][0] == "005INT"
    assert "OWN-2" in owners["9002"][1]
    assert owners["9003"][0] == "005INT"
    assert "OWN-3" in owners["9003"][1]


# --------------------------------------------------------------------------- DEAL-6 / DEAL-7


def test_deal6_contact_role_becomes_a_deal_contact_association() -> None:
    result = run(
        opps=[opp("006A", HubSpot_Id__c="9001"), opp("006B")],
        deals=[deal("9001", salesforceopportunityid="006A")],
        sf_opportunity_contact_role=sf(
            "OpportunityContactRole",
            {"Id": "00K1", "OpportunityId": "006A", "ContactId": "003A"},
            {"Id": "00K2", "OpportunityId": "006B", "ContactId": "003A"},
        ),
        contact_links=[("H1", "Contact", "003A")],
    )
    assoc = {(r["fields"]["from_id"], r["fields"]["to_id"]) for r in rows(result.plan, action="associate")}
    assert assoc == {("9001", "H1"), ("@deals:006B", "H1")}
    assert all(r["rules"] == ["DEAL-6"] for r in rows(result.plan, action="associate"))


def test_deal6_deal_contact_association_becomes_a_contact_role_only_for_salesforce_contacts() -> None:
    result = run(
        opps=[opp("006A", HubSpot_Id__c="9001")],
        deals=[deal("9001", salesforceopportunityid="006A"), deal("9002")],
        assoc_rows=[
            ("deals", "9001", "contacts", "H1"),
            ("deals", "9002", "contacts", "H1"),
            ("deals", "9001", "contacts", "H2"),
        ],
        contact_links=[("H1", "Contact", "003A"), ("H2", "Lead", "00QB")],
    )
    roles = {
        (r["fields"]["OpportunityId"], r["fields"]["ContactId"])
        for r in rows(result.plan, object="OpportunityContactRole")
    }
    assert roles == {("006A", "003A"), ("@Opportunity:9002", "003A")}  # H2 syncs to a Lead: no role


def test_deal6_existing_roles_and_associations_plan_nothing() -> None:
    result = run(
        opps=[opp("006A", HubSpot_Id__c="9001")],
        deals=[deal("9001", salesforceopportunityid="006A")],
        assoc_rows=[("deals", "9001", "contacts", "H1")],
        sf_opportunity_contact_role=sf(
            "OpportunityContactRole", {"Id": "00K1", "OpportunityId": "006A", "ContactId": "003A"}
        ),
        contact_links=[("H1", "Contact", "003A")],
    )
    assert result.plan.empty


SYNCED_ROLE = pd.DataFrame(
    [{"opportunity_id": "006A", "deal_id": "9001", "contact_id": "003A", "hs_contact_id": "H1"}]
)


def test_deal6_association_removed_in_hubspot_deletes_the_contact_role_never_recreates_it() -> None:
    result = run(
        opps=[opp("006A", HubSpot_Id__c="9001")],
        deals=[deal("9001", salesforceopportunityid="006A")],
        sf_opportunity_contact_role=sf(
            "OpportunityContactRole", {"Id": "00K1", "OpportunityId": "006A", "ContactId": "003A"}
        ),
        contact_links=[("H1", "Contact", "003A")],
        association_snapshot=SYNCED_ROLE,
    )
    assert rows(result.plan, action="associate") == []
    row = one(result.plan, object="OpportunityContactRole", action="delete")
    assert (row["target_id"], row["rules"]) == ("00K1", ["DEAL-6"])
    # Kept in the snapshot until the role is gone too, so a failed delete is retried.
    assert result.association_snapshot.to_dict("records") == SYNCED_ROLE.to_dict("records")


def test_deal6_contact_role_deleted_in_salesforce_removes_the_association_never_recreates_it() -> None:
    result = run(
        opps=[opp("006A", HubSpot_Id__c="9001")],
        deals=[deal("9001", salesforceopportunityid="006A")],
        assoc_rows=[("deals", "9001", "contacts", "H1")],
        sf_opportunity_contact_role=sf(
            "OpportunityContactRole",
            {"Id": "00K1", "OpportunityId": "006A", "ContactId": "003A", "_deleted": True},
        ),
        contact_links=[("H1", "Contact", "003A")],
        association_snapshot=SYNCED_ROLE,
    )
    assert rows(result.plan, object="OpportunityContactRole") == []
    row = one(result.plan, object="associations", action="delete")
    assert row["fields"] == {
        "from_type": "deals",
        "from_id": "9001",
        "to_type": "contacts",
        "to_id": "H1",
        "type_id": 3,
    }
    assert ("9001", "H1") not in set(
        zip(result.deal_contacts["deal_key"], result.deal_contacts["contact_key"], strict=True)
    )


def test_deal6_the_snapshot_holds_what_both_sides_hold_and_drops_what_both_removed() -> None:
    both = run(
        opps=[opp("006A", HubSpot_Id__c="9001")],
        deals=[deal("9001", salesforceopportunityid="006A")],
        assoc_rows=[("deals", "9001", "contacts", "H1")],
        sf_opportunity_contact_role=sf(
            "OpportunityContactRole", {"Id": "00K1", "OpportunityId": "006A", "ContactId": "003A"}
        ),
        contact_links=[("H1", "Contact", "003A")],
    )
    assert both.association_snapshot.to_dict("records") == SYNCED_ROLE.to_dict("records")
    gone = run(
        opps=[opp("006A", HubSpot_Id__c="9001")],
        deals=[deal("9001", salesforceopportunityid="006A")],
        contact_links=[("H1", "Contact", "003A")],
        association_snapshot=SYNCED_ROLE,
    )
    assert gone.plan.empty
    assert gone.association_snapshot.empty


def test_next_association_snapshot_is_the_stage_table_cleaned_for_storage() -> None:
    planned = pd.DataFrame(
        {
            "opportunity_id": ["006B", "006A", "006A", "@Opportunity:9"],
            "deal_id": ["9002", "9001", "9001", "9"],
            "contact_id": ["003A", "003A", "003A", "003A"],
            "hs_contact_id": ["H1", "H1", "H1", "H1"],
            "_run_id": ["r"] * 4,
        }
    )
    out = next_association_snapshot(planned)
    assert list(out.columns) == list(ASSOCIATION_SNAPSHOT_COLUMNS)
    assert out["opportunity_id"].tolist() == ["006A", "006B"]


@pytest.mark.parametrize(
    ("companies_sync", "linked", "expected"), [(True, True, 1), (False, True, 0), (True, False, 0)]
)
def test_deal7_deal_from_salesforce_joins_its_accounts_company_only_with_company_sync_and_a_link(
    companies_sync: bool, linked: bool, expected: int
) -> None:
    result = run(
        cfg=config(companies_sync=companies_sync),
        opps=[opp("006A", AccountId="001A")],
        account_links=[("001A", "C1")] if linked else [],
    )
    assoc = rows(result.plan, action="associate")
    assert len(assoc) == expected
    if expected:
        assert assoc[0]["fields"] == {
            "from_type": "deals",
            "from_id": "@deals:006A",
            "to_type": "companies",
            "to_id": "C1",
            "type_id": 5,
        }
        assert assoc[0]["rules"] == ["DEAL-7"]


def test_deal7_opportunity_created_from_a_deal_takes_the_account_of_its_linked_company() -> None:
    result = run(
        deals=[deal("9001")],
        assoc_rows=[("deals", "9001", "companies", "C1")],
        account_links=[("001A", "C1")],
    )
    assert one(result.plan, object="Opportunity", action="create")["fields"]["AccountId"] == "001A"


# --------------------------------------------------------------------------- DEAL-8


def test_deal8_amount_is_copied_never_converted_and_the_currency_code_travels() -> None:
    result = run(
        opps=[
            opp("006A", Amount=1000.0, CurrencyIsoCode="EUR"),
            opp("006B", Amount=5.0, CurrencyIsoCode="USD"),
        ]
    )
    eur = one(result.plan, action="create", source_id="006A")["fields"]
    assert (eur["amount"], eur["deal_currency_code"]) == (1000, "EUR")
    assert result.multi_currency


def test_deal8_multi_currency_org_quarantines_a_record_without_currency() -> None:
    result = run(
        opps=[
            opp("006A", CurrencyIsoCode="EUR"),
            opp("006B", CurrencyIsoCode="USD"),
            opp("006C", CurrencyIsoCode=None),
        ],
        deals=[deal("9001", deal_currency_code=None)],
    )
    quarantined = {(r["object"], r["source_id"]) for r in rows(result.plan, action="quarantine")}
    assert quarantined == {("deals", "006C"), ("Opportunity", "9001")}
    assert all("DEAL-8" in r["rules"] for r in rows(result.plan, action="quarantine"))


def test_deal8_single_currency_org_syncs_records_without_currency() -> None:
    result = run(opps=[opp("006A", CurrencyIsoCode=None)], deals=[deal("9001", deal_currency_code=None)])
    assert rows(result.plan, action="quarantine") == []
    assert len(rows(result.plan, action="create")) == 2
    forced = run(opps=[opp("006A", CurrencyIsoCode=None)], multi_currency=True)
    assert one(forced.plan, action="quarantine")["source_id"] == "006A"


# --------------------------------------------------------------------------- DEAL-9


@pytest.mark.parametrize(
    ("modified", "imported", "created"),
    [(BEFORE, False, False), (LATER, False, True), (BEFORE, True, True)],
)
def test_deal9_pre_existing_opportunity_syncs_only_when_imported_or_modified_after_enablement(
    modified: str, imported: bool, created: bool
) -> None:
    frames: dict[str, Any] = {}
    if imported:
        frames["imported"] = pd.DataFrame({"object": ["Opportunity"], "sf_id": ["006OLD"]})
    result = run(
        opps=[opp("006OLD", CreatedDate=BEFORE, LastModifiedDate=modified, SystemModstamp=modified)], **frames
    )
    if created:
        row = one(result.plan, action="create")
        assert "DEAL-9" in row["rules"]
    else:
        row = one(result.plan, action="skip")
        assert row["rules"] == ["DEAL-9"]
        assert "backfill" in row["reason"]


def test_deals_sync_off_plans_nothing() -> None:
    result = run(cfg=config(deals_sync=False), opps=[opp("006A")], deals=[deal("9001")])
    assert result.plan.empty
    assert set(result.deals["deal_key"]) == {"9001"}  # rollups still see HubSpot's deals


# --------------------------------------------------------------------------- deal state for rollups


def test_deal_state_is_the_post_plan_state_with_writes_and_creates_applied() -> None:
    result = run(
        opps=[
            opp("006A", Amount=2000.0, StageName="Closed Won", HubSpot_Id__c="9001"),
            opp("006B", Amount=10.0),
        ],
        deals=[deal("9001", amount="1000", salesforceopportunityid="006A")],
        snapshot=snapshot(
            ("Opportunity", "006A", "9001", "Amount", "amount", 1000),
            ("Opportunity", "006A", "9001", "StageName", "dealstage", "Prospecting"),
        ),
    )
    state = result.deals.set_index("deal_key")
    assert state.loc["9001", "amount"] == 2000.0
    assert bool(state.loc["9001", "is_won"])
    assert state.loc["@deals:006B", "amount"] == 10.0
    assert state.loc["9001", "sf_id"] == "006A"


# --------------------------------------------------------------------------- SYNC-2 value maps

OPTIONS = pd.DataFrame(
    [
        ("salesforce", "Opportunity", "Type", "New Business", "New Business"),
        ("salesforce", "Opportunity", "Type", "Renewal", "Renewal"),
        ("hubspot", "deals", "dealtype", "newbusiness", "New Business"),
        ("hubspot", "deals", "dealtype", "existingbusiness", "Existing Business"),
    ],
    columns=["system", "object", "field", "value", "label"],
)


def test_sync2_picklist_values_map_by_label_case_insensitively_and_unmatched_ones_skip_the_field() -> None:
    result = run(
        opps=[opp("006A", Type="new business"), opp("006B", Type="Renewal")],
        picklist_options=OPTIONS,
    )
    created = {r["source_id"]: r["fields"] for r in rows(result.plan, object="deals", action="create")}
    assert created["006A"]["dealtype"] == "newbusiness"
    assert "dealtype" not in created["006B"]  # the rest of the record syncs
    skip = one(result.plan, action="skip", source_id="006B")
    assert skip["rules"] == ["SYNC-2"]
    assert "'Renewal' has no counterpart among HubSpot dealtype" in skip["reason"]


def test_sync2_a_linked_pair_holding_the_same_choice_in_each_spelling_plans_nothing() -> None:
    result = run(
        opps=[opp("006A", Type="New Business", HubSpot_Id__c="9001")],
        deals=[deal("9001", dealtype="newbusiness", salesforceopportunityid="006A")],
        picklist_options=OPTIONS,
    )
    assert rows(result.plan, action="update") == []


def test_sync2_config_values_override_the_value_map() -> None:
    from tests.unit.rules.deal_world import config as deal_config

    renewal = {"Renewal": "existingbusiness"}
    mappings = [{"salesforce": "Type", "hubspot": "dealtype", "rule": "two_way", "values": renewal}]
    cfg = deal_config(opportunities=mappings)
    result = run(opps=[opp("006B", Type="Renewal")], picklist_options=OPTIONS, cfg=cfg)
    assert one(result.plan, object="deals", action="create")["fields"]["dealtype"] == "existingbusiness"
    assert rows(result.plan, action="skip") == []


def test_sync2_a_hubspot_choice_without_salesforce_counterpart_skips_only_that_field() -> None:
    result = run(
        opps=[opp("006A", Type="New Business", Name="old", HubSpot_Id__c="9001")],
        deals=[
            deal(
                "9001",
                dealtype="existingbusiness",
                dealname="new",
                salesforceopportunityid="006A",
                hs_lastmodifieddate=LATER,
            )
        ],
        snapshot=snapshot(
            ("Opportunity", "006A", "9001", "Type", "dealtype", "New Business"),
            ("Opportunity", "006A", "9001", "Name", "dealname", "old"),
        ),
        picklist_options=OPTIONS,
    )
    assert one(result.plan, object="Opportunity", action="update")["fields"] == {"Name": "new"}
    skip = one(result.plan, object="Opportunity", action="skip")
    assert (skip["target_id"], skip["rules"]) == ("006A", ["SYNC-2"])
    assert "HubSpot dealtype 'existingbusiness'" in skip["reason"]
