"""Bulk API 2.0 in the Salesforce emulator, driven through simple-salesforce's ``bulk2`` module
(query, query_all, download, insert, update, upsert, delete, result CSVs) and, for the job
lifecycle calls simple-salesforce does not expose, through plain HTTP."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from crm_sandbox.salesforce.testing import SandboxSession, session_fixtures
from simple_salesforce.bulk2 import LineEnding
from simple_salesforce.exceptions import SalesforceOperationError

WAIT = 0.01  # simple-salesforce sleeps this long before its first job poll


sandbox, _fresh, sf = session_fixtures()


def rows(page: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(page)))


def jobs_url(sandbox: SandboxSession, kind: str) -> str:
    return f"{sandbox.url}/services/data/v59.0/jobs/{kind}"


# -- query jobs ----------------------------------------------------------------------------------


def test_query_results_are_csv_as_salesforce_writes_it(sf: Any) -> None:
    pages = list(
        sf.bulk2.Account.query(
            "SELECT Id, Name, Website, NumberOfEmployees, AnnualRevenue, IsDeleted, CreatedDate, Owner.Email "
            "FROM Account WHERE Name IN ('Acme Corp', 'Initech') ORDER BY Name",
            wait=WAIT,
        )
    )
    assert len(pages) == 1
    lines = pages[0].split("\n")
    assert (
        lines[0]
        == '"Id","Name","Website","NumberOfEmployees","AnnualRevenue","IsDeleted","CreatedDate","Owner.Email"'
    )
    acme_id = sf.query("SELECT Id FROM Account WHERE Name = 'Acme Corp'")["records"][0]["Id"]
    assert lines[1] == (
        f'"{acme_id}","Acme Corp","https://www.acme.com/about","250","5000000.0","false",'
        '"2025-12-01T09:00:00.000Z","ada@example.com"'
    )
    assert lines[2].split(",")[2:4] == ['""', '""']  # nulls are empty quoted strings
    assert lines[3] == ""  # every line, the last included, ends with the job's line ending


def test_query_pages_with_locator(sf: Any) -> None:
    pages = list(sf.bulk2.Account.query("SELECT Id, Name FROM Account", max_records=3, wait=WAIT))
    assert [len(rows(p)) for p in pages] == [3, 3, 2]
    assert len({r["Id"] for p in pages for r in rows(p)}) == 8

    client = sf.bulk2.Account._client
    job = client.create_job("query", "SELECT Id FROM Account")
    client.wait_for_job(job["id"], True, WAIT)
    first = client.get_query_results(job["id"], "", 5)
    assert first["number_of_records"] == 5
    assert first["locator"]
    last = client.get_query_results(job["id"], first["locator"], 5)
    assert (last["number_of_records"], last["locator"]) == (3, "")  # "null" on the last page


def test_query_all_job_includes_deleted_rows(sf: Any) -> None:
    globex = sf.query("SELECT Id FROM Account WHERE Name = 'Globex'")["records"][0]["Id"]
    sf.Account.delete(globex)
    soql = "SELECT Id, IsDeleted FROM Account WHERE Name = 'Globex'"
    assert rows(next(iter(sf.bulk2.Account.query(soql, wait=WAIT)))) == []
    assert rows(next(iter(sf.bulk2.Account.query_all(soql, wait=WAIT)))) == [
        {"Id": globex, "IsDeleted": "true"}
    ]


def test_download_writes_result_files(sf: Any, tmp_path: Path) -> None:
    results = sf.bulk2.Contact.download(
        "SELECT Id, Email FROM Contact", str(tmp_path), max_records=2, wait=WAIT
    )
    assert [r["number_of_records"] for r in results] == [2, 2]
    emails = {row["Email"] for r in results for row in rows(Path(r["file"]).read_text())}
    assert emails == {"alice@acme.com", "Bob@Acme.com", "carol@globex.com", ""}


def test_invalid_query_job_is_refused(sandbox: SandboxSession) -> None:
    http = sandbox.http()
    bad = http.post(
        jobs_url(sandbox, "query"), json={"operation": "query", "query": "SELECT Nope FROM Account"}
    )
    assert bad.status_code == 400
    assert bad.json()[0]["errorCode"] == "INVALID_FIELD"
    count = http.post(
        jobs_url(sandbox, "query"), json={"operation": "query", "query": "SELECT COUNT() FROM Account"}
    )
    assert count.status_code == 400


# -- ingest jobs ---------------------------------------------------------------------------------


def test_insert_with_per_record_results(sf: Any) -> None:
    result = sf.bulk2.Contact.insert(
        records=[
            {"LastName": "Bulk", "Email": "bulk@x.com", "Account.HubSpot_Id__c": "hs-globex"},
            {"LastName": "", "Email": "broken@x.com", "Account.HubSpot_Id__c": ""},
        ],
        wait=WAIT,
    )
    assert len(result) == 1
    assert (result[0]["numberRecordsProcessed"], result[0]["numberRecordsFailed"]) == (2, 1)
    job_id = result[0]["job_id"]
    outcome = sf.bulk2.Contact.get_all_ingest_records(job_id)
    (ok,) = outcome["successfulRecords"]
    assert ok["sf__Created"] == "true"
    assert ok["sf__Id"].startswith("003")
    assert ok["Email"] == "bulk@x.com"
    globex = sf.query("SELECT Id FROM Account WHERE Name = 'Globex'")["records"][0]["Id"]
    assert sf.Contact.get(ok["sf__Id"])["AccountId"] == globex
    (failed,) = outcome["failedRecords"]
    assert failed["sf__Id"] == ""
    assert failed["sf__Error"] == "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
    assert outcome["unprocessedRecords"] == []
    raw = sf.bulk2.Contact.get_successful_records(job_id)
    assert raw.startswith('"sf__Id","sf__Created",')


def test_update_upsert_and_delete_jobs(sf: Any) -> None:
    acme = sf.query("SELECT Id FROM Account WHERE Name = 'Acme Corp'")["records"][0]["Id"]
    updated = sf.bulk2.Account.update(
        records=[{"Id": acme, "Phone": "+1 999", "Website": "#N/A", "Industry": ""}], wait=WAIT
    )
    assert updated[0]["numberRecordsFailed"] == 0
    acme_now = sf.Account.get(acme)
    # "#N/A" clears a field, an empty cell leaves it unchanged
    assert (acme_now["Phone"], acme_now["Website"], acme_now["Industry"]) == ("+1 999", None, "Technology")

    upserted = sf.bulk2.Account.upsert(
        records=[
            {"HubSpot_Id__c": "hs-acme", "Name": "Acme Corporation"},
            {"HubSpot_Id__c": "hs-bulk", "Name": "Bulkco"},
        ],
        external_id_field="HubSpot_Id__c",
        wait=WAIT,
    )
    outcome = sf.bulk2.Account.get_all_ingest_records(upserted[0]["job_id"])
    created = {r["HubSpot_Id__c"]: r["sf__Created"] for r in outcome["successfulRecords"]}
    assert created == {"hs-acme": "false", "hs-bulk": "true"}
    assert sf.Account.get(acme)["Name"] == "Acme Corporation"

    bulkco = sf.Account.get_by_custom_id("HubSpot_Id__c", "hs-bulk")["Id"]
    deleted = sf.bulk2.Account.delete(records=[{"Id": bulkco}, {"Id": "001000000000000AAA"}], wait=WAIT)
    assert deleted[0]["numberRecordsFailed"] == 1
    assert sf.query(f"SELECT Id FROM Account WHERE Id = '{bulkco}'")["totalSize"] == 0


def test_lead_assignment_only_with_a_job_assignment_rule(sandbox: SandboxSession, sf: Any) -> None:
    """OWN-2: Bulk API runs assignment rules only when the job names one."""
    users = {r["Username"]: r["Id"] for r in sf.query("SELECT Id, Username FROM User")["records"]}
    plain = sf.bulk2.Lead.insert(records=[{"LastName": "Bulk", "Company": "B"}], wait=WAIT)
    plain_id = sf.bulk2.Lead.get_all_ingest_records(plain[0]["job_id"])["successfulRecords"][0]["sf__Id"]
    assert sf.Lead.get(plain_id)["OwnerId"] == users["ada@example.com"]

    rule = sf.query("SELECT Id FROM AssignmentRule WHERE Name = 'Web leads'")["records"][0]["Id"]
    http = sandbox.http()
    job = http.post(
        jobs_url(sandbox, "ingest"), json={"object": "Lead", "operation": "insert", "assignmentRuleId": rule}
    ).json()
    assert job["assignmentRuleId"] == rule
    http.put(f"{jobs_url(sandbox, 'ingest')}/{job['id']}/batches", data=b"LastName,Company\nRouted,R\n",
             headers={"Content-Type": "text/csv"})  # fmt: skip
    http.patch(f"{jobs_url(sandbox, 'ingest')}/{job['id']}", json={"state": "UploadComplete"})
    done = sf.bulk2.Lead.get_all_ingest_records(job["id"])["successfulRecords"]
    assert sf.Lead.get(done[0]["sf__Id"])["OwnerId"] == users["rita@example.com"]


def test_crlf_jobs(sf: Any) -> None:
    records = [{"Name": "Crlf One"}, {"Name": "Crlf Two"}]
    result = sf.bulk2.Account.insert(records=records, line_ending=LineEnding.CRLF, wait=WAIT)
    assert result[0]["numberRecordsFailed"] == 0
    assert sf.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Crlf%'")["totalSize"] == 2


def test_jobs_with_bad_data_fail_as_a_whole(sandbox: SandboxSession, sf: Any) -> None:
    with pytest.raises(SalesforceOperationError, match="Field name not found : Colour__c"):
        sf.bulk2.Account.insert(records=[{"Name": "X", "Colour__c": "red"}], wait=WAIT)
    http = sandbox.http()
    job = http.post(jobs_url(sandbox, "ingest"), json={"object": "Account", "operation": "insert"}).json()
    http.put(f"{jobs_url(sandbox, 'ingest')}/{job['id']}/batches", data=b"Name\r\nWrong endings\r\n")
    http.patch(f"{jobs_url(sandbox, 'ingest')}/{job['id']}", json={"state": "UploadComplete"})
    info = http.get(f"{jobs_url(sandbox, 'ingest')}/{job['id']}").json()
    assert info["state"] == "Failed"
    assert "LineEnding is invalid" in info["errorMessage"]


def test_job_lifecycle(sandbox: SandboxSession) -> None:
    http = sandbox.http()
    ingest = jobs_url(sandbox, "ingest")
    created = http.post(
        ingest, json={"object": "Account", "operation": "upsert", "externalIdFieldName": "HubSpot_Id__c",
                      "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA"},
    )  # fmt: skip
    assert created.status_code == 200
    job = created.json()
    assert (job["state"], job["operation"], job["object"], job["externalIdFieldName"]) == (
        "Open", "upsert", "Account", "HubSpot_Id__c",
    )  # fmt: skip
    assert job["contentUrl"] == f"services/data/v59.0/jobs/ingest/{job['id']}/batches"
    assert job["id"] in {j["id"] for j in http.get(ingest).json()["records"]}
    assert http.delete(f"{ingest}/{job['id']}").status_code == 400  # an open job cannot be deleted

    aborted = http.patch(f"{ingest}/{job['id']}", json={"state": "Aborted"}).json()
    assert aborted["state"] == "Aborted"
    assert http.put(f"{ingest}/{job['id']}/batches", data=b"Name\nx\n").status_code == 409
    assert http.delete(f"{ingest}/{job['id']}").status_code == 204
    assert http.get(f"{ingest}/{job['id']}").status_code == 404

    query = jobs_url(sandbox, "query")
    qjob = http.post(query, json={"operation": "query", "query": "SELECT Id FROM Account"}).json()
    assert qjob["state"] == "UploadComplete"
    info = http.get(f"{query}/{qjob['id']}").json()
    assert (info["state"], info["numberRecordsProcessed"], info["jobType"]) == ("JobComplete", 8, "V2Query")
    results = http.get(f"{query}/{qjob['id']}/results", params={"maxRecords": 5})
    assert results.headers["Sforce-NumberOfRecords"] == "5"
    assert results.headers["Sforce-Locator"] not in ("", "null")
    assert results.headers["Sforce-Limit-Info"].startswith("api-usage=")
    assert qjob["id"] in {j["id"] for j in http.get(query).json()["records"]}
    assert http.delete(f"{query}/{qjob['id']}").status_code == 204
    assert http.get(f"{query}/{qjob['id']}").status_code == 404
