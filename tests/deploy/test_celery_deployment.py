"""crm-sync on Airflow's distributed engine, proven on this machine's real services.

Airflow 3 with the CeleryExecutor (Redis broker, PostgreSQL metadata DB and result backend), a
scheduler, a dag-processor, an api-server and one Celery worker as separate processes, set up by
the compose file's own init script (``docker/airflow-init.sh``); staging on a PostgreSQL database
of its own; both CRMs emulated by the sandbox with the demo scenario. The test drives it the way
an operator does, through Airflow's REST API: unpause ``crm_sync``, trigger it, wait for it, then
read the result back where a user would look: the plan in staging (``crm-sync plan``), and each
CRM through its real client.

What the CRMs must hold depends on whether ``crm_sync`` loads (``loading_built``: it has
``load_hubspot`` and ``load_salesforce``): without loading it stops at the plan and writes nothing;
with it, the planned creates are in both CRMs exactly once. Write requests are counted by the
emulators themselves (``GET /__sandbox/stats``, read through ``crm_sandbox.stats``).

Screenshots: with Chromium installed, the Airflow UI is captured from the running api-server;
``CRM_SYNC_SCREENSHOT_DIR=docs/images`` keeps them (the pictures in docs/operations.md).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from crm_sandbox.stats import write_requests

from tests.deploy.celery_cluster import (
    BIN,
    ROOT,
    Cluster,
    celery_cluster,
    fresh_databases,
    postgres_unreachable,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
DAG_ID = "crm_sync"
LOAD_TASKS = {"load_hubspot", "load_salesforce"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = postgres_unreachable()
    if reason:
        pytest.skip(f"{reason}: run `make services` (.ci/services.sh) first")
    home = tmp_path_factory.mktemp("celery-deployment")
    with (
        fresh_databases("crm_sync_meta", "crm_sync_staging") as (metadata_db, staging_db),
        celery_cluster(home / "airflow", metadata_db, staging_db) as running,
    ):
        yield running


@pytest.fixture(scope="module")
def dag_tasks(cluster: Cluster) -> set[str]:
    """Task ids of crm_sync, once the dag-processor has parsed and serialized it."""

    def parsed() -> bool:
        cluster.check_alive()
        return cluster.api("GET", f"dags/{DAG_ID}").ok

    wait_for(parsed, timeout=240, what=f"the dag-processor to serialize {DAG_ID}", interval=2)
    tasks = cluster.api_json("GET", f"dags/{DAG_ID}/tasks")["tasks"]
    return {task["task_id"].rsplit(".", 1)[-1] for task in tasks}


def loading_built(dag_tasks: set[str]) -> bool:
    """LOADING SWITCH: True once crm_sync has its load tasks (the load issue); the CRM-state
    assertions below then apply. Until then crm_sync stops at the plan and writes nothing."""
    return dag_tasks >= LOAD_TASKS


@pytest.fixture(scope="module")
def first_run(cluster: Cluster, dag_tasks: set[str]) -> dict[str, Any]:
    """Unpause crm_sync and trigger it through the REST API; wait until it has finished."""
    assert "build_plan" in dag_tasks
    cluster.api_json("PATCH", f"dags/{DAG_ID}", json={"is_paused": False})
    run_id = cluster.trigger(DAG_ID)
    run = cluster.wait_for_run(DAG_ID, run_id)
    assert run["state"] == "success", cluster.failure_report(DAG_ID, run_id)
    return {"run": run, "stats": cluster.sandbox_stats()}


@pytest.fixture(scope="module")
def second_run(cluster: Cluster, first_run: dict[str, Any]) -> dict[str, Any]:
    """Trigger crm_sync again with nothing changed in either CRM since the first run."""
    run_id = cluster.trigger(DAG_ID)
    run = cluster.wait_for_run(DAG_ID, run_id)
    assert run["state"] == "success", cluster.failure_report(DAG_ID, run_id)
    return {"run": run, "stats": cluster.sandbox_stats()}


def writes(stats: dict[str, Any], system: str) -> dict[str, int]:
    """Write requests one emulator has answered so far, by "METHOD path" (POST reads excluded)."""
    return write_requests(stats[system])


def plan_rows(cluster: Cluster, run_id: str) -> list[dict[str, Any]]:
    out = cluster.run("crm-sync-plan", str(BIN / "crm-sync"), "plan", "--run-id", run_id, "--format", "jsonl")
    return [json.loads(line) for line in out.splitlines()]


def test_crm_sync_runs_on_celery_workers_and_leaves_its_plan_in_staging(
    cluster: Cluster, first_run: dict[str, Any]
) -> None:
    run_id = first_run["run"]["dag_run_id"]
    tis = cluster.task_instances(DAG_ID, run_id)
    assert {ti["state"] for ti in tis} <= {"success", "skipped"}
    ran = [ti for ti in tis if ti["state"] == "success"]
    assert len(ran) >= 10
    # Every task went through the broker to the Celery worker's queue, and was run there.
    assert {ti["queue"] for ti in ran} == {cluster.queue}
    assert all(ti["hostname"] for ti in ran)

    rows = plan_rows(cluster, run_id)
    assert rows, "the run must leave its plan in the staging database"
    assert {row["run_id"] for row in rows} == {run_id}
    # RULES.md on the demo: the Salesforce-only Account becomes a HubSpot company, and the
    # HubSpot-only company a Salesforce Account.
    assert any(
        row["target"] == "hubspot"
        and row["object"] == "companies"
        and row["action"] == "create"
        and row["fields"].get("name") == "Brightwave Analytics"
        for row in rows
    )
    assert any(
        row["target"] == "salesforce"
        and row["object"] == "Account"
        and row["action"] == "create"
        and row["fields"].get("Name") == "Vandelay Industries"
        for row in rows
    )


def test_pools_and_connections_come_from_the_init_script(cluster: Cluster, first_run: dict[str, Any]) -> None:
    pools = {pool["name"]: pool for pool in cluster.api_json("GET", "pools")["pools"]}
    assert pools["salesforce_api"]["slots"] > 0
    assert pools["hubspot_api"]["slots"] > 0
    # The CRM connections live (encrypted) in the metadata DB, not in the environment.
    assert "AIRFLOW_CONN_SALESFORCE_DEFAULT" not in cluster.env
    for conn_id in ("salesforce_default", "hubspot_default"):
        assert cluster.api_json("GET", f"connections/{conn_id}")["connection_id"] == conn_id


def test_first_run_leaves_both_crms_as_planned(
    cluster: Cluster, dag_tasks: set[str], first_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both CRMs read back through the real clients after the first run.

    LOADING SWITCH (``loading_built``): while crm_sync has no load tasks it only plans, so the
    planned creates are not in the CRMs and nothing was written. Once it has them, each planned
    create is there exactly once, keyed by the other side's id, and the run wrote to both CRMs.
    """
    from hubspot import HubSpot
    from hubspot.crm.companies import Filter, FilterGroup, PublicObjectSearchRequest
    from simple_salesforce.api import Salesforce

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cluster.env["REQUESTS_CA_BUNDLE"])
    sf = Salesforce(instance_url=f"https://127.0.0.1:{cluster.salesforce_port}", session_id="sandbox-session")
    hs = HubSpot(access_token="sandbox-token", host=f"http://127.0.0.1:{cluster.hubspot_port}")
    search = PublicObjectSearchRequest(
        filter_groups=[
            FilterGroup(filters=[Filter(property_name="name", operator="EQ", value="Brightwave Analytics")])
        ],
        properties=["name", "domain", "crm_sync_salesforce_id"],
    )
    companies = hs.crm.companies.search_api.do_search(public_object_search_request=search).results
    accounts = sf.query("SELECT Id, HubSpot_Id__c FROM Account WHERE Name = 'Vandelay Industries'")["records"]

    if not loading_built(dag_tasks):
        # Today: the plan says "create" for both, and crm_sync must not have written anything.
        assert companies == []
        assert accounts == []
        assert writes(first_run["stats"], "salesforce") == {}
        assert writes(first_run["stats"], "hubspot") == {}
        return
    # ---- LOADING ASSERTIONS: active once crm_sync has load_hubspot and load_salesforce ----
    planned = {
        row["fields"].get("name") or row["fields"].get("Name"): row
        for row in plan_rows(cluster, first_run["run"]["dag_run_id"])
        if row["action"] == "create" and row["object"] in ("companies", "Account")
    }
    # The Salesforce-only Account is now one HubSpot company, as planned, keyed by its SF id.
    (brightwave,) = companies
    assert brightwave.properties["domain"] == planned["Brightwave Analytics"]["fields"].get("domain")
    assert brightwave.properties["crm_sync_salesforce_id"] == "001Dm0000BRIGHTIQ5"
    # The HubSpot-only company is now one Salesforce Account, keyed by its HubSpot id.
    (vandelay,) = accounts
    assert vandelay["HubSpot_Id__c"] == "1010"  # the demo's HubSpot company id of Vandelay Industries
    assert writes(first_run["stats"], "hubspot")
    assert writes(first_run["stats"], "salesforce")


