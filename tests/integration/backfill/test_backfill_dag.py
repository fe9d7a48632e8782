"""crm_backfill_opportunities end to end: the real DAG (``airflow dags test``) against the sandbox.

The in-process tests (``tests/integration/backfill``) cover resuming and concurrency; this one
checks what only the real DAG shows: the params, the mapped chunk group with its per-chunk
tasks, the pools, the skip of finished chunks on a second run, and the CRMs read back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from crm_sandbox.server import SandboxEndpoints, running_sandbox
from crm_sandbox.stats import fetch_stats, writes_between

from tests.integration.backfill.scenario import History, history

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


class Airflow:
    """An Airflow home pointed at the sandbox and a SQLite staging file."""

    def __init__(self, endpoints: SandboxEndpoints, home: Path) -> None:
        self.endpoints = endpoints
        self.home = home
        self.env = {
            **os.environ,
            **endpoints.airflow_env(),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_CRM_STAGING": json.dumps({"conn_type": "sqlite", "host": str(home / "staging.db")}),
        }
        self.env.pop("CRM_SYNC_CONFIG", None)
        self.run("db", "migrate")
        for pool in ("salesforce_api", "hubspot_api"):
            self.run("pools", "set", pool, "1", f"crm-sync writes to {pool}")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        (self.home / f"airflow-{args[0]}-{uuid.uuid4().hex[:6]}.log").write_text(proc.stdout + proc.stderr)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        return proc

    def stats(self) -> dict[str, dict[str, Any]]:
        return {
            "salesforce": fetch_stats(self.endpoints.salesforce_url, verify=str(self.endpoints.ca_bundle)),
            "hubspot": fetch_stats(self.endpoints.hubspot_url),
        }


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[Airflow, History]]:
    h = history(accounts=3, opportunities=6)
    with running_sandbox(h.scenario) as endpoints:
        yield Airflow(endpoints, tmp_path), h


def test_the_dag_backfills_each_chunk_once_and_a_second_run_skips_them(
    deployment: tuple[Airflow, History],
) -> None:
    airflow, h = deployment
    conf = {"start": "2023-01-01", "end": "2026-01-01", "chunk_days": 550}

    first = airflow.run("dags", "test", "crm_backfill_opportunities", "-c", json.dumps(conf))

    assert "2/2 chunks done" in first.stdout + first.stderr
    from hubspot import HubSpot

    hs = HubSpot(access_token="x", host=airflow.endpoints.hubspot_url)
    deals = [d.properties for d in hs.crm.deals.get_all(properties=["salesforceopportunityid"])]
    assert sorted(d["salesforceopportunityid"] for d in deals) == sorted(h.opportunity_ids)

    before = airflow.stats()
    second = airflow.run("dags", "test", "crm_backfill_opportunities", "-c", json.dumps(conf))
    after = airflow.stats()
    assert "already done" in second.stdout + second.stderr
    assert {crm: writes_between(before[crm], after[crm]) for crm in before} == {
        "salesforce": {},
        "hubspot": {},
    }
