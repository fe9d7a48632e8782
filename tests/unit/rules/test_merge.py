"""SYNC-2 field mapping, SYNC-3 most-recent-value-wins merge, SYNC-4 value normalization."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from crm_sync.rules.merge import (
    PairSides,
    canonical,
    format_for,
    mapped_fields,
    merge_fields,
    owner_field,
    owner_skips,
    writes_to_plan,
)
from crm_sync.rules.owners import build_owner_map
from crm_sync.settings import FieldMapping, MappingRule
from hypothesis import given, settings
from hypothesis import strategies as st

NOW = datetime(2026, 6, 1, tzinfo=UTC)
T_EARLY = "2026-04-01T00:00:00.000+0000"
T_LATE = "2026-05-01T00:00:00.000+0000"


def merge(
    sf_values: dict[str, Any],
    hs_values: dict[str, Any],
    *,
    snap: dict[str, Any] | None = None,
    rules: dict[str, MappingRule] | None = None,
    sf_modified: str = T_EARLY,
    hs_modified: str = T_EARLY,
    sf_object: str = "Account",
    hs_object: str = "companies",
) -> Any:
    """One linked pair (001A <-> C1); ``sf_values``/``hs_values`` keyed by SF field name."""
    names = {"Name": "name", "Phone": "phone", "NumberOfEmployees": "numberofemployees", "Website": "domain"}
    if sf_object == "Opportunity":
        names = {
            "Name": "dealname",
            "CloseDate": "closedate",
            "Amount": "amount",
            "CreatedDate": "createdate",
        }
    mappings = [FieldMapping(f, names[f], (rules or {}).get(f, "two_way")) for f in sf_values]
    sf_row = {"Id": "001A", "LastModifiedDate": sf_modified, **sf_values}
    hs_row = {"id": "C1", "hs_lastmodifieddate": hs_modified, **{names[k]: v for k, v in hs_values.items()}}
    pairs = pd.DataFrame({"sf_id": ["001A"], "hs_id": ["C1"]})
    sides = PairSides(pairs, pd.DataFrame([sf_row]), pd.DataFrame([hs_row]))
    snapshot = pd.DataFrame(
        [
            {
                "object": sf_object,
                "sf_id": "001A",
                "hs_id": "C1",
                "sf_field": f,
                "hs_field": names[f],
                "value": json.dumps(v),
                "synced_at": "2026-03-01T00:00:00+00:00",
            }
            for f, v in (snap or {}).items()
        ]
    )
    fields = mapped_fields(sides, mappings, sf_object=sf_object, hs_object=hs_object)
    return merge_fields(
        pairs,
        fields,
        snapshot,
        sf_object=sf_object,
        sf_modified=sides.sf["LastModifiedDate"],
        hs_modified=sides.hs["hs_lastmodifieddate"],
        now=NOW,
    )


def written(writes: Any) -> dict[str, Any]:
    """Fields a Writes object writes for the single pair."""
    if writes.mask.shape[1] == 0:
        return {}
    return {c: writes.values[c].iloc[0] for c in writes.mask.columns if bool(writes.mask[c].iloc[0])}


# --------------------------------------------------------------------------- SYNC-3


def test_sync3_only_salesforce_changed_so_salesforce_wins() -> None:
    result = merge({"Name": "Acme Corp"}, {"Name": "Acme"}, snap={"Name": "Acme"})
    assert written(result.hubspot) == {"name": "Acme Corp"}
    assert written(result.salesforce) == {}


def test_sync3_only_hubspot_changed_so_hubspot_wins_even_if_salesforce_is_newer() -> None:
    result = merge({"Name": "Acme"}, {"Name": "Acme GmbH"}, snap={"Name": "Acme"}, sf_modified=T_LATE)
    assert written(result.salesforce) == {"Name": "Acme GmbH"}
    assert written(result.hubspot) == {}


def test_sync3_both_changed_since_last_sync_later_modification_wins() -> None:
    hs_later = merge({"Name": "SF edit"}, {"Name": "HS edit"}, snap={"Name": "Old"}, hs_modified=T_LATE)
    assert written(hs_later.salesforce) == {"Name": "HS edit"}
    assert written(hs_later.hubspot) == {}
    sf_later = merge({"Name": "SF edit"}, {"Name": "HS edit"}, snap={"Name": "Old"}, sf_modified=T_LATE)
    assert written(sf_later.hubspot) == {"name": "SF edit"}
    assert written(sf_later.salesforce) == {}
    assert sf_later.conflicts.loc[0, "winner"] == "salesforce"


def test_sync3_both_changed_with_equal_modification_times_ties_go_to_salesforce() -> None:
    result = merge({"Name": "SF edit"}, {"Name": "HS edit"}, snap={"Name": "Old"})
    assert written(result.hubspot) == {"name": "SF edit"}
    assert written(result.salesforce) == {}


def test_sync3_no_change_since_last_sync_writes_nothing() -> None:
    result = merge({"Name": "Acme", "Phone": "555"}, {"Name": "Acme", "Phone": "555"}, snap={"Name": "Acme"})
    assert written(result.hubspot) == {}
    assert written(result.salesforce) == {}


def test_sync3_both_changed_to_the_same_value_is_no_conflict_and_no_write() -> None:
    result = merge({"Name": "New"}, {"Name": "New"}, snap={"Name": "Old"}, hs_modified=T_LATE)
    assert written(result.hubspot) == {}
    assert written(result.salesforce) == {}
    assert result.conflicts.empty
    # ...but the snapshot learns the new value, so the next change is one-sided again.
    assert json.loads(result.snapshot.loc[0, "value"]) == "New"


def test_sync3_first_sync_fills_the_blank_side_and_later_value_wins_otherwise() -> None:
    fill = merge({"Name": "Acme", "Phone": None}, {"Name": None, "Phone": "555"})
    assert written(fill.hubspot) == {"name": "Acme"}
    assert written(fill.salesforce) == {"Phone": "555"}
    differ = merge({"Name": "Acme SF"}, {"Name": "Acme HS"}, hs_modified=T_LATE)
    assert written(differ.salesforce) == {"Name": "Acme HS"}


def test_sync3_a_snapshot_of_another_hubspot_record_does_not_count() -> None:
    """A relinked pair starts from scratch: the old pair's last-synced value is not its own."""
    pairs = pd.DataFrame({"sf_id": ["001A"], "hs_id": ["C2"]})
    sides = PairSides(
        pairs,
        pd.DataFrame([{"Id": "001A", "Name": "SF", "LastModifiedDate": T_LATE}]),
        pd.DataFrame([{"id": "C2", "name": "Old", "hs_lastmodifieddate": T_EARLY}]),
    )
    snapshot = pd.DataFrame(
        [
            {
                "object": "Account",
                "sf_id": "001A",
                "hs_id": "C1",
                "sf_field": "Name",
                "hs_field": "name",
                "value": '"Old"',
            }
        ]
    )
    fields = mapped_fields(
        sides, [FieldMapping("Name", "name", "two_way")], sf_object="Account", hs_object="companies"
    )
    result = merge_fields(
        pairs,
        fields,
        snapshot,
        sf_object="Account",
        sf_modified=sides.sf["LastModifiedDate"],
        hs_modified=sides.hs["hs_lastmodifieddate"],
        now=NOW,
    )
    # With C1's snapshot only HubSpot would look unchanged and SF would win regardless of time;
    # without it both sides differ and the later one (SF here) wins: same outcome, for the right reason.
    assert written(result.hubspot) == {"name": "SF"}
    assert result.conflicts.loc[0, "winner"] == "salesforce"


