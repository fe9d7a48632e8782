"""Owner rules OWN-1..OWN-5: owner map by email, new-record owners, first-link owners, translation."""

from __future__ import annotations

import pandas as pd
from crm_sync.rules.owners import (
    ASSIGNMENT_RULE_FIELD,
    OwnerMap,
    build_owner_map,
    new_record_owner_fields,
    owner_at_first_link,
    owner_for_new_sf_record,
    unmapped_owner_skips,
)

from tests.unit.rules.sync_frames import INTEGRATION_EMAIL, hs, integration_user, one, owner, sf, user


def owner_map(
    *, users: list[dict[str, object]], owners: list[dict[str, object]], with_integration: bool = True
) -> OwnerMap:
    all_users = [integration_user(), *users] if with_integration else users
    return build_owner_map(sf("User", *all_users), hs("owners", *owners), INTEGRATION_EMAIL)


def new_owner(om: OwnerMap, hs_owner_id: str | None, sf_object: str = "Account") -> dict[str, object]:
    result = owner_for_new_sf_record(pd.Series([hs_owner_id], dtype=object), sf_object, om)  # type: ignore[arg-type]
    return dict(result.iloc[0])


def test_own1_owner_matching_name_and_email_of_active_user_keeps_owner() -> None:
    om = owner_map(
        users=[user("005A", "ann@x.com", "Ann", "Lee")], owners=[owner("1", "ann@x.com", "Ann", "Lee")]
    )
    decision = new_owner(om, "1")
    assert decision["OwnerId"] == "005A"
    assert decision["owner_rule"] == "OWN-1"
    assert not decision["use_assignment_rule"]


def test_own1_match_is_case_and_whitespace_insensitive() -> None:
    om = owner_map(
        users=[user("005A", "Ann.Lee@X.com", "ann", "lee")],
        owners=[owner("1", "  ann.lee@x.COM ", " Ann ", "LEE")],
    )
    assert new_owner(om, "1")["OwnerId"] == "005A"


def test_own1_owner_matching_name_but_not_email_gets_integration_user() -> None:
    om = owner_map(
        users=[user("005A", "ann@x.com", "Ann", "Lee")],
        owners=[owner("1", "ann.lee@other.com", "Ann", "Lee")],
    )
    decision = new_owner(om, "1", "Account")
    assert decision["OwnerId"] == "005INT"
    assert decision["owner_rule"] == "OWN-2"


def test_own1_owner_matching_email_but_not_name_gets_integration_user() -> None:
    om = owner_map(
        users=[user("005A", "ann@x.com", "Ann", "Lee")], owners=[owner("1", "ann@x.com", "Annie", "Lee")]
    )
    decision = new_owner(om, "1", "Opportunity")
    assert decision["OwnerId"] == "005INT"
    assert decision["owner_rule"] == "OWN-2"


def test_own2_owner_matching_an_inactive_user_gets_integration_user() -> None:
    om = owner_map(users=[user("005A", "ann@x.com", active=False)], owners=[owner("1", "ann@x.com")])
    decision = new_owner(om, "1", "Account")
    assert decision["OwnerId"] == "005INT"
    assert decision["owner_rule"] == "OWN-2"
    assert "inactive" in str(om.why_not_to_salesforce(pd.Series(["1"])).iloc[0])


def test_own2_new_lead_without_qualifying_owner_goes_to_assignment_rules() -> None:
    om = owner_map(users=[], owners=[owner("1", "nobody@x.com")])
    decision = new_owner(om, "1", "Lead")
    assert decision["use_assignment_rule"]
    assert decision["owner_rule"] == "OWN-2"
    fields = new_record_owner_fields(pd.DataFrame([decision]), "Lead")
    assert fields[ASSIGNMENT_RULE_FIELD].tolist() == [True]


def test_own1_new_lead_with_qualifying_owner_turns_assignment_rules_off() -> None:
    """SF REST applies the active assignment rule by default; OWN-1's owner must survive it."""
    om = owner_map(users=[user("005A", "ann@x.com")], owners=[owner("1", "ann@x.com")])
    decision = new_owner(om, "1", "Lead")
    assert decision["OwnerId"] == "005A"
    fields = new_record_owner_fields(pd.DataFrame([decision]), "Lead")
    assert fields[ASSIGNMENT_RULE_FIELD].tolist() == [False]


def test_own3_unassigned_record_gets_integration_user() -> None:
    om = owner_map(users=[], owners=[])
    for sf_object in ("Account", "Contact", "Opportunity"):
        decision = new_owner(om, None, sf_object)
        assert decision["OwnerId"] == "005INT"
        assert decision["owner_rule"] == "OWN-3"
        assert not decision["use_assignment_rule"]


def test_own3_unassigned_lead_runs_assignment_rules_first() -> None:
    om = owner_map(users=[], owners=[])
    decision = new_owner(om, None, "Lead")
    assert decision["use_assignment_rule"]
    assert decision["owner_rule"] == "OWN-3"


def test_own2_integration_user_not_active_quarantines_accounts_but_not_leads() -> None:
    om = build_owner_map(
        sf("User", user("005INT", INTEGRATION_EMAIL, active=False), user("005A", "ann@x.com")),
        hs("owners", owner("1", "ann@x.com")),
        INTEGRATION_EMAIL,
    )
    assert om.integration_user_id is None
    unassigned = new_owner(om, None, "Account")
    assert unassigned["OwnerId"] is None
    assert "OWN-3" in str(unassigned["quarantine_reason"])
    assert "not an active Salesforce user" in str(unassigned["quarantine_reason"])
    mapped = new_owner(om, "1", "Account")
    assert mapped["OwnerId"] == "005A"
    assert pd.isna(mapped["quarantine_reason"])
    lead = new_owner(om, None, "Lead")
    assert pd.isna(lead["quarantine_reason"])
    assert lead["use_assignment_rule"]


