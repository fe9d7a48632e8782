"""The first and last tasks of a sync run: check the config, register the run, record its end.

``start_run`` loads and validates the sync configuration before any API call, so a typo in the
YAML fails the run at once with a message naming the key (DESIGN.md), and registers the run in
``sync_run`` so ``crm-sync plan`` can find "the latest run". ``take_lease`` holds the staging
lease a running backfill also takes, from the first rule task until the run ends.
``finish_run`` records the outcome, releases the lease and logs the run's counts for the people
watching the task log; ``record_failure`` marks a failed run and releases the lease too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from crm_sync import staging
from crm_sync.backfill import holders, lease
from crm_sync.settings import load_config
from crm_sync.tasks.extract import as_utc

log = logging.getLogger(__name__)


def start_run(
    context: Mapping[str, Any], *, staging_conn_id: str = staging.DEFAULT_CONN_ID
) -> dict[str, Any]:
    """Validate the config, create the staging schema if needed, and register this run."""
    config = load_config()
    engine = staging.staging_engine(staging_conn_id)
    staging.ensure_schema(engine)
    params = context.get("params") or {}
    dag = context.get("dag")
    run_id = str(context["run_id"])
    dag_id = str(getattr(dag, "dag_id", None) or context.get("dag_id") or "crm_sync")
    abandoned = staging.abandon_runs(engine, dag_id, run_id)
    if abandoned:
        log.warning("runs that never finished are now marked abandoned: %s", ", ".join(abandoned))
    staging.record_run(
        engine,
        run_id,
        dag_id=dag_id,
        logical_date=as_utc(context.get("logical_date")),
        data_interval_start=as_utc(context.get("data_interval_start")),
        data_interval_end=as_utc(context.get("data_interval_end")),
        dry_run=bool(params.get("dry_run", False)),
    )
    log.info(
        "run %s: config %s valid; staging %s; dry_run=%s",
        run_id,
        config.source,
        engine.url.render_as_string(hide_password=True),
        bool(params.get("dry_run", False)),
    )
    return {"run_id": run_id, "config": config.source, "dry_run": bool(params.get("dry_run", False))}


def take_lease(
    context: Mapping[str, Any], *, staging_conn_id: str = staging.DEFAULT_CONN_ID
) -> dict[str, Any]:
    """Hold the staging lease (holder ``run:<run_id>``) until the run ends, or raise while busy.

    A running backfill chunk holds the lease from its extraction to its commit; planning beside
    it would plan creates for the same unlinked records (a duplicate in a CRM) and commit
    snapshots and links under each other. While a live holder has it this raises
    :class:`~crm_sync.backfill.lease.LeaseBusyError` (:func:`take_lease_task` reschedules); a
    dead holder (:mod:`crm_sync.backfill.holders`: a run that is over, a chunk that failed or
    finished) is taken over, so the hourly sync has priority over a failed backfill, whose
    next step then stops and resumes when re-triggered. A dry run takes no lease: rule tables
    are scoped by run and it writes neither CRM nor what a commit advances.
    """
    run_id = str(context["run_id"])
    if (context.get("params") or {}).get("dry_run"):
        return {"run_id": run_id, "lease": None}
    engine = staging.staging_engine(staging_conn_id)
    who = holders.for_run(run_id)
    if not lease.try_acquire(engine, who, alive=holders.liveness(engine)):
        raise lease.LeaseBusyError(f"lease {lease.NAME!r} is held by {lease.holder(engine)!r}; {who!r} waits")
    log.info("run %s holds the staging lease", run_id)
    return {"run_id": run_id, "lease": who}


def take_lease_task(context: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`take_lease` for a DAG task: busy -> rescheduled (no worker slot held while waiting)."""
    from crm_sync.tasks import failfast

    try:
        return failfast.run(take_lease, context)
    except lease.LeaseBusyError as busy:
        raise lease.reschedule(busy) from busy


def _end(engine: sa.Engine, run_id: str, status: str) -> None:
    """Record the run's end (pruning older runs' rule rows) and give the lease back."""
    staging.finish_run(engine, run_id, status)
    if lease.release(engine, holders.for_run(run_id)):
        log.info("run %s released the staging lease", run_id)


def finish_run(
    context: Mapping[str, Any], *, staging_conn_id: str = staging.DEFAULT_CONN_ID
) -> dict[str, Any]:
    """Mark the run done, release the lease and log its per-stage counts from ``sync_log``."""
    engine = staging.staging_engine(staging_conn_id)
    run_id = str(context["run_id"])
    params = context.get("params") or {}
    status = "planned" if params.get("dry_run") else "succeeded"
    _end(engine, run_id, status)
    log_rows = staging.read_frame(engine, "sync_log")
    mine = log_rows[log_rows["run_id"] == run_id]
    for row in mine.itertuples(index=False):
        log.info(
            "%-8s %-28s read=%s changed=%s deleted=%s quarantined=%s created=%s updated=%s skipped=%s",
            row.stage,
            row.object,
            row.read,
            row.changed,
            row.deleted,
            row.quarantined,
            row.created,
            row.updated,
            row.skipped,
        )
    totals = {
        col: int(mine[col].sum())
        for col in ("read", "changed", "deleted", "quarantined", "created", "updated", "skipped")
    }
    log.info("run %s %s: %s", run_id, status, totals)
    return {"run_id": run_id, "status": status, **totals}


def record_failure(
    context: Mapping[str, Any], *, staging_conn_id: str = staging.DEFAULT_CONN_ID
) -> dict[str, Any]:
    """Mark the run ``failed`` in ``sync_run`` and release the staging lease (a task failed).

    Its watermarks stay where they were, so the next run re-reads this interval; what the loads
    wrote is in ``load_journal`` and the links, so nothing is written twice.
    """
    engine = staging.staging_engine(staging_conn_id)
    run_id = str(context["run_id"])
    _end(engine, run_id, "failed")
    log.error("run %s failed; the next run re-reads its interval", run_id)
    return {"run_id": run_id, "status": "failed"}
