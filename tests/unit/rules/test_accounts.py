"""Account rules ACC-1..ACC-6 and ACC-8: which Accounts sync, linking order, creation, dedup."""

from __future__ import annotations

import random
from typing import Any

import pandas as pd
import pytest
from crm_sync.rules.accounts import (
    MAX_RESYNC_CHUNK,
    AccountsResult,
    dedup_accounts,
    plan_accounts,
    resync_batches,
    resync_chunks,
    similar_name_pairs,
)
from crm_sync.rules.contacts import match_contacts
from crm_sync.rules.owners import build_owner_map
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.rules.sync_frames import (
    AFTER,
    BEFORE,
    INTEGRATION_EMAIL,
    associations,
    config,
    contact_world,
    hs,
    inputs,
    integration_user,
    one,
    rows,
    sf,
    user,
)


def run(
    *,
    accounts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    companies: list[dict[str, Any]] = (),  # type: ignore[assignment]
    hs_contacts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    sf_contacts: list[dict[str, Any]] = (),  # type: ignore[assignment]
    sf_leads: list[dict[str, Any]] = (),  # type: ignore[assignment]
    assoc: list[tuple[str, str]] = (),  # type: ignore[assignment]
    link_rows: list[tuple[str, str, str]] = (),  # type: ignore[assignment]
    imported: list[str] = (),  # type: ignore[assignment]
    users: list[dict[str, Any]] | None = None,
    **config_args: Any,
) -> AccountsResult:
    staged, owners = contact_world(
        hs_contacts=hs_contacts,
        sf_contacts=sf_contacts,
        sf_leads=sf_leads,
        link_rows=link_rows,
        users=users,
        sf_account=sf("Account", *accounts),
        hs_company=hs("companies", *companies),
        hs_association=associations(*assoc),
        imported=pd.DataFrame({"object": ["Account"] * len(imported), "sf_id": list(imported)}),
    )
    cfg = config(**config_args)
    contacts = match_contacts(staged, cfg, owners)
    return plan_accounts(staged, cfg, owners, contacts)


def account(
    aid: str, name: str = "Acme", website: str | None = None, *, new: bool = True, **extra: Any
) -> dict[str, Any]:
    stamp = AFTER if new else BEFORE
    return {
        "Id": aid,
        "Name": name,
        "Website": website,
        "CreatedDate": stamp,
        "LastModifiedDate": stamp,
        **extra,
    }


def company(cid: str, name: str = "Acme", domain: str | None = None, **props: Any) -> dict[str, Any]:
    return {"id": cid, "name": name, "domain": domain, "createdate": "2026-02-01T00:00:00Z", **props}


def contact(hid: str, email: str, stage: str = "customer", **props: Any) -> dict[str, Any]:
    return {"id": hid, "email": email, "lifecyclestage": stage, "lastname": hid, **props}


def pair(result: AccountsResult, sf_id: str) -> dict[str, Any]:
    found = result.pairs[result.pairs["sf_id"] == sf_id]
    assert len(found) == 1, found
    return dict(found.iloc[0])


# ------------------------------------------------------------------------------ ACC-1 / ACC-2


def test_acc1_new_account_creates_a_company_without_any_contact() -> None:
    result = run(accounts=[account("001A", "Acme Inc.", "https://www.acme.com", OwnerId="005A")])
    row = one(result.plan, action="create")
    assert (row["target"], row["object"], row["source_id"]) == ("hubspot", "companies", "001A")
    assert row["fields"]["name"] == "Acme Inc."
    assert row["fields"]["domain"] == "acme.com"
    assert row["fields"]["salesforceaccountid"] == "001A"
    assert row["fields"]["hubspot_owner_id"] == "1"
    assert row["rules"][:2] == ["ACC-1", "ACC-3"]
    assert pair(result, "001A") == {"sf_id": "001A", "hs_id": "@companies:001A", "how": "create_in_hubspot"}


@pytest.mark.parametrize(
    ("extra", "imported", "syncs"),
    [
        ({}, [], False),  # pre-existing, untouched
        ({"LastModifiedDate": AFTER}, [], True),  # modified since sync was enabled
        ({}, ["001A"], True),  # imported by a backfill
    ],
)
def test_acc2_preexisting_account_syncs_only_when_imported_or_modified(
    extra: dict[str, Any], imported: list[str], syncs: bool
) -> None:
    result = run(accounts=[account("001A", new=False, **extra)], imported=imported)
    creates = rows(result.plan, action="create")
    assert bool(creates) is syncs
    if syncs:
        assert creates[0]["rules"][0] == "ACC-2"


