"""crm_sync: incremental two-way Salesforce <-> HubSpot sync for one data interval.

Wiring only. Every task imports its logic from ``crm_sync.tasks`` when it runs, so parsing this
file touches no network, database, connection or heavy library. Tasks hand each other table
names and counts through XCom, never data; staging lives behind the ``crm_staging`` connection.

Params:
    dry_run: stop after the plan. The plan stays in staging for review (``crm-sync plan``);
        nothing is written to either CRM and the extraction watermarks do not advance.

``take_lease`` holds the staging lease that backfill chunks take, from before the first rule task
until ``finish_run`` or ``record_failure`` releases it, so a sync never plans beside a running
chunk (a dry run takes none).

``commit_run`` publishes the asset ``crm_sync_load``; ``crm_data_quality_report`` runs on it, so
every load is followed by a report on both CRMs as the load left them.

Loads run in the pools ``salesforce_api`` and ``hubspot_api`` (one per CRM, shared with the
backfill) so that no two tasks overrun a CRM's rate limits together.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, task
from crm_sync.assets import CRM_SYNC_LOAD
from crm_sync.dag_defaults import DEFAULT_ARGS
from crm_sync.dag_tasks import extract_task_groups
from crm_sync.rules.stages import STAGES, upstream


@dag(
    dag_id="crm_sync",
    description="Incremental two-way Salesforce <-> HubSpot sync (RULES.md SYNC-1..5 and every rule)",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["crm-sync", "salesforce", "hubspot"],
    params={
        "dry_run": Param(
            False,
            type="boolean",
            description="Stop after the plan: review it with `crm-sync plan`; nothing is written.",
        ),
    },
    doc_md=__doc__,
)
def crm_sync() -> None:
    @task
    def start_run(**context: Any) -> dict[str, Any]:
        """Validate the sync config (a bad key fails here, naming it) and register the run."""
        from crm_sync.tasks import failfast
        from crm_sync.tasks.runs import start_run as start

        return failfast.run(start, context)

    @task
    def refresh_links(**context: Any) -> dict[str, Any]:
        """Pairs named by the link fields both CRMs carry, stored before any rule reads links."""
        from crm_sync.tasks import failfast
        from crm_sync.tasks.extract import refresh_links as refresh

        return {"new_links": failfast.run(refresh, context["run_id"])}

    @task
    def take_lease(**context: Any) -> dict[str, Any]:
        """Hold the staging lease a backfill also takes until the run ends (not for a dry run);
        while a running backfill chunk holds it, the task is rescheduled."""
        from crm_sync.tasks.runs import take_lease_task

        return take_lease_task(context)

    def rule_task(name: str) -> Any:
        @task(task_id=name)
        def run_rule(**context: Any) -> dict[str, Any]:
            from crm_sync.tasks import failfast, rules

            return failfast.run(rules.run_stage, name, run_id=context["run_id"])

        return run_rule()

    @task
    def validate(**context: Any) -> dict[str, Any]:
        """Audit before publishing: failing rows to quarantine; too many failures stop the run."""
        from crm_sync.tasks import failfast
        from crm_sync.tasks.validate import validate_plan

        return failfast.run(validate_plan, context["run_id"])

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def dry_run_gate(**context: Any) -> bool:
        """Let writes (and the watermark commit) happen only when this is not a dry run."""
        return not context["params"]["dry_run"]

    def load_task(target: str) -> Any:
        @task(task_id=f"load_{target}", pool=f"{target}_api")
        def load(**context: Any) -> dict[str, Any]:
            """Write this run's plan rows for one CRM; per-record failures become dead letters."""
            from crm_sync.tasks import failfast
            from crm_sync.tasks.load import load_target

            return failfast.run(load_target, target, run_id=context["run_id"])

        return load()

    @task(outlets=[CRM_SYNC_LOAD])
    def commit_run(**context: Any) -> dict[str, Any]:
        """After both loads: advance snapshots and links for what was written, then the watermarks."""
        from crm_sync.tasks.load import commit

        return commit(run_id=context["run_id"])

    @task(trigger_rule="one_failed")
    def record_failure(**context: Any) -> dict[str, Any]:
        """A task failed: mark the run failed in sync_run (never left running)."""
        from crm_sync.tasks.runs import record_failure as record

        return record(context)

    @task(trigger_rule="none_failed")
    def finish_run(**context: Any) -> dict[str, Any]:
        """Record the run's outcome and log its plan summary and counts."""
        from crm_sync.tasks.runs import finish_run as finish

        return finish(context)

    started = start_run()
    extracted = extract_task_groups(bounded=True)
    linked = refresh_links()
    leased = take_lease()
    started >> extracted
    extracted >> linked >> leased
    # Each rule task runs after the stages whose tables it reads (crm_sync.rules.stages).
    rule_tasks = {name: rule_task(name) for name in STAGES}
    for name, rule in rule_tasks.items():
        needs = upstream(name)
        if needs:
            [rule_tasks[n] for n in needs] >> rule
        else:
            leased >> rule
    build_plan = rule_tasks["build_plan"]
    finished = finish_run()
    loads = [load_task("salesforce"), load_task("hubspot")]
    validated = validate()
    gate = dry_run_gate()
    committed = commit_run()
    build_plan >> validated >> gate >> loads >> committed >> finished
    validated >> finished
    # Any failure marks the run failed in sync_run.
    [
        started,
        *extracted,
        linked,
        leased,
        *rule_tasks.values(),
        validated,
        gate,
        *loads,
        committed,
    ] >> record_failure()


crm_sync()