def test_sync3_snapshot_rows_hold_the_post_merge_value_as_json() -> None:
    result = merge(
        {"Name": "Acme Corp", "NumberOfEmployees": 250}, {"Name": "Acme", "NumberOfEmployees": "250"}
    )
    snap = result.snapshot.set_index("sf_field")
    assert json.loads(snap.loc["Name", "value"]) == "Acme Corp"
    assert json.loads(snap.loc["NumberOfEmployees", "value"]) == 250
    assert set(snap["hs_field"]) == {"name", "numberofemployees"}
    assert (snap["object"] == "Account").all()


# --------------------------------------------------------------------------- SYNC-4


@pytest.mark.parametrize(
    ("sf_field", "sf_value", "hs_value"),
    [
        ("Name", "  Acme  ", "Acme"),
        ("Name", None, ""),
        ("Name", "line1\r\nline2", "line1\nline2"),
        ("NumberOfEmployees", 250, "250"),
        ("NumberOfEmployees", 250.0, "250.000"),
        ("Website", "https://www.Acme.com/about?x=1", "acme.com"),
    ],
)
def test_sync4_equal_values_in_different_spellings_never_cause_writes(
    sf_field: str, sf_value: Any, hs_value: Any
) -> None:
    result = merge({sf_field: sf_value}, {sf_field: hs_value}, snap={sf_field: "something else"})
    assert written(result.hubspot) == {}
    assert written(result.salesforce) == {}


