"""The Salesforce writer against the emulator, through simple-salesforce and plain HTTP: no mocks.

Each test writes plan groups with :class:`SalesforceWriter` and reads the org back with a real
client: creates are upserts (twice = once), per-record errors leave the rest written, transient
faults on idempotent requests are retried, contact roles are never duplicated, Bulk API 2.0 gives
the same end state as collections, and the load stops cleanly at the API reserve.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import requests
from crm_sandbox.salesforce.testing import SandboxSession, serve_salesforce, session_fixtures
from crm_sandbox.server import running_sandbox
from crm_sync.connections import CrmConnectionError
from crm_sync.load.salesforce import SalesforceWriter
from crm_sync.load.salesforce_bulk import csv_value, parse_bulk_error
from crm_sync.load.salesforce_http import (
    ApiAllowance,
    SalesforceTransport,
    WriteSettings,
    retry_after_seconds,
)
from crm_sync.load.writer import (
    BatchFailedError,
    LoadItem,
    LoadStoppedError,
    WriteOutcome,
    WriterSetupError,
)

sandbox, _fresh, sf = session_fixtures(airflow_env=True)


def writer(**settings: Any) -> SalesforceWriter:
    return SalesforceWriter(settings=WriteSettings(**{"retry_budget_seconds": 30.0, **settings}))


def create(obj: str, seq: int, source_id: str, **fields: Any) -> LoadItem:
    return LoadItem(
        seq=seq,
        target="salesforce",
        object=obj,
        action="create",
        source_id=source_id,
        target_id=None,
        fields={**fields, "HubSpot_Id__c": source_id} if obj != "OpportunityContactRole" else fields,
    )


def accounts(n: int, prefix: str = "hs-w") -> list[LoadItem]:
    return [
        create("Account", i, f"{prefix}-{i}", Name=f"Writer {prefix} {i}", Industry="Technology")
        for i in range(n)
    ]


def count(sf: Any, soql: str) -> int:
    return int(sf.query(soql)["totalSize"])


def by_seq(outcomes: Sequence[WriteOutcome]) -> dict[int, WriteOutcome]:
    result = {o.seq: o for o in outcomes}
    assert len(result) == len(outcomes), "one outcome per item"
    return result


def requests_to(stats: dict[str, Any], method: str, fragment: str) -> int:
    return sum(r["count"] for r in stats["requests"] if r["method"] == method and fragment in r["path"])


@pytest.mark.parametrize(
    ("bulk_threshold", "max_parallel"),
    [(10_000, 1), (10_000, 4), (0, 1)],
    ids=["collections-one-by-one", "collections-parallel", "bulk"],
)
def test_upserting_twice_makes_one_record_each_with_the_same_ids(
    sandbox: SandboxSession, sf: Any, bulk_threshold: int, max_parallel: int
) -> None:
    items = accounts(450)
    w = writer(bulk_threshold=bulk_threshold, bulk_job_rows=200, max_parallel=max_parallel)
    w.prepare()
    first = by_seq(w.write("Account", "create", items))
    second = by_seq(w.write("Account", "create", items))
    w.close()

    # 4 describes, then per run 3 collections of 200 or 3 Bulk jobs of 6 requests each
    assert w.api_calls() == sandbox.stats()["total"] == 4 + 2 * (3 if bulk_threshold else 3 * 6)

    assert all(o.ok for o in first.values())
    assert {s: o.target_id for s, o in first.items()} == {s: o.target_id for s, o in second.items()}
    assert count(sf, "SELECT Id FROM Account WHERE HubSpot_Id__c LIKE 'hs-w-%'") == 450
    record = sf.Account.get(first[7].target_id)
    assert (record["Name"], record["HubSpot_Id__c"]) == ("Writer hs-w 7", "hs-w-7")


def test_collections_and_bulk_reach_the_same_end_state(sf: Any) -> None:
    items = accounts(30, "hs-same")
    via_bulk = by_seq(writer(bulk_threshold=0, bulk_job_rows=7).write("Account", "create", items))
    via_collections = by_seq(writer().write("Account", "create", items))
    assert {s: o.target_id for s, o in via_bulk.items()} == {
        s: o.target_id for s, o in via_collections.items()
    }
    assert count(sf, "SELECT Id FROM Account WHERE HubSpot_Id__c LIKE 'hs-same-%'") == 30


@pytest.mark.parametrize("bulk_threshold", [10_000, 0], ids=["collections", "bulk"])
def test_a_bad_record_is_reported_with_its_code_and_the_rest_is_written(sf: Any, bulk_threshold: int) -> None:
    deal = {"CloseDate": "2026-09-30", "Amount": 1000.0}
    items = [
        create("Opportunity", 1, "hs-opp-1", Name="Good one", StageName="Prospecting", **deal),
        create("Opportunity", 2, "hs-opp-2", Name="Bad stage", StageName="Nearly Won", **deal),
        create("Opportunity", 3, "hs-opp-3", Name="Good two", StageName="Closed Won", **deal),
    ]
    outcomes = by_seq(writer(bulk_threshold=bulk_threshold).write("Opportunity", "create", items))

    assert outcomes[1].ok
    assert outcomes[3].ok
    assert outcomes[2].error_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert "Nearly Won" in (outcomes[2].message or "")
    assert outcomes[2].retryable is False
    names = {
        r["Name"]
        for r in sf.query("SELECT Name FROM Opportunity WHERE HubSpot_Id__c LIKE 'hs-opp-%'")["records"]
    }
    assert names == {"Good one", "Good two"}


def test_an_unknown_value_of_a_standard_picklist_is_written_as_in_a_default_org(sf: Any) -> None:
    outcomes = writer().write(
        "Account", "create", [create("Account", 1, "hs-pick", Name="Odd", Industry="Alchemy")]
    )
    assert outcomes[0].ok
    assert sf.Account.get(outcomes[0].target_id)["Industry"] == "Alchemy"


def test_transient_faults_on_upserts_are_retried_to_success(sandbox: SandboxSession, sf: Any) -> None:
    sandbox.add_faults(
        [
            {
                "method": "PATCH",
                "path": "composite/sobjects/Account",
                "status": 503,
                "retry_after": 0,
                "count": 2,
            },
            {"method": "PATCH", "path": "composite/sobjects/Account", "status": 500, "retry_after": 0},
            {"method": "PATCH", "path": "composite/sobjects/Account", "status": 429, "retry_after": 0},
        ]
    )
    outcomes = writer().write("Account", "create", accounts(250))

    assert all(o.ok for o in outcomes)
    assert count(sf, "SELECT Id FROM Account WHERE HubSpot_Id__c LIKE 'hs-w-%'") == 250
    stats = sandbox.stats()
    assert stats["faults_applied"] == 4
    assert requests_to(stats, "PATCH", "/composite/sobjects/") == 2 + 4


def test_records_failing_transiently_are_sent_again_and_permanent_failures_are_reported(
    sandbox: SandboxSession, sf: Any
) -> None:
    sandbox.add_faults(
        [
            {"method": "PATCH", "path": "composite/sobjects/Account", "record_error": "UNABLE_TO_LOCK_ROW"},
            {
                "method": "PATCH",
                "path": "composite/sobjects/Account",
                "record_error": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            },
        ]
    )
    outcomes = by_seq(writer().write("Account", "create", accounts(3)))

    # first request: record 0 locked -> sent again alone, where a validation rule rejects it
    assert outcomes[0].error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert outcomes[0].retryable is False
    assert outcomes[1].ok
    assert outcomes[2].ok
    assert requests_to(sandbox.stats(), "PATCH", "/composite/sobjects/") == 2
    assert count(sf, "SELECT Id FROM Account WHERE HubSpot_Id__c LIKE 'hs-w-%'") == 2


def test_an_api_version_without_collection_upserts_fails_prepare(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
    monkeypatch.setenv(
        "AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps({**conn, "extra": {**conn["extra"], "version": "45.0"}})
    )
    with pytest.raises(WriterSetupError, match=r"API version 45.0.*extra.version"):
        writer().prepare()


def test_a_batch_failing_past_its_retry_budget_fails_the_task_and_a_rerun_finishes(
    sandbox: SandboxSession, sf: Any
) -> None:
    sandbox.add_faults([{"method": "PATCH", "path": "composite/sobjects/Account", "status": 503}])
    with pytest.raises(BatchFailedError, match=r"HTTP 503.*re-run"):
        writer(retry_budget_seconds=0).write("Account", "create", accounts(5))
    rerun = writer().write("Account", "create", accounts(5))
    assert all(o.ok for o in rerun)
    assert count(sf, "SELECT Id FROM Account WHERE HubSpot_Id__c LIKE 'hs-w-%'") == 5


def test_bulk_jobs_survive_faults_and_report_failed_rows(sandbox: SandboxSession, sf: Any) -> None:
    sandbox.add_faults(
        [
            {"method": "POST", "path": "jobs/ingest$", "status": 503, "retry_after": 0},
            {"method": "PUT", "path": "jobs/ingest/.*/batches", "status": 500},  # upload fate unknown
            {"method": "PUT", "path": "jobs/ingest/.*/batches", "record_error": "DUPLICATES_DETECTED"},
        ]
    )
    outcomes = by_seq(writer(bulk_threshold=0).write("Account", "create", accounts(20)))

    assert outcomes[0].error_code == "DUPLICATES_DETECTED"
    assert all(outcomes[i].ok for i in range(1, 20))
    assert count(sf, "SELECT Id FROM Account WHERE HubSpot_Id__c LIKE 'hs-w-%'") == 19
    stats = sandbox.stats()
    # the job whose upload failed was aborted and the rows were sent again in a new job
    assert requests_to(stats, "POST", "/jobs/ingest") == 3
    assert requests_to(stats, "PUT", "/batches") == 2


def test_updates_links_and_deletes(sf: Any) -> None:
    w = writer()
    made = by_seq(w.write("Account", "create", accounts(3, "hs-u")))
    ids = [made[i].target_id for i in range(3)]

    def row(seq: int, action: str, target_id: str | None, **fields: Any) -> LoadItem:
        return LoadItem(seq, "salesforce", "Account", action, None, target_id, fields)

    updated = by_seq(
        w.write(
            "Account",
            "update",
            [row(10, "update", ids[0], Phone="+1 555"), row(11, "update", None, Phone="x")],
        )
    )
    linked = w.write("Account", "link", [row(12, "link", ids[1], HubSpot_Id__c="hs-u-relinked")])
    deleted = by_seq(w.write("Account", "delete", [row(13, "delete", ids[2]), row(14, "delete", ids[2])]))
    again = w.write("Account", "delete", [row(15, "delete", ids[2])])

    assert updated[10].ok
    assert updated[11].error_code == "MISSING_ARGUMENT"
    assert linked[0].ok
    assert all(o.ok for o in deleted.values())
    assert again[0].ok
    assert sf.Account.get(ids[0])["Phone"] == "+1 555"
    assert sf.Account.get(ids[1])["HubSpot_Id__c"] == "hs-u-relinked"
    assert count(sf, f"SELECT Id FROM Account WHERE Id = '{ids[2]}'") == 0


def _role_ids(sf: Any) -> dict[str, str]:
    def one(soql: str) -> str:
        return str(sf.query(soql)["records"][0]["Id"])

    return {
        "big": one("SELECT Id FROM Opportunity WHERE Name = 'Acme Big Deal'"),
        "renewal": one("SELECT Id FROM Opportunity WHERE Name = 'Acme Renewal'"),
        "alice": one("SELECT Id FROM Contact WHERE Email = 'alice@acme.com'"),
        "carol": one("SELECT Id FROM Contact WHERE Email = 'carol@globex.com'"),
        "existing": one("SELECT Id FROM OpportunityContactRole WHERE Role = 'Decision Maker'"),
    }


def test_contact_roles_are_not_created_blindly_again_and_never_duplicated(
    sandbox: SandboxSession, sf: Any
) -> None:
    ids = _role_ids(sf)
    items = [
        create(
            "OpportunityContactRole",
            1,
            "hs-a-1",
            OpportunityId=ids["big"],
            ContactId=ids["alice"],
            Role="Evaluator",
        ),
        create("OpportunityContactRole", 2, "hs-a-2", OpportunityId=ids["renewal"], ContactId=ids["alice"]),
        create(
            "OpportunityContactRole", 3, "hs-a-3", OpportunityId=ids["renewal"], ContactId=ids["carol"][:15]
        ),
    ]
    sandbox.add_faults([{"method": "POST", "path": "composite/sobjects$", "status": 500}])
    w = writer()
    outcomes = by_seq(w.write("OpportunityContactRole", "create", items))
    rerun = by_seq(w.write("OpportunityContactRole", "create", items))

    assert all(o.ok for o in outcomes.values())
    assert outcomes[1].target_id == ids["existing"]  # the pair existed: reported, not created again
    assert {s: o.target_id for s, o in outcomes.items()} == {s: o.target_id for s, o in rerun.items()}
    assert count(sf, f"SELECT Id FROM OpportunityContactRole WHERE OpportunityId = '{ids['renewal']}'") == 2
    stats = sandbox.stats()
    # the failed create was followed by a query of the org before the only other create
    assert requests_to(stats, "POST", "/composite/sobjects") == 2
    assert stats["faults_applied"] == 1


def test_lead_assignment_rules_apply_only_to_rows_that_ask_for_them(sf: Any) -> None:
    sam = sf.query("SELECT Id FROM User WHERE Username = 'sam@example.com'")["records"][0]["Id"]
    rita = sf.query("SELECT Id FROM User WHERE Username = 'rita@example.com'")["records"][0]["Id"]

    def lead(seq: int, rule: bool) -> LoadItem:
        return create(
            "Lead",
            seq,
            f"hs-l-{seq}",
            LastName=f"L{seq}",
            Company="Co",
            OwnerId=sam,
            _use_assignment_rule=rule,
        )

    for threshold in (10_000, 0):  # collections, then Bulk API 2.0 (assignmentRuleId per job)
        base = 10 * (threshold == 0)
        outcomes = by_seq(
            writer(bulk_threshold=threshold).write(
                "Lead", "create", [lead(base + 1, True), lead(base + 2, False)]
            )
        )
        assert sf.Lead.get(outcomes[base + 1].target_id)["OwnerId"] == rita  # the org's active rule
        assert sf.Lead.get(outcomes[base + 2].target_id)["OwnerId"] == sam  # Sforce-Auto-Assign: FALSE


def test_the_load_stops_cleanly_at_the_api_reserve(sandbox: SandboxSession, sf: Any) -> None:
    items = accounts(1000)
    with pytest.raises(LoadStoppedError, match=r"reserve of 99998") as stopped:
        writer(api_reserve=99_998).write("Account", "create", items)
    assert "extra.api_reserve" in str(stopped.value)
    written = count(sf, "SELECT Id FROM Account WHERE HubSpot_Id__c LIKE 'hs-w-%'")
    batches = requests_to(sandbox.stats(), "PATCH", "/composite/sobjects/")
    assert 0 < written < 1000
    assert written == 200 * batches  # stopped before a batch, never inside one

    finished = writer().write("Account", "create", items)  # the next run finishes the job
    assert all(o.ok for o in finished)
    assert count(sf, "SELECT Id FROM Account WHERE HubSpot_Id__c LIKE 'hs-w-%'") == 1000


def test_an_expired_session_names_the_connection(sandbox: SandboxSession) -> None:
    sandbox.add_faults([{"method": "PATCH", "path": "composite/sobjects", "status": 401}])
    with pytest.raises(CrmConnectionError, match=r"'salesforce_default'.*session is expired or invalid"):
        writer().write("Account", "create", accounts(2))


def test_a_connection_that_logs_in_itself_gets_a_new_session_on_401() -> None:
    """Login/OAuth connections: an expired session is renewed once and the request sent again."""
    scenario = {"salesforce": {}, "tokens": ["fresh-session"]}
    logins: list[str] = []

    def log_in_again() -> dict[str, str]:
        logins.append("login")
        return {"Authorization": "Bearer fresh-session"}

    with serve_salesforce(scenario) as endpoint:
        base = f"{endpoint.url}/services/data/v59.0/"
        http = SalesforceTransport(
            base, {"Authorization": "Bearer expired"}, "sf_login", WriteSettings(), refresh=log_in_again
        )
        http.session.trust_env = False
        http.session.verify = str(endpoint.ca_bundle)
        body = {
            "allOrNone": False,
            "records": [{"attributes": {"type": "Account"}, "Name": "A", "HubSpot_Id__c": "1"}],
        }
        result = http.request("PATCH", "composite/sobjects/Account/HubSpot_Id__c", body=body, idempotent=True)
        assert result.json()[0]["created"] is True
        assert logins == ["login"]

        stuck = SalesforceTransport(base, {"Authorization": "Bearer expired"}, "sf_login", WriteSettings())
        stuck.session.trust_env = False
        stuck.session.verify = str(endpoint.ca_bundle)
        with pytest.raises(CrmConnectionError, match=r"'sf_login'.*expired or invalid"):
            stuck.request("PATCH", "composite/sobjects/Account/HubSpot_Id__c", body=body, idempotent=True)
        http.close()
        stuck.close()


def test_an_org_out_of_daily_requests_stops_the_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The org itself refuses (403 REQUEST_LIMIT_EXCEEDED): stop as at the reserve, keep what was written."""
    with running_sandbox({"salesforce": {}}, options={"salesforce": {"daily_api_limit": 2}}) as endpoints:
        for key, value in endpoints.airflow_env().items():
            monkeypatch.setenv(key, value)
        w = writer(api_reserve=0, max_parallel=1)
        with pytest.raises(LoadStoppedError, match=r"API request limit is exhausted"):
            w.write("Account", "create", accounts(450))
        w.close()
        stats = requests.get(
            f"{endpoints.salesforce_url}/__sandbox/stats", timeout=10, verify=str(endpoints.ca_bundle)
        )
        assert stats.json()["by_status"] == {"200": 2, "403": 1}