def test_own1_owner_email_matching_two_active_sf_users_is_quarantined() -> None:
    om = owner_map(
        users=[user("005A", "ann@x.com"), user("005B", "ANN@x.com")],
        owners=[owner("1", "ann@x.com")],
    )
    row = one(om.quarantine, source_id="1")
    assert row["target"] == "salesforce"
    assert row["object"] == "User"
    assert row["action"] == "quarantine"
    assert "OWN-1" in row["rules"]
    assert "005A" in row["reason"]
    assert "005B" in row["reason"]
    # Records owned by the ambiguous owner fall back instead of guessing.
    assert new_owner(om, "1", "Account")["OwnerId"] == "005INT"


def test_own5_sf_user_email_matching_two_hubspot_owners_is_quarantined() -> None:
    om = owner_map(
        users=[user("005A", "ann@x.com")],
        owners=[owner("1", "ann@x.com"), owner("2", "Ann@X.com")],
    )
    row = one(om.quarantine, target_id="005A")
    assert row["rules"] == ["OWN-5"]
    assert "1, 2" in row["reason"]
    assert om.to_hubspot(pd.Series(["005A"])).isna().all()


def test_own1_inactive_namesake_does_not_make_the_email_ambiguous() -> None:
    om = owner_map(
        users=[user("005OLD", "ann@x.com", active=False), user("005A", "ann@x.com")],
        owners=[owner("1", "ann@x.com")],
    )
    assert om.quarantine.empty
    assert new_owner(om, "1")["OwnerId"] == "005A"


def test_own1_deleted_users_do_not_exist() -> None:
    om = owner_map(users=[user("005A", "ann@x.com", _deleted=True)], owners=[owner("1", "ann@x.com")])
    assert new_owner(om, "1")["OwnerId"] == "005INT"


def test_own4_existing_active_sf_owner_is_kept_and_written_back_to_hubspot() -> None:
    om = owner_map(
        users=[user("005A", "ann@x.com"), user("005B", "bob@x.com", "Bob", "Ray")],
        owners=[owner("1", "ann@x.com"), owner("2", "bob@x.com", "Bob", "Ray")],
    )
    decision = owner_at_first_link(pd.Series(["005B", "005A"]), pd.Series(["1", "1"]), om)
    assert decision["OwnerId"].tolist() == [None, None]  # SF keeps its owner
    assert decision["hubspot_owner_id"].tolist() == ["2", None]  # already equal: no write
    assert decision["owner_rule"].tolist() == ["OWN-4", "OWN-4"]
    assert decision["skip_reason"].isna().all()


def test_own4_active_sf_owner_without_hubspot_owner_is_reported() -> None:
    om = owner_map(users=[user("005A", "ann@x.com")], owners=[owner("1", "zed@x.com")])
    decision = owner_at_first_link(pd.Series(["005A"]), pd.Series(["1"]), om)
    assert decision["hubspot_owner_id"].tolist() == [None]
    assert decision["OwnerId"].tolist() == [None]
    assert "OWN-4" in str(decision["skip_reason"].iloc[0])
    assert "no HubSpot owner has email ann@x.com" in str(decision["skip_reason"].iloc[0])


def test_own4_inactive_sf_owner_is_replaced_by_the_mapped_hubspot_owner() -> None:
    om = owner_map(
        users=[user("005OLD", "old@x.com", active=False), user("005A", "ann@x.com")],
        owners=[owner("1", "ann@x.com")],
    )
    decision = owner_at_first_link(pd.Series(["005OLD"]), pd.Series(["1"]), om)
    assert decision["OwnerId"].tolist() == ["005A"]
    assert decision["hubspot_owner_id"].tolist() == [None]


def test_own5_owner_translates_both_ways_by_email() -> None:
    om = owner_map(
        users=[user("005A", "ann@x.com"), user("005OLD", "old@x.com", active=False)],
        owners=[owner("1", "ann@x.com"), owner("9", "old@x.com", archived=True), owner("3", "carl@x.com")],
    )
    assert om.to_salesforce(pd.Series(["1", "3", None, "404"])).tolist()[:1] == ["005A"]
    assert om.to_salesforce(pd.Series(["1", "3", None, "404"])).iloc[1:].isna().all()
    # SF -> HS copies whoever owns the record, but never onto an archived HubSpot owner.
    assert om.to_hubspot(pd.Series(["005A", "005OLD"])).tolist()[0] == "1"
    assert pd.isna(om.to_hubspot(pd.Series(["005OLD"])).iloc[0])
    # Comparable identities for the SYNC-3 merge.
    assert om.hubspot_email(pd.Series(["1"])).tolist() == om.salesforce_email(pd.Series(["005A"])).tolist()


def test_own5_owner_that_does_not_map_is_not_written_and_reported_as_skip() -> None:
    om = owner_map(
        users=[user("005A", "ann@x.com")], owners=[owner("1", "ann@x.com"), owner("3", "carl@x.com")]
    )
    plan = unmapped_owner_skips(
        target="salesforce",
        object="Opportunity",
        target_ids=pd.Series(["006A", "006B", "006C"]),
        source_ids=pd.Series(["d1", "d2", "d3"]),
        owner_values=pd.Series(["1", "3", None]),
        owners=om,
    )
    row = one(plan, target_id="006B")
    assert row["action"] == "skip"
    assert row["rules"] == ["OWN-5"]
    assert "carl@x.com" in row["reason"]
    assert len(plan) == 1