@pytest.mark.parametrize(
    "hs_close",
    ["2026-09-30T00:00:00.000Z", "2026-09-30", "1790726400000", "2026-09-30T00:00:00+00:00"],
)
def test_sync4_salesforce_date_equals_hubspot_datetime_of_the_same_day(hs_close: str) -> None:
    result = merge(
        {"CloseDate": "2026-09-30", "Amount": 1000},
        {"CloseDate": hs_close, "Amount": "1000.0"},
        snap={"CloseDate": "2026-01-01"},
        sf_object="Opportunity",
        hs_object="deals",
    )
    assert written(result.hubspot) == {}
    assert written(result.salesforce) == {}


def test_sync4_writes_are_formatted_for_the_target_field_type() -> None:
    result = merge(
        {"CloseDate": "2026-10-15", "Amount": 1200.0},
        {"CloseDate": None, "Amount": None},
        sf_object="Opportunity",
        hs_object="deals",
    )
    assert written(result.hubspot) == {"closedate": "2026-10-15T00:00:00.000Z", "amount": 1200}
    back = merge(
        {"CloseDate": None, "Amount": None},
        {"CloseDate": "2026-10-15T00:00:00.000Z", "Amount": "99.5"},
        sf_object="Opportunity",
        hs_object="deals",
    )
    assert written(back.salesforce) == {"CloseDate": "2026-10-15", "Amount": 99.5}


def test_sync4_canonical_forms() -> None:
    assert canonical(pd.Series(["a@B.com ", None]), "email").tolist()[0] == "a@b.com"
    assert pd.isna(canonical(pd.Series(["", "   "]), "string")).all()
    assert canonical(pd.Series(["http://WWW.acme.co.uk:8080/x"]), "url").tolist() == ["acme.co.uk"]
    days = canonical(pd.Series(["2026-03-01", "2026-03-01T23:59:59Z", 1772323200000]), "date")
    assert days.nunique() == 1
    assert canonical(pd.Series(["true", "1", True, "no"]), "boolean").tolist() == [1.0, 1.0, 1.0, 0.0]


def test_format_for_integral_numbers_become_ints_and_blank_becomes_none() -> None:
    out = format_for(pd.Series([250.0, 1.5, np.nan]), "number", "number")
    assert out.tolist() == [250, 1.5, None]
    assert type(out.iloc[0]) is int


# --------------------------------------------------------------------------- SYNC-2


def test_sync2_prefer_salesforce_wins_unless_blank_then_hubspot_fills_salesforce() -> None:
    rule: dict[str, MappingRule] = {"Name": "prefer_salesforce"}
    sf_wins = merge({"Name": "SF"}, {"Name": "HS"}, snap={"Name": "Old"}, rules=rule, hs_modified=T_LATE)
    assert written(sf_wins.hubspot) == {"name": "SF"}
    blank = merge({"Name": None}, {"Name": "HS"}, rules=rule)
    assert written(blank.salesforce) == {"Name": "HS"}
    assert written(blank.hubspot) == {}