def test_acc2_preexisting_account_already_linked_by_its_company_stays_linked() -> None:
    result = run(accounts=[account("001A", new=False)], companies=[company("c1", salesforceaccountid="001A")])
    assert pair(result, "001A")["hs_id"] == "c1"
    assert not rows(result.plan, action="create")


# ------------------------------------------------------------------------------ ACC-3


def _acc3_world(**overrides: Any) -> dict[str, Any]:
    """An Account that could link to three companies: by Id (c_id), by contacts (c_ct), by domain (c_dom)."""
    world: dict[str, Any] = {
        "accounts": [account("001A", "Acme", "https://acme.com")],
        "companies": [
            company("c_id", "Acme (old)", "old-acme.com", salesforceaccountid="001A"),
            company("c_ct", "Acme Corp", "acme-corp.com"),
            company("c_dom", "ACME", "acme.com"),
        ],
        "hs_contacts": [contact("h1", "jane@acme.com")],
        "sf_contacts": [{"Id": "003A", "Email": "jane@acme.com", "LastName": "J", "AccountId": "001A"}],
        "assoc": [("h1", "c_ct")],
    }
    world.update(overrides)
    return world


def test_acc3_company_holding_the_account_id_wins_over_contacts_and_domain() -> None:
    result = run(**_acc3_world())
    assert pair(result, "001A") == {"sf_id": "001A", "hs_id": "c_id", "how": "hubspot_id"}
    sf_link = one(result.plan, target="salesforce", action="link")
    assert sf_link["fields"] == {"HubSpot_Id__c": "c_id"}
    hs_link = one(result.plan, target="hubspot", action="link")
    assert "salesforceaccountid" not in hs_link["fields"]  # it already holds it
    assert "ACC-3" in hs_link["rules"]


def test_acc3_company_with_the_same_contacts_wins_over_domain() -> None:
    world = _acc3_world()
    world["companies"] = world["companies"][1:]
    result = run(**world)
    assert pair(result, "001A") == {"sf_id": "001A", "hs_id": "c_ct", "how": "contacts"}
    assert one(result.plan, target="hubspot", action="link")["fields"]["salesforceaccountid"] == "001A"


def test_acc3_company_with_the_same_domain_links_when_nothing_else_matches() -> None:
    world = _acc3_world(assoc=[])
    world["companies"] = world["companies"][1:]
    result = run(**world)
    assert pair(result, "001A") == {"sf_id": "001A", "hs_id": "c_dom", "how": "domain"}
    assert not rows(result.plan, action="create", target="hubspot")


def test_acc3_matching_is_decided_together_an_account_falls_back_to_its_next_best_company() -> None:
    """001A shares 3 contacts with X; 001B shares 2 with X and 1 with Y. Taking 001B's best
    greedily left it nothing (and created a duplicate company); together, 001B gets Y."""
    emails = {"a1": "001A", "a2": "001A", "a3": "001A", "b1": "001B", "b2": "001B", "b3": "001B"}
    result = run(
        accounts=[account("001A", "Alpha"), account("001B", "Beta")],
        companies=[company("cX", "Xylo"), company("cY", "Yak")],
        hs_contacts=[contact(f"h{k}", f"{k}@x.com") for k in emails],
        sf_contacts=[
            {"Id": f"003{k}", "Email": f"{k}@x.com", "LastName": k, "AccountId": acc}
            for k, acc in emails.items()
        ],
        assoc=[(f"h{k}", "cY" if k == "b3" else "cX") for k in emails],
    )
    assert pair(result, "001A")["hs_id"] == "cX"
    assert pair(result, "001B") == {"sf_id": "001B", "hs_id": "cY", "how": "contacts"}
    assert not rows(result.plan, target="hubspot", object="companies", action="create")


def test_acc3_the_best_total_overlap_wins_over_the_first_best_pair() -> None:
    from crm_sync.rules.matching import best_matching

    candidates = pd.DataFrame(
        {"sf_id": ["A", "B", "A"], "hs_id": ["X", "X", "Y"], "size": [3, 2, 2]}
    )  # greedy: A-X alone (3); together: A-Y + B-X (4)
    assert best_matching(candidates, "size").values.tolist() == [["B", "X"], ["A", "Y"]]
    ties = pd.DataFrame({"sf_id": ["A", "A"], "hs_id": ["X", "Y"], "size": [1, 1]})
    assert best_matching(ties, "size").values.tolist() == [["A", "X"]]  # the caller's preference


