"""Parsing source records into staging rows, and quarantining malformed ones (SYNC-5)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from crm_sync.catalog import stream
from crm_sync.extract.records import (
    MISSING_ID,
    MISSING_REQUIRED,
    OVERSIZED_TEXT,
    UNPARSEABLE_BOOLEAN,
    UNPARSEABLE_DATE,
    UNPARSEABLE_NUMBER,
    RecordParser,
    UnparseableValueError,
    bulk_csv_record,
    flatten_hubspot_object,
    flatten_hubspot_owner,
    flatten_hubspot_pipeline,
    parse_boolean,
    parse_date,
    parse_datetime,
    parse_number,
)
from crm_sync.extract.salesforce import parse_bulk_page

ACCOUNT = stream("salesforce", "Account")
CONTACT = stream("hubspot", "contacts")


def sf_account(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "attributes": {"type": "Account"},
        "Id": "0018W00000000001AAA",
        "Name": "Acme",
        "CreatedDate": "2026-01-02T03:04:05.000+0000",
        "LastModifiedDate": "2026-01-02T03:04:05.000+0000",
        "SystemModstamp": "2026-01-02T03:04:05.000+0000",
        "IsDeleted": False,
        "Industry": "Technology",
        "NumberOfEmployees": 50,
        "AnnualRevenue": 1000.5,
    }
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-01-02T03:04:05.000+0000", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05.000Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T05:04:05+02:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("1767323045000", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (1767323045, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("", None),
        (None, None),
    ],
)
def test_timestamps_of_both_crms_parse_to_aware_utc(raw: object, expected: datetime | None) -> None:
    assert parse_datetime(raw) == expected


@pytest.mark.parametrize("raw", ["yesterday", "2026-13-45T00:00:00Z", True, {"a": 1}])
def test_unparseable_timestamps_raise_with_the_quarantine_rule(raw: object) -> None:
    with pytest.raises(UnparseableValueError) as info:
        parse_datetime(raw)
    assert info.value.rule == UNPARSEABLE_DATE


def test_dates_numbers_and_booleans_coerce_from_json_and_csv_forms() -> None:
    assert parse_date("2026-03-01") == date(2026, 3, 1)
    assert parse_date("2026-03-01T23:30:00Z") == date(2026, 3, 1)
    assert parse_number("1,200.50") == 1200.5
    assert parse_number(7) == 7.0
    assert parse_boolean("TRUE") is True
    assert parse_boolean("false") is False
    cases = [
        (lambda: parse_number("ten"), UNPARSEABLE_NUMBER),
        (lambda: parse_number(True), UNPARSEABLE_NUMBER),
        (lambda: parse_number("nan"), UNPARSEABLE_NUMBER),
        (lambda: parse_boolean("maybe"), UNPARSEABLE_BOOLEAN),
        (lambda: parse_date("31/01/2026"), UNPARSEABLE_DATE),
    ]
    for bad, rule in cases:
        with pytest.raises(UnparseableValueError) as info:
            bad()
        assert info.value.rule == rule


def test_clean_salesforce_record_becomes_a_typed_row_with_hash() -> None:
    row = RecordParser(ACCOUNT).parse(sf_account())
    assert isinstance(row, dict)
    assert row["Id"] == "0018W00000000001AAA"
    assert row["SystemModstamp"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert row["NumberOfEmployees"] == 50.0
    assert row["Website"] is None  # absent field: NULL, not an error
    assert row["_deleted"] is False
    assert len(row["_hash"]) == 32
    assert set(row) == {*ACCOUNT.field_names, "_deleted", "_hash"}


def test_is_deleted_marks_the_row_deleted_and_changes_its_hash() -> None:
    parser = RecordParser(ACCOUNT)
    live = parser.parse(sf_account())
    gone = parser.parse(sf_account(IsDeleted=True))
    assert isinstance(live, dict)
    assert isinstance(gone, dict)
    assert gone["_deleted"] is True
    assert gone["_hash"] != live["_hash"]


def test_rest_and_bulk_csv_reads_of_one_record_give_identical_rows() -> None:
    """SYNC-4: a record read through Bulk API 2.0 must not look changed against its REST read."""
    rest = sf_account(Website=None, Description='x,"y"\nz')
    csv_page = (
        '"Id","Name","CreatedDate","LastModifiedDate","SystemModstamp","IsDeleted","Industry",'
        '"NumberOfEmployees","AnnualRevenue","Website","Description"\n'
        '"0018W00000000001AAA","Acme","2026-01-02T03:04:05.000Z","2026-01-02T03:04:05.000Z",'
        '"2026-01-02T03:04:05.000Z","false","Technology","50","1000.5","","x,""y""\nz"\n'
    )
    (bulk,) = list(parse_bulk_page(csv_page))
    parser = RecordParser(ACCOUNT)
    assert parser.parse(rest) == parser.parse(bulk)
    assert bulk_csv_record({"a": "", "b": "x"}) == {"a": None, "b": "x"}


def test_each_broken_rule_is_one_quarantine_entry_with_the_raw_payload() -> None:
    """SYNC-5: a malformed record is kept with every reason, not dropped."""
    parser = RecordParser(ACCOUNT, {"Industry": frozenset({"Technology", "Banking"})})
    raw = sf_account(Name=None, Industry="Alchemy", Description="x" * 32001, CreatedDate="not a date")
    result = parser.parse(raw)
    assert isinstance(result, list)
    by_rule = {q.rule: q for q in result}
    assert set(by_rule) == {MISSING_REQUIRED, OVERSIZED_TEXT, UNPARSEABLE_DATE}
    assert "32001 characters exceed the limit of 32000" in by_rule[OVERSIZED_TEXT].reason
    assert all(q.record_id == "0018W00000000001AAA" and q.payload is raw for q in result)


def test_a_picklist_value_the_metadata_does_not_list_is_staged_not_dropped() -> None:
    """Inactive values and values of unrestricted picklists are real data: the record is
    staged with its value, and the value map decides per field (SYNC-2), never extraction."""
    parser = RecordParser(ACCOUNT, {"Industry": frozenset({"Technology", "Banking"})})
    row = parser.parse(sf_account(Industry="Alchemy"))
    assert isinstance(row, dict)
    assert row["Industry"] == "Alchemy"


def test_record_without_id_gets_a_stable_stand_in_id() -> None:
    parser = RecordParser(ACCOUNT)
    first = parser.parse(sf_account(Id=None))
    again = parser.parse(sf_account(Id=None))
    other = parser.parse(sf_account(Id=None, Name="Other"))
    assert isinstance(first, list)
    assert isinstance(again, list)
    assert isinstance(other, list)
    assert [q.rule for q in first] == [MISSING_ID]
    assert first[0].record_id.startswith("<missing Id:")
    assert first[0].record_id == again[0].record_id  # re-reading it updates one quarantine row
    assert first[0].record_id != other[0].record_id


def test_picklists_without_metadata_are_not_checked() -> None:
    assert isinstance(RecordParser(ACCOUNT).parse(sf_account(Industry="Alchemy")), dict)


def test_parse_many_keeps_good_records_when_one_is_bad() -> None:
    parser = RecordParser(ACCOUNT)
    batch = parser.parse_many([sf_account(), sf_account(Id="0018W00000000002AAA", SystemModstamp="??")])
    assert [r["Id"] for r in batch.rows] == ["0018W00000000001AAA"]
    assert batch.quarantined_ids == {"0018W00000000002AAA"}


def test_hubspot_object_flattens_properties_and_falls_back_to_object_timestamps() -> None:
    obj = {
        "id": "21",
        "properties": {"email": "a@b.com", "lifecyclestage": "lead", "firstname": ""},
        "createdAt": "2024-01-01T00:00:00.000Z",
        "updatedAt": "2024-02-01T00:00:00.000Z",
        "archived": False,
    }
    flat = flatten_hubspot_object(obj, CONTACT)
    assert flat["id"] == "21"
    assert flat["createdate"] == "2024-01-01T00:00:00.000Z"
    assert flat["lastmodifieddate"] == "2024-02-01T00:00:00.000Z"
    row = RecordParser(CONTACT).parse(flat, deleted=True)
    assert isinstance(row, dict)
    assert row["firstname"] is None
    assert row["_deleted"] is True


def test_owner_and_pipeline_shapes_flatten_to_catalog_fields() -> None:
    owner = flatten_hubspot_owner(
        {"id": "7", "email": "o@x.com", "firstName": "O", "lastName": "W", "userId": 9, "archived": False}
    )
    row = RecordParser(stream("hubspot", "owners")).parse(owner)
    assert isinstance(row, dict)
    assert row["userId"] == "9"
    pipeline, stages = flatten_hubspot_pipeline(
        {
            "id": "default",
            "label": "Sales",
            "displayOrder": 0,
            "stages": [
                {
                    "id": "won",
                    "label": "Won",
                    "displayOrder": 5,
                    "metadata": {"isClosed": "true", "probability": "1.0"},
                }
            ],
        }
    )
    stage_row = RecordParser(stream("hubspot", "pipeline_stages")).parse(stages[0])
    assert pipeline["label"] == "Sales"
    assert isinstance(stage_row, dict)
    assert (stage_row["pipeline_id"], stage_row["isClosed"], stage_row["probability"]) == (
        "default",
        True,
        1.0,
    )
