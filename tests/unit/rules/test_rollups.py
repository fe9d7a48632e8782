"""ROLL-1..ROLL-6 rollups on contacts and companies, and DEAL-8's mixed-currency flags."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
from crm_sync.rules.rollups import compute_rollups, plan_rollups
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.rules.deal_world import hs


def deals(*rows_: dict[str, Any]) -> pd.DataFrame:
    """Deal state rows; defaults: open, USD, created 2026-01-01, closing 2026-06-30."""
    base = {
        "sf_id": None,
        "account_id": None,
        "amount": 100.0,
        "currency": "USD",
        "created_at": "2026-01-01",
        "close_date": "2026-06-30",
        "is_closed": False,
        "is_won": False,
    }
    frame = pd.DataFrame([{**base, **r} for r in rows_])
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["close_date"] = pd.to_datetime(frame["close_date"], utc=True)
    return frame


def won(key: str, **kw: Any) -> dict[str, Any]:
    return {"deal_key": key, "is_closed": True, "is_won": True, **kw}


def lost(key: str, **kw: Any) -> dict[str, Any]:
    return {"deal_key": key, "is_closed": True, "is_won": False, **kw}


def open_(key: str, **kw: Any) -> dict[str, Any]:
    return {"deal_key": key, **kw}


def edges(*pairs: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"record_id": [p[0] for p in pairs], "deal_key": [p[1] for p in pairs]})


def test_roll1_num_associated_deals_counts_open_and_closed_deals() -> None:
    d = deals(open_("1"), won("2"), lost("3"))
    out = compute_rollups(edges(("c", "1"), ("c", "2"), ("c", "3"), ("c", "3")), d)
    assert out.loc["c", "num_associated_deals"] == 3  # a duplicate association counts once


def test_roll2_first_deal_created_date_is_the_earliest_create_date() -> None:
    """ROLL-2: open and lost deals count too; only the create date matters."""
    d = deals(open_("1", created_at="2026-03-01"), lost("2", created_at="2025-12-24"))
    out = compute_rollups(edges(("c", "1"), ("c", "2")), d)
    assert out.loc["c", "first_deal_created_date"] == pd.Timestamp("2025-12-24", tz="UTC")


def test_roll3_recent_deal_close_date_is_the_latest_closed_won_close_date() -> None:
    """ROLL-3: lost and open deals with later close dates are ignored."""
    d = deals(
        won("1", close_date="2026-02-01"),
        won("2", close_date="2026-04-01"),
        lost("3", close_date="2026-09-01"),
        open_("4", close_date="2026-12-01"),
    )
    out = compute_rollups(edges(("c", "1"), ("c", "2"), ("c", "3"), ("c", "4")), d)
    assert out.loc["c", "recent_deal_close_date"] == pd.Timestamp("2026-04-01", tz="UTC")


def test_roll4_recent_deal_amount_uses_most_recently_created_not_closed() -> None:
    d = deals(
        won("1", amount=111.0, created_at="2026-01-10", close_date="2026-05-30"),  # closed last
        won("2", amount=222.0, created_at="2026-02-10", close_date="2026-03-01"),  # created last
    )
    out = compute_rollups(edges(("c", "1"), ("c", "2")), d)
    assert out.loc["c", "recent_deal_amount"] == 222.0


def test_roll4_ties_on_create_date_go_to_the_higher_deal_id_compared_as_numbers() -> None:
    d = deals(won("9", amount=9.0), won("10", amount=10.0), lost("11", amount=11.0))
    out = compute_rollups(edges(("c", "9"), ("c", "10"), ("c", "11")), d)
    assert out.loc["c", "recent_deal_amount"] == 10.0  # "10" > "9" numerically; 11 is not won


def test_roll4_a_deal_this_plan_creates_counts_as_the_highest_id() -> None:
    d = deals(won("99999", amount=1.0), won("@deals:006A", amount=2.0))
    out = compute_rollups(edges(("c", "99999"), ("c", "@deals:006A")), d)
    assert out.loc["c", "recent_deal_amount"] == 2.0


def test_roll5_total_revenue_sums_closed_won_amounts_only() -> None:
    d = deals(
        won("1", amount=100.0), won("2", amount=250.5), lost("3", amount=1000.0), open_("4", amount=7.0)
    )
    out = compute_rollups(edges(("c", "1"), ("c", "2"), ("c", "3"), ("c", "4")), d)
    assert out.loc["c", "total_revenue"] == 350.5


def test_roll6_no_closed_won_deal_gives_nulls_not_zero() -> None:
    d = deals(open_("1", amount=5.0), lost("2", amount=9.0))
    out = compute_rollups(edges(("c", "1"), ("c", "2")), d)
    assert out.loc["c", "num_associated_deals"] == 2
    assert pd.isna(out.loc["c", "recent_deal_close_date"])
    assert math.isnan(out.loc["c", "recent_deal_amount"])
    assert math.isnan(out.loc["c", "total_revenue"])


def test_roll6_deleted_deals_and_removed_associations_drop_out() -> None:
    d = deals(won("1", amount=100.0))  # deal "2" is gone from the state (deleted)
    out = compute_rollups(edges(("c", "1"), ("c", "2")), d)
    assert out.loc["c", "num_associated_deals"] == 1
    assert out.loc["c", "total_revenue"] == 100.0


def test_deal8_mixed_currencies_in_a_rollup_are_flagged() -> None:
    d = deals(
        won("1", currency="USD"),
        won("2", currency="EUR"),
        won("3", currency="USD"),
        open_("4", currency="GBP"),
    )
    result = plan_rollups(
        d,
        pd.DataFrame({"deal_key": ["1", "2", "3", "4", "3"], "contact_key": ["H1", "H1", "H2", "H2", "H3"]}),
        pd.DataFrame({"sf_id": [], "hs_id": []}),
        hs_contact=hs("contacts", {"id": "H1"}, {"id": "H2"}, {"id": "H3"}),
        hs_company=hs("companies"),
        companies_sync=True,
    )
    flags = result.currency_flags
    assert flags[["object", "record_id", "currencies"]].values.tolist() == [["contacts", "H1", "EUR,USD"]]


# --------------------------------------------------------------------------- plan_rollups


def _differences(result: Any) -> dict[tuple[str, str], tuple[Any, Any]]:
    frame = result.differences
    return {
        (r["record_id"], r["field"]): (json.loads(r["expected"]), json.loads(r["hubspot"]))
        for r in frame.to_dict("records")
    }


def test_roll1_to_roll6_are_never_planned_hubspot_calculates_them() -> None:
    """ROLL-1..6 are HubSpot's read-only calculated properties: a write is rejected, so the
    rollups are expectations for the quality report, never plan rows."""
    d = deals(won("1", amount=100.0))
    result = plan_rollups(
        d,
        pd.DataFrame({"deal_key": ["1"], "contact_key": ["H1"]}),
        pd.DataFrame({"sf_id": ["001A"], "hs_id": ["C1"]}),
        hs_contact=hs("contacts", {"id": "H1"}),
        hs_company=hs("companies", {"id": "C1"}),
        companies_sync=True,
    )
    assert not hasattr(result, "plan")
    assert result.rollups.set_index("record_id").loc["H1", "total_revenue"] == 100


def test_rollup_differences_list_only_fields_hubspot_shows_otherwise() -> None:
    d = deals(won("1", amount=100.0, created_at="2026-01-01", close_date="2026-02-01"))
    contacts = hs(
        "contacts",
        {"id": "H1", "num_associated_deals": "1", "first_deal_created_date": "2026-01-01T00:00:00Z",
         "recent_deal_close_date": "1769904000000", "recent_deal_amount": "100", "total_revenue": 50},
    )  # fmt: skip
    result = plan_rollups(
        d,
        pd.DataFrame({"deal_key": ["1"], "contact_key": ["H1"]}),
        pd.DataFrame({"sf_id": [], "hs_id": []}),
        hs_contact=contacts,
        hs_company=hs("companies"),
        companies_sync=True,
    )
    assert _differences(result) == {("H1", "total_revenue"): (100, 50)}
    assert result.differences["rules"].tolist() == ["ROLL-5"]


def test_rollups_on_companies_come_from_the_deals_of_the_linked_account() -> None:
    d = deals(
        won("1", account_id="001A", amount=10.0),
        won("2", account_id="001B", amount=20.0),
        won("3", account_id="001A", amount=5.0),
    )
    result = plan_rollups(
        d,
        pd.DataFrame({"deal_key": [], "contact_key": []}),
        pd.DataFrame({"sf_id": ["001A", "001B"], "hs_id": ["C1", "@companies:001B"]}),
        hs_contact=hs("contacts"),
        hs_company=hs("companies", {"id": "C1"}),
        companies_sync=True,
    )
    expected = result.rollups[result.rollups["object"] == "companies"].set_index("record_id")
    assert expected.loc["C1", "total_revenue"] == 15
    assert expected.loc["C1", "num_associated_deals"] == 2
    assert expected.loc["@companies:001B", "total_revenue"] == 20  # a company this plan creates
    assert _differences(result)[("C1", "total_revenue")] == (15, None)
    off = plan_rollups(
        d,
        pd.DataFrame({"deal_key": [], "contact_key": []}),
        pd.DataFrame({"sf_id": ["001A"], "hs_id": ["C1"]}),
        hs_contact=hs("contacts"),
        hs_company=hs("companies", {"id": "C1"}),
        companies_sync=False,
    )
    assert (off.differences["object"] != "companies").all()


def test_roll6_a_record_whose_deals_are_all_gone_is_expected_empty() -> None:
    contacts = hs(
        "contacts", {"id": "H1", "num_associated_deals": 2, "total_revenue": 500, "recent_deal_amount": 300}
    )
    result = plan_rollups(
        deals(won("1")),
        pd.DataFrame({"deal_key": [], "contact_key": []}),
        pd.DataFrame({"sf_id": [], "hs_id": []}),
        hs_contact=contacts,
        hs_company=hs("companies"),
        companies_sync=True,
    )
    assert _differences(result) == {
        ("H1", "num_associated_deals"): (0, 2),
        ("H1", "recent_deal_amount"): (None, 300),
        ("H1", "total_revenue"): (None, 500),
    }


def test_rollups_skip_deleted_contacts() -> None:
    result = plan_rollups(
        deals(won("1")),
        pd.DataFrame({"deal_key": ["1"], "contact_key": ["H1"]}),
        pd.DataFrame({"sf_id": [], "hs_id": []}),
        hs_contact=hs("contacts", {"id": "H1", "_deleted": True}),
        hs_company=hs("companies"),
        companies_sync=True,
    )
    assert result.differences.empty


# --------------------------------------------------------------------------- properties

_deal = st.fixed_dictionaries(
    {
        "amount": st.one_of(st.none(), st.integers(0, 10_000).map(float)),
        "won": st.booleans(),
        "closed": st.booleans(),
        "created_day": st.integers(0, 30),
        "currency": st.sampled_from(["USD", "EUR"]),
    }
)


def _frames(spec: list[dict[str, Any]], owners: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows_ = [
        {
            "deal_key": str(i + 1),
            "amount": np.nan if d["amount"] is None else d["amount"],
            "is_won": d["won"],
            "is_closed": d["won"] or d["closed"],
            "created_at": pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=d["created_day"]),
            "close_date": pd.Timestamp("2026-06-01", tz="UTC") + pd.Timedelta(days=i),
            "currency": d["currency"],
            "sf_id": None,
            "account_id": None,
        }
        for i, d in enumerate(spec)
    ]
    state = pd.DataFrame(rows_)
    links = pd.DataFrame(
        {"record_id": [f"c{o}" for o in owners], "deal_key": [str(i + 1) for i in range(len(spec))]}
    )
    return state, links


@settings(max_examples=100, deadline=None)
@given(spec=st.lists(_deal, min_size=1, max_size=25), data=st.data())
def test_roll_properties_revenue_counts_nulls_and_order_independence(
    spec: list[dict[str, Any]], data: st.DataObject
) -> None:
    owners = data.draw(st.lists(st.integers(0, 3), min_size=len(spec), max_size=len(spec)))
    state, links = _frames(spec, owners)
    out = compute_rollups(links, state)
    for record, group in links.groupby("record_id"):
        mine = state[state["deal_key"].isin(group["deal_key"])]
        winners = mine[mine["is_won"]]
        # ROLL-1: open and closed deals all count.
        assert out.loc[record, "num_associated_deals"] == len(mine)
        if winners.empty:
            # ROLL-6: null, not zero.
            assert math.isnan(out.loc[record, "total_revenue"])
            assert math.isnan(out.loc[record, "recent_deal_amount"])
        else:
            # ROLL-5: the sum over closed-won deals.
            assert out.loc[record, "total_revenue"] == winners["amount"].fillna(0).sum()
    # Order independence: shuffled inputs give the same rollups.
    perm = data.draw(st.permutations(range(len(links))))
    shuffled = compute_rollups(links.iloc[list(perm)], state.iloc[::-1])
    pd.testing.assert_frame_equal(out.sort_index(), shuffled.sort_index(), check_like=True)
