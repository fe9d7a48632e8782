"""Helpers for the quality integration tests: a sandbox, staging, the crm_sync steps, Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from crm_sandbox.server import SandboxEndpoints
from crm_sync.rules.pipeline import STAGES
from crm_sync.tasks import extract, rules
from crm_sync.tasks.report import build_report
from crm_sync.tasks.runs import start_run
from crm_sync.tasks.validate import validate_plan
from lxml import html as lxml_html

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


@dataclass
class World:
    """A running sandbox, the environment pointing crm-sync at it, and where reports go."""

    endpoints: SandboxEndpoints
    home: Path
    reports: Path
    staging_conn: dict[str, Any]

    def connect(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for key, value in self.env().items():
            monkeypatch.setenv(key, value)

    def env(self) -> dict[str, str]:
        return {
            **self.endpoints.airflow_env(),
            "AIRFLOW_CONN_CRM_STAGING": json.dumps(self.staging_conn),
            "CRM_SYNC_REPORTS_DIR": str(self.reports),
        }

    def stats(self) -> dict[str, dict[str, Any]]:
        return {
            "salesforce": requests.get(
                f"{self.endpoints.salesforce_url}/__sandbox/stats",
                timeout=10,
                verify=str(self.endpoints.ca_bundle),
            ).json(),
            "hubspot": requests.get(f"{self.endpoints.hubspot_url}/__sandbox/stats", timeout=10).json(),
        }


def writes(stats: Mapping[str, Any], system: str) -> list[dict[str, Any]]:
    """Requests that could change a CRM (reads that use POST, like search and batch read, excluded)."""
    reads = ("/search", "/batch/read")
    return [
        r
        for r in stats[system]["requests"]
        if r["method"] in ("POST", "PATCH", "PUT", "DELETE")
        and not r["path"].endswith(reads)
        and "/jobs/query" not in r["path"]
    ]


def sync_until_validate(run_id: str) -> dict[str, Any]:
    """``crm_sync`` up to and including ``validate``, task by task as the DAG runs them."""
    start_run({"run_id": run_id, "dag_id": "crm_sync", "params": {}})
    for name in extract.SALESFORCE_OBJECTS:
        extract.extract_salesforce(name, run_id=run_id)
    for name in extract.HUBSPOT_OBJECTS:
        extract.extract_hubspot(name, run_id=run_id)
    for stage in STAGES:
        rules.run_stage(stage, run_id=run_id)
    return validate_plan(run_id)


def report_run(run_id: str) -> dict[str, Any]:
    """``crm_data_quality_report`` in-process: extract both CRMs (fresh state), then ``report``."""
    for name in extract.SALESFORCE_OBJECTS:
        extract.extract_salesforce(name, run_id=run_id)
    for name in extract.HUBSPOT_OBJECTS:
        extract.extract_hubspot(name, run_id=run_id)
    return build_report(run_id)


def run_report_dag(world: World, log: Path) -> None:
    """``airflow dags test crm_data_quality_report`` in its own Airflow home, against the world."""
    env = {
        **os.environ,
        **world.env(),
        "AIRFLOW_HOME": str(world.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    env.pop("CRM_SYNC_CONFIG", None)
    for cmd in (["db", "migrate"], ["dags", "test", "crm_data_quality_report"]):
        proc = subprocess.run(
            [str(BIN / "airflow"), *cmd], env=env, capture_output=True, text=True, timeout=420, check=False
        )
        log.write_text(proc.stdout + proc.stderr)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


#: Headless, sandbox off (root), and nothing that reaches for the network on start.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def rendered(page: Path) -> Any:
    """The page as headless Chromium renders it (``--dump-dom``), parsed with lxml."""
    browser = chromium()
    if browser is None:
        pytest.skip("headless Chromium is not installed (Debian package: chromium)")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        proc = subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return lxml_html.fromstring(proc.stdout)


def table_rows(dom: Any, table_id: str) -> list[list[str]]:
    return [
        [cell.text_content().strip() for cell in row.xpath("./td")]
        for row in dom.xpath(f'//table[@id="{table_id}"]/tbody/tr')
    ]
