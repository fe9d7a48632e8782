"""Load tasks of ``crm_sync``: write one target's plan rows, then commit the run's bookkeeping.

``load_hubspot`` and ``load_salesforce`` each run a :class:`~crm_sync.load.runner.LoadRunner`
with their CRM's writer (and the other CRM's writer for the link fields of created records);
``commit`` advances snapshots, links and watermarks once both have finished. Per-record
failures do not fail a task (they are dead letters, retried by later runs); a batch that fails
whole does, and re-running the task finishes the job from the journal.
"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Any

import sqlalchemy as sa

from crm_sync import staging
from crm_sync.connections import HUBSPOT_CONN_ID, SALESFORCE_CONN_ID
from crm_sync.load.bookkeeping import commit_run
from crm_sync.load.runner import COUNTS, LoadCounts, LoadRunner
from crm_sync.load.writer import Writer

log = logging.getLogger(__name__)

#: target -> (module, class, connection id) of its writer.
WRITERS: dict[str, tuple[str, str, str]] = {
    "hubspot": ("crm_sync.load.hubspot", "HubSpotWriter", HUBSPOT_CONN_ID),
    "salesforce": ("crm_sync.load.salesforce", "SalesforceWriter", SALESFORCE_CONN_ID),
}
TARGETS = tuple(WRITERS)


def make_writer(target: str, **options: Any) -> Writer:
    """The writer for ``target``, created inside the task (never at DAG parse time).

    ``options`` override the connection's settings (the backfill lowers HubSpot's request rate).
    """
    module, name, conn_id = WRITERS[target]
    writer: Writer = getattr(importlib.import_module(module), name).from_connection(conn_id, **options)
    return writer


def load_target(
    target: str,
    *,
    run_id: str,
    staging_conn_id: str = staging.DEFAULT_CONN_ID,
    writer_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``run_id``'s plan rows for ``target``; returns counts for XCom."""
    if target not in WRITERS:
        raise KeyError(f"unknown load target {target!r}; targets are {', '.join(TARGETS)}")
    started = time.monotonic()
    engine = staging.staging_engine(staging_conn_id)
    staging.ensure_schema(engine)
    writer = make_writer(target, **(writer_options or {}))
    counterpart = make_writer(next(t for t in TARGETS if t != target))
    try:
        runner = LoadRunner(engine, run_id, writer, counterpart=counterpart)
        counts = runner.run()
        summary = runner.summary()
    finally:
        writer.close()
        counterpart.close()
    _log_counts(engine, run_id, counts, summary, duration=time.monotonic() - started)
    log.info("load %s: %s", target, summary)
    return summary


def _log_counts(
    engine: sa.Engine, run_id: str, counts: LoadCounts, summary: dict[str, Any], *, duration: float
) -> None:
    """``sync_log`` rows (stage ``load``): one per object, and one for the target with API calls."""
    target = str(summary["target"])
    objects = sorted({obj for obj, _ in counts.planned})
    for obj in objects:
        written = {action: n for (o, action), n in counts.written.items() if o == obj}
        staging.log_run_stage(
            engine,
            run_id,
            "load",
            f"{target}.{obj}",
            created=written.get("create", 0),
            updated=written.get("update", 0) + written.get("link", 0) + written.get("associate", 0),
            deleted=written.get("delete", 0),
            details={
                name: {a: n for (o, a), n in getattr(counts, name).items() if o == obj} for name in COUNTS
            },
        )
    staging.log_run_stage(engine, run_id, "load", target, duration_s=duration, details=summary)


def commit(*, run_id: str, staging_conn_id: str = staging.DEFAULT_CONN_ID) -> dict[str, Any]:
    """Advance snapshots, cleared links and watermarks after both loads (SYNC-1, SYNC-3, DEAL-4)."""
    engine = staging.staging_engine(staging_conn_id)
    result = commit_run(engine, run_id)
    log.info("run %s committed: %s", run_id, result)
    return result
