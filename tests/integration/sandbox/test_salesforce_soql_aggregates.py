"""Aggregate SOQL, date functions, FIELDS(), toLabel(), FORMAT() and WITH in the Salesforce emulator,
through simple-salesforce's ``query``. Shapes compared with the SOQL and SOSL Reference ("Aggregate
Functions", "GROUP BY", "HAVING", "Using Aliases with GROUP BY", "Date Functions", "FIELDS()",
"toLabel()", "FORMAT()", "WITH SECURITY_ENFORCED")."""

from __future__ import annotations

from typing import Any

import pytest
from crm_sandbox.salesforce.testing import session_fixtures
from simple_salesforce.exceptions import SalesforceMalformedRequest

sandbox, _fresh, sf = session_fixtures()

AGG = {"type": "AggregateResult"}


def rows(sf: Any, soql: str) -> list[dict[str, Any]]:
    return list(sf.query(soql)["records"])


def account_id(sf: Any, name: str) -> str:
    return str(sf.query(f"SELECT Id FROM Account WHERE Name = '{name}'")["records"][0]["Id"])


def test_group_by_with_aliases_and_expr_names(sf: Any) -> None:
    result = sf.query(
        "SELECT AccountId, COUNT(Id) n, SUM(Amount) total, MAX(CloseDate) FROM Opportunity "
        "GROUP BY AccountId ORDER BY COUNT(Id) DESC"
    )
    assert result["totalSize"] == 2
    assert result["done"] is True
    assert result["records"] == [
        {"attributes": AGG, "AccountId": account_id(sf, "Acme Corp"), "n": 2, "total": 60000.0,
         "expr0": "2026-06-30"},
        {"attributes": AGG, "AccountId": account_id(sf, "Globex"), "n": 1, "total": None,
         "expr0": "2026-03-31"},
    ]  # fmt: skip


def test_group_by_a_parent_field_names_the_column_by_the_field(sf: Any) -> None:
    soql = "SELECT Account.Name, COUNT(Id) FROM Contact GROUP BY Account.Name ORDER BY Account.Name"
    assert rows(sf, soql) == [
        {"attributes": AGG, "Name": None, "expr0": 1},
        {"attributes": AGG, "Name": "Acme Corp", "expr0": 2},
        {"attributes": AGG, "Name": "Globex", "expr0": 1},
    ]  # fmt: skip


def test_having_filters_groups(sf: Any) -> None:
    found = rows(sf, "SELECT AccountId, COUNT(Id) c FROM Contact GROUP BY AccountId HAVING COUNT(Id) > 1")
    assert found == [{"attributes": AGG, "AccountId": account_id(sf, "Acme Corp"), "c": 2}]
    by_name = rows(
        sf, "SELECT Industry FROM Account GROUP BY Industry HAVING Industry IN ('technology', 'Energy') "
        "ORDER BY Industry DESC"
    )  # fmt: skip
    assert [r["Industry"] for r in by_name] == ["Technology", "Energy"]


def test_aggregates_without_group_by_answer_one_row(sf: Any) -> None:
    soql = "SELECT COUNT(Id), COUNT_DISTINCT(AccountId), AVG(Amount), MIN(Amount), MAX(Name) FROM Opportunity"
    assert rows(sf, soql) == [
        {"attributes": AGG, "expr0": 3, "expr1": 2, "expr2": 30000.0, "expr3": 10000.0,
         "expr4": "Globex Expansion"}
    ]  # fmt: skip
    empty = sf.query("SELECT COUNT(Id), SUM(Amount) FROM Opportunity WHERE Name = 'none'")
    assert empty["totalSize"] == 1
    assert empty["records"] == [{"attributes": AGG, "expr0": 0, "expr1": None}]


def test_date_functions_group_and_filter(sf: Any) -> None:
    assert rows(
        sf,
        "SELECT CALENDAR_YEAR(CloseDate) y, CALENDAR_MONTH(CloseDate), CALENDAR_QUARTER(CloseDate), "
        "COUNT(Id) FROM Opportunity GROUP BY CALENDAR_YEAR(CloseDate), CALENDAR_MONTH(CloseDate), "
        "CALENDAR_QUARTER(CloseDate) ORDER BY CALENDAR_MONTH(CloseDate)",
    ) == [
        {"attributes": AGG, "y": 2026, "expr0": 1, "expr1": 1, "expr2": 1},
        {"attributes": AGG, "y": 2026, "expr0": 3, "expr1": 1, "expr2": 1},
        {"attributes": AGG, "y": 2026, "expr0": 6, "expr1": 2, "expr2": 1},
    ]  # fmt: skip
    assert [
        r["Name"] for r in rows(sf, "SELECT Name FROM Opportunity WHERE CALENDAR_MONTH(CloseDate) = 3")
    ] == ["Globex Expansion"]
    assert rows(
        sf,
        "SELECT DAY_ONLY(CreatedDate), COUNT(Id) FROM Account WHERE DAY_ONLY(CreatedDate) = 2025-12-01 "
        "GROUP BY DAY_ONLY(CreatedDate)",
    ) == [{"attributes": AGG, "expr0": "2025-12-01", "expr1": 5}]
    weekday = rows(
        sf,
        "SELECT DAY_IN_WEEK(CloseDate) d FROM Opportunity WHERE Name = 'Acme Big Deal' "
        "GROUP BY DAY_IN_WEEK(CloseDate)",
    )
    assert weekday == [{"attributes": AGG, "d": 5}]  # 2026-01-15 is a Thursday; Sunday is 1


