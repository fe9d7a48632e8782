"""crm_data_quality_report's wiring: daily and on crm_sync's load asset; extract both CRMs, then report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from crm_sync.assets import CRM_SYNC_LOAD, CRM_SYNC_LOAD_NAME

DAGS = Path(__file__).resolve().parents[3] / "dags"


@pytest.fixture(scope="module")
def dag(tmp_path_factory: pytest.TempPathFactory) -> Any:
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "crm_data_quality_report.py"))
    assert bag.import_errors == {}
    return bag.dags["crm_data_quality_report"]


def test_it_runs_daily_and_whenever_crm_sync_publishes_its_load(dag: Any) -> None:
    timetable = dag.timetable
    assert CRM_SYNC_LOAD.name == CRM_SYNC_LOAD_NAME == "crm_sync_load"
    assert list(timetable.asset_condition.objects) == [CRM_SYNC_LOAD]
    assert timetable.timetable.expression == "0 6 * * *"
    assert dag.max_active_runs == 1


def test_both_crms_are_extracted_before_the_report(dag: Any) -> None:
    report = dag.get_task("report")
    upstream = report.get_flat_relative_ids(upstream=True)
    assert {t.split(".")[0] for t in upstream} == {"extract_salesforce", "extract_hubspot"}
    assert "extract_hubspot.deals" in upstream
    assert "extract_salesforce.opportunity" in upstream