def test_acc3_no_match_creates_and_a_company_is_claimed_only_once() -> None:
    result = run(
        accounts=[account("001A", "Acme", "acme.com"), account("001B", "Globex", "globex.com")],
        companies=[company("c1", "Acme", "acme.com")],
    )
    assert pair(result, "001A")["hs_id"] == "c1"
    assert pair(result, "001B")["hs_id"] == "@companies:001B"


def test_acc3_own4_linking_keeps_the_sf_owner_and_writes_it_back() -> None:
    result = run(
        accounts=[account("001A", "Acme", "acme.com", OwnerId="005A")],
        companies=[company("c1", "Acme", "acme.com")],
    )
    hs_link = one(result.plan, target="hubspot", action="link")
    assert hs_link["fields"]["hubspot_owner_id"] == "1"
    assert "OWN-4" in hs_link["rules"]
    assert "OwnerId" not in one(result.plan, target="salesforce", action="link")["fields"]


# ------------------------------------------------------------------------------ ACC-4 / ACC-5


def test_acc4_company_with_a_private_contact_creates_an_account() -> None:
    result = run(
        companies=[company("c1", "Acme", "acme.com")],
        hs_contacts=[contact("h1", "jane@acme.com")],
        sf_contacts=[{"Id": "003A", "Email": "jane@acme.com", "LastName": "J", "AccountId": None}],
        assoc=[("h1", "c1")],
    )
    row = one(result.plan, target="salesforce", object="Account", action="create")
    assert row["source_id"] == "c1"
    assert row["fields"]["Name"] == "Acme"
    assert row["fields"]["HubSpot_Id__c"] == "c1"
    assert row["fields"]["OwnerId"] == "005INT"  # OWN-3: the company has no owner
    assert row["rules"] == ["ACC-4", "OWN-3"]
    assert pair(result, "@Account:c1")["hs_id"] == "c1"


def test_acc5_company_with_only_lead_contacts_creates_no_account() -> None:
    result = run(
        companies=[company("c1")],
        hs_contacts=[contact("h1", "jane@acme.com"), contact("h2", "bob@acme.com")],
        sf_leads=[{"Id": "00QA", "Email": "jane@acme.com", "LastName": "J"}],  # h2 will be created as a Lead
        assoc=[("h1", "c1"), ("h2", "c1")],
    )
    row = one(result.plan, target="salesforce", object="Account")
    assert row["action"] == "skip"
    assert row["rules"] == ["ACC-5"]
    assert "Leads" in row["reason"]


def test_acc5_all_contacts_sync_to_leads_counts_every_associated_contact() -> None:
    """ACC-5: a contact that does not sync at all is not a Lead, so a company with one Lead
    contact and one contact that stays in HubSpot is not "all Leads"; ACC-4 decides."""
    result = run(
        companies=[company("c1")],
        hs_contacts=[contact("h1", "jane@acme.com"), contact("h2", "bob@acme.com", stage="lead")],
        sf_leads=[{"Id": "00QA", "Email": "jane@acme.com", "LastName": "J"}],  # h2 does not qualify
        assoc=[("h1", "c1"), ("h2", "c1")],
    )
    row = one(result.plan, target="salesforce", object="Account", source_id="c1")
    assert row["action"] == "create"
    assert row["rules"][0] == "ACC-4"


@pytest.mark.parametrize("stamp", ["2026-01-01T00:00:00.000+0000", "2025-12-31T23:59:59.000+0000"])
def test_acc1_and_deal9_share_the_sync_enabled_at_boundary(stamp: str) -> None:
    """A record created exactly at sync enabled at is new for ACC-1 as for DEAL-9."""
    from crm_sync.rules.deals import plan_deals

    from tests.unit.rules.deal_world import deal_inputs, opp

    on_boundary = stamp.startswith("2026")
    result = run(accounts=[account("001A", CreatedDate=stamp, LastModifiedDate=stamp)])
    assert bool(rows(result.plan, action="create")) is on_boundary
    inputs = deal_inputs(opps=[opp("006A", CreatedDate=stamp, LastModifiedDate=stamp, SystemModstamp=stamp)])
    from crm_sync.rules.pipelines import name_pipelines

    pipes = name_pipelines(inputs)
    deals = plan_deals(
        inputs,
        config(),
        pipelines=pipes.pipelines,
        stages=pipes.stages,
        owners=build_owner_map(inputs.sf_user, inputs.hs_owner, "integration@example.com"),
        contact_links=pd.DataFrame(columns=["hs_id", "sf_object", "sf_id"]),
        account_links=pd.DataFrame(columns=["sf_id", "hs_id"]),
    )
    assert bool(rows(deals.plan, action="create")) is on_boundary


