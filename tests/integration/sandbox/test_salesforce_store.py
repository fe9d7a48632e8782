"""The Salesforce emulator's store: ids, scenario loading, and the sorted index that incremental
extraction (SYNC-1) pages through, checked against brute force and, at scale, over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm_sandbox.generate import salesforce_id_checksum
from crm_sandbox.salesforce.ids import MalformedIdError, make_id, normalize_id
from crm_sandbox.salesforce.store import SortedIndex, Store, normalize_domain
from crm_sandbox.salesforce.testing import serve_salesforce
from hypothesis import given, settings
from hypothesis import strategies as st


def test_ids_have_the_real_checksum_and_normalise() -> None:
    rid = make_id("006", 123_456)
    assert rid[15:] == salesforce_id_checksum(rid[:15])
    assert normalize_id(rid[:15]) == rid
    assert normalize_id(rid.lower()) == rid  # the suffix restores the case of the first 15 characters
    assert normalize_id("001A0000006Vm9r") == "001A0000006Vm9rIAC"  # Salesforce's documented example
    for bad in ("", "001", "001A0000006Vm9r!", "001A0000006Vm9rIA", "0011111111111111ZZ"):
        with pytest.raises(MalformedIdError):
            normalize_id(bad)


def test_generated_ids_sort_in_creation_order() -> None:
    ids = [make_id("001", n) for n in (1, 9, 10, 61, 62, 3843, 3844, 10**9)]
    assert ids == sorted(ids)


def test_scenario_loading_rejects_unknown_objects_and_fields() -> None:
    with pytest.raises(ValueError, match="unknown Salesforce objects"):
        Store({"salesforce": {"Acount": []}})
    with pytest.raises(ValueError, match="unknown field 'Nmae'"):
        Store({"salesforce": {"Account": [{"Nmae": "Typo"}]}})
    with pytest.raises(ValueError, match="lacks the key prefix 001"):
        Store({"salesforce": {"Account": [{"Id": make_id("003", 1), "Name": "Wrong prefix"}]}})
    twice = make_id("001", 5)
    with pytest.raises(ValueError, match="appears twice"):
        Store({"salesforce": {"Account": [{"Id": twice, "Name": "A"}, {"Id": twice[:15], "Name": "B"}]}})


def test_scenario_without_users_gets_an_integration_user() -> None:
    store = Store({"salesforce": {"Account": [{"Name": "A"}]}})
    user = store.tables["User"].records[store.current_user_id]
    assert user["Name"] == "Integration User"
    account = next(iter(store.tables["Account"].records.values()))
    assert account["OwnerId"] == store.current_user_id


def test_websites_are_indexed_by_normalised_domain() -> None:
    assert normalize_domain("https://WWW.Acme.com:443/about?x=1") == "acme.com"
    assert normalize_domain("acme.com") == "acme.com"
    store = Store(
        {
            "salesforce": {
                "Account": [
                    {"Name": "A", "Website": "http://www.acme.com"},
                    {"Name": "B", "Website": "acme.io"},
                ]
            }
        }
    )
    assert [r["Name"] for r in store.find_by_domain("ACME.com/x")] == ["A"]


# (operation, record number, value): "set" gives record n the value, "drop" removes it
OPERATIONS = st.lists(
    st.tuples(st.sampled_from(["set", "drop"]), st.integers(0, 15), st.integers(0, 6)), max_size=60
)


@settings(max_examples=200, deadline=None)
@given(
    OPERATIONS,
    st.integers(-1, 7),
    st.integers(-1, 7),
    st.booleans(),
    st.booleans(),
    st.sampled_from([0, 3, 256]),
)
def test_sorted_index_matches_brute_force(
    operations: list[tuple[str, int, int]],
    low: int,
    high: int,
    low_inclusive: bool,
    high_inclusive: bool,
    one_by_one: int,
) -> None:
    """Adds, value changes (A->B->A included) and removals, read back after any interleaving,
    with stale keys deleted one by one or filtered in one pass."""
    index = SortedIndex([], one_by_one=one_by_one)
    current: dict[str, int] = {}
    for step, (op, n, value) in enumerate(operations):
        rid = f"id{n:02d}"
        old = current.get(rid)
        if op == "set":
            if old is not None:
                index.remove((old, rid))
            index.add((value, rid))
            current[rid] = value
        elif old is not None:
            index.remove((old, rid))
            del current[rid]
        if step % 7 == 0:
            index.range()  # reads between writes merge pending keys
    lo = None if low < 0 else low
    hi = None if high < 0 else high

    def inside(v: int) -> bool:
        above = lo is None or (v >= lo if low_inclusive else v > lo)
        below = hi is None or (v <= hi if high_inclusive else v < hi)
        return above and below

    expected = [rid for v, rid in sorted((v, rid) for rid, v in current.items() if inside(v))]
    assert index.range(lo, low_inclusive, hi, high_inclusive) == expected
    assert index.count(lo, low_inclusive, hi, high_inclusive) == len(expected)


@pytest.mark.slow
def test_incremental_paging_over_a_large_org_returns_every_change_once() -> None:
    """SYNC-1 at scale: paging ``SystemModstamp > X ORDER BY SystemModstamp, Id`` through
    ``nextRecordsUrl`` returns each changed record exactly once, in order, after updates."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[dict[str, Any]] = []
    for i in range(60_000):
        stamp = (base + timedelta(seconds=i // 3)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(
            {"Name": f"Opp {i}", "StageName": "Prospecting", "CloseDate": "2026-06-30", "CreatedDate": stamp,
             "LastModifiedDate": stamp, "SystemModstamp": stamp}
        )  # fmt: skip
    with serve_salesforce({"salesforce": {"Opportunity": rows}}) as endpoint:
        sf = endpoint.session.client()
        touched = sf.query("SELECT Id FROM Opportunity WHERE Name = 'Opp 7'")["records"][0]["Id"]
        sf.Opportunity.update(touched, {"Amount": 1})
        soql = (
            "SELECT Id, SystemModstamp FROM Opportunity WHERE SystemModstamp > 2026-01-01T01:00:00Z "
            "ORDER BY SystemModstamp, Id"
        )
        records = sf.query_all(soql)["records"]
        keys = [(r["SystemModstamp"], r["Id"]) for r in records]
        assert keys == sorted(keys)
        assert len({r["Id"] for r in records}) == len(records) == 60_000 - 3 * 3601 + 1
        assert records[-1]["Id"] == touched
