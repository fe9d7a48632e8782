"""HubSpotWriter through the real hubspot-api-client against the HubSpot emulator (no mocks).

Each test writes load items, then reads the portal back through the client: the state a user
sees in HubSpot, and the outcomes the runner bookkeeps. Faults (429 storms, a lost answer, one
bad record in a batch) are injected with ``/__sandbox/faults``.
"""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Iterator
from typing import Any

import hubspot
import pytest
from crm_sandbox.hubspot.testing import FakeClock, client_fixtures, hubspot_sandbox, sandbox_call
from crm_sync.connections import CrmConnectionError
from crm_sync.load.hubspot import HubSpotWriter
from crm_sync.load.hubspot_results import UNIQUE_PROPERTY
from crm_sync.load.writer import (
    BatchFailedError,
    LoadItem,
    LoadStoppedError,
    WriteOutcome,
    Writer,
    WriterSetupError,
)

SCENARIO: dict[str, Any] = {
    "hubspot": {
        "companies": [
            {"id": "101", "properties": {"name": "Acme", "domain": "acme.com"}},
            {"id": "102", "properties": {"name": "Globex", "domain": "globex.com"}},
        ],
        "contacts": [{"id": "201", "properties": {"email": "ada@acme.com", "firstname": "Ada"}}],
        "deals": [
            {"id": "301", "properties": {"dealname": "Has a primary", "dealstage": "appointmentscheduled"}},
            {"id": "302", "properties": {"dealname": "No company", "dealstage": "appointmentscheduled"}},
        ],
        # Deal 301's primary company is Acme, chosen by a user.
        "associations": [{"from": ["deals", 301], "to": ["companies", 101], "typeId": 5}],
    }
}

base_url, client = client_fixtures(SCENARIO)


@pytest.fixture
def writer(client: hubspot.HubSpot) -> Iterator[HubSpotWriter]:
    w = HubSpotWriter(client, retry_budget=60.0, requests_per_10s=190)
    w.prepare()
    yield w
    w.close()


def item(seq: int, obj: str, action: str, fields: dict[str, Any], **ids: str | None) -> LoadItem:
    return LoadItem(
        seq=seq,
        target="hubspot",
        object=obj,
        action=action,
        source_id=ids.get("source_id"),
        target_id=ids.get("target_id"),
        fields=fields,
        rules=("TEST",),
    )


def company_creates(n: int, start: int = 0) -> list[LoadItem]:
    return [
        item(
            start + i,
            "companies",
            "create",
            {"name": f"Co {i}", "domain": f"co{i}.example"},
            source_id=f"001A{i:05d}",
        )
        for i in range(n)
    ]