def test_acc5_company_without_contacts_creates_no_account() -> None:
    result = run(companies=[company("c1")])
    row = one(result.plan, source_id="c1")
    assert row["action"] == "skip"
    assert "no associated contact" in row["reason"]


def test_acc5_wins_over_a_private_contact_when_no_contact_qualifies() -> None:
    result = run(
        companies=[company("c1")],
        hs_contacts=[contact("h1", "jane@acme.com", stage="lead")],
        sf_contacts=[{"Id": "003A", "Email": "jane@acme.com", "LastName": "J"}],
        assoc=[("h1", "c1")],
    )
    row = one(result.plan, source_id="c1", target="salesforce")
    assert row["action"] == "skip"
    assert "qualifies" in row["reason"]


@pytest.mark.parametrize(
    ("assoc", "hs_contacts"),
    [
        ([], []),  # no contacts at all
        ([("h1", "c1")], [contact("h1", "jane@acme.com", stage="lead")]),  # none qualifies
    ],
)
def test_acc5_manual_sync_flag_overrides(
    assoc: list[tuple[str, str]], hs_contacts: list[dict[str, Any]]
) -> None:
    result = run(companies=[company("c1", crm_sync_manual_sync="true")], hs_contacts=hs_contacts, assoc=assoc)
    assert one(result.plan, target="salesforce", object="Account")["action"] == "create"


def test_acc4_auto_created_company_with_default_contact_creates_an_account() -> None:
    result = run(
        companies=[company("c1", "acme.com", "acme.com", hs_object_source="AUTOMATIC_COMPANY_CREATION")],
        hs_contacts=[contact("h1", "jane@acme.com")],
        assoc=[("h1", "c1")],
        default_object="Contact",
    )
    assert one(result.plan, target="salesforce", object="Account")["action"] == "create"


def test_acc4_account_create_is_quarantined_when_the_integration_user_is_unknown() -> None:
    result = run(
        companies=[company("c1", crm_sync_manual_sync=True)],
        users=[user("005A", "ann@x.com")],  # no integration user
    )
    row = one(result.plan, target="salesforce", object="Account")
    assert row["action"] == "quarantine"
    assert "integration_user_email" in row["reason"]


def test_acc4_acc6_company_matching_an_account_group_links_to_its_survivor() -> None:
    result = run(
        accounts=[
            account("001OLD", "Acme Inc.", "acme.com", new=False),
            account(
                "001B",
                "ACME",
                "https://www.acme.com/contact",
                new=False,
                LastModifiedDate="2025-09-01T00:00:00Z",
            ),
        ],
        companies=[company("c1", "Acme", "acme.com", crm_sync_manual_sync=True)],
    )
    link = one(result.plan, target="salesforce", action="link")
    assert (link["target_id"], link["source_id"]) == ("001B", "c1")  # the most recently modified
    assert link["rules"] == ["ACC-4", "ACC-6"]
    assert not rows(result.plan, action="create")
    assert pair(result, "001B") == {"sf_id": "001B", "hs_id": "c1", "how": "group"}


def test_companies_sync_off_plans_no_account_or_company_rows() -> None:
    result = run(
        accounts=[account("001A")], companies=[company("c1", crm_sync_manual_sync=True)], companies_sync=False
    )
    assert result.plan.empty


# ------------------------------------------------------------------------------ ACC-6


def dedup_frame(*records: dict[str, Any]) -> pd.DataFrame:
    return sf("Account", *records)


def groups_of(result_groups: pd.DataFrame) -> set[frozenset[str]]:
    return {frozenset(g["sf_id"]) for _, g in result_groups.groupby("group_id")}


