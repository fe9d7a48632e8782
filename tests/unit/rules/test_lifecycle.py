"""ROLL-7 (contact lifecycle follows its deals) and ACC-7 (company follows its contacts), forward only."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from crm_sync.rules.lifecycle import plan_lifecycle, stage_rank

from tests.unit.rules.deal_world import assoc, hs, one, rows


def state(*deals: tuple[str, bool, bool]) -> pd.DataFrame:
    """Deal state rows ``(deal_key, is_closed, is_won)``."""
    return pd.DataFrame(
        {
            "deal_key": [d[0] for d in deals],
            "is_closed": [d[1] for d in deals],
            "is_won": [d[2] for d in deals],
        }
    )


OPEN, WON, LOST = (False, False), (True, True), (True, False)


def run(
    contacts: list[dict[str, Any]],
    deal_contacts: list[tuple[str, str]],
    deals: list[tuple[str, bool, bool]],
    *,
    companies: list[dict[str, Any]] = (),  # type: ignore[assignment]
    contact_companies: list[tuple[str, str]] = (),  # type: ignore[assignment]
    companies_sync: bool = True,
) -> Any:
    return plan_lifecycle(
        state(*deals),
        pd.DataFrame(
            {"deal_key": [d for d, _ in deal_contacts], "contact_key": [c for _, c in deal_contacts]}
        ),
        hs_contact=hs("contacts", *contacts),
        hs_company=hs("companies", *companies),
        hs_association=assoc(*(("contacts", c, "companies", co) for c, co in contact_companies)),
        companies_sync=companies_sync,
    )


def test_roll7_contact_with_an_open_deal_becomes_at_least_opportunity() -> None:
    result = run([{"id": "H1", "lifecyclestage": "lead"}], [("1", "H1")], [("1", *OPEN)])
    row = one(result.plan, object="contacts")
    assert (row["target_id"], row["fields"], row["rules"]) == (
        "H1",
        {"lifecyclestage": "opportunity"},
        ["ROLL-7"],
    )


def test_roll7_contact_with_a_closed_won_deal_becomes_customer() -> None:
    result = run(
        [{"id": "H1", "lifecyclestage": "opportunity"}],
        [("1", "H1"), ("2", "H1")],
        [("1", *OPEN), ("2", *WON)],
    )
    assert one(result.plan, object="contacts")["fields"] == {"lifecyclestage": "customer"}


@pytest.mark.parametrize("stage", ["customer", "evangelist", "other", "some_custom_stage"])
def test_roll7_stages_never_move_backward_and_other_stages_are_left_alone(stage: str) -> None:
    result = run([{"id": "H1", "lifecyclestage": stage}], [("1", "H1")], [("1", *OPEN)])
    assert result.plan.empty


def test_roll7_closed_lost_deals_alone_change_nothing() -> None:
    result = run([{"id": "H1", "lifecyclestage": "lead"}], [("1", "H1")], [("1", *LOST)])
    assert result.plan.empty


def test_roll7_blank_stage_and_contacts_created_by_this_plan_get_the_stage_their_deals_call_for() -> None:
    result = run([{"id": "H1"}], [("1", "H1"), ("1", "@contacts:003A")], [("1", *WON)])
    targets = {r["target_id"]: r["fields"]["lifecyclestage"] for r in rows(result.plan, object="contacts")}
    assert targets == {"H1": "customer", "@contacts:003A": "customer"}


def test_acc7_company_follows_its_contacts_stage_forward_only() -> None:
    result = run(
        [{"id": "H1", "lifecyclestage": "lead"}, {"id": "H2", "lifecyclestage": "subscriber"}],
        [("1", "H1")],
        [("1", *WON)],
        companies=[{"id": "C1", "lifecyclestage": "lead"}, {"id": "C2", "lifecyclestage": "evangelist"}],
        contact_companies=[("H1", "C1"), ("H1", "C2"), ("H2", "C1")],
    )
    row = one(result.plan, object="companies")
    assert (row["target_id"], row["fields"], row["rules"]) == (
        "C1",
        {"lifecyclestage": "customer"},
        ["ACC-7"],
    )


def test_acc7_company_stage_is_left_alone_without_company_sync() -> None:
    result = run(
        [{"id": "H1", "lifecyclestage": "lead"}],
        [("1", "H1")],
        [("1", *OPEN)],
        companies=[{"id": "C1", "lifecyclestage": "lead"}],
        contact_companies=[("H1", "C1")],
        companies_sync=False,
    )
    assert rows(result.plan, object="companies") == []
    assert one(result.plan, object="contacts")["fields"] == {"lifecyclestage": "opportunity"}


def test_acc7_a_contacts_other_stage_is_not_pushed_onto_its_company() -> None:
    result = run(
        [{"id": "H1", "lifecyclestage": "other"}],
        [],
        [],
        companies=[{"id": "C1", "lifecyclestage": "lead"}],
        contact_companies=[("H1", "C1")],
    )
    assert result.plan.empty


def test_lifecycle_stage_order_is_hubspots() -> None:
    ranks = stage_rank(
        pd.Series(
            [
                None,
                "subscriber",
                "lead",
                "marketingqualifiedlead",
                "salesqualifiedlead",
                "opportunity",
                "customer",
                "evangelist",
            ]
        )
    )
    assert list(ranks) == sorted(ranks)
    assert stage_rank(pd.Series(["OTHER"]))[0] > ranks.max()
