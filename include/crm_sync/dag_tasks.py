"""Task groups more than one DAG wires in the same way (DAG files stay thin, no copy per DAG).

Parse-time cheap: only ``airflow.sdk`` and the object catalog are imported here; each task
imports its logic when it runs and fails at once on errors no retry can fix
(:mod:`crm_sync.tasks.failfast`).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task, task_group

from crm_sync.catalog import HUBSPOT_STREAMS, SALESFORCE_STREAMS


def extract_task_groups(*, bounded: bool) -> list[Any]:
    """``extract_salesforce`` and ``extract_hubspot``: one task per object, each reading what
    changed since its committed watermark; ``bounded`` stops at the run's data interval end
    (the sync), unbounded reads up to now (the report, which wants the CRMs as they are)."""

    @task
    def extract_salesforce_object(object_name: str, **context: Any) -> dict[str, Any]:
        from crm_sync.tasks import failfast
        from crm_sync.tasks.extract import extract_salesforce

        until = context.get("data_interval_end") if bounded else None
        return failfast.run(
            extract_salesforce, object_name, run_id=context["run_id"], data_interval_end=until
        )

    @task
    def extract_hubspot_object(object_name: str, **context: Any) -> dict[str, Any]:
        from crm_sync.tasks import failfast
        from crm_sync.tasks.extract import extract_hubspot

        until = context.get("data_interval_end") if bounded else None
        return failfast.run(extract_hubspot, object_name, run_id=context["run_id"], data_interval_end=until)

    @task_group(group_id="extract_salesforce")
    def extract_salesforce() -> None:
        for stream in SALESFORCE_STREAMS:
            extract_salesforce_object.override(task_id=stream.table.removeprefix("sf_"))(stream.name)

    @task_group(group_id="extract_hubspot")
    def extract_hubspot() -> None:
        # Pipeline stages are read with their pipelines; companies, contacts and deals also
        # stage their associations.
        for stream in HUBSPOT_STREAMS:
            if stream.name != "pipeline_stages":
                extract_hubspot_object.override(task_id=stream.name)(stream.name)

    return [extract_salesforce(), extract_hubspot()]
