"""crm_backfill_opportunities against the sandbox, read back through the real clients.

What a data engineer relies on after backfilling years of history: every Opportunity of the
range is one HubSpot deal in its record type's pipeline, with its contact and company; the
hourly sync's watermarks did not move; a backfill killed mid-way and re-triggered redoes no
finished chunk (the sandbox's request counts show it) and duplicates nothing; an edit made in
either CRM during the backfill survives; and backfilling the same range again writes nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from crm_sandbox.stats import writes_between
from crm_sync import staging
from crm_sync.backfill import focus, imports, registry
from crm_sync.settings import default_config_path
from crm_sync.tasks import backfill, rules
from hubspot.crm.deals import SimplePublicObjectInput

from tests.crm_readback import (
    hubspot_associations,
    hubspot_pipelines,
    hubspot_rows,
    salesforce_one,
    salesforce_rows,
)
from tests.integration.backfill.harness import WorkerKilledError, run_backfill
from tests.integration.backfill.scenario import History, history
from tests.integration.extract.support import Sandbox, StagingDbs
from tests.integration.sync_harness import sync

pytestmark = pytest.mark.slow

START, END = "2023-01-01", "2026-01-01"
#: Three chunks over the three years.
CHUNK_DAYS = 400


def _stats(box: Sandbox) -> dict[str, dict[str, Any]]:
    return {crm: box.stats(crm) for crm in ("salesforce", "hubspot")}


def _hourly_watermarks(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """The hourly sync's watermark rows (everything but the backfill's own ``backfill:`` keys)."""
    return [
        r for r in staging.table_dump(engine, staging.sync_watermark) if not str(r[0]).startswith("backfill:")
    ]


def _deals_by_opportunity(box: Sandbox) -> dict[str, list[dict[str, Any]]]:
    deals = hubspot_rows(
        box.hubspot(), "deals", ["salesforceopportunityid", "pipeline", "amount", "dealname"]
    )
    by_opp: dict[str, list[dict[str, Any]]] = {}
    for deal in deals:
        by_opp.setdefault(str(deal.get("salesforceopportunityid")), []).append(deal)
    return by_opp


def _assert_each_opportunity_once(box: Sandbox, h: History) -> dict[str, dict[str, Any]]:
    by_opp = _deals_by_opportunity(box)
    assert {o: len(by_opp.get(o, [])) for o in h.opportunity_ids} == dict.fromkeys(h.opportunity_ids, 1)
    assert not any(o in by_opp for o in h.outside_ids)  # DEAL-9: outside the range, not imported
    assert sum(len(v) for v in by_opp.values()) == len(h.opportunity_ids)
    return {o: by_opp[o][0] for o in h.opportunity_ids}


@pytest.fixture
def history_box(sandbox_for: Callable[..., Sandbox], sqlite_dbs: StagingDbs) -> tuple[Sandbox, History]:
    h = history(accounts=4, opportunities=12)
    box = sandbox_for(h.scenario)
    sqlite_dbs.use()
    return box, h


@pytest.fixture
def history_any_db(sandbox_for: Callable[..., Sandbox], staging_dbs: StagingDbs) -> tuple[Sandbox, History]:
    """The same, on SQLite and (when reachable) PostgreSQL staging: the registry and the lease."""
    h = history(accounts=4, opportunities=12)
    box = sandbox_for(h.scenario)
    staging_dbs.use()
    return box, h


def test_multi_year_backfill_creates_every_deal_pipeline_and_association_once(
    history_any_db: tuple[Sandbox, History],
) -> None:
    box, h = history_any_db
    sync("hourly-1", 0)  # the hourly sync ran before: history stays out of it (ACC-2, DEAL-9)
    engine = staging.staging_engine()
    hourly = _hourly_watermarks(engine)
    assert hourly
    assert _deals_by_opportunity(box) == {}

    report = run_backfill("backfill-1", START, END, CHUNK_DAYS)

    assert (report["done"], report["total"], report["records_done"]) == (3, 3, len(h.opportunity_ids))
    deals = _assert_each_opportunity_once(box, h)
    sf, hs = box.salesforce(), box.hubspot()
    pipelines = hubspot_pipelines(hs)
    assert set(pipelines) >= {f"Salesforce - {name}" for name in h.record_types.values()}  # DEAL-2
    companies = {
        c["salesforceaccountid"]: c["id"] for c in hubspot_rows(hs, "companies", ["salesforceaccountid"])
    }
    assert len(companies) == 4  # one company per Account the deals reference
    assert Counter(companies.values()).most_common(1)[0][1] == 1
    for opp in salesforce_rows(sf, "Opportunity", ["AccountId", "RecordTypeId", "HubSpot_Id__c"]):
        if opp["Id"] not in deals:
            continue
        deal = deals[opp["Id"]]
        assert opp["HubSpot_Id__c"] == deal["id"]  # linked back, in the same chunk
        assert deal["pipeline"] == pipelines[f"Salesforce - {h.record_types[opp['RecordTypeId']]}"]["_id"]
        assert hubspot_associations(hs, "deals", deal["id"], "companies") == {companies[opp["AccountId"]]}
        role = salesforce_one(sf, "OpportunityContactRole", ["ContactId"], f"OpportunityId = '{opp['Id']}'")
        contact = salesforce_one(sf, "Contact", ["HubSpot_Id__c"], f"Id = '{role['ContactId']}'")
        assert hubspot_associations(hs, "deals", deal["id"], "contacts") == {contact["HubSpot_Id__c"]}
    # HubSpot's rollups over the backfilled associations: each company counts its Account's deals.
    per_account = Counter(
        o["AccountId"] for o in salesforce_rows(sf, "Opportunity", ["AccountId"]) if o["Id"] in deals
    )
    rollups = hubspot_rows(hs, "companies", ["salesforceaccountid", "num_associated_deals"])
    assert {c["salesforceaccountid"]: int(c["num_associated_deals"]) for c in rollups} == dict(per_account)
    assert _hourly_watermarks(engine) == hourly  # the hourly sync's watermarks never moved


def test_a_chunk_reads_from_staging_exactly_its_neighbourhood(
    history_any_db: tuple[Sandbox, History],
) -> None:
    """The third chunk, after two chunks left links, deals and associations in staging, reads
    (key columns first, then the neighbourhood's rows) what cutting its neighbourhood out of
    the whole of staging gives."""
    with pytest.raises(WorkerKilledError):
        run_backfill("backfill-1", START, END, CHUNK_DAYS, crash=(2, "extract"))
    chunk = backfill.Chunk.from_xcom(
        backfill.plan_opportunity_chunks(START, END, CHUNK_DAYS, dag_run_id="backfill-1")[2]
    )
    run_id = backfill.chunk_run_id(backfill.BACKFILL_DAG_ID, chunk, 1)
    engine = staging.staging_engine()

    whole, focused = backfill._chunk_inputs(engine, chunk, run_id)

    inputs = rules.load_inputs(engine, now=rules.run_time(engine, run_id))
    seeds = {"sf_opportunity": imports.window_ids(engine, chunk)["Opportunity"]}
    expected, found = focus.focus_inputs(inputs, seeds)
    assert found.counts()["hs_deal"]  # the earlier chunks' deals and companies are in it
    assert found.counts()["hs_company"]
    for got, want in ((focused, expected), (whole, focus.whole_org_inputs(inputs))):
        for name, frame in vars(want).items():
            if name != "now":
                pd.testing.assert_frame_equal(_values(getattr(got, name)), _values(frame), obj=name)


def _values(frame: pd.DataFrame) -> pd.DataFrame:
    """Cells as values: a column the rows read hold only missing values in reads as object
    ``None``, where the whole table (some values present) reads as float ``NaN``."""
    return frame.astype(object).where(frame.notna(), None)


def test_killed_backfill_resumes_without_redoing_chunks_or_losing_newer_edits(
    history_box: tuple[Sandbox, History],
) -> None:
    box, h = history_box
    with pytest.raises(WorkerKilledError):
        run_backfill("backfill-1", START, END, CHUNK_DAYS, crash=(1, "load_hubspot"))
    first = _deals_by_opportunity(box)
    # Edits through the real clients while the backfill is stopped: a deal of the finished
    # chunk 0 in HubSpot, an Opportunity of the not yet started chunk 2 in Salesforce.
    edited_deal = first[h.opportunity_ids[0]][0]["id"]
    box.hubspot().crm.deals.basic_api.update(
        edited_deal, SimplePublicObjectInput(properties={"amount": "4242"})
    )
    late_opp = h.opportunity_ids[-1]
    box.salesforce().Opportunity.update(late_opp, {"Amount": 9191})

    requests: dict[str, dict[str, int]] = {}

    def observe(key: str, phase: str) -> None:
        totals = {crm: int(s["total"]) for crm, s in _stats(box).items()}
        if phase == "before":
            requests[key] = totals
        else:
            requests[key] = {crm: totals[crm] - requests[key][crm] for crm in totals}

    report = run_backfill("backfill-2", START, END, CHUNK_DAYS, observe=observe)

    assert report["done"] == 3
    made = list(requests.values())
    assert made[0] == {"salesforce": 0, "hubspot": 0}  # the finished chunk: not one request
    assert all(m["salesforce"] > 0 and m["hubspot"] > 0 for m in made[1:])
    attempts = {k: s.attempts for k, s in registry.read(staging.staging_engine(), "opportunities").items()}
    assert sorted(attempts.values()) == [1, 1, 2]  # only the killed chunk ran twice
    runs = staging.read_frame(staging.staging_engine(), "sync_run")
    statuses = Counter(runs[runs["dag_id"] == backfill.BACKFILL_DAG_ID]["status"])
    assert statuses == {"succeeded": 3, "abandoned": 1}  # the killed attempt is not left running
    deals = _assert_each_opportunity_once(box, h)  # the killed chunk's deals were not created again
    sf = box.salesforce()
    assert float(deals[late_opp]["amount"]) == 9191  # the Salesforce edit reached HubSpot
    assert salesforce_one(sf, "Opportunity", ["Amount"], f"Id = '{h.opportunity_ids[0]}'")["Amount"] == 4242
    assert float(deals[h.opportunity_ids[0]]["amount"]) == 4242  # the HubSpot edit won (SYNC-3)


def test_second_backfill_of_the_same_range_writes_nothing(history_box: tuple[Sandbox, History]) -> None:
    box, _ = history_box
    run_backfill("backfill-1", START, END, CHUNK_DAYS)
    before = _stats(box)

    again = run_backfill("backfill-2", START, END, CHUNK_DAYS)

    after = _stats(box)
    assert again["done"] == 3
    assert {crm: writes_between(before[crm], after[crm]) for crm in before} == {
        "salesforce": {},
        "hubspot": {},
    }
    log_rows = staging.read_frame(staging.staging_engine(), "sync_log")
    progress = log_rows[(log_rows["stage"] == "backfill") & (log_rows["object"] == "progress")]
    reported = {r.run_id: json.loads(r.details) for r in progress.itertuples()}
    assert reported["backfill-1"]["done"] == reported["backfill-2"]["done"] == 3  # progress in sync_log
    assert reported["backfill-1"]["records_per_chunk"] == 4.0


def test_dry_run_plans_every_chunk_and_writes_nothing(history_box: tuple[Sandbox, History]) -> None:
    box, h = history_box
    before = _stats(box)

    run_backfill("dry-1", START, END, CHUNK_DAYS, dry_run=True)

    after = _stats(box)
    assert {crm: writes_between(before[crm], after[crm]) for crm in before} == {
        "salesforce": {},
        "hubspot": {},
    }
    states = registry.read(staging.staging_engine(), "opportunities")
    assert sorted(s.status for s in states.values()) == ["planned"] * 3
    plan = staging.read_frame(staging.staging_engine(), "plan")
    created = plan[(plan["object"] == "deals") & (plan["action"] == "create")]
    # Nothing was written, so each chunk also plans the earlier chunks' deals again.
    assert set(created["source_id"]) == set(h.opportunity_ids)


def test_the_hourly_sync_running_between_chunks_duplicates_nothing_and_then_has_nothing_to_do(
    history_box: tuple[Sandbox, History],
) -> None:
    box, h = history_box
    hourly_runs = iter(range(1, 10))

    def hourly_sync_between_chunks(_key: str, phase: str) -> None:
        if phase == "after":
            sync(f"hourly-{next(hourly_runs)}", 0)

    run_backfill("backfill-1", START, END, CHUNK_DAYS, observe=hourly_sync_between_chunks)

    _assert_each_opportunity_once(box, h)
    before = _stats(box)
    sync("hourly-after", 1)  # everything the backfill wrote is already in sync
    after = _stats(box)
    assert {crm: writes_between(before[crm], after[crm]) for crm in before} == {
        "salesforce": {},
        "hubspot": {},
    }


def test_large_windows_are_read_through_bulk_api_2(
    history_box: tuple[Sandbox, History], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box, h = history_box
    config = default_config_path().read_text(encoding="utf-8")
    assert "bulk_threshold: 10000" in config
    path = tmp_path / "bulk.yaml"
    path.write_text(config.replace("bulk_threshold: 10000", "bulk_threshold: 2"), encoding="utf-8")
    monkeypatch.setenv("CRM_SYNC_CONFIG", str(path))

    run_backfill("backfill-1", START, END, CHUNK_DAYS)

    _assert_each_opportunity_once(box, h)
    jobs = [
        r for r in box.stats("salesforce")["requests"] if r["method"] == "POST" and "jobs/query" in r["path"]
    ]
    assert sum(r["count"] for r in jobs) >= 3  # a Bulk API 2.0 query job per chunk's Opportunity window
    log_rows = staging.read_frame(staging.staging_engine(), "sync_log")
    windows = log_rows[(log_rows["stage"] == "extract") & (log_rows["object"] == "salesforce.Opportunity")]
    modes = {json.loads(d)["mode"] for d in windows["details"] if "window" in json.loads(d)}
    assert modes == {"bulk"}