@pytest.fixture
def org_without_external_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An org where the admin created ``HubSpot_Id__c`` on Account and Contact only."""
    options = {"salesforce": {"hubspot_id_objects": ["Account", "Contact"]}}
    with running_sandbox({"salesforce": {}}, options=options) as endpoints:
        for key, value in endpoints.airflow_env().items():
            monkeypatch.setenv(key, value)
        yield


@pytest.mark.usefixtures("org_without_external_ids")
def test_a_missing_external_id_field_fails_prepare_with_how_to_create_it() -> None:
    with pytest.raises(WriterSetupError) as failed:
        writer().prepare()
    message = str(failed.value)
    assert "HubSpot_Id__c on Lead, Opportunity" in message
    assert "'salesforce_default'" in message
    assert all(step in message for step in ("Text", "255", "External ID", "Unique"))


def test_outcomes_serialise_for_the_dead_letter_table(sf: Any) -> None:
    """Outcomes hold plain strings: what the runner stores as JSON."""
    bad = create("Opportunity", 1, "hs-x", Name="No stage", CloseDate="2026-01-01")
    outcome = writer().write("Opportunity", "create", [bad])[0]
    assert json.loads(json.dumps([outcome.error_code, outcome.message])) == [
        "REQUIRED_FIELD_MISSING",
        "Required fields are missing: [StageName] (fields: StageName)",
    ]


# -- pure helpers ---------------------------------------------------------------------------------


def test_retry_after_accepts_seconds_and_http_dates_and_reports_garbage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: retry now
    assert retry_after_seconds("soon") is None
    assert "unparseable Retry-After 'soon'" in caplog.text


def test_api_allowance_reads_the_usage_header_and_defaults_its_reserve() -> None:
    allowance = ApiAllowance(reserve=None)
    allowance.check("c")  # nothing known yet: no stop
    allowance.observe("api-usage=94001/100000; per-app-api-usage=17/250(appName=x)")
    assert (allowance.used, allowance.maximum, allowance.reserve) == (94001, 100000, 5000)
    allowance.check("c")
    allowance.observe("api-usage=95001/100000")
    with pytest.raises(LoadStoppedError, match=r"4999 left"):
        allowance.check("c")
    assert ApiAllowance(reserve=None).reserve is None
    small = ApiAllowance(reserve=None)
    small.observe("api-usage=1/15000")
    assert small.reserve == 1000


def test_bulk_csv_cells_and_errors() -> None:
    assert [csv_value(v) for v in (None, "", True, 3.0, 2.5, "a,b")] == [
        "#N/A",
        "#N/A",
        "true",
        "3",
        "2.5",
        "a,b",
    ]
    assert parse_bulk_error("REQUIRED_FIELD_MISSING:Required fields are missing: [Name]:Name --") == (
        "REQUIRED_FIELD_MISSING",
        "Required fields are missing: [Name]:Name",
    )
