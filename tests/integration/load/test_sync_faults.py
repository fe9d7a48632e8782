"""Faults while loading: each ends in the same CRM state as a fault-free sync, with no duplicate.

Faults are injected through the sandbox's ``/__sandbox/faults`` (the emulators answer exactly
what the real APIs answer under rate limits, outages, per-record validation errors and expired
sessions); the state is read back through the real clients and compared with a fault-free sync
of the same scenario.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException
from crm_sandbox.scenario import load_scenario
from crm_sync import staging
from crm_sync.load.writer import BatchFailedError
from crm_sync.tasks import failfast, runs
from crm_sync.tasks.load import commit, load_target

from tests.crm_readback import crm_state
from tests.integration.extract.support import Sandbox, StagingDbs
from tests.integration.sync_harness import load_run, plan_run, sync

pytestmark = pytest.mark.slow

#: Short retry budgets, so that a fault that outlasts them fails a batch within the test.
FAST = {"retry_budget_seconds": 2}


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    """Both CRMs after a fault-free sync of the demo scenario (the state every faulty run must reach)."""
    monkeypatch = pytest.MonkeyPatch()
    from crm_sandbox.server import running_sandbox

    try:
        with running_sandbox(load_scenario("demo")) as endpoints:
            box = Sandbox(endpoints, monkeypatch)
            box.connect()
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(endpoints.ca_bundle))
            StagingDbs("sqlite", tmp_path_factory.mktemp("clean"), monkeypatch).use()
            sync("clean-1", 0)
            return crm_state(box.salesforce(), box.hubspot())
    finally:
        staging.dispose_engines()
        monkeypatch.undo()


@pytest.fixture
def box(sandbox_for: Callable[..., Sandbox], sqlite_dbs: StagingDbs) -> Sandbox:
    sandbox = sandbox_for(load_scenario("demo"))
    sandbox.connect(sf_extra=FAST, hs_extra=FAST)
    sqlite_dbs.use()
    return sandbox


def dead_letters() -> list[dict[str, Any]]:
    frame = staging.read_frame(staging.staging_engine(), "dead_letter")
    return frame[frame["resolved_at"].isna()].to_dict("records")


def test_a_429_storm_on_hubspot_writes_is_ridden_out(box: Sandbox, expected: dict[str, Any]) -> None:
    box.faults(
        "hubspot",
        [
            {
                "method": "POST",
                "path": r"/batch/(upsert|update)$",
                "status": 429,
                "retry_after": 0.2,
                "count": 6,
            }
        ],
    )
    sync("run-1", 0)
    assert box.stats("hubspot")["faults_applied"] == 6
    assert crm_state(box.salesforce(), box.hubspot()) == expected


def test_500s_and_503s_on_salesforce_writes_are_retried_without_duplicates(
    box: Sandbox, expected: dict[str, Any]
) -> None:
    box.faults(
        "salesforce",
        [
            {"method": "PATCH", "path": r"/composite/sobjects/\w+/HubSpot_Id__c$", "status": 503, "count": 2},
            {"method": "PATCH", "path": r"/composite/sobjects$", "status": 500, "count": 2},
        ],
    )
    sync("run-1", 0)
    assert box.stats("salesforce")["faults_applied"] == 4
    assert crm_state(box.salesforce(), box.hubspot()) == expected


def test_a_timeout_whose_write_went_through_is_not_written_twice(
    box: Sandbox, expected: dict[str, Any]
) -> None:
    box.connect(sf_extra={**FAST, "timeout": 1}, hs_extra={**FAST, "timeout": 1})
    box.faults("hubspot", [{"method": "POST", "path": r"/batch/upsert$", "delay": 1.5, "count": 1}])
    sync("run-1", 0)
    assert crm_state(box.salesforce(), box.hubspot()) == expected


def test_a_rejected_record_waits_as_a_dead_letter_and_the_rest_is_written(
    box: Sandbox, expected: dict[str, Any]
) -> None:
    box.faults(
        "salesforce",
        [
            {
                "method": "PATCH",
                "path": r"/composite/sobjects/Lead/HubSpot_Id__c$",
                "record_error": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "count": 1,
            }
        ],
    )
    sync("run-1", 0)
    letters = [d for d in dead_letters() if d["error_code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"]
    assert [(d["target"], d["object"]) for d in letters] == [("salesforce", "Lead")]
    state = crm_state(box.salesforce(), box.hubspot())
    assert len(state["salesforce.Lead"]) == len(expected["salesforce.Lead"]) - 1
    assert state["salesforce.Opportunity"] == expected["salesforce.Opportunity"]

    sync("run-2", 1)  # the fault is gone: the next run writes the record and closes the letter
    assert not [d for d in dead_letters() if d["error_code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"]
    assert crm_state(box.salesforce(), box.hubspot()) == expected


def test_an_expired_session_fails_the_load_at_once_and_a_rerun_finishes(
    box: Sandbox, expected: dict[str, Any]
) -> None:
    ctx = plan_run("run-1", 0)
    box.faults("salesforce", [{"method": "PATCH", "path": r"/composite/sobjects", "status": 401, "count": 1}])
    with pytest.raises(AirflowFailException, match="salesforce_default"):
        failfast.run(load_target, "salesforce", run_id="run-1")
    load_run("run-1")  # the task is cleared once the connection is fixed
    commit(run_id="run-1")
    runs.finish_run(ctx)
    assert crm_state(box.salesforce(), box.hubspot()) == expected


def test_a_load_that_dies_between_batches_is_finished_by_a_rerun(
    box: Sandbox, expected: dict[str, Any]
) -> None:
    ctx = plan_run("run-1", 0)
    # HubSpot keeps failing the contact writes past the retry budget: the task fails midway,
    # after pipelines and companies were written.
    load_target("salesforce", run_id="run-1")
    box.faults(
        "hubspot", [{"method": "POST", "path": r"/objects/contacts/batch/", "status": 500, "count": 1000}]
    )
    with pytest.raises(BatchFailedError):
        load_target("hubspot", run_id="run-1")
    requests.delete(f"{box.endpoints.hubspot_url}/__sandbox/faults", timeout=10).raise_for_status()
    first_attempt = journaled("hubspot")
    assert {"pipelines", "companies"} <= {obj for obj, _ in first_attempt}
    load_target("hubspot", run_id="run-1")  # Airflow's retry of the task
    commit(run_id="run-1")
    runs.finish_run(ctx)
    assert crm_state(box.salesforce(), box.hubspot()) == expected
    # rows the first attempt wrote were not written again by the retry
    retried = journaled("hubspot")
    assert all(retried[key] == when for key, when in first_attempt.items())


def journaled(target: str) -> dict[tuple[str, int], Any]:
    """(object, seq) -> written_at of the rows a load journaled as written."""
    frame = staging.read_frame(staging.staging_engine(), "load_journal")
    done = frame[(frame["target"] == target) & frame["ok"].astype(bool)]
    return {(o, int(s)): w for o, s, w in zip(done["object"], done["seq"], done["written_at"], strict=True)}
