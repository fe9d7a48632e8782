"""Rule tasks: staging -> one pure rule stage -> staging, for the ``crm_sync`` DAG.

Each of the seven rule tasks (``match_contacts`` ... ``build_plan``) loads the staged state and
the rows earlier stages of the same run wrote, runs its stage of :mod:`crm_sync.rules.pipeline`
(pure, no I/O), and replaces its own run's rows of its output tables. Rule tables are scoped by
run (``_run_id``), so an hourly sync and a backfill chunk never overwrite each other's
intermediate results, and a retried task recomputes the same rows from the same inputs
(SYNC-4). Every intermediate result stays queryable in staging for anyone asking why the plan
says what it says (until :func:`crm_sync.staging.prune_run_rows` drops runs older than their
DAG's latest). XCom gets table names and counts only.

``build_plan`` also writes the plan (``plan`` table), puts the rows the rules could not decide
into ``quarantine`` (stage ``rules``) and resolves earlier rule quarantines that now pass
(SYNC-5), and logs the human-readable summary to the task log and ``sync_log``.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from crm_sync import staging
from crm_sync.catalog import ALL_STREAMS, ASSOCIATIONS_TABLE
from crm_sync.plan import summarize
from crm_sync.rules import pipeline
from crm_sync.rules.deal_contacts import (
    ASSOCIATION_SNAPSHOT_TABLE,
    PLANNED_ASSOCIATION_SNAPSHOT_TABLE,
    next_association_snapshot,
)
from crm_sync.rules.inputs import InputView, RowMask, RuleInputs
from crm_sync.rules.value_maps import PICKLIST_OPTIONS_TABLE
from crm_sync.settings import load_config

log = logging.getLogger(__name__)

#: RuleInputs attribute -> staging table (raw tables carry the same name as the attribute).
_CONTRACT_TABLES: dict[str, str] = {
    "links": "sync_link",
    "snapshot": "sync_snapshot",
    "imported": "sync_import",
}


def run_stage(
    name: str,
    *,
    run_id: str,
    staging_conn_id: str = staging.DEFAULT_CONN_ID,
    inputs: RuleInputs | None = None,
) -> dict[str, Any]:
    """Run one rule stage for ``run_id`` and persist its tables; returns counts for XCom.

    ``inputs``: the staged state, already loaded (and links refreshed) by a caller that runs
    every stage in one process (a backfill chunk, which also narrows it to its neighbourhood);
    by default each stage loads it, as ``crm_sync``'s rule tasks run in separate processes.
    """
    if name not in pipeline.STAGES:
        raise KeyError(f"unknown rule stage {name!r}; stages are {', '.join(pipeline.STAGES)}")
    started = time.monotonic()
    config = load_config()
    engine = staging.staging_engine(staging_conn_id)
    staging.ensure_schema(engine)
    if inputs is None:
        if name == pipeline.STAGES[0]:
            refresh_links(engine, run_id)
        inputs = load_inputs(engine, now=run_time(engine, run_id))
    tables = {t: read_stage_table(engine, t, run_id) for t in pipeline.STAGE_NEEDS[name]}
    outputs = pipeline.run_stage(name, inputs, config, tables, run_id)
    counts: dict[str, int] = {}
    for table, frame in outputs.items():
        if table == "rule_plan":
            continue
        counts[table] = staging.replace_run_rows(engine, table, frame, run_id)
    result: dict[str, Any] = {"stage": name, "tables": counts}
    if name == "build_plan":
        result.update(_publish_plan(engine, run_id, outputs["rule_plan"]))
    duration = time.monotonic() - started
    log.info("rule stage %s wrote %s in %.2f s", name, counts, duration)
    return {**result, "duration_s": round(duration, 3)}


def refresh_links(engine: sa.Engine, run_id: str) -> dict[str, int]:
    """Derive ``sync_link`` from the staged link fields before the first stage reads it."""
    links = staging.refresh_links_from_staging(engine, run_id)
    log.info("links derived from staged link fields: %s", links)
    return links


def _input_tables() -> dict[str, str]:
    """RuleInputs attribute -> the staging table it is read from."""
    tables = {stream.table: stream.table for stream in ALL_STREAMS}
    tables["hs_association"] = ASSOCIATIONS_TABLE
    tables.update(_CONTRACT_TABLES)
    # Written by the loader after a load (DEAL-6); absent until the first load.
    tables["association_snapshot"] = ASSOCIATION_SNAPSHOT_TABLE
    # Both CRMs' picklist options for SYNC-2's value maps, once extraction stages them.
    tables["picklist_options"] = PICKLIST_OPTIONS_TABLE
    return tables


def load_inputs(engine: sa.Engine, *, now: datetime, view: InputView | None = None) -> RuleInputs:
    """Every staged frame the rules read (raw tables, associations, links, snapshot, imports);
    with ``view``, only the tables, columns and rows it names."""
    view = view or InputView()
    inputs = RuleInputs(now=now)
    for attribute, table in _input_tables().items():
        if attribute in view.skip:
            continue
        columns, keep = view.columns.get(attribute), view.rows.get(attribute)
        if table in (ASSOCIATION_SNAPSHOT_TABLE, PICKLIST_OPTIONS_TABLE):
            frame = read_stage_table(engine, table, keep=keep)
        else:
            present = staging.table_for(engine, table).c
            chosen = [c for c in columns if c in present] if columns is not None else None
            frame = staging.read_frame(engine, table, chosen, keep)
        setattr(inputs, attribute, frame if columns is None else frame[[c for c in columns if c in frame]])
    return inputs


def advance_association_snapshot(engine: sa.Engine, run_id: str) -> int:
    """DEAL-6: store the deal-contact snapshot this run's plan leaves (the loader calls it once
    the loads of ``run_id`` are done). The snapshot is observed state, so it is right whether
    or not every write succeeded; returns the rows stored."""
    planned = read_stage_table(engine, PLANNED_ASSOCIATION_SNAPSHOT_TABLE, run_id)
    return staging.replace_frame(
        engine, ASSOCIATION_SNAPSHOT_TABLE, next_association_snapshot(planned), run_id
    )


def read_stage_table(
    engine: sa.Engine, table: str, run_id: str | None = None, keep: RowMask | None = None
) -> pd.DataFrame:
    """A table the rules read, without staging's bookkeeping column; empty if never written.

    A rule table (``rule_*``) is read for ``run_id`` only: the rows an earlier stage of the same
    run wrote. The global state tables (DEAL-6's association snapshot, picklist options) hold
    one state for every run and are read without a run id (whole, or the rows ``keep`` keeps).
    """
    if table.startswith(staging.RULE_TABLE_PREFIX):
        if run_id is None:
            raise ValueError(f"{table} is scoped by run: read it with the run id")
        columns = pipeline.TABLE_COLUMNS.get(table, ())
        frame = staging.read_run_rows(engine, table, run_id, columns)
    elif not sa.inspect(engine).has_table(table):
        return pd.DataFrame(columns=list(pipeline.TABLE_COLUMNS.get(table, ())))
    else:
        frame = staging.read_frame(engine, table, keep=keep).drop(columns=["_run_id"], errors="ignore")
    return pipeline.decode_plan(frame) if table.startswith("rule_plan") else frame


def run_time(engine: sa.Engine, run_id: str) -> datetime:
    """The rules' notion of "now" for a run: its data interval end, so a re-run plans the same."""
    runs = staging.read_frame(engine, "sync_run")
    mine = runs[runs["run_id"] == run_id]
    if not mine.empty:
        for column in ("data_interval_end", "logical_date", "started_at"):
            value = mine.iloc[0][column]
            if value is not None and not pd.isna(value):
                return pd.Timestamp(value).to_pydatetime()
    return staging.now_utc()


def _publish_plan(engine: sa.Engine, run_id: str, plan: pd.DataFrame) -> dict[str, Any]:
    written = staging.write_plan(engine, run_id, plan)
    quarantined = plan[plan["action"] == "quarantine"]
    rows = [
        {
            "system": r.target,
            "object": r.object,
            "record_id": r.source_id or r.target_id or "?",
            "rule": ",".join(r.rules) if isinstance(r.rules, list) and r.rules else "rules",
            "reason": r.reason,
            "payload": {"fields": r.fields, "target_id": r.target_id},
        }
        for r in quarantined.itertuples(index=False)
    ]
    with engine.begin() as conn:
        staging.quarantine_rows(conn, rows, stage="rules", run_id=run_id)
        _resolve_passing(conn, run_id, rows)
    summary = summarize(plan)
    _log_summary(engine, run_id, plan, summary)
    counts = plan.groupby("action").size().to_dict() if not plan.empty else {}
    return {"plan_rows": written, "actions": {str(k): int(v) for k, v in counts.items()}}


def _resolve_passing(conn: sa.Connection, run_id: str, rows: list[dict[str, Any]]) -> None:
    """SYNC-5: a record quarantined by the rules in an earlier run and decided now is resolved."""
    q = staging.quarantine
    still = {(r["system"], r["object"], r["record_id"], r["rule"]) for r in rows}
    open_rows = conn.execute(
        sa.select(q.c.system, q.c.object, q.c.record_id, q.c.rule).where(
            q.c.stage == "rules", q.c.resolved_at.is_(None), q.c.last_run_id != run_id
        )
    ).all()
    done: dict[tuple[str, str, str], list[str]] = {}
    for system, obj, record_id, rule in open_rows:
        if (system, obj, record_id, rule) not in still:
            done.setdefault((system, obj, rule), []).append(record_id)
    at = staging.now_utc()
    for (system, obj, rule), record_ids in done.items():
        staging.resolve_quarantine(
            conn, stage="rules", system=system, object_name=obj, record_ids=record_ids, at=at, rule=rule
        )


def _log_summary(engine: sa.Engine, run_id: str, plan: pd.DataFrame, summary: pd.DataFrame) -> None:
    """The plan summary in the task log, and per target object in ``sync_log`` (stage ``plan``)."""
    log.info("plan of run %s: %d rows", run_id, len(plan))
    for row in summary.itertuples(index=False):
        log.info("  %-10s %-24s %-10s %-8s %6d", row.target, row.object, row.action, row.rule, row.count)
    if plan.empty:
        return
    for (target, obj), part in plan.groupby(["target", "object"], sort=True):
        actions = part["action"].value_counts().to_dict()
        details = summary[(summary["target"] == target) & (summary["object"] == obj)]
        staging.log_run_stage(
            engine,
            run_id,
            "plan",
            f"{target}.{obj}",
            created=int(actions.get("create", 0)),
            updated=int(actions.get("update", 0)),
            deleted=int(actions.get("delete", 0)),
            skipped=int(actions.get("skip", 0)),
            quarantined=int(actions.get("quarantine", 0)),
            details={
                "actions": {str(k): int(v) for k, v in actions.items()},
                "by_rule": details[["action", "rule", "count"]].to_dict("records"),
            },
        )