def test_second_run_with_nothing_changed_writes_nothing(
    cluster: Cluster, first_run: dict[str, Any], second_run: dict[str, Any]
) -> None:
    """SYNC-4: re-running with no changes in either CRM makes zero write requests."""
    for system in ("salesforce", "hubspot"):
        assert writes(second_run["stats"], system) == writes(first_run["stats"], system), system


def test_the_compose_healthchecks_pass_against_the_running_components(
    cluster: Cluster, first_run: dict[str, Any]
) -> None:
    """docker-compose.yaml's healthchecks, run against the real processes they are written for."""
    import yaml
    from airflow.utils.net import getfqdn

    services = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]
    assert "/api/v2/version" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert cluster.api("GET", "version").ok
    assert "/health" in " ".join(services["airflow-scheduler"]["healthcheck"]["test"])
    health = requests.get(cluster.scheduler_health_url, timeout=10)
    assert health.ok, health.text
    # The dag-processor's and the worker's checks are shell commands: run them as Compose would,
    # with this host's name and this cluster's worker name.
    hostname = getfqdn()
    dag_processor = services["airflow-dag-processor"]["healthcheck"]["test"][1].replace(
        "$${HOSTNAME}", hostname
    )
    worker = services["airflow-worker"]["healthcheck"]["test"][1].replace(
        "celery@$${HOSTNAME}", f"{cluster.queue}@{socket.gethostname()}"
    )
    for name, command in (("dag-processor-health", dag_processor), ("worker-health", worker)):
        cluster.run(name, "bash", "-c", command, timeout=120)


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with the flags this machine's closed network needs (env docs)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed (.ci/services.sh installs it): no UI check or screenshot")
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1600,1000",
            "--virtual-time-budget=20000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_airflow_ui_lists_the_crm_sync_dags(
    cluster: Cluster, first_run: dict[str, Any], tmp_path: Path
) -> None:
    """The UI's DAG list, rendered by a browser from the running api-server, shows crm_sync.

    The screenshots (DAG list, crm_sync's grid) are docs/operations.md's pictures; set
    ``CRM_SYNC_SCREENSHOT_DIR=docs/images`` to refresh them.
    """
    listed = cluster.api_json("GET", "dags", params={"tags": "crm-sync"})["dags"]
    assert DAG_ID in {dag["dag_id"] for dag in listed}
    dom = chromium("--dump-dom", f"{cluster.api_url}/dags", profile=tmp_path / "profile").stdout
    assert DAG_ID in dom, "the DAG list page does not show crm_sync"

    shots = {
        "airflow-dags.png": f"{cluster.api_url}/dags",
        "airflow-crm-sync-grid.png": f"{cluster.api_url}/dags/{DAG_ID}",
    }
    keep = os.environ.get("CRM_SYNC_SCREENSHOT_DIR")
    for name, url in shots.items():
        shot = tmp_path / name
        chromium(f"--screenshot={shot}", url, profile=tmp_path / "profile")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(keep) / name)
