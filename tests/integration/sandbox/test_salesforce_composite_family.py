"""The composite family in the Salesforce emulator through simple-salesforce's ``restful`` call:
``/composite`` (references, per-subrequest status, allOrNone), ``/composite/batch`` (haltOnError),
``/composite/tree/{sObject}`` and ``/composite/graph``, with their limits. Shapes compared with the
REST API Developer Guide ("Composite", "Composite Subrequest Result", "allOrNone Parameters in
Composite and Collections Requests", "Composite Batch", "sObject Tree", "Composite Graph")."""

from __future__ import annotations

from typing import Any

import pytest
from crm_sandbox.salesforce.testing import session_fixtures
from simple_salesforce.exceptions import SalesforceMalformedRequest

sandbox, _fresh, sf = session_fixtures()

V = "/services/data/v59.0"


def count(sf: Any, soql: str) -> int:
    return int(sf.query(soql)["totalSize"])


def sub(ref: str, method: str, url: str, body: Any = None) -> dict[str, Any]:
    item: dict[str, Any] = {"method": method, "url": f"{V}{url}", "referenceId": ref}
    if body is not None:
        item["body"] = body
    return item


def composite(sf: Any, items: list[dict[str, Any]], all_or_none: bool = False) -> list[dict[str, Any]]:
    body = {"allOrNone": all_or_none, "compositeRequest": items}
    return list(sf.restful("composite", method="POST", json=body)["compositeResponse"])


def test_composite_chains_references(sf: Any) -> None:
    results = composite(
        sf,
        [
            sub("NewAccount", "POST", "/sobjects/Account", {"Name": "Composite Co"}),
            sub("NewContact", "POST", "/sobjects/Contact",
                {"LastName": "Chain", "AccountId": "@{NewAccount.id}"}),
            sub("Read", "GET", "/sobjects/Account/@{NewAccount.id}?fields=Name"),
            sub("Q", "GET", "/query?q=SELECT+Id,Name+FROM+Account+WHERE+Name='Composite+Co'"),
            sub("Rename", "PATCH", "/sobjects/Account/@{Q.records[0].Id}", {"Name": "Composite Renamed"}),
        ],
    )  # fmt: skip
    assert [r["referenceId"] for r in results] == ["NewAccount", "NewContact", "Read", "Q", "Rename"]
    assert [r["httpStatusCode"] for r in results] == [201, 201, 200, 200, 204]
    account_id = results[0]["body"]["id"]
    assert results[0]["body"] == {"id": account_id, "success": True, "errors": []}
    assert results[0]["httpHeaders"] == {"Location": f"{V}/sobjects/Account/{account_id}"}
    assert results[2]["body"]["Name"] == "Composite Co"
    assert results[4]["body"] is None
    contact = sf.Contact.get(results[1]["body"]["id"])
    assert contact["AccountId"] == account_id
    assert sf.Account.get(account_id)["Name"] == "Composite Renamed"