@pytest.mark.parametrize(
    ("soql", "code", "message"),
    [
        ("SELECT Name, COUNT(Id) FROM Account GROUP BY Industry", "MALFORMED_QUERY",
         "Field must be grouped or aggregated: Name"),
        ("SELECT Name, COUNT(Id) FROM Account", "MALFORMED_QUERY",
         "Field must be grouped or aggregated: Name"),
        ("SELECT SUM(Name) FROM Account", "MALFORMED_QUERY", "does not support aggregate operator SUM"),
        ("SELECT Industry FROM Account GROUP BY ROLLUP(Industry)", "MALFORMED_QUERY", "ROLLUP"),
        ("SELECT convertCurrency(Amount) FROM Opportunity", "MALFORMED_QUERY", "CONVERTCURRENCY"),
        ("SELECT Name FROM Account HAVING COUNT(Id) > 1", "MALFORMED_QUERY", "HAVING"),
        ("SELECT CALENDAR_YEAR(CreatedDate) FROM Account", "MALFORMED_QUERY", "CALENDAR_YEAR"),
        ("SELECT Name FROM Account WHERE COUNT(Id) > 1", "MALFORMED_QUERY", "HAVING"),
        ("SELECT DAY_ONLY(CloseDate) FROM Opportunity GROUP BY DAY_ONLY(CloseDate)", "MALFORMED_QUERY",
         "DAY_ONLY requires a dateTime field"),
        ("SELECT Name n FROM Account", "MALFORMED_QUERY", "Aliases are only allowed in aggregate queries"),
        ("SELECT FIELDS(ALL) FROM Account", "MALFORMED_QUERY",
         "The SOQL FIELDS function must have a LIMIT of at most 200"),
        ("SELECT FIELDS(CUSTOM) FROM Account LIMIT 201", "MALFORMED_QUERY", "LIMIT of at most 200"),
        ("SELECT Id FROM Account WITH FOO_MODE", "MALFORMED_QUERY", "WITH FOO_MODE"),
        ("SELECT toLabel(Name) FROM Account", "INVALID_FIELD", "picklist"),
        ("SELECT TYPEOF Owner WHEN User THEN Email END FROM Account", "MALFORMED_QUERY",
         "TYPEOF is not supported"),
        ("SELECT Id FROM Account USING SCOPE mine", "MALFORMED_QUERY", "USING SCOPE is not supported"),
        ("SELECT Id FROM Account FOR VIEW", "MALFORMED_QUERY", "FOR VIEW is not supported"),
        ("SELECT Id FROM Account WHERE Name = 'TYPEOF' FOR UPDATE", "MALFORMED_QUERY", "FOR UPDATE is not"),
    ],
)  # fmt: skip
def test_unsupported_or_invalid_constructs_are_named(sf: Any, soql: str, code: str, message: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as failed:
        sf.query(soql)
    error = failed.value.content[0]
    assert error["errorCode"] == code
    assert message in error["message"]


def test_fields_standard_custom_and_all(sf: Any) -> None:
    standard = rows(sf, "SELECT FIELDS(STANDARD) FROM Account WHERE Name = 'Acme Corp'")[0]
    assert standard["Name"] == "Acme Corp"
    assert standard["Industry"] == "Technology"
    assert "HubSpot_Id__c" not in standard
    custom = rows(sf, "SELECT FIELDS(CUSTOM) FROM Account WHERE Name = 'Acme Corp' LIMIT 1")[0]
    assert custom["HubSpot_Id__c"] == "hs-acme"
    assert "Name" not in custom
    everything = rows(sf, "SELECT FIELDS(ALL) FROM Account ORDER BY Name LIMIT 200")
    assert len(everything) == 8
    assert {"Name", "HubSpot_Id__c", "Id"} <= set(everything[0])


def test_to_label_and_format(sf: Any) -> None:
    found = rows(
        sf,
        "SELECT Name, toLabel(StageName), FORMAT(Amount), FORMAT(CloseDate) FROM Opportunity ORDER BY Name",
    )
    big, renewal, globex = found
    assert (big["StageName"], big["Amount"], big["CloseDate"]) == ("Closed Won", "USD 50,000.00", "1/15/2026")
    assert renewal["Amount"] == "USD 10,000.00"
    assert (globex["Amount"], globex["CloseDate"]) == (None, "3/31/2026")


def test_with_security_enforced_is_accepted(sf: Any) -> None:
    assert sf.query("SELECT Id FROM Account WITH SECURITY_ENFORCED")["totalSize"] == 8
    assert sf.query("SELECT Id FROM Account WHERE Name = 'Globex' WITH USER_MODE")["totalSize"] == 1
