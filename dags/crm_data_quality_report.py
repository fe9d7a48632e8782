"""crm_data_quality_report: compare linked pairs across Salesforce and HubSpot, write the report.

Wiring only: every task imports its logic from ``crm_sync.tasks`` when it runs. Runs daily and
whenever ``crm_sync`` publishes the ``crm_sync_load`` asset (its load finished).

It first extracts both CRMs into staging with the same incremental tasks as ``crm_sync`` (the
records the load just wrote are re-read; nothing else changes, and no watermark is committed),
then ``report`` compares every synced field of every linked pair after normalisation and writes
``report.html`` and ``report.json`` under the reports directory (``$CRM_SYNC_REPORTS_DIR``, else
``$AIRFLOW_HOME/crm_sync_reports``). The task log ends with the summary and the report's path;
the ``crm_sync_reports`` plugin links each run to its report in the Airflow UI.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task
from crm_sync.assets import CRM_SYNC_LOAD
from crm_sync.dag_defaults import DEFAULT_ARGS
from crm_sync.dag_tasks import extract_task_groups


@dag(
    dag_id="crm_data_quality_report",
    description="Data-quality report on the synced fields of linked Salesforce/HubSpot pairs",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"), assets=[CRM_SYNC_LOAD]
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["crm-sync", "data-quality"],
    doc_md=__doc__,
)
def crm_data_quality_report() -> None:
    @task
    def report(**context: Any) -> dict[str, Any]:
        """Compare linked pairs and write the report; its path and summary end the task log."""
        from crm_sync.tasks.report import build_report

        return build_report(context["run_id"], dag_id=context["dag"].dag_id)

    extract_task_groups(bounded=False) >> report()


crm_data_quality_report()
