"""Contact rules CON-1..CON-3: matching by email, creation by inclusion list, SF -> HS creates."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from crm_sync.rules.contacts import (
    ContactsResult,
    inclusion_list_failures,
    inclusion_list_mask,
    match_contacts,
)
from crm_sync.settings import InclusionCondition

from tests.unit.rules.sync_frames import AFTER, BEFORE, config, contact_world, one, rows

EVERYONE: list[dict[str, Any]] = []


def run(
    *,
    hs_contacts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    sf_contacts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    sf_leads: list[dict[str, Any]] = (),  # type: ignore[assignment]
    link_rows: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    **config_args: Any,
) -> ContactsResult:
    staged, owners = contact_world(
        hs_contacts=hs_contacts, sf_contacts=sf_contacts, sf_leads=sf_leads, link_rows=link_rows
    )
    return match_contacts(staged, config(**config_args), owners)


def contact(hid: str, email: str | None, stage: str = "customer", **props: Any) -> dict[str, Any]:
    return {"id": hid, "email": email, "lifecyclestage": stage, "lastname": f"Last {hid}", **props}


def sf_contact(cid: str, email: str | None, modified: str = AFTER, **fields: Any) -> dict[str, Any]:
    return {"Id": cid, "Email": email, "LastName": f"Last {cid}", "LastModifiedDate": modified, **fields}


def pair_of(result: ContactsResult, hs_id: str) -> dict[str, Any]:
    found = result.pairs[result.pairs["hs_id"] == hs_id]
    assert len(found) == 1, found
    return dict(found.iloc[0])


# ------------------------------------------------------------------------------------ CON-1


def test_con1_email_matches_case_insensitively_and_links_both_sides() -> None:
    result = run(
        hs_contacts=[contact("h1", "Jane@Acme.com ")], sf_contacts=[sf_contact("003A", "jane@ACME.com")]
    )
    hs_row = one(result.plan, target="hubspot", action="link")
    assert (hs_row["target_id"], hs_row["source_id"]) == ("h1", "003A")
    assert hs_row["fields"]["salesforcecontactid"] == "003A"
    assert "CON-1" in hs_row["rules"]
    sf_row = one(result.plan, target="salesforce", action="link")
    assert (sf_row["object"], sf_row["target_id"]) == ("Contact", "003A")
    assert sf_row["fields"] == {"HubSpot_Id__c": "h1"}
    assert pair_of(result, "h1")["how"] == "email"
    assert not rows(result.plan, action="create")


def test_con1_contact_is_preferred_over_a_lead_with_the_same_email() -> None:
    result = run(
        hs_contacts=[contact("h1", "jane@acme.com")],
        sf_contacts=[sf_contact("003A", "jane@acme.com", modified=BEFORE)],
        sf_leads=[sf_contact("00QA", "jane@acme.com", modified=AFTER)],  # newer, but a Lead
    )
    assert pair_of(result, "h1")["sf_object"] == "Contact"
    assert pair_of(result, "h1")["sf_id"] == "003A"
    skipped = one(result.plan, action="skip", source_id="00QA")
    assert skipped["target_id"] == "h1"
    assert "CON-1" in skipped["rules"]
    assert "Contact 003A" in skipped["reason"]


def test_con1_among_several_contacts_the_most_recently_modified_wins() -> None:
    result = run(
        hs_contacts=[contact("h1", "jane@acme.com")],
        sf_contacts=[
            sf_contact("003OLD", "jane@acme.com", modified="2026-02-01T00:00:00.000+0000"),
            sf_contact("003NEW", "jane@acme.com", modified="2026-04-01T00:00:00.000+0000"),
            sf_contact("003MID", "jane@acme.com", modified="2026-03-01T00:00:00.000+0000"),
        ],
    )
    assert pair_of(result, "h1")["sf_id"] == "003NEW"
    assert {r["source_id"] for r in rows(result.plan, action="skip")} == {"003OLD", "003MID"}


def test_con1_system_modstamp_stands_in_for_a_missing_last_modified_date() -> None:
    result = run(
        hs_contacts=[contact("h1", "jane@acme.com")],
        sf_leads=[
            {
                "Id": "00Q1",
                "Email": "jane@acme.com",
                "LastName": "J",
                "SystemModstamp": "2026-05-01T00:00:00Z",
            },
            {
                "Id": "00Q2",
                "Email": "jane@acme.com",
                "LastName": "J",
                "LastModifiedDate": "2026-04-01T00:00:00Z",
            },
        ],
    )
    assert pair_of(result, "h1")["sf_id"] == "00Q1"


def test_con1_deleted_records_never_match() -> None:
    result = run(
        hs_contacts=[contact("h1", "jane@acme.com"), contact("h2", "bob@acme.com", _deleted=True)],
        sf_contacts=[
            sf_contact("003DEL", "jane@acme.com", _deleted=True),
            sf_contact("003B", "bob@acme.com"),
        ],
    )
    assert not rows(result.plan, action="link")
    # h1 is new (CON-2 creates a Lead); 003B finds no live HubSpot contact (CON-3 creates one).
    assert one(result.plan, target="salesforce", action="create")["source_id"] == "h1"
    assert one(result.plan, target="hubspot", action="create")["source_id"] == "003B"


def test_con1_converted_leads_never_match_and_say_why() -> None:
    result = run(
        hs_contacts=[contact("h1", "jane@acme.com")],
        sf_leads=[sf_contact("00QA", "jane@acme.com", IsConverted=True)],
    )
    assert not rows(result.plan, action="link")
    skipped = one(result.plan, source_id="00QA")
    assert skipped["action"] == "skip"
    assert "converted" in skipped["reason"]


@pytest.mark.parametrize("linked_by", ["link table", "salesforceleadid", "HubSpot_Id__c"])
def test_con1_a_converted_linked_lead_hands_its_link_to_the_new_contact(linked_by: str) -> None:
    """CON-1: the link follows the conversion; the Lead gets no more writes and the Contact is
    neither skipped as a duplicate email nor created again in HubSpot."""
    lead = sf_contact("00QA", "jane@acme.com", IsConverted=True, ConvertedContactId="003C")
    hs_props: dict[str, Any] = {}
    link_rows: list[tuple[str, str, str]] = []
    if linked_by == "link table":
        link_rows = [("Lead", "00QA", "h1")]
    elif linked_by == "salesforceleadid":
        hs_props = {"salesforceleadid": "00QA"}
    else:
        lead["HubSpot_Id__c"] = "h1"
    result = run(
        hs_contacts=[contact("h1", "jane@acme.com", **hs_props)],
        sf_leads=[lead],
        sf_contacts=[sf_contact("003C", "jane@acme.com", AccountId="001A")],
        link_rows=link_rows,
    )
    pair = pair_of(result, "h1")
    assert (pair["sf_object"], pair["sf_id"], pair["how"]) == ("Contact", "003C", "converted")
    hs_link = one(result.plan, target="hubspot", action="link", target_id="h1")
    assert hs_link["fields"]["salesforcecontactid"] == "003C"
    sf_link = one(result.plan, target="salesforce", action="link")
    assert (sf_link["object"], sf_link["target_id"], sf_link["fields"]["HubSpot_Id__c"]) == (
        "Contact",
        "003C",
        "h1",
    )
    assert [r["action"] for r in rows(result.plan, source_id="00QA")] == ["skip"]
    assert not rows(result.plan, source_id="003C", action="skip")
    assert not rows(result.plan, action="create")


def test_con1_after_the_conversion_moved_the_link_nothing_more_is_planned() -> None:
    result = run(
        hs_contacts=[contact("h1", "jane@acme.com", salesforceleadid="00QA", salesforcecontactid="003C")],
        sf_leads=[
            sf_contact(
                "00QA", "jane@acme.com", IsConverted=True, ConvertedContactId="003C", HubSpot_Id__c="h1"
            )
        ],
        sf_contacts=[sf_contact("003C", "jane@acme.com", HubSpot_Id__c="h1")],
        link_rows=[("Lead", "00QA", "h1"), ("Contact", "003C", "h1")],
    )
    assert pair_of(result, "h1")["sf_id"] == "003C"
    assert set(result.plan["action"]) == {"skip"}  # only the converted Lead, saying why


def test_con1_already_linked_pairs_plan_nothing() -> None:
    result = run(
        hs_contacts=[contact("h1", "new-address@acme.com", salesforcecontactid="003A")],
        sf_contacts=[sf_contact("003A", "old@acme.com", HubSpot_Id__c="h1")],
        link_rows=[("Contact", "003A", "h1")],
    )
    assert result.plan.empty
    assert pair_of(result, "h1")["how"] == "linked"


def test_con1_link_property_wins_over_email_and_writes_only_the_missing_side() -> None:
    result = run(
        hs_contacts=[contact("h1", "jane@acme.com", salesforceleadid="00QA")],
        sf_contacts=[sf_contact("003A", "jane@acme.com")],
        sf_leads=[sf_contact("00QA", "jane.old@acme.com")],
    )
    assert pair_of(result, "h1")["sf_id"] == "00QA"
    assert pair_of(result, "h1")["how"] == "hubspot_id"
    hs_link = one(result.plan, target="hubspot", action="link")
    assert "salesforceleadid" not in hs_link["fields"]  # already holds it
    sf_link = one(result.plan, target="salesforce", action="link")
    assert sf_link["object"] == "Lead"
    assert sf_link["fields"] == {"HubSpot_Id__c": "h1", "_use_assignment_rule": False}
    # The Contact with the same email cannot create a second HubSpot contact.
    assert one(result.plan, source_id="003A")["action"] == "skip"


def test_con1_contact_without_email_is_quarantined_on_both_sides() -> None:
    result = run(
        hs_contacts=[contact("h1", None), contact("h2", "not-an-email")],
        sf_leads=[sf_contact("00QA", None)],
        inclusion_list=EVERYONE,
    )
    for hs_id in ("h1", "h2"):
        row = one(result.plan, source_id=hs_id)
        assert row["action"] == "quarantine"
        assert "CON-1" in row["rules"]
        assert "email" in row["reason"]
    sf_row = one(result.plan, source_id="00QA")
    assert (sf_row["target"], sf_row["action"]) == ("hubspot", "quarantine")
    assert "no valid email" in sf_row["reason"]


# ------------------------------------------------------------------------------------ CON-2


def test_con2_non_qualifying_contact_is_skipped_with_the_failing_condition() -> None:
    result = run(hs_contacts=[contact("h1", "jane@acme.com", stage="lead")])
    row = one(result.plan, source_id="h1")
    assert row["action"] == "skip"
    assert row["rules"] == ["CON-2"]
    assert row["reason"].startswith("CON-2:")
    assert "lifecyclestage" in row["reason"]
    assert "(is lead)" in row["reason"]


def test_con2_contact_without_email_failing_the_list_is_skipped_not_quarantined() -> None:
    """With the default list (email known) a missing email is a deliberate non-sync."""
    result = run(hs_contacts=[contact("h1", None)])
    row = one(result.plan, source_id="h1")
    assert row["action"] == "skip"
    assert "email must be known" in row["reason"]


def test_con2_qualifying_contact_creates_a_lead_by_default() -> None:
    result = run(hs_contacts=[contact("h1", "jane@acme.com", hubspot_owner_id="1", company="Acme")])
    row = one(result.plan, action="create")
    assert (row["target"], row["object"], row["source_id"]) == ("salesforce", "Lead", "h1")
    assert row["fields"]["Email"] == "jane@acme.com"
    assert row["fields"]["LastName"] == "Last h1"
    assert row["fields"]["Company"] == "Acme"
    assert row["fields"]["HubSpot_Id__c"] == "h1"
    assert row["fields"]["OwnerId"] == "005A"  # OWN-1: name and email match an active user
    assert row["fields"]["_use_assignment_rule"] is False
    assert row["rules"] == ["CON-2", "OWN-1"]
    assert pair_of(result, "h1")["sf_id"] == "@Lead:h1"


def test_con2_default_object_contact_creates_a_contact_owned_by_the_integration_user() -> None:
    result = run(hs_contacts=[contact("h1", "jane@acme.com")], default_object="Contact")
    row = one(result.plan, action="create")
    assert row["object"] == "Contact"
    assert row["fields"]["OwnerId"] == "005INT"  # OWN-3: no HubSpot owner
    assert "_use_assignment_rule" not in row["fields"]
    assert pair_of(result, "h1")["sf_object"] == "Contact"


@pytest.mark.parametrize(
    ("condition", "qualifies"),
    [
        (InclusionCondition("lifecyclestage", "eq", "Customer"), [True, False, False]),
        (InclusionCondition("lifecyclestage", "neq", "customer"), [False, True, True]),
        (InclusionCondition("lifecyclestage", "in", ("lead", "customer")), [True, True, False]),
        (InclusionCondition("lifecyclestage", "known"), [True, True, False]),
        (InclusionCondition("lifecyclestage", "not_known"), [False, False, True]),
        (InclusionCondition("numberofemployees", "eq", 50), [True, False, False]),
        (InclusionCondition("hs_do_not_sync", "not_known"), [True, True, True]),  # absent property
    ],
)
def test_con2_inclusion_list_operators(condition: InclusionCondition, qualifies: list[bool]) -> None:
    frame = pd.DataFrame(
        {"lifecyclestage": ["customer", "lead", "  "], "numberofemployees": ["50.0", "7", None]}
    )
    assert inclusion_list_mask(frame, [condition]).tolist() == qualifies


def test_con2_inclusion_conditions_are_anded_and_the_first_failure_is_reported() -> None:
    frame = pd.DataFrame({"email": ["a@x.com", None], "lifecyclestage": ["lead", "customer"]})
    failures = inclusion_list_failures(
        frame,
        [InclusionCondition("email", "known"), InclusionCondition("lifecyclestage", "eq", "customer")],
    )
    assert failures.tolist() == [
        "lifecyclestage must equal 'customer' (is lead)",
        "email must be known (is unknown)",
    ]
    assert inclusion_list_mask(frame, []).all()


# ------------------------------------------------------------------------------------ CON-3


def test_con3_sf_contact_without_hubspot_contact_creates_one() -> None:
    result = run(sf_contacts=[sf_contact("003A", "Jane@Acme.com", FirstName="Jane", OwnerId="005A")])
    row = one(result.plan, action="create")
    assert (row["target"], row["object"], row["source_id"]) == ("hubspot", "contacts", "003A")
    assert row["fields"]["email"] == "jane@acme.com"  # emails are written in canonical form
    assert row["fields"]["firstname"] == "Jane"
    assert row["fields"]["salesforcecontactid"] == "003A"
    assert row["fields"]["hubspot_owner_id"] == "1"
    assert row["rules"] == ["CON-3", "OWN-5"]
    assert pair_of(result, "@contacts:003A")["how"] == "create_in_hubspot"


def test_con3_sf_records_sharing_an_email_create_one_hubspot_contact() -> None:
    result = run(
        sf_contacts=[sf_contact("003A", "jane@acme.com", modified=BEFORE)],
        sf_leads=[sf_contact("00QA", "JANE@acme.com", modified=AFTER), sf_contact("00QB", "jane@acme.com")],
    )
    create = one(result.plan, action="create")
    assert create["source_id"] == "003A"
    for lead in ("00QA", "00QB"):
        row = one(result.plan, source_id=lead)
        assert row["action"] == "skip"
        assert "Contact 003A" in row["reason"]


def test_con3_sf_lead_matching_an_existing_hubspot_contact_links_instead_of_creating() -> None:
    result = run(
        hs_contacts=[contact("h1", "jane@acme.com", stage="lead")],
        sf_leads=[sf_contact("00QA", "jane@acme.com")],
    )
    assert not rows(result.plan, action="create")
    assert one(result.plan, target="salesforce", action="link")["object"] == "Lead"
    assert pair_of(result, "h1")["sf_object"] == "Lead"


def test_con2_con3_records_whose_linked_counterpart_was_deleted_are_not_recreated() -> None:
    result = run(
        hs_contacts=[contact("h1", "jane@acme.com"), contact("h2", "bob@acme.com", _deleted=True)],
        sf_contacts=[sf_contact("003A", "jane@acme.com", _deleted=True), sf_contact("003B", "bob@acme.com")],
        link_rows=[("Contact", "003A", "h1"), ("Contact", "003B", "h2")],
    )
    assert not rows(result.plan, action="create")
    assert "deleted" in one(result.plan, source_id="h1")["reason"]
    assert "deleted" in one(result.plan, source_id="003B")["reason"]


def test_sync4_applying_the_contact_plan_then_replanning_creates_and_links_nothing() -> None:
    """Creates carry the link ids, so a re-run pairs them by id instead of creating twice."""
    hs_contacts = [contact("h1", "jane@acme.com"), contact("h2", "bob@acme.com", stage="lead")]
    sf_contacts = [sf_contact("003A", "bob@acme.com"), sf_contact("003B", "carl@acme.com")]
    first = run(hs_contacts=hs_contacts, sf_contacts=sf_contacts)
    assert rows(first.plan, action="create")
    assert rows(first.plan, action="link")

    new_hs = list(hs_contacts)
    new_leads: list[dict[str, Any]] = []
    link_rows: list[tuple[str, str, str]] = []
    for row in rows(first.plan, action="create"):
        if row["target"] == "hubspot":
            new_hs.append({"id": f"hnew-{row['source_id']}", **row["fields"]})
        else:
            fields = {k: v for k, v in row["fields"].items() if not k.startswith("_")}
            new_leads.append({"Id": f"00Qnew-{row['source_id']}", **fields})
    for row in rows(first.plan, action="link", target="salesforce"):
        link_rows.append((row["object"], row["target_id"], row["source_id"]))
    second = run(hs_contacts=new_hs, sf_contacts=sf_contacts, sf_leads=new_leads)
    assert not rows(second.plan, action="create")
    assert {r["action"] for r in rows(second.plan)} <= {"link", "skip"}
    third = run(
        hs_contacts=new_hs,
        sf_contacts=sf_contacts,
        sf_leads=new_leads,
        link_rows=link_rows
        + [
            (r["object"], r["target_id"], r["source_id"])
            for r in rows(second.plan, action="link", target="salesforce")
        ],
    )
    assert not rows(third.plan, action="create")
    assert not rows(third.plan, action="link")
