"""SOQL in the Salesforce emulator: the lark grammar's features, paging, query vs queryAll, and
Salesforce's query errors, driven through simple-salesforce (and the parser directly)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from crm_sandbox.salesforce.errors import ApiError
from crm_sandbox.salesforce.soql import Condition, parse
from crm_sandbox.salesforce.testing import SandboxSession, serve_salesforce, session_fixtures
from simple_salesforce.exceptions import SalesforceMalformedRequest

sandbox, _fresh, sf = session_fixtures()


def names(sf: Any, soql: str, field: str = "Name") -> list[str]:
    return [r[field] for r in sf.query_all(soql)["records"]]


# -- filters -------------------------------------------------------------------------------------

FILTERS = [
    ("SELECT Name FROM Account WHERE Industry = 'Technology'", ["Acme Corp"]),
    ("SELECT Name FROM Account WHERE industry = 'TECHNOLOGY'", ["Acme Corp"]),  # case-insensitive
    ("SELECT Name FROM Account WHERE Industry != 'Technology' AND Industry != null", ["Globex"]),
    (
        "SELECT Name FROM Account WHERE Industry <> 'Technology' AND Name LIKE 'Umbrella%'",
        ["Umbrella East", "Umbrella West"],
    ),  # != matches nulls, as in Salesforce
    ("SELECT Name FROM Account WHERE Website = null AND Name LIKE 'Ini%'", ["Initech"]),
    ("SELECT Name FROM Account WHERE NumberOfEmployees > 100", ["Acme Corp"]),
    ("SELECT Name FROM Account WHERE NumberOfEmployees >= 40 AND NumberOfEmployees <= 40", ["Globex"]),
    (
        "SELECT Name FROM Account WHERE NumberOfEmployees < 1000 ORDER BY NumberOfEmployees",
        ["Globex", "Acme Corp"],
    ),
    ("SELECT Name FROM Account WHERE AnnualRevenue = 5000000", ["Acme Corp"]),
    (
        "SELECT Name FROM Account WHERE Name IN ('Globex', 'initech', 'Nope') ORDER BY Name",
        ["Globex", "Initech"],
    ),
    ("SELECT Name FROM Account WHERE Name NOT IN ('Globex') AND Name LIKE '%e%' AND Name LIKE 'G%'", []),
    ("SELECT Name FROM Account WHERE Name LIKE 'acme%'", ["Acme Corp"]),
    ("SELECT Name FROM Account WHERE Name LIKE '_lobex'", ["Globex"]),
    (
        "SELECT Name FROM Account WHERE (Industry = 'Energy' OR Industry = 'Technology') "
        "AND BillingCountry = 'USA'",
        ["Acme Corp"],
    ),
    (
        "SELECT Name FROM Account WHERE NOT (Name LIKE 'Recent%' OR Name LIKE 'Umbrella%') ORDER BY Name",
        ["Acme Corp", "Globex", "Initech"],
    ),
    (
        "SELECT Name FROM Account WHERE HubSpot_Id__c = 'hs-acme' OR HubSpot_Id__c = 'hs-globex' "
        "ORDER BY Name",
        ["Acme Corp", "Globex"],
    ),
    ("SELECT Name FROM Opportunity WHERE IsWon = true", ["Acme Big Deal"]),
    (
        "SELECT Name FROM Opportunity WHERE IsClosed = FALSE ORDER BY Name",
        ["Acme Renewal", "Globex Expansion"],
    ),
    (
        "SELECT Name FROM Opportunity WHERE CloseDate > 2026-01-15 ORDER BY CloseDate",
        ["Globex Expansion", "Acme Renewal"],
    ),
    ("SELECT Name FROM Opportunity WHERE CloseDate <= 2026-01-15", ["Acme Big Deal"]),
    (
        "SELECT Name FROM Opportunity WHERE LastModifiedDate > 2026-01-15T10:00:00Z ORDER BY Name",
        ["Acme Renewal", "Globex Expansion"],
    ),
    ("SELECT Name FROM Opportunity WHERE LastModifiedDate = 2026-01-15T12:00:00+02:00", ["Acme Big Deal"]),
    (
        "SELECT Name FROM Opportunity WHERE LastModifiedDate >= 2026-01-15T10:00:00.000+0000 AND "
        "LastModifiedDate < 2026-01-16T10:00:00Z",
        ["Acme Big Deal"],
    ),
    ("SELECT Name FROM Opportunity WHERE Amount = null", ["Globex Expansion"]),
    ("SELECT Name FROM Opportunity WHERE Account.Name = 'Globex'", ["Globex Expansion"]),
    ("SELECT Name FROM Opportunity WHERE RecordType.DeveloperName = 'Renewal'", ["Acme Renewal"]),
    (
        "SELECT Name FROM Opportunity WHERE StageName IN ('Closed Won', 'Prospecting') ORDER BY Amount DESC",
        ["Acme Big Deal", "Acme Renewal"],
    ),
    ("SELECT LastName FROM Contact WHERE Email = 'BOB@acme.com'", ["Brown"]),
    (
        "SELECT LastName FROM Contact WHERE Email IN ('alice@acme.com', 'carol@GLOBEX.com') "
        "ORDER BY LastName",
        ["Anders", "Clark"],
    ),
    (
        "SELECT LastName FROM Contact WHERE Owner.Email = 'ada@example.com' AND Account.Industry = 'Energy'",
        ["Clark"],
    ),
    ("SELECT LastName FROM Contact WHERE AccountId = null", ["Doe"]),
    (
        "SELECT LastName FROM Contact WHERE AccountId IN (SELECT Id FROM Account WHERE Industry = 'Energy')",
        ["Clark"],
    ),
    (
        "SELECT LastName FROM Contact WHERE Id NOT IN (SELECT ContactId FROM OpportunityContactRole) "
        "ORDER BY LastName",
        ["Clark", "Doe"],
    ),
    ("SELECT Name FROM Account WHERE CreatedDate = TODAY", ["Recent Today"]),
    ("SELECT Name FROM Account WHERE CreatedDate = YESTERDAY", ["Recent Yesterday"]),
    (
        "SELECT Name FROM Account WHERE CreatedDate = LAST_N_DAYS:2 ORDER BY Name",
        ["Recent Today", "Recent Yesterday"],
    ),
    (
        "SELECT Name FROM Account WHERE CreatedDate >= LAST_N_DAYS:30 ORDER BY CreatedDate DESC",
        ["Recent Today", "Recent Yesterday", "Recent Ten Days"],
    ),
    ("SELECT Name FROM Account WHERE CreatedDate < LAST_N_DAYS:30 AND Name LIKE 'G%'", ["Globex"]),
    ("SELECT Name FROM Account WHERE CreatedDate = N_DAYS_AGO:10", ["Recent Ten Days"]),
    ("SELECT Name FROM Account WHERE CreatedDate > TODAY", []),
]


@pytest.mark.parametrize(("soql", "expected"), FILTERS)
def test_where_clauses(sf: Any, soql: str, expected: list[str]) -> None:
    field = "LastName" if "FROM Contact" in soql else "Name"
    found = names(sf, soql, field)
    if "ORDER BY" in soql:
        assert found == expected
    else:
        assert sorted(found) == sorted(expected)


def test_ids_match_in_15_and_18_character_form(sf: Any) -> None:
    acme = sf.query("SELECT Id FROM Account WHERE Name = 'Acme Corp'")["records"][0]["Id"]
    assert names(sf, f"SELECT Name FROM Account WHERE Id = '{acme[:15]}'") == ["Acme Corp"]
    assert names(sf, f"SELECT Name FROM Account WHERE Id = '{acme.lower()}'") == [
        "Acme Corp"
    ]  # case-safe form
    assert names(
        sf, f"SELECT LastName FROM Contact WHERE AccountId = '{acme[:15]}' ORDER BY LastName", "LastName"
    ) == [
        "Anders",
        "Brown",
    ]


# -- select lists --------------------------------------------------------------------------------


def test_parent_fields_are_nested_objects(sf: Any) -> None:
    roles = sf.query(
        "SELECT Role, Contact.Email, Opportunity.Name, Opportunity.Account.Name, Opportunity.Owner.Email "
        "FROM OpportunityContactRole WHERE IsPrimary = true"
    )["records"]
    assert len(roles) == 1
    role = roles[0]
    assert role["attributes"]["type"] == "OpportunityContactRole"
    assert role["Role"] == "Decision Maker"
    assert role["Contact"]["Email"] == "alice@acme.com"
    assert role["Contact"]["attributes"]["type"] == "Contact"
    opportunity = role["Opportunity"]
    assert opportunity["Name"] == "Acme Big Deal"
    assert opportunity["Account"]["Name"] == "Acme Corp"
    assert opportunity["Owner"]["Email"] == "ada@example.com"
    doe = sf.query("SELECT LastName, Account.Name FROM Contact WHERE LastName = 'Doe'")["records"][0]
    assert doe["Account"] is None


def test_field_names_are_case_insensitive_and_returned_canonically(sf: Any) -> None:
    record = sf.query("select name, EMAIL, account.NUMBEROFEMPLOYEES from contact where lastname = 'Anders'")
    row = record["records"][0]
    assert list(row) == ["attributes", "Name", "Email", "Account"]
    assert list(row["Account"]) == ["attributes", "NumberOfEmployees"]
    assert row["attributes"]["type"] == "Contact"


def test_child_subquery(sf: Any) -> None:
    rows = sf.query(
        "SELECT Name, (SELECT LastName FROM Contacts ORDER BY LastName), "
        "(SELECT Name FROM Opportunities WHERE IsWon = true) "
        "FROM Account WHERE Name IN ('Acme Corp', 'Initech') ORDER BY Name"
    )["records"]
    acme, initech = rows
    assert [c["LastName"] for c in acme["Contacts"]["records"]] == ["Anders", "Brown"]
    assert acme["Contacts"]["totalSize"] == 2
    assert [o["Name"] for o in acme["Opportunities"]["records"]] == ["Acme Big Deal"]
    assert initech["Contacts"] is None


def test_count_queries(sf: Any) -> None:
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 8
    assert sf.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Umbrella%'") == {
        "totalSize": 2, "done": True, "records": [],
    }  # fmt: skip
    aggregate = sf.query("SELECT COUNT(Website) total FROM Account")["records"]
    assert aggregate[0]["total"] == 2
    assert sf.query("SELECT COUNT(Id) FROM Contact")["records"][0]["expr0"] == 4


def test_order_by_several_fields_and_nulls(sf: Any) -> None:
    soql = "SELECT Name FROM Account WHERE Name != 'Nope' ORDER BY NumberOfEmployees {} , Name DESC"
    assert names(sf, soql.format("DESC NULLS LAST"))[:3] == ["Acme Corp", "Globex", "Umbrella West"]
    assert names(sf, soql.format("ASC NULLS FIRST"))[-2:] == ["Globex", "Acme Corp"]
    assert names(sf, soql.format("NULLS LAST"))[:2] == ["Globex", "Acme Corp"]
    assert names(sf, soql.format("DESC NULLS FIRST"))[-2:] == ["Acme Corp", "Globex"]


def test_limit_and_offset(sf: Any) -> None:
    ordered = names(sf, "SELECT Name FROM Account ORDER BY Name")
    assert names(sf, "SELECT Name FROM Account ORDER BY Name LIMIT 3") == ordered[:3]
    assert names(sf, "SELECT Name FROM Account ORDER BY Name LIMIT 3 OFFSET 2") == ordered[2:5]
    result = sf.query("SELECT Name FROM Account ORDER BY Name LIMIT 2")
    assert (result["totalSize"], result["done"]) == (2, True)


def test_index_order_follows_updates(sf: Any) -> None:
    """Incremental extraction order (SYNC-1): a modified record moves to the end of SystemModstamp order."""
    soql = (
        "SELECT Name FROM Opportunity WHERE SystemModstamp > 2026-01-01T00:00:00Z ORDER BY SystemModstamp, Id"
    )
    assert names(sf, soql)[0] == "Acme Big Deal"
    big = sf.query("SELECT Id FROM Opportunity WHERE Name = 'Acme Big Deal'")["records"][0]["Id"]
    sf.Opportunity.update(big, {"Description": "touched"})
    assert names(sf, soql)[-1] == "Acme Big Deal"
    assert names(sf, soql.replace("ORDER BY SystemModstamp, Id", "ORDER BY SystemModstamp DESC, Id DESC"))[
        0
    ] == ("Acme Big Deal")


# -- paging and deleted rows ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_org() -> Iterator[SandboxSession]:
    accounts = [{"Name": f"Bulk {i:05d}", "NumberOfEmployees": i} for i in range(2500)]
    with serve_salesforce({"salesforce": {"Account": accounts}}) as endpoint:
        yield endpoint.session


def test_paging_with_next_records_url(big_org: SandboxSession) -> None:
    sf = big_org.client()
    first = sf.query("SELECT Name FROM Account ORDER BY Name")
    assert (first["totalSize"], first["done"], len(first["records"])) == (2500, False, 2000)
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-2000")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert (second["done"], len(second["records"])) == (True, 500)
    assert "nextRecordsUrl" not in second
    everything = sf.query_all("SELECT Name FROM Account ORDER BY Name")["records"]
    assert [r["Name"] for r in everything] == [f"Bulk {i:05d}" for i in range(2500)]


def test_batch_size_header_is_honoured(big_org: SandboxSession) -> None:
    sf = big_org.client()
    headers = {"Sforce-Query-Options": "batchSize=500"}
    first = sf.query("SELECT Id FROM Account WHERE NumberOfEmployees >= 1000", headers=headers)
    assert (first["totalSize"], len(first["records"])) == (1500, 500)
    pages = 1
    result = first
    while not result["done"]:
        result = sf.query_more(result["nextRecordsUrl"], identifier_is_url=True)
        pages += 1
    assert pages == 3
    tiny = sf.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=10"})
    assert len(tiny["records"]) == 200  # Salesforce's minimum batch size


def test_unknown_query_locator(big_org: SandboxSession) -> None:
    sf = big_org.client()
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query_more("01g000000000000AAA-2000")
    assert exc.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_all_returns_deleted_rows(sf: Any) -> None:
    globex = sf.query("SELECT Id FROM Account WHERE Name = 'Globex'")["records"][0]["Id"]
    sf.Account.delete(globex)
    assert names(sf, "SELECT Name FROM Account WHERE Name = 'Globex'") == []
    rows = sf.query_all("SELECT Name, IsDeleted FROM Account WHERE Name = 'Globex'", include_deleted=True)[
        "records"
    ]
    assert [(r["Name"], r["IsDeleted"]) for r in rows] == [("Globex", True)]
    assert (
        sf.query_all("SELECT Name FROM Account WHERE IsDeleted = true", include_deleted=True)["totalSize"]
        == 1
    )


# -- errors --------------------------------------------------------------------------------------

ERRORS = [
    ("SELECT FROM Account", "MALFORMED_QUERY", "unexpected token: 'Account'"),
    ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY", "unexpected token: '<EOF>'"),
    ("SELECT Id FROM Account WHERE Name = 'x' LIMIT ten", "MALFORMED_QUERY", "unexpected token: 'ten'"),
    (
        "SELECT Id FROM Account OFFSET 2001",
        "NUMBER_OUTSIDE_VALID_RANGE",
        "Maximum SOQL offset allowed is 2000",
    ),
    ("SELECT Id, Colour__c FROM Account", "INVALID_FIELD", "No such column 'Colour__c' on entity 'Account'"),
    ("SELECT Id, Parent.Name FROM Account", "INVALID_FIELD", "Didn't understand relationship 'Parent'"),
    ("SELECT Id FROM Contact WHERE Account.Colour__c = 'x'", "INVALID_FIELD", "No such column 'Colour__c'"),
    ("SELECT Id FROM Acount", "INVALID_TYPE", "sObject type 'Acount' is not supported"),
    (
        "SELECT Id FROM Account WHERE CreatedDate > '2026-01-01T00:00:00Z'",
        "INVALID_FIELD",
        "must be of type dateTime and should not be enclosed in quotes",
    ),
    ("SELECT Id FROM Account WHERE CreatedDate > 2026-01-01", "INVALID_FIELD", "must be of type dateTime"),
    ("SELECT Id FROM Account WHERE NumberOfEmployees = '5'", "INVALID_FIELD", "must be of type int"),
    ("SELECT Id FROM Account WHERE Id = 'abc'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: abc"),
    (
        "SELECT Id, (SELECT Id FROM Cases) FROM Account",
        "INVALID_TYPE",
        "Didn't understand relationship 'Cases'",
    ),
]


@pytest.mark.parametrize(("soql", "code", "fragment"), ERRORS)
def test_query_errors(sf: Any, soql: str, code: str, fragment: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query(soql)
    error = exc.value.content[0]
    assert error["errorCode"] == code
    assert fragment in error["message"]


def test_query_error_points_at_the_offending_column(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query("SELECT Id, Bogus FROM Account")
    assert exc.value.content[0]["message"].startswith(
        "\nSELECT Id, Bogus FROM Account\n           ^\nERROR at Row:1:Column:12\nNo such column 'Bogus'"
    )


# -- parser (pure) -------------------------------------------------------------------------------


def test_parser_builds_a_typed_tree() -> None:
    query = parse(
        "SELECT Id, Account.Name FROM Contact WHERE (Email LIKE '%@acme.com' OR NOT Title = null) "
        "AND CreatedDate >= LAST_N_DAYS:7 ORDER BY LastName DESC NULLS FIRST, Id LIMIT 5 OFFSET 1"
    )
    assert query.sobject == "Contact"
    assert [p.parts for p in query.select] == [("Id",), ("Account", "Name")]
    assert query.where.op == "and"
    last = query.where.items[1]
    assert isinstance(last, Condition)
    assert (last.op, last.value.kind, last.value.value) == (">=", "date_literal", "LAST_N_DAYS:7")
    assert [(o.path.parts, o.desc, o.nulls_first) for o in query.order] == [
        (("LastName",), True, True),
        (("Id",), False, True),
    ]
    assert (query.limit, query.offset) == (5, 1)


def test_keywords_inside_field_names_are_not_keywords() -> None:
    query = parse(
        "SELECT OrderNumber__c, NotesCount__c, Inbound__c FROM Account WHERE Likes__c = 1 AND Ordering__c = 2"
    )
    assert [p.parts[0] for p in query.select] == ["OrderNumber__c", "NotesCount__c", "Inbound__c"]
    assert [c.path.parts[0] for c in query.where.items] == ["Likes__c", "Ordering__c"]


def test_string_escapes() -> None:
    query = parse(r"SELECT Id FROM Account WHERE Name = 'O\'Brien \\ Sons'")
    assert query.where.value.value == "O'Brien \\ Sons"


def test_parser_reports_malformed_queries() -> None:
    with pytest.raises(ApiError) as exc:
        parse("SELECT Id FROM Account WHERE Name = ")
    assert exc.value.status == 400
    assert exc.value.body[0]["errorCode"] == "MALFORMED_QUERY"