def test_acc6_accounts_differing_only_in_www_scheme_inc_case_port_and_path_are_one_group() -> None:
    frame = dedup_frame(
        {
            "Id": "001A",
            "Name": "Acme Inc.",
            "Website": "acme.com",
            "LastModifiedDate": "2026-01-01T00:00:00Z",
        },
        {
            "Id": "001B",
            "Name": "ACME",
            "Website": "https://www.acme.com/",
            "LastModifiedDate": "2026-03-01T00:00:00Z",
        },
        {
            "Id": "001C",
            "Name": "acme, inc",
            "Website": "HTTP://ACME.COM:8080/about",
            "LastModifiedDate": "2026-02-01T00:00:00Z",
        },
        {"Id": "001D", "Name": "Globex", "Website": "globex.com"},
    )
    result = dedup_accounts(frame)
    assert groups_of(result.groups) == {frozenset({"001A", "001B", "001C"})}
    survivors = result.groups[result.groups["is_survivor"]]
    assert survivors["sf_id"].tolist() == ["001B"]  # most recently modified
    assert set(result.groups["survivor_id"]) == {"001B"}
    assert result.groups["group_id"].unique().tolist() == ["001A"]
    assert result.survivor["001D"] == "001D"
    assert sorted(result.non_survivors) == ["001A", "001C"]
    assert result.groups.loc[result.groups["sf_id"] == "001A", "key"].item() == "domain acme.com; name acme"


def test_acc6_already_linked_account_survives_over_a_more_recent_one() -> None:
    frame = dedup_frame(
        {"Id": "001A", "Name": "Acme", "LastModifiedDate": "2025-01-01T00:00:00Z"},
        {"Id": "001B", "Name": "Acme LLC", "LastModifiedDate": "2026-05-01T00:00:00Z"},
    )
    assert dedup_accounts(frame, linked_ids={"001A"}).survivor["001B"] == "001A"


def test_acc6_oldest_id_survives_a_tie() -> None:
    frame = dedup_frame({"Id": "001B", "Name": "Acme"}, {"Id": "001A", "Name": "ACME GmbH"})
    assert dedup_accounts(frame).survivor.to_dict() == {"001B": "001A", "001A": "001A"}


def test_acc6_groups_are_connected_components_over_domain_and_name() -> None:
    frame = dedup_frame(
        {"Id": "001A", "Name": "Acme", "Website": "acme.com"},
        {"Id": "001B", "Name": "Acme Europe", "Website": "www.acme.com"},  # A~B by domain
        {"Id": "001C", "Name": "Acme Europe GmbH", "Website": "acme.de"},  # B~C by name
        {"Id": "001D", "Name": "Initech", "Website": "initech.com"},
    )
    assert groups_of(dedup_accounts(frame).groups) == {frozenset({"001A", "001B", "001C"})}


def test_acc6_near_duplicate_names_are_possible_duplicates_that_still_sync() -> None:
    """Only ACC-6's keys keep an Account from syncing: a typo-level name match is reported."""
    frame = dedup_frame(
        {"Id": "001A", "Name": "Northwind Traders International"},
        {"Id": "001B", "Name": "Northwind Traders Internationl"},  # typo
        {"Id": "001C", "Name": "Northwind Store 12"},
        {"Id": "001D", "Name": "Northwind Store 13"},
        {"Id": "001E", "Name": "Southwind Traders International"},  # other first word: another block
    )
    result = dedup_accounts(frame)
    assert groups_of(result.groups) == set()
    assert result.non_survivors.empty
    possible = result.possible
    assert {frozenset(p) for p in zip(possible["sf_id"], possible["similar_id"], strict=True)} == {
        frozenset({"001A", "001B"})
    }
    assert dedup_accounts(frame, fuzzy_threshold=101).possible.empty
    synced = run(
        accounts=[
            account("001A", "Northwind Traders International"),
            account("001B", "Northwind Traders Internationl"),
        ]
    )
    assert {r["source_id"] for r in rows(synced.plan, action="create")} == {"001A", "001B"}


def test_acc6_shared_generic_domains_and_deleted_accounts_do_not_group() -> None:
    frame = dedup_frame(
        {"Id": "001A", "Name": "Acme", "Website": "https://facebook.com/acme"},
        {"Id": "001B", "Name": "Globex", "Website": "https://facebook.com/globex"},
        {"Id": "001C", "Name": "Acme", "_deleted": True},
        {"Id": "001D", "Name": "Acme", "IsDeleted": "true"},
    )
    assert dedup_accounts(frame).groups.empty


