"""crm_resync_accounts (ACC-8) against the sandbox: a mapping switched on reaches every company.

HubSpot's own resync of a company mapping fails above 200,000 companies; ours runs in Id ranges
(two Accounts per chunk here), each writing only its own range's companies, resumes after a
kill without redoing a finished range, and a second resync with the same mappings writes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from crm_sandbox.stats import writes_between
from crm_sync import staging
from crm_sync.backfill import registry
from crm_sync.settings import default_config_path

from tests.crm_readback import hubspot_rows, salesforce_rows
from tests.integration.backfill.harness import WorkerKilledError, run_backfill, run_resync
from tests.integration.backfill.scenario import history
from tests.integration.extract.support import Sandbox, StagingDbs

pytestmark = pytest.mark.slow

CITY = "- {salesforce: BillingCity, hubspot: city, rule: two_way}"


def _config(tmp_path: Path, city_rule: str) -> str:
    text = default_config_path().read_text(encoding="utf-8")
    assert CITY in text
    path = tmp_path / f"config-{city_rule}.yaml"
    path.write_text(text.replace(CITY, CITY.replace("two_way", city_rule)), encoding="utf-8")
    return str(path)


def _stats(box: Sandbox) -> dict[str, dict[str, Any]]:
    return {crm: box.stats(crm) for crm in ("salesforce", "hubspot")}


def test_a_new_mapping_is_resynced_range_by_range_and_resumes_after_a_kill(
    sandbox_for: Callable[..., Sandbox],
    sqlite_dbs: StagingDbs,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = history(accounts=5, opportunities=5)
    box = sandbox_for(h.scenario)
    sqlite_dbs.use()
    monkeypatch.setenv("CRM_SYNC_CONFIG", _config(tmp_path, "none"))
    run_backfill("backfill-1", "2023-01-01", "2026-01-01", 1200)  # companies created, city not mapped
    assert {c.get("city") for c in hubspot_rows(box.hubspot(), "companies", ["city"])} == {None}

    monkeypatch.setenv("CRM_SYNC_CONFIG", _config(tmp_path, "prefer_salesforce"))
    with pytest.raises(WorkerKilledError):
        run_resync("resync-1", 2, crash=(1, "load_hubspot"))
    made: dict[str, dict[str, int]] = {}

    def observe(key: str, phase: str) -> None:
        totals = {crm: int(s["total"]) for crm, s in _stats(box).items()}
        made[key] = totals if phase == "before" else {c: totals[c] - made[key][c] for c in totals}

    report = run_resync("resync-2", 2, observe=observe)

    assert (report["done"], report["total"]) == (3, 3)
    assert next(iter(made.values())) == {"salesforce": 0, "hubspot": 0}  # the finished range: no request
    cities = {
        a["Id"]: a["BillingCity"] for a in salesforce_rows(box.salesforce(), "Account", ["BillingCity"])
    }
    companies = hubspot_rows(box.hubspot(), "companies", ["salesforceaccountid", "city"])
    assert {c["salesforceaccountid"]: c["city"] for c in companies} == cities
    engine = staging.staging_engine()
    plan = staging.read_frame(engine, "plan")
    per_run = plan[(plan["object"] == "companies") & plan["run_id"].str.startswith("crm_resync_accounts")]
    assert per_run.groupby("run_id").size().max() <= 2  # never more than the chunk's own range
    states = registry.read(engine, "accounts")
    assert sorted(s.attempts for s in states.values()) == [1, 1, 2]

    before = _stats(box)
    again = run_resync("resync-3", 2)  # same mappings: the same resync, already done
    assert again["done"] == 3
    after = _stats(box)
    assert {crm: writes_between(before[crm], after[crm]) for crm in before} == {
        "salesforce": {},
        "hubspot": {},
    }