def test_composite_without_all_or_none_keeps_going(sf: Any) -> None:
    before = count(sf, "SELECT Id FROM Account")
    results = composite(
        sf,
        [
            sub("Bad", "POST", "/sobjects/Contact", {"FirstName": "NoLastName"}),
            sub("Dependent", "PATCH", "/sobjects/Contact/@{Bad.id}", {"Title": "x"}),
            sub("Good", "POST", "/sobjects/Account", {"Name": "Still Made"}),
        ],
    )
    assert results[0]["httpStatusCode"] == 400
    assert results[0]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert results[1]["httpStatusCode"] == 400
    assert results[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert "Bad.id" in results[1]["body"][0]["message"]
    assert results[2]["httpStatusCode"] == 201
    assert count(sf, "SELECT Id FROM Account") == before + 1


def test_composite_all_or_none_rolls_everything_back(sf: Any) -> None:
    before = count(sf, "SELECT Id FROM Account")
    results = composite(
        sf,
        [
            sub("A", "POST", "/sobjects/Account", {"Name": "Rolled Back"}),
            sub("B", "POST", "/sobjects/Contact", {"FirstName": "NoLastName", "AccountId": "@{A.id}"}),
            sub("C", "POST", "/sobjects/Account", {"Name": "Never Run"}),
        ],
        all_or_none=True,
    )
    assert [r["httpStatusCode"] for r in results] == [400, 400, 400]
    assert results[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    rolled_back = "The transaction was rolled back since another operation in the same transaction failed."
    halted = {"errorCode": "PROCESSING_HALTED", "message": rolled_back}
    assert results[0]["body"] == [halted]
    assert results[2]["body"] == [halted]
    assert count(sf, "SELECT Id FROM Account") == before


def test_all_or_none_composite_makes_its_collections_all_or_none(sf: Any) -> None:
    before = count(sf, "SELECT Id FROM Account")
    records = [{"attributes": {"type": "Account"}, "Name": "Inner One"}, {"attributes": {"type": "Contact"}}]
    results = composite(
        sf,
        [sub("Coll", "POST", "/composite/sobjects", {"allOrNone": False, "records": records})],
        all_or_none=True,
    )
    assert results[0]["httpStatusCode"] == 200
    assert [r["success"] for r in results[0]["body"]] == [False, False]
    assert count(sf, "SELECT Id FROM Account") == before


def test_composite_counts_as_one_api_request(sandbox: Any, sf: Any) -> None:
    composite(sf, [sub(f"A{i}", "POST", "/sobjects/Account", {"Name": f"N{i}"}) for i in range(5)])
    assert sf.limits()["DailyApiRequests"]["Remaining"] == 100_000 - 2


@pytest.mark.parametrize(
    ("items", "code"),
    [
        ([sub(f"A{i}", "GET", "/limits") for i in range(26)], "LIMIT_EXCEEDED"),
        ([sub(f"Q{i}", "GET", "/query?q=SELECT+Id+FROM+Account") for i in range(6)], "LIMIT_EXCEEDED"),
        ([sub("Same", "GET", "/limits"), sub("Same", "GET", "/limits")], "INVALID_INPUT"),
        ([sub("1bad", "GET", "/limits")], "INVALID_INPUT"),
        ([{"method": "GET", "url": f"{V}/limits"}], "INVALID_INPUT"),
    ],
)
def test_composite_request_errors(sf: Any, items: list[dict[str, Any]], code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as failed:
        composite(sf, items)
    assert failed.value.content[0]["errorCode"] == code


def test_batch_runs_independent_subrequests(sf: Any) -> None:
    acme = sf.query("SELECT Id FROM Account WHERE Name = 'Acme Corp'")["records"][0]["Id"]
    body = {
        "batchRequests": [
            {"method": "PATCH", "url": f"v59.0/sobjects/Account/{acme}", "richInput": {"Industry": "Retail"}},
            {"method": "GET", "url": f"v59.0/sobjects/Account/{acme}?fields=Industry"},
            {"method": "GET", "url": "v59.0/sobjects/Account/001000000000000AAA"},
            {"method": "POST", "url": "v59.0/sobjects/Account", "richInput": {"Name": "Batch Made"}},
        ]
    }
    out = sf.restful("composite/batch", method="POST", json=body)
    assert out["hasErrors"] is True
    codes = [r["statusCode"] for r in out["results"]]
    assert codes == [204, 200, 404, 201]
    assert out["results"][0]["result"] is None
    assert out["results"][1]["result"]["Industry"] == "Retail"
    assert out["results"][2]["result"][0]["errorCode"] == "NOT_FOUND"


def test_batch_halt_on_error(sf: Any) -> None:
    body = {
        "haltOnError": True,
        "batchRequests": [
            {"method": "POST", "url": "v59.0/sobjects/Contact", "richInput": {"FirstName": "x"}},
            {"method": "POST", "url": "v59.0/sobjects/Account", "richInput": {"Name": "Halted"}},
        ],
    }
    out = sf.restful("composite/batch", method="POST", json=body)
    assert [r["statusCode"] for r in out["results"]] == [400, 412]
    assert out["results"][1]["result"] == [
        {"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per request"}
    ]
    assert count(sf, "SELECT Id FROM Account WHERE Name = 'Halted'") == 0


def test_batch_limit(sf: Any) -> None:
    body = {"batchRequests": [{"method": "GET", "url": "v59.0/limits"}] * 26}
    with pytest.raises(SalesforceMalformedRequest) as failed:
        sf.restful("composite/batch", method="POST", json=body)
    assert failed.value.content[0]["errorCode"] == "LIMIT_EXCEEDED"


def tree_account(ref: str, name: str, contacts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "attributes": {"type": "Account", "referenceId": ref},
        "Name": name,
        "Contacts": {"records": contacts},
    }


def tree_contact(ref: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Contact", "referenceId": ref}, **fields}


def test_tree_creates_parents_and_children(sf: Any) -> None:
    records = [
        tree_account(
            "ref1", "Tree One", [tree_contact("ref2", LastName="Leaf"), tree_contact("ref3", LastName="T")]
        ),
        tree_account("ref4", "Tree Two", []),
    ]
    out = sf.restful("composite/tree/Account", method="POST", json={"records": records})
    assert out["hasErrors"] is False
    assert [r["referenceId"] for r in out["results"]] == ["ref1", "ref2", "ref3", "ref4"]
    ids = {r["referenceId"]: r["id"] for r in out["results"]}
    assert sf.Contact.get(ids["ref2"])["AccountId"] == ids["ref1"]
    assert sf.Account.get(ids["ref4"])["Name"] == "Tree Two"


def test_tree_is_all_or_nothing(sf: Any) -> None:
    before = count(sf, "SELECT Id FROM Account")
    records = [tree_account("ref1", "Doomed", [tree_contact("ref2", FirstName="NoLastName")])]
    with pytest.raises(SalesforceMalformedRequest) as failed:
        sf.restful("composite/tree/Account", method="POST", json={"records": records})
    assert failed.value.content == {
        "hasErrors": True,
        "results": [{"referenceId": "ref2", "errors": [
            {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]",
             "fields": ["LastName"]}]}],
    }  # fmt: skip
    assert count(sf, "SELECT Id FROM Account") == before


def test_tree_limit_of_200_records(sf: Any) -> None:
    records = [tree_account(f"r{i}", f"T{i}", []) for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as failed:
        sf.restful("composite/tree/Account", method="POST", json={"records": records})
    assert failed.value.content[0]["errorCode"] == "LIMIT_EXCEEDED"


def test_graph_runs_each_graph_as_one_transaction(sf: Any) -> None:
    before = count(sf, "SELECT Id FROM Account")
    body = {
        "graphs": [
            {"graphId": "good", "compositeRequest": [
                sub("A", "POST", "/sobjects/Account", {"Name": "Graph Good"}),
                sub("C", "POST", "/sobjects/Contact", {"LastName": "G", "AccountId": "@{A.id}"}),
            ]},
            {"graphId": "bad", "compositeRequest": [
                sub("A", "POST", "/sobjects/Account", {"Name": "Graph Bad"}),
                sub("C", "POST", "/sobjects/Contact", {"FirstName": "NoLastName"}),
            ]},
        ]
    }  # fmt: skip
    out = sf.restful("composite/graph", method="POST", json=body)
    assert [(g["graphId"], g["isSuccessful"]) for g in out["graphs"]] == [("good", True), ("bad", False)]
    bad = out["graphs"][1]["graphResponse"]["compositeResponse"]
    assert [r["httpStatusCode"] for r in bad] == [400, 400]
    assert count(sf, "SELECT Id FROM Account") == before + 1
    assert count(sf, "SELECT Id FROM Account WHERE Name = 'Graph Bad'") == 0


def test_batch_takes_full_service_paths_too(sf: Any) -> None:
    """aiosalesforce sends ``/services/data/vNN.0/...`` rather than ``vNN.0/...``."""
    body = {"batchRequests": [{"method": "GET", "url": f"{V}/query?q=SELECT+Id+FROM+Lead"}]}
    out = sf.restful("composite/batch", method="POST", json=body)
    assert out["results"][0]["statusCode"] == 200
    assert out["results"][0]["result"]["totalSize"] == 2
