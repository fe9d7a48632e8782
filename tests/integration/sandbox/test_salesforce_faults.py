"""Injected faults, request stats and reset on the Salesforce emulator (``/__sandbox/``), seen
through simple-salesforce: statuses in Salesforce's error shape, one failed record per batch."""

from __future__ import annotations

from typing import Any

import pytest
from crm_sandbox.salesforce.testing import SandboxSession, session_fixtures
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

QUERY_PATH = r"/services/data/v[0-9.]+/query/?$"  # simple-salesforce adds the slash


sandbox, _fresh, sf = session_fixtures()


@pytest.mark.parametrize(
    ("status", "code"),
    [(429, "REQUEST_LIMIT_EXCEEDED"), (500, "UNKNOWN_EXCEPTION"), (503, "SERVER_UNAVAILABLE")],
)
def test_injected_statuses_use_salesforce_error_json(
    sandbox: SandboxSession, sf: Any, status: int, code: str
) -> None:
    sandbox.add_faults(
        [{"method": "GET", "path": QUERY_PATH, "status": status, "retry_after": 2, "count": 1}]
    )
    with pytest.raises(SalesforceGeneralError) as exc:
        sf.query("SELECT Id FROM Account")
    assert exc.value.status == status
    assert exc.value.content[0]["errorCode"] == code
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 8  # the fault applied once


def test_injected_fault_carries_retry_after(sandbox: SandboxSession) -> None:
    sandbox.add_faults([{"path": QUERY_PATH, "status": 503, "retry_after": 7}])
    response = sandbox.http().get(
        f"{sandbox.url}/services/data/v59.0/query", params={"q": "SELECT Id FROM User"}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"


def test_injected_auth_and_refusal_statuses_map_to_client_exceptions(
    sandbox: SandboxSession, sf: Any
) -> None:
    sandbox.add_faults([{"path": QUERY_PATH, "status": 401}, {"path": QUERY_PATH, "status": 403}])
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Account")
    with pytest.raises(SalesforceRefusedRequest):
        sf.query("SELECT Id FROM Account")


def test_delayed_request_still_answers(sandbox: SandboxSession, sf: Any) -> None:
    sandbox.add_faults([{"path": QUERY_PATH, "delay": 0.2}])
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 8
    stats = sandbox.stats()
    assert (stats["faults_applied"], stats["faults_pending"]) == (1, 0)


def test_record_error_fails_one_record_of_a_collection(sandbox: SandboxSession, sf: Any) -> None:
    sandbox.add_faults(
        [{"method": "POST", "path": "/composite/sobjects$", "record_error": "UNABLE_TO_LOCK_ROW"}]
    )
    records = [{"attributes": {"type": "Account"}, "Name": f"Locked {i}"} for i in range(3)]
    results = sf.restful("composite/sobjects", method="POST", json={"records": records})
    assert [r["success"] for r in results] == [False, True, True]
    assert results[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert sf.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Locked%'")["totalSize"] == 2

    sandbox.add_faults(
        [{"method": "POST", "path": "/composite/sobjects$", "record_error": "UNABLE_TO_LOCK_ROW"}]
    )
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK", "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    ]  # fmt: skip
    assert sf.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Locked%'")["totalSize"] == 2


def test_record_error_fails_one_record_of_a_bulk_job(sandbox: SandboxSession, sf: Any) -> None:
    sandbox.add_faults([{"method": "PATCH", "path": "/jobs/ingest/", "record_error": "UNABLE_TO_LOCK_ROW"}])
    result = sf.bulk2.Account.insert(records=[{"Name": f"Bulk lock {i}"} for i in range(4)], wait=0.01)
    assert (result[0]["numberRecordsProcessed"], result[0]["numberRecordsFailed"]) == (4, 1)
    failed = sf.bulk2.Account.get_all_ingest_records(result[0]["job_id"])["failedRecords"]
    assert [f["sf__Error"].split(":")[0] for f in failed] == ["UNABLE_TO_LOCK_ROW"]


def test_stats_count_requests_by_route(sandbox: SandboxSession, sf: Any) -> None:
    sf.query("SELECT Id FROM Account")
    sf.query("SELECT Id FROM Contact")
    sf.Account.describe()
    stats = sandbox.stats()
    by_route = {(r["method"], r["path"]): r["count"] for r in stats["requests"]}
    assert by_route[("GET", "/services/data/{version}/query")] == 2
    assert by_route[("GET", "/services/data/{version}/sobjects/{sobject}/describe")] == 1
    assert stats["total"] == 3


def test_reset_restores_the_seeded_org(sandbox: SandboxSession, sf: Any) -> None:
    sf.Account.create({"Name": "Temporary"})
    globex = sf.query("SELECT Id FROM Account WHERE Name = 'Globex'")["records"][0]["Id"]
    sf.Account.update(globex, {"Industry": "Media"})
    sandbox.add_faults([{"path": QUERY_PATH, "status": 500, "count": 5}])
    sandbox.reset()
    assert sf.query("SELECT COUNT() FROM Account WHERE Name = 'Temporary'")["totalSize"] == 0
    assert sf.Account.get(globex)["Industry"] == "Energy"  # same seeded ids after reset
    assert sf.limits()["DailyApiRequests"]["Remaining"] == 100_000 - 3
