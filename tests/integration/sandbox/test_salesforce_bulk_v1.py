"""Bulk API 1.0 in the Salesforce emulator: JSON jobs through simple-salesforce's ``sf.bulk`` (a
client that still uses it) and XML/CSV jobs as CSV-based clients send them (raw HTTP, shapes from
the Bulk API Developer Guide: "Create a Job", "Add a Batch to a Job", "Get Batch Results",
"Bulk Query", "Errors")."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Any

import pytest
from crm_sandbox.salesforce.testing import session_fixtures
from simple_salesforce.exceptions import SalesforceGeneralError, SalesforceMalformedRequest

sandbox, _fresh, sf = session_fixtures()

NS = "{http://www.force.com/2009/06/asyncapi/dataload}"
ASYNC = "/services/async/59.0"


def test_insert_reports_each_record(sf: Any) -> None:
    results = sf.bulk.Account.insert([{"Name": "Bulk One"}, {"Industry": "Energy"}])
    assert results[0]["success"] is True
    assert results[0]["created"] is True
    assert results[0]["id"].startswith("001")
    assert results[1] == {
        "success": False, "created": False, "id": None,
        "errors": [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Name]",
                    "fields": ["Name"]}],
    }  # fmt: skip
    assert sf.Account.get(results[0]["id"])["Name"] == "Bulk One"


def test_upsert_update_and_delete(sf: Any) -> None:
    upserted = sf.bulk.Account.upsert(
        [{"HubSpot_Id__c": "hs-globex", "Industry": "Retail"}, {"HubSpot_Id__c": "hs-new", "Name": "New Co"}],
        "HubSpot_Id__c",
    )
    assert [r["created"] for r in upserted] == [False, True]
    globex = sf.query("SELECT Id, Industry FROM Account WHERE Name = 'Globex'")["records"][0]
    assert globex["Industry"] == "Retail"
    sf.bulk.Account.update([{"Id": globex["Id"], "Industry": "Energy"}])
    assert sf.Account.get(globex["Id"])["Industry"] == "Energy"
    deleted = sf.bulk.Account.delete([{"Id": upserted[1]["id"]}])
    assert deleted[0]["success"] is True
    assert sf.query("SELECT COUNT() FROM Account WHERE Name = 'New Co'")["totalSize"] == 0


def test_query_returns_records_with_epoch_ms_dates(sf: Any) -> None:
    rows = sf.bulk.Opportunity.query("SELECT Id, Name, CloseDate, CreatedDate FROM Opportunity ORDER BY Name")
    assert [r["Name"] for r in rows] == ["Acme Big Deal", "Acme Renewal", "Globex Expansion"]
    assert rows[0]["attributes"]["type"] == "Opportunity"
    assert rows[0]["CloseDate"] == int(datetime(2026, 1, 15, tzinfo=UTC).timestamp() * 1000)
    assert rows[0]["CreatedDate"] == int(datetime(2025, 12, 1, 9, tzinfo=UTC).timestamp() * 1000)


def test_query_all_includes_deleted_records(sf: Any) -> None:
    doomed = sf.query("SELECT Id FROM Account WHERE Name = 'Initech'")["records"][0]["Id"]
    sf.Account.delete(doomed)
    assert sf.bulk.Account.query("SELECT Id FROM Account WHERE Name = 'Initech'") == []
    assert [r["Id"] for r in sf.bulk.Account.query_all("SELECT Id FROM Account WHERE Name = 'Initech'")] == [
        doomed
    ]


def test_unsupported_bulk_queries_fail_the_batch(sf: Any) -> None:
    with pytest.raises(SalesforceGeneralError) as failed:
        sf.bulk.Account.query("SELECT COUNT(Id) FROM Account")
    assert "Aggregate Relationships not supported in Bulk Query" in str(failed.value)
    with pytest.raises(SalesforceGeneralError) as malformed:
        sf.bulk.Account.query("SELECT Nope FROM Account")
    assert "INVALID_FIELD" in str(malformed.value)


def test_invalid_session(sandbox: Any) -> None:
    with sandbox.http(auth=False) as http:
        response = http.post(f"{sandbox.url}{ASYNC}/job", json={"operation": "insert", "object": "Account"})
    assert response.status_code == 400
    assert response.json() == {"exceptionCode": "InvalidSessionId", "exceptionMessage": "Invalid session id"}


def test_closed_job_takes_no_batches(sf: Any) -> None:
    job = sf.bulk.Account._create_job(operation="insert", use_serial=False)
    sf.bulk.Account._close_job(job["id"])
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.bulk.Account._add_batch(job["id"], [{"Name": "late"}], "insert")
    assert refused.value.content["exceptionCode"] == "InvalidJobState"


# -- XML job descriptions and CSV batches, as CSV-based clients send them -------------------------
def xml_call(
    sandbox: Any, method: str, path: str, body: str = "", content_type: str = "application/xml"
) -> Any:
    with sandbox.http(auth=False) as http:
        http.headers["X-SFDC-Session"] = "sandbox-session"
        response = http.request(
            method, f"{sandbox.url}{ASYNC}{path}", data=body.encode(), headers={"Content-Type": content_type}
        )
    return response


def job_xml(operation: str, obj: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
        f"<operation>{operation}</operation><object>{obj}</object><contentType>CSV</contentType></jobInfo>"
    )


def field(response: Any, name: str) -> str:
    return str(ET.fromstring(response.content).findtext(f"{NS}{name}"))


def test_csv_insert_job_with_xml_descriptions(sandbox: Any, sf: Any) -> None:
    created = xml_call(sandbox, "POST", "/job", job_xml("insert", "Contact"))
    assert created.status_code == 201
    assert created.headers["Content-Type"].startswith("application/xml")
    job_id = field(created, "id")
    assert (field(created, "state"), field(created, "contentType")) == ("Open", "CSV")
    batch = xml_call(sandbox, "POST", f"/job/{job_id}/batch",
                     "LastName,Email\nCsv,csv@example.com\n,missing@example.com\n", "text/csv")  # fmt: skip
    assert field(batch, "state") == "Queued"
    batch_id = field(batch, "id")
    info = xml_call(sandbox, "GET", f"/job/{job_id}/batch/{batch_id}")
    counts = (field(info, "state"), field(info, "numberRecordsProcessed"), field(info, "numberRecordsFailed"))
    assert counts == ("Completed", "2", "1")
    result = xml_call(sandbox, "GET", f"/job/{job_id}/batch/{batch_id}/result")
    lines = result.text.splitlines()
    assert lines[0] == '"Id","Success","Created","Error"'
    assert lines[1].endswith('"true","true",""')
    assert lines[2].startswith('"","false","false","REQUIRED_FIELD_MISSING:Required fields are missing')
    close = f'<jobInfo xmlns="{NS[1:-1]}"><state>Closed</state></jobInfo>'
    closed = xml_call(sandbox, "POST", f"/job/{job_id}", close)
    assert field(closed, "state") == "Closed"
    assert field(closed, "numberRecordsProcessed") == "2"
    assert sf.query("SELECT COUNT() FROM Contact WHERE Email = 'csv@example.com'")["totalSize"] == 1


def test_csv_query_job(sandbox: Any) -> None:
    job_id = field(xml_call(sandbox, "POST", "/job", job_xml("query", "Account")), "id")
    soql = "SELECT Name, Owner.Email FROM Account WHERE Name = 'Acme Corp'"
    batch_id = field(xml_call(sandbox, "POST", f"/job/{job_id}/batch", soql, "text/csv"), "id")
    assert field(xml_call(sandbox, "GET", f"/job/{job_id}/batch/{batch_id}"), "state") == "Completed"
    listing = ET.fromstring(xml_call(sandbox, "GET", f"/job/{job_id}/batch/{batch_id}/result").content)
    result_id = listing.findtext(f"{NS}result")
    rows = xml_call(sandbox, "GET", f"/job/{job_id}/batch/{batch_id}/result/{result_id}").text.splitlines()
    assert rows == ['"Name","Owner.Email"', '"Acme Corp","ada@example.com"']


def test_unknown_job_in_xml(sandbox: Any) -> None:
    response = xml_call(sandbox, "GET", "/job/750000000000000AAA")
    assert response.status_code == 400
    assert field(response, "exceptionCode") == "InvalidJob"


def test_json_job_described_in_xml_with_bare_content_types(sandbox: Any) -> None:
    """salesforce-bulk creates a JSON job with an XML request, reads job and batch info as XML,
    and picks the result parser by comparing Content-Type verbatim."""
    created = xml_call(sandbox, "POST", "/job", job_xml("query", "Lead").replace(">CSV<", ">JSON<"))
    assert created.headers["Content-Type"] == "application/xml"
    assert field(created, "contentType") == "JSON"
    job_id = field(created, "id")
    batch_id = field(xml_call(sandbox, "POST", f"/job/{job_id}/batch", "SELECT LastName FROM Lead"), "id")
    assert field(xml_call(sandbox, "GET", f"/job/{job_id}/batch/{batch_id}"), "state") == "Completed"
    listing = xml_call(sandbox, "GET", f"/job/{job_id}/batch/{batch_id}/result")
    assert listing.headers["Content-Type"] == "application/json"
    rows = xml_call(sandbox, "GET", f"/job/{job_id}/batch/{batch_id}/result/{listing.json()[0]}")
    assert rows.headers["Content-Type"] == "application/json"
    assert sorted(r["LastName"] for r in rows.json()) == ["Converted", "Lead"]