def test_acc6_non_survivors_are_skipped_naming_the_survivor_and_nothing_is_deleted() -> None:
    result = run(
        accounts=[
            account("001A", "Acme Inc.", "acme.com", LastModifiedDate="2026-02-01T00:00:00Z"),
            account("001B", "Acme", "www.acme.com", LastModifiedDate="2026-04-01T00:00:00Z"),
        ]
    )
    skip = one(result.plan, action="skip", source_id="001A")
    assert skip["rules"] == ["ACC-6"]
    assert "001B" in skip["reason"]
    assert one(result.plan, action="create")["source_id"] == "001B"
    assert not rows(result.plan, action="delete")
    assert len(result.dedup.groups) == 2


def test_acc6_an_already_linked_non_survivor_is_suspended_not_synced() -> None:
    """ACC-6: a linked loser keeps its company but nothing syncs through the pair (no field
    merge, DEAL-7 or rollups read it): it is not among the pairs; its skip names the survivor."""
    result = run(
        accounts=[
            account("001A", "Acme Inc.", "acme.com", LastModifiedDate="2026-02-01T00:00:00Z"),
            account("001B", "Acme", "www.acme.com", LastModifiedDate="2026-04-01T00:00:00Z"),
        ],
        companies=[
            company("c1", "Acme", salesforceaccountid="001A"),
            company("c2", "Acme", salesforceaccountid="001B"),
        ],
        link_rows=[("Account", "001A", "c1"), ("Account", "001B", "c2")],
    )
    assert set(result.pairs["sf_id"]) == {"001B"}
    skip = one(result.plan, action="skip", source_id="001A")
    assert skip["target_id"] == "c1"
    assert "001B" in skip["reason"]
    assert "suspended" in skip["reason"]
    assert not [r for r in rows(result.plan) if r["action"] != "skip"]  # c1 is not re-used or re-created


def test_acc6_hubspot_company_matching_a_non_survivor_domain_links_to_the_survivor() -> None:
    result = run(
        accounts=[
            account("001A", "Acme", "acme.co.uk", LastModifiedDate="2026-02-01T00:00:00Z"),
            account("001B", "Acme", "acme.com", LastModifiedDate="2026-04-01T00:00:00Z"),
        ],
        companies=[company("c1", "Acme UK", "acme.co.uk")],
    )
    assert pair(result, "001B") == {"sf_id": "001B", "hs_id": "c1", "how": "domain"}


@settings(max_examples=30, deadline=None)
@given(st.randoms(use_true_random=False))
def test_acc6_grouping_is_invariant_under_row_order(rng: random.Random) -> None:
    records = [
        {
            "Id": "001A",
            "Name": "Acme Inc.",
            "Website": "acme.com",
            "LastModifiedDate": "2026-01-01T00:00:00Z",
        },
        {"Id": "001B", "Name": "ACME", "Website": "www.acme.com", "LastModifiedDate": "2026-03-01T00:00:00Z"},
        {"Id": "001C", "Name": "Acme Europe", "Website": "acme.com/eu"},
        {"Id": "001D", "Name": "Acme Europe GmbH", "Website": "acme.de"},
        {"Id": "001E", "Name": "Globex Corporation", "Website": "globex.com"},
        {"Id": "001F", "Name": "Globex Corp", "Website": None},
        {"Id": "001G", "Name": "Initech Solutions", "Website": "initech.io"},
        {"Id": "001H", "Name": "Initech Solution", "Website": "https://initech.com"},
        {"Id": "001I", "Name": "Umbrella", "Website": "umbrella.com"},
    ]
    reference = dedup_accounts(dedup_frame(*records))
    shuffled = list(records)
    rng.shuffle(shuffled)
    result = dedup_accounts(dedup_frame(*shuffled))
    assert groups_of(result.groups) == groups_of(reference.groups)
    assert result.survivor.sort_index().to_dict() == reference.survivor.sort_index().to_dict()


def test_acc6_similar_name_pairs_respect_blocks_and_window() -> None:
    names = pd.Series(["alpha widgets", "alpha widget", "beta widgets", "alpha gadgets"])
    i, j, comparisons = similar_name_pairs(names, threshold=90, window=8)
    assert {(int(a), int(b)) for a, b in zip(i, j, strict=True)} in ({(0, 1)}, {(1, 0)})
    assert comparisons > 0