def test_sync2_always_salesforce_mirrors_and_clears_only_what_salesforce_cleared() -> None:
    rule: dict[str, MappingRule] = {"Name": "always_salesforce"}
    mirror = merge({"Name": "SF"}, {"Name": "HS edit"}, snap={"Name": "SF"}, rules=rule, hs_modified=T_LATE)
    assert written(mirror.hubspot) == {"name": "SF"}
    assert written(mirror.salesforce) == {}
    cleared = merge({"Name": None}, {"Name": "Was"}, snap={"Name": "Was"}, rules=rule)
    assert written(cleared.hubspot) == {"name": None}
    unknown = merge({"Name": None}, {"Name": "HS only"}, rules=rule)  # first sync: blank means unknown
    assert written(unknown.hubspot) == {}
    assert written(unknown.salesforce) == {}


def test_sync2_hubspot_to_salesforce_only_flows_one_way() -> None:
    rule: dict[str, MappingRule] = {"Name": "hubspot_to_salesforce"}
    result = merge({"Name": "SF edit"}, {"Name": "HS"}, snap={"Name": "HS"}, rules=rule, sf_modified=T_LATE)
    assert written(result.salesforce) == {"Name": "HS"}
    assert written(result.hubspot) == {}


def test_sync2_none_never_writes_and_keeps_no_snapshot() -> None:
    result = merge({"Name": "SF"}, {"Name": "HS"}, rules={"Name": "none"})
    assert written(result.hubspot) == {}
    assert written(result.salesforce) == {}
    assert result.snapshot.empty


# --------------------------------------------------------------------------- OWN-5 through the merge


def _owners() -> Any:
    users = pd.DataFrame(
        [
            {
                "Id": "005A",
                "Email": "alice@example.com",
                "FirstName": "Alice",
                "LastName": "Ng",
                "IsActive": True,
            },
            {
                "Id": "005C",
                "Email": "carl@example.com",
                "FirstName": "Carl",
                "LastName": "Ho",
                "IsActive": True,
            },
            {
                "Id": "005I",
                "Email": "int@example.com",
                "FirstName": "Int",
                "LastName": "User",
                "IsActive": True,
            },
        ]
    )
    owners = pd.DataFrame(
        [{"id": "100", "email": "Alice@Example.com", "firstName": "Alice", "lastName": "Ng"}]
    )
    return build_owner_map(users, owners, "int@example.com")


def test_own5_owner_compares_by_email_and_an_unmapped_winner_is_reported_not_written() -> None:
    owners = _owners()
    pairs = pd.DataFrame({"sf_id": ["001A", "001B"], "hs_id": ["C1", "C2"]})
    sf_owner = pd.Series(["005A", "005C"])  # Alice (maps to HS owner 100), Carl (no HS owner)
    hs_owner = pd.Series(["100", None])
    field = owner_field(owners, sf_owner, hs_owner)
    result = merge_fields(
        pairs,
        [field],
        pd.DataFrame(),
        sf_object="Account",
        sf_modified=pd.Series([T_EARLY] * 2),
        hs_modified=pd.Series([T_EARLY] * 2),
        now=NOW,
    )
    assert result.hubspot.mask.shape[1] == 0  # Alice is the same person on both sides; Carl cannot be written
    skips = owner_skips(
        result,
        pairs=pairs,
        sf_owner=sf_owner,
        hs_owner=hs_owner,
        owners=owners,
        sf_object="Account",
        hs_object="companies",
    )
    assert skips["action"].tolist() == ["skip"]
    assert skips.loc[0, "target_id"] == "C2"
    assert "OWN-5" in skips.loc[0, "rules"]
    assert "carl@example.com" in skips.loc[0, "reason"]
    # Carl's side is not snapshotted, so the next run decides the same way instead of flipping.
    assert "001B" not in set(result.snapshot["sf_id"])