def all_records(client: hubspot.HubSpot, object_type: str, *properties: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = client.crm.objects.basic_api.get_page(
            object_type, limit=100, after=after, properties=[UNIQUE_PROPERTY, *properties]
        )
        out.extend({"id": r.id, **r.properties} for r in page.results)
        if page.paging is None or page.paging.next is None:
            return out
        after = page.paging.next.after


def by_seq(outcomes: list[WriteOutcome]) -> dict[int, WriteOutcome]:
    return {o.seq: o for o in outcomes}


def test_prepare_creates_the_unique_property_once(client: hubspot.HubSpot, writer: HubSpotWriter) -> None:
    for object_type in ("companies", "contacts", "deals"):
        prop = client.crm.properties.core_api.get_by_name(object_type, UNIQUE_PROPERTY)
        assert prop.has_unique_value is True
    writer.prepare()  # a second run finds them and creates nothing
    stats = sandbox_call(writer_base(client), "GET", "stats")
    creates = [
        r for r in stats["requests"] if r["method"] == "POST" and r["path"].startswith("/crm/v3/properties")
    ]
    assert sum(r["count"] for r in creates) == 3


def writer_base(client: hubspot.HubSpot) -> str:
    return str(client.config["host"])


def test_creates_are_idempotent_upserts(client: hubspot.HubSpot, writer: HubSpotWriter) -> None:
    items = company_creates(250)
    first = by_seq(writer.write("companies", "create", items))
    assert all(o.ok for o in first.values()), [o for o in first.values() if not o.ok][:3]
    assert len(first) == 250
    second = by_seq(writer.write("companies", "create", items))
    assert {s: o.target_id for s, o in second.items()} == {s: o.target_id for s, o in first.items()}
    records = [r for r in all_records(client, "companies", "name") if r.get(UNIQUE_PROPERTY)]
    assert len(records) == 250
    assert {r[UNIQUE_PROPERTY]: r["id"] for r in records} == {
        i.source_id: first[i.seq].target_id for i in items
    }


def test_update_link_and_delete(client: hubspot.HubSpot, writer: HubSpotWriter) -> None:
    [created] = writer.write("companies", "create", company_creates(1))
    updated = writer.write(
        "companies",
        "update",
        [
            item(10, "companies", "update", {"name": "Renamed"}, target_id=created.target_id),
            item(11, "companies", "link", {"salesforceaccountid": "001X"}, target_id="101"),
        ],
    )
    assert all(o.ok for o in updated)
    names = {r["id"]: r for r in all_records(client, "companies", "name", "salesforceaccountid")}
    assert names[str(created.target_id)]["name"] == "Renamed"
    assert names["101"]["salesforceaccountid"] == "001X"
    deleted = writer.write(
        "companies",
        "delete",
        [
            item(12, "companies", "delete", {}, target_id="101"),
            item(13, "companies", "delete", {}, target_id="999"),
        ],
    )
    assert all(o.ok for o in deleted)  # a record already gone counts as deleted
    assert "101" not in {r["id"] for r in all_records(client, "companies")}


def faults(client: hubspot.HubSpot, *rules: dict[str, Any]) -> None:
    sandbox_call(writer_base(client), "POST", "faults", list(rules))


def stats(client: hubspot.HubSpot) -> dict[str, Any]:
    result: dict[str, Any] = sandbox_call(writer_base(client), "GET", "stats")
    return result


def calls(client: hubspot.HubSpot, method: str, path: str, raw: str | None = None) -> int:
    """Requests to a path: ``path`` is a route template, or a part of one; a request a fault
    answered before routing is counted under its ``raw`` path."""
    return sum(
        r["count"]
        for r in stats(client)["requests"]
        if r["method"] == method
        and (r["path"] == raw or (path in r["path"] if raw is None else r["path"] == path))
    )


# -- per-record errors -----------------------------------------------------------------------------


def bad_batch() -> list[LoadItem]:
    items = company_creates(150)
    items[37] = item(37, "companies", "create", {"name": "Bad", "industry": "ALCHEMY"}, source_id="001BAD1")
    items[80] = item(80, "companies", "create", {"name": "Rollup", "total_revenue": 5}, source_id="001BAD2")
    return items


@pytest.mark.parametrize("multi_status", [True, False], ids=["207-multi-status", "whole-batch-400-bisected"])
def test_a_bad_record_fails_alone_and_the_rest_is_written(
    client: hubspot.HubSpot, multi_status: bool
) -> None:
    writer = HubSpotWriter(client, retry_budget=60.0, requests_per_10s=190, multi_status=multi_status)
    writer.prepare()
    outcomes = by_seq(writer.write("companies", "create", bad_batch()))
    writer.close()
    assert len(outcomes) == 150
    assert (outcomes[37].error_code, outcomes[37].retryable) == ("INVALID_OPTION", False)
    assert "ALCHEMY" in str(outcomes[37].message)
    assert (outcomes[80].error_code, outcomes[80].retryable) == ("READ_ONLY_VALUE", False)
    assert sum(o.ok for o in outcomes.values()) == 148
    written = {r[UNIQUE_PROPERTY] for r in all_records(client, "companies") if r.get(UNIQUE_PROPERTY)}
    assert len(written) == 148
    assert not written & {"001BAD1", "001BAD2"}
    upserts = calls(client, "POST", "batch/upsert")
    assert upserts == 2 if multi_status else upserts <= 2 + 2 * 2 * 7  # two bisections of depth <= 7


def test_an_injected_record_error_is_reported_with_its_code(
    client: hubspot.HubSpot, writer: HubSpotWriter
) -> None:
    faults(client, {"method": "POST", "path": "batch/update", "record_error": "VALIDATION_ERROR"})
    items = [
        item(i, "companies", "update", {"description": f"d{i}"}, target_id=t)
        for i, t in ((1, "101"), (2, "102"))
    ]
    outcomes = by_seq(writer.write("companies", "update", items))
    assert [o.seq for o in outcomes.values() if not o.ok] == [1]
    assert outcomes[1].error_code == "VALIDATION_ERROR"
    assert outcomes[2].ok


def test_update_of_a_missing_record_is_a_permanent_failure(
    client: hubspot.HubSpot, writer: HubSpotWriter
) -> None:
    items = [
        item(1, "companies", "update", {"name": "X"}, target_id="99999"),
        item(2, "companies", "update", {"name": "Y"}, target_id="102"),
    ]
    outcomes = by_seq(writer.write("companies", "update", items))
    assert (outcomes[1].error_code, outcomes[1].retryable) == ("OBJECT_NOT_FOUND", False)
    assert outcomes[2].ok


# -- faults: rate limits, server errors, lost answers ------------------------------------------------


def test_a_429_storm_is_ridden_out(client: hubspot.HubSpot, writer: HubSpotWriter) -> None:
    faults(
        client, {"method": "POST", "path": "batch/upsert", "status": 429, "retry_after": 0.05, "count": 25}
    )
    outcomes = writer.write("companies", "create", company_creates(300))
    assert all(o.ok for o in outcomes)
    assert stats(client)["by_status"]["429"] == 25
    assert writer.transport.rate_limited == 25
    assert len([r for r in all_records(client, "companies") if r.get(UNIQUE_PROPERTY)]) == 300


def test_server_errors_on_idempotent_writes_are_retried(
    client: hubspot.HubSpot, writer: HubSpotWriter
) -> None:
    faults(client, {"method": "POST", "path": "batch/update", "status": 503, "count": 2})
    [outcome] = writer.write(
        "companies", "update", [item(1, "companies", "update", {"name": "A2"}, target_id="101")]
    )
    assert outcome.ok
    assert calls(client, "POST", "batch/update") == 3


def test_a_create_whose_answer_was_lost_is_not_duplicated(client: hubspot.HubSpot) -> None:
    writer = HubSpotWriter(client, timeout=1.0, retry_budget=60.0, requests_per_10s=190)
    writer.prepare()
    # The first upsert is answered after the client gave up waiting: it lands, its answer is lost.
    faults(client, {"method": "POST", "path": "batch/upsert", "delay": 2.0, "count": 1})
    items = company_creates(20)
    outcomes = by_seq(writer.write("companies", "create", items))
    writer.close()
    assert all(o.ok for o in outcomes.values())
    assert writer.transport.retries >= 1
    # Read back only once the delayed upsert has landed too (the read is held longer server-side).
    faults(client, {"method": "GET", "path": "^/crm/v3/objects/companies$", "delay": 3.0, "count": 1})
    records = [r for r in all_records(client, "companies") if r.get(UNIQUE_PROPERTY)]
    assert sorted(r[UNIQUE_PROPERTY] for r in records) == sorted(str(i.source_id) for i in items)
    assert {r["id"] for r in records} == {o.target_id for o in outcomes.values()}
    sent = calls(client, "POST", "/crm/v3/objects/{objectType}/batch/upsert", raw="")
    assert sent == writer.transport.retries + 1


def test_a_whole_batch_failing_past_the_budget_fails_the_write(client: hubspot.HubSpot) -> None:
    writer = HubSpotWriter(client, retry_budget=1.0, requests_per_10s=190)
    faults(client, {"method": "POST", "path": "batch/update", "status": 500, "count": 100})
    with pytest.raises(BatchFailedError, match="retry_budget_seconds"):
        writer.write("companies", "update", [item(1, "companies", "update", {"name": "A2"}, target_id="101")])
    writer.close()


# -- pipelines --------------------------------------------------------------------------------------


def pipeline_item(seq: int, label: str, *stages: str) -> LoadItem:
    fields = {
        "label": label,
        "displayOrder": 3,
        "stages": [
            {
                "label": s,
                "displayOrder": i,
                "metadata": {"probability": "1.0" if s == "Won" else "0.2", "isClosed": s == "Won"},
            }
            for i, s in enumerate(stages)
        ],
    }
    return item(seq, "pipelines", "create", fields, source_id="012RT")


def test_pipelines_are_created_once_with_their_stages(client: hubspot.HubSpot, writer: HubSpotWriter) -> None:
    [first] = writer.write("pipelines", "create", [pipeline_item(1, "Salesforce - Partner", "New", "Won")])
    assert first.ok
    assert [label for label, _ in first.children] == ["New", "Won"]
    [again] = writer.write(
        "pipelines", "create", [pipeline_item(2, "Salesforce - Partner", "New", "Won", "Lost")]
    )
    assert again.target_id == first.target_id
    assert dict(again.children)["Won"] == dict(first.children)["Won"]
    assert list(dict(again.children)) == ["New", "Won", "Lost"]
    assert calls(client, "POST", "/crm/v3/pipelines/{objectType}", raw="") == 1
    assert writer.stage_ids(str(first.target_id)) == dict(again.children)
    pipeline = client.crm.pipelines.pipelines_api.get_by_id("deals", str(first.target_id))
    assert [s.label for s in pipeline.stages] == ["New", "Won", "Lost"]
    assert {s.label: s.metadata["isClosed"] for s in pipeline.stages}["Won"] == "true"


def test_a_stage_is_added_and_a_pipeline_renamed(client: hubspot.HubSpot, writer: HubSpotWriter) -> None:
    stage = {
        "pipelineId": "default",
        "label": "Negotiation",
        "displayOrder": 4,
        "metadata": {"probability": "0.7", "isClosed": "false"},
    }
    [created] = writer.write(
        "pipelines", "create", [item(1, "pipelines", "create", stage, source_id="k/Negotiation")]
    )
    [again] = writer.write(
        "pipelines", "create", [item(2, "pipelines", "create", stage, source_id="k/Negotiation")]
    )
    assert created.ok
    assert again.target_id == created.target_id
    [renamed] = writer.write(
        "pipelines",
        "update",
        [item(3, "pipelines", "update", {"label": "Salesforce - Standard"}, target_id="default")],
    )
    assert renamed.ok
    pipeline = client.crm.pipelines.pipelines_api.get_by_id("deals", "default")
    assert pipeline.label == "Salesforce - Standard"
    assert [s.label for s in pipeline.stages].count("Negotiation") == 1
    [linked] = writer.write(
        "pipelines", "link", [item(4, "pipelines", "link", {}, source_id="k", target_id="default")]
    )
    assert linked.ok


def test_a_pipeline_create_that_failed_is_checked_before_it_is_sent_again(
    client: hubspot.HubSpot, writer: HubSpotWriter
) -> None:
    faults(client, {"method": "POST", "path": "^/crm/v3/pipelines/deals$", "status": 503, "count": 1})
    [outcome] = writer.write("pipelines", "create", [pipeline_item(1, "Salesforce - Retry", "New")])
    assert outcome.ok
    # the failed POST (answered by the fault before routing) and one more, after a look-up
    assert calls(client, "POST", "/crm/v3/pipelines/{objectType}", raw="/crm/v3/pipelines/deals") == 2
    assert calls(client, "GET", "/crm/v3/pipelines/{objectType}", raw="") == 2
    labels = [p.label for p in client.crm.pipelines.pipelines_api.get_all("deals").results]
    assert labels.count("Salesforce - Retry") == 1


# -- associations -----------------------------------------------------------------------------------


def assoc(
    seq: int, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int, action: str = "associate"
) -> LoadItem:
    fields = {
        "from_type": from_type,
        "from_id": from_id,
        "to_type": to_type,
        "to_id": to_id,
        "type_id": type_id,
    }
    return item(seq, "associations", action, fields)


def company_links(client: hubspot.HubSpot, deal_id: str) -> dict[str, set[int]]:
    page = client.crm.associations.v4.basic_api.get_page("deals", deal_id, "companies")
    return {str(r.to_object_id): {t.type_id for t in r.association_types} for r in page.results}


def test_associations_are_idempotent_and_keep_the_primary_company(
    client: hubspot.HubSpot, writer: HubSpotWriter
) -> None:
    items = [
        assoc(1, "deals", "301", "companies", "102", 5),  # 301's primary is Acme: stays Acme
        assoc(2, "deals", "302", "companies", "102", 5),  # 302 has none: Globex becomes primary
        assoc(3, "deals", "302", "contacts", "201", 3),
    ]
    for _ in range(2):
        outcomes = writer.write("associations", "associate", items)
        assert all(o.ok for o in outcomes)
    assert company_links(client, "301") == {"101": {5, 341}, "102": {341}}
    assert company_links(client, "302") == {"102": {5, 341}}
    contacts = client.crm.associations.v4.basic_api.get_page("deals", "302", "contacts").results
    assert [str(r.to_object_id) for r in contacts] == ["201"]
    removed = writer.write(
        "associations", "delete", [assoc(4, "deals", "302", "contacts", "201", 3, "delete")]
    )
    assert all(o.ok for o in removed)
    assert client.crm.associations.v4.basic_api.get_page("deals", "302", "contacts").results == []


def test_an_association_to_a_missing_record_fails_alone(
    client: hubspot.HubSpot, writer: HubSpotWriter
) -> None:
    items = [
        assoc(1, "deals", "302", "companies", "99999", 341),
        assoc(2, "deals", "302", "companies", "101", 341),
    ]
    outcomes = by_seq(writer.write("associations", "associate", items))
    assert (outcomes[1].ok, outcomes[2].ok) == (False, True)
    assert outcomes[1].error_code == "OBJECT_NOT_FOUND"


# -- set-up and connections ---------------------------------------------------------------------------


def test_from_connection_and_a_missing_scope_names_it(
    client: hubspot.HubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {
        "conn_type": "hubspot",
        "password": "tok",
        "extra": {"host": writer_base(client), "retry_budget_seconds": 5},
    }
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps(conn))
    writer = HubSpotWriter.from_connection()
    assert writer.transport.retry_budget == 5
    # The hook's client retries 5xx inside urllib3; the writer's must not, or retries double up.
    faults(client, {"method": "POST", "path": "batch/update", "status": 503, "count": 2})
    [updated] = writer.write(
        "companies", "update", [item(1, "companies", "update", {"name": "A"}, target_id="101")]
    )
    assert updated.ok
    assert writer.transport.retries == 2
    assert calls(client, "POST", "batch/update") == 3
    faults(client, {"method": "POST", "path": "^/crm/v3/properties/companies$", "status": 403})
    with pytest.raises(WriterSetupError, match=r"crm\.schemas\.companies\.write"):
        writer.prepare()
    writer.close()


# -- pacing ---------------------------------------------------------------------------------------------


def test_pacing_keeps_under_the_window_and_fills_it() -> None:
    """With a 10-requests-per-10-s portal, a 3,000-record load waits for the window instead of
    meeting 429s, and uses all but the margin of every window. Time is a shared fake clock that
    the writer advances when it waits, so the test runs instantly."""
    clock = FakeClock()
    with hubspot_sandbox({}, requests_per_10s=10, clock=clock) as url:
        client = hubspot.HubSpot(access_token="pace", host=url)
        writer = HubSpotWriter(client, max_parallel=1, requests_per_10s=10, clock=clock, sleep=clock.advance)
        started = clock()
        writer.prepare()
        outcomes = writer.write("companies", "create", company_creates(3000))
        writer.close()
        elapsed = clock() - started
        answered = sandbox_call(url, "GET", "stats")["by_status"]
    assert all(o.ok for o in outcomes)
    calls = writer.api_calls()
    assert calls == 6 + 30  # read + create of the property on three objects, 30 upserts
    assert "429" not in answered
    per_window = 10 - 1  # the pacer leaves one request of each window unused
    assert elapsed <= math.ceil(calls / per_window) * 10.0


# -- failing fast -----------------------------------------------------------------------------------------


def test_the_daily_limit_stops_the_load_cleanly() -> None:
    with hubspot_sandbox({}, daily_limit=4) as url:
        writer: Writer = HubSpotWriter(hubspot.HubSpot(access_token="day", host=url))
        with pytest.raises(LoadStoppedError, match="daily API limit"):
            writer.prepare()  # six calls; the fifth is refused
        assert writer.api_calls() == 5  # four answered, the fifth refused: nothing retried
        writer.close()


def test_a_rejected_token_fails_at_once_naming_the_fix() -> None:
    with hubspot_sandbox({"tokens": ["right"]}) as url:
        writer = HubSpotWriter(hubspot.HubSpot(access_token="wrong", host=url))
        with pytest.raises(CrmConnectionError, match="rejected the access token"):
            writer.prepare()
        assert writer.api_calls() == 1
        writer.close()


def test_an_unreachable_host_fails_at_once() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    writer = HubSpotWriter(hubspot.HubSpot(access_token="x", host=f"http://127.0.0.1:{port}"))
    with pytest.raises(CrmConnectionError, match="cannot reach the API"):
        writer.prepare()
    writer.close()


def test_a_contact_whose_email_is_taken_fails_with_the_existing_id(
    client: hubspot.HubSpot, writer: HubSpotWriter
) -> None:
    items = [
        item(1, "contacts", "create", {"email": "ADA@acme.com", "firstname": "Ada"}, source_id="003A"),
        item(2, "contacts", "create", {"email": "bob@acme.com", "firstname": "Bob"}, source_id="003B"),
    ]
    outcomes = by_seq(writer.write("contacts", "create", items))
    assert (outcomes[1].error_code, outcomes[1].retryable) == ("CONFLICT", False)
    assert "Existing ID: 201" in str(outcomes[1].message)
    assert outcomes[2].ok
    emails = {r["email"] for r in all_records(client, "contacts", "email")}
    assert emails == {"ada@acme.com", "bob@acme.com"}


def test_the_load_stops_at_the_daily_reserve() -> None:
    with hubspot_sandbox({}, daily_limit=40) as url:
        writer = HubSpotWriter(hubspot.HubSpot(access_token="day", host=url), daily_reserve=30)
        writer.prepare()  # six calls: 34 left
        with pytest.raises(LoadStoppedError, match=r"reserve of 30 \(extra.daily_reserve\)"):
            writer.write("companies", "create", company_creates(1000))
        answered = sandbox_call(url, "GET", "stats")["by_status"]
        writer.close()
    assert "429" not in answered  # stopped on its own, before HubSpot had to refuse anything
    assert writer.api_calls() <= 6 + 4 + writer.max_parallel  # calls already in flight may finish


def test_a_pipeline_create_that_keeps_failing_fails_the_batch_and_a_rerun_finishes(
    client: hubspot.HubSpot, writer: HubSpotWriter
) -> None:
    faults(client, {"method": "POST", "path": "^/crm/v3/pipelines/deals$", "status": 503, "count": 3})
    with pytest.raises(BatchFailedError, match="re-running the task"):
        writer.write("pipelines", "create", [pipeline_item(1, "Salesforce - Flaky", "New")])
    [outcome] = writer.write("pipelines", "create", [pipeline_item(1, "Salesforce - Flaky", "New")])
    assert outcome.ok
    labels = [p.label for p in client.crm.pipelines.pipelines_api.get_all("deals").results]
    assert labels.count("Salesforce - Flaky") == 1


def test_two_writers_sharing_a_token_leave_each_other_room() -> None:
    """The DAG's two load tasks may write to one portal at once with one token: each pacer reads
    what the other used from ``X-HubSpot-RateLimit-Remaining`` and keeps the sum under the limit."""
    clock = FakeClock()
    with hubspot_sandbox({}, requests_per_10s=10, clock=clock) as url:
        first = HubSpotWriter(
            hubspot.HubSpot(access_token="shared", host=url), requests_per_10s=10, clock=clock
        )
        first.prepare()  # six requests of the window
        second = HubSpotWriter(
            hubspot.HubSpot(access_token="shared", host=url),
            max_parallel=1,
            requests_per_10s=10,
            clock=clock,
            sleep=clock.advance,
        )
        outcomes = second.write("companies", "create", company_creates(1500))
        answered = sandbox_call(url, "GET", "stats")["by_status"]
        first.close()
        second.close()
    assert all(o.ok for o in outcomes)
    assert "429" not in answered


def test_a_missing_write_scope_fails_at_once(client: hubspot.HubSpot, writer: HubSpotWriter) -> None:
    faults(client, {"method": "POST", "path": "batch/upsert", "status": 403, "count": 5})
    with pytest.raises(WriterSetupError, match=r"crm\.objects\.companies\.write"):
        writer.write("companies", "create", company_creates(50))
    assert calls(client, "POST", "batch/upsert") == 1  # not retried, not split