# ------------------------------------------------------------------------------ ACC-8


def test_acc8_resync_is_chunked_at_200000_and_resumes_where_it_stopped() -> None:
    chunks = resync_chunks(450_001)
    assert [(c.start, c.stop) for c in chunks] == [(0, 200_000), (200_000, 400_000), (400_000, 450_001)]
    assert all(c.size <= MAX_RESYNC_CHUNK for c in chunks)
    assert chunks[-1].progress == 1.0
    resumed = resync_chunks(450_001, resume_from=200_000)
    assert [(c.index, c.start) for c in resumed] == [(1, 200_000), (2, 400_000)]
    assert resync_chunks(0) == []
    with pytest.raises(ValueError, match="ACC-8"):
        resync_chunks(10, chunk_size=MAX_RESYNC_CHUNK + 1)
    with pytest.raises(ValueError, match="resume_from"):
        resync_chunks(10, resume_from=11)


def test_acc8_resync_batches_cover_every_company_once_in_a_stable_order() -> None:
    ids = pd.Series([*(str(n) for n in reversed(range(25))), "3", None])
    batches = list(resync_batches(ids, chunk_size=10))
    seen = [i for _, batch in batches for i in batch]
    assert sorted(seen) == sorted({f"{n}" for n in range(25)})
    assert len(seen) == 25
    resumed = [i for _, batch in resync_batches(ids, chunk_size=10, resume_from=10) for i in batch]
    assert resumed == seen[10:]


def test_acc3_acc4_contact_pairs_read_back_from_staging_give_the_same_plan() -> None:
    """The pipeline stores contact pairs in staging; NaN/None/object columns must not change ACC-3/4/5."""
    sf_users = sf("User", integration_user())
    hs_owners = hs("owners")
    staged = inputs(
        sf_user=sf_users,
        hs_owner=hs_owners,
        sf_account=sf("Account", account("001A", "Acme", "acme.com")),
        hs_company=hs(
            "companies", company("c1", "Acme Corp", "acme-corp.com"), company("c2", "Beta", "beta.com")
        ),
        hs_contact=hs("contacts", contact("h1", "jane@acme.com"), contact("h2", "bob@beta.com")),
        sf_contact=sf(
            "Contact",
            {"Id": "003A", "Email": "jane@acme.com", "LastName": "J", "AccountId": "001A"},
            {"Id": "003B", "Email": "bob@beta.com", "LastName": "B"},
        ),
        hs_association=associations(("h1", "c1"), ("h2", "c2")),
    )
    cfg = config()
    owners = build_owner_map(sf_users, hs_owners, INTEGRATION_EMAIL)
    contacts = match_contacts(staged, cfg, owners)
    direct = plan_accounts(staged, cfg, owners, contacts)
    stored = contacts.pairs.astype(object).where(contacts.pairs.notna(), None)
    reread = plan_accounts(staged, cfg, owners, type(contacts)(contacts.plan, stored, contacts.qualifies))
    assert pair(direct, "001A")["hs_id"] == "c1"
    assert one(direct.plan, target="salesforce", action="create")["source_id"] == "c2"  # private contact
    assert reread.plan.to_dict("records") == direct.plan.to_dict("records")


def test_acc4_own1_account_created_from_a_company_keeps_its_qualifying_owner() -> None:
    result = run(companies=[company("c1", crm_sync_manual_sync=True, hubspot_owner_id="1")])
    row = one(result.plan, target="salesforce", object="Account", action="create")
    assert row["fields"]["OwnerId"] == "005A"
    assert row["rules"] == ["ACC-4", "OWN-1"]


def test_acc6_second_company_matching_a_synced_group_creates_no_second_account() -> None:
    result = run(
        accounts=[account("001A", "Acme", "acme.com")],
        companies=[
            company("c1", "Acme", "acme.com"),
            company("c2", "ACME Inc", "www.acme.com", crm_sync_manual_sync=True),
        ],
    )
    assert pair(result, "001A")["hs_id"] == "c1"  # ACC-3 by domain (the older company)
    row = one(result.plan, target="salesforce", source_id="c2")
    assert row["action"] == "skip"
    assert row["rules"] == ["ACC-6"]
    assert "already syncs with company c1" in row["reason"]