def test_own5_a_blocked_owner_stays_blocked_when_a_write_makes_hubspot_the_later_record() -> None:
    owners = _owners()
    pairs = pd.DataFrame({"sf_id": ["001B"], "hs_id": ["C2"]})
    sf_owner, hs_owner = pd.Series(["005C"]), pd.Series(["100"])  # Carl (no HS owner) vs Alice

    def run(snapshot: pd.DataFrame, hs_modified: str) -> Any:
        return merge_fields(
            pairs,
            [owner_field(owners, sf_owner, hs_owner)],
            snapshot,
            sf_object="Account",
            sf_modified=pd.Series([T_EARLY]),
            hs_modified=pd.Series([hs_modified]),
            now=NOW,
        )

    first = run(pd.DataFrame(), "2026-03-01T00:00:00.000+0000")  # Salesforce is later: Carl wins, blocked
    assert first.hubspot.mask.shape[1] == 0
    assert first.salesforce.mask.shape[1] == 0
    assert first.snapshot["value"].tolist() == [json.dumps("alice@example.com")]
    # crm-sync then wrote another field of C2, so HubSpot is now the later record; nobody
    # changed an owner, so the next run must not hand Salesforce HubSpot's owner.
    second = run(first.snapshot, T_LATE)
    assert second.salesforce.mask.shape[1] == 0
    assert second.hubspot.mask.shape[1] == 0
    assert second.snapshot.empty


def test_writes_to_plan_emits_updates_with_source_and_target_ids() -> None:
    result = merge({"Name": "SF"}, {"Name": "HS"}, snap={"Name": "HS"})
    plan = writes_to_plan(
        result.hubspot,
        target="hubspot",
        obj="companies",
        target_id=pd.Series(["C1"]),
        source_id=pd.Series(["001A"]),
    )
    row = plan.iloc[0]
    assert (row["action"], row["target_id"], row["source_id"], row["fields"]) == (
        "update",
        "C1",
        "001A",
        {"name": "SF"},
    )
    assert row["rules"] == ["SYNC-2", "SYNC-3"]


# --------------------------------------------------------------------------- properties

_values = st.one_of(st.none(), st.sampled_from(["a", "b", "c", " a ", ""]))


@settings(max_examples=100, deadline=None)
@given(
    sf_value=_values,
    hs_value=_values,
    snap_value=_values,
    rule=st.sampled_from(
        ["two_way", "prefer_salesforce", "always_salesforce", "hubspot_to_salesforce", "none"]
    ),
    sf_later=st.booleans(),
)
def test_sync4_property_applying_a_merge_reaches_a_fixed_point(
    sf_value: str | None, hs_value: str | None, snap_value: str | None, rule: MappingRule, sf_later: bool
) -> None:
    """SYNC-4: after applying a merge's writes and snapshot, merging again writes nothing."""
    first = merge(
        {"Name": sf_value},
        {"Name": hs_value},
        snap={"Name": snap_value},
        rules={"Name": rule},
        sf_modified=T_LATE if sf_later else T_EARLY,
        hs_modified=T_EARLY if sf_later else T_LATE,
    )
    new_sf = written(first.salesforce).get("Name", sf_value)
    new_hs = written(first.hubspot).get("name", hs_value)
    snap = (
        {"Name": json.loads(first.snapshot.loc[0, "value"])}
        if not first.snapshot.empty
        else {"Name": snap_value}
    )
    second = merge({"Name": new_sf}, {"Name": new_hs}, snap=snap, rules={"Name": rule}, sf_modified=T_LATE)
    assert written(second.hubspot) == {}
    assert written(second.salesforce) == {}


def test_dates_keep_their_calendar_day_across_time_zones() -> None:
    """A Salesforce date has no zone, a HubSpot date is midnight UTC; a value written with an
    offset names the day it shows, never the UTC day it falls on."""
    days = canonical(
        pd.Series(["2026-03-01", "2026-03-01T00:00:00+02:00", "2026-03-01T23:30:00-05:00", "1772323200000"]),
        "date",
    )
    assert {d.isoformat() for d in days} == {"2026-03-01T00:00:00+00:00"}
    result = merge(
        {"CloseDate": "2026-03-01"},
        {"CloseDate": "2026-03-01T00:00:00+02:00"},
        snap={"CloseDate": "2026-03-01"},
        sf_object="Opportunity",
        hs_object="deals",
    )
    assert not result.hubspot.any().any()
    assert not result.salesforce.any().any()
