"""The ``validate`` task: audit the staged records and the plan before anything is loaded.

Write-audit-publish: ``build_plan`` wrote the plan, this task audits it, the loaders publish
what passed. For run ``run_id`` it reads the synced objects, their reference data and the plan
from staging, runs the expectation suites (:func:`crm_sync.quality.validation.validate`) and

* keeps every failing record in ``quarantine`` (stage ``validate``, rule = the expectation, the
  reason, the values it read) and resolves open ``validate`` entries that now pass (SYNC-5);
* rewrites the plan rows of failing records (and failing plan rows) to action ``quarantine``
  with the reason, so the loaders skip them and ``crm-sync plan`` says why;
* logs per-object counts (task log and ``sync_log`` stage ``validate``);
* stops the run, before any load, when an object's failure rate passes
  ``quality.failure_threshold`` over at least ``quality.min_rows`` rows: the task log names the
  expectation and shows a sample (:class:`~crm_sync.quality.validation.QualityGateError`). The
  rate is that of the rows this run read (staging's ``_run_id``): a broken source or import
  stops the run, while old records already waiting in quarantine do not stop every later one.

XCom gets counts only.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa

from crm_sync import staging
from crm_sync.quality import bulk_read
from crm_sync.quality.suites import OBJECTS, ObjectSpec
from crm_sync.quality.validation import QualityGateError, Validation, breaches, gate_message, validate
from crm_sync.settings import load_config

log = logging.getLogger(__name__)

STAGE = "validate"
#: Reference tables the suites read whole (small metadata).
_REFERENCE_TABLES: tuple[str, ...] = (
    "sf_user",
    "hs_owner",
    "sf_opportunity_stage",
    "hs_pipeline_stage",
    "sf_record_type",
    "sync_link",
    "picklist_options",
)
#: Rule maps the suites read, the validated run's rows only (rule tables are scoped by run).
_RULE_TABLES: tuple[str, ...] = ("rule_pipelines", "rule_pipeline_stages")


def _columns(spec: ObjectSpec, available: list[str]) -> list[str]:
    wanted = [
        spec.stream.key,
        "_deleted",
        "_run_id",
        "IsDeleted",
        "archived",
        spec.email,
        spec.owner,
        spec.stage,
    ]
    wanted += [spec.pipeline, *spec.dates, *spec.numbers]
    return [c for c in dict.fromkeys(w for w in wanted if w) if c in available]


def read_inputs(engine: sa.Engine, run_id: str) -> dict[str, pd.DataFrame]:
    """The staged frames validation reads for run ``run_id``: only the columns the suites need
    of the big tables, and that run's rule maps.

    The deals suite reads ``id`` and ``pipeline`` too, which is all the plan suite needs of them.
    """
    inspector = sa.inspect(engine)
    frames: dict[str, pd.DataFrame] = {}
    for spec in OBJECTS:
        table = spec.stream.table
        available = [c.name for c in staging.table_for(engine, table).c]
        frames[table] = bulk_read.columns_frame(engine, table, _columns(spec, available))
    for table in _REFERENCE_TABLES:
        if inspector.has_table(table):
            frames[table] = staging.read_frame(engine, table)
    for table in _RULE_TABLES:
        if inspector.has_table(table):
            frames[table] = staging.read_run_rows(engine, table, run_id)
    return frames


def validate_plan(run_id: str, *, staging_conn_id: str = staging.DEFAULT_CONN_ID) -> dict[str, Any]:
    """Validate run ``run_id`` (see the module docstring); returns counts for XCom.

    When an object's failure rate passes the threshold it raises Airflow's
    ``AirflowFailException`` (from :class:`QualityGateError`): retrying cannot fix the data, so
    the task fails at once and nothing downstream (the loads) runs. The quarantine entries are
    written first, so the failing rows can be inspected with ``crm-sync quarantine``.
    """
    started = time.monotonic()
    settings = load_config().quality
    engine = staging.staging_engine(staging_conn_id)
    staging.ensure_schema(engine)
    frames = read_inputs(engine, run_id)
    plan = bulk_read.plan_frame(engine, run_id)
    result = validate(frames, plan, samples=settings.examples, run_id=run_id)
    with engine.begin() as conn:
        written = _quarantine(conn, run_id, result)
        resolved = _resolve_passing(conn, result)
        held = _hold_back(conn, run_id, plan, result.plan_reasons)
    _log(engine, run_id, result)
    broken = breaches(result.objects, settings.failure_threshold, settings.min_rows)
    duration = round(time.monotonic() - started, 3)
    if broken:
        message = gate_message(broken, settings.failure_threshold)
        log.error("%s", message)
        _fail(QualityGateError(message))
    log.info(
        "validated run %s in %.2f s: %d quarantined, %d resolved, %d plan rows held back",
        run_id,
        duration,
        written,
        resolved,
        held,
    )
    return {
        "run_id": run_id,
        "objects": {f"{o.scope}.{o.system}.{o.object}": o.as_dict() for o in result.objects},
        "quarantined": written,
        "resolved": resolved,
        "plan_rows_held_back": held,
        "duration_s": duration,
    }


def _fail(error: QualityGateError) -> None:
    """Fail the task without retries (Airflow's own exception), keeping our error as the cause."""
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(str(error)) from error


def _quarantine(conn: sa.Connection, run_id: str, result: Validation) -> int:
    rows = [
        {str(k): v for k, v in r.items()} for r in result.failures.drop(columns=["scope"]).to_dict("records")
    ]
    return staging.quarantine_rows(conn, rows, stage=STAGE, run_id=run_id)


def _resolve_passing(conn: sa.Connection, result: Validation) -> int:
    """SYNC-5: open ``validate`` entries whose record no longer fails that expectation."""
    q = staging.quarantine
    failing = set(
        zip(
            result.failures["system"],
            result.failures["object"],
            result.failures["record_id"],
            result.failures["rule"],
            strict=True,
        )
    )
    open_rows = conn.execute(
        sa.select(q.c.system, q.c.object, q.c.record_id, q.c.rule).where(
            q.c.stage == STAGE, q.c.resolved_at.is_(None)
        )
    ).all()
    done: dict[tuple[str, str, str], list[str]] = {}
    for system, obj, record_id, rule in open_rows:
        if (system, obj, record_id, rule) not in failing:
            done.setdefault((system, obj, rule), []).append(record_id)
    at = staging.now_utc()
    return sum(
        staging.resolve_quarantine(
            conn, stage=STAGE, system=system, object_name=obj, record_ids=ids, at=at, rule=rule
        )
        for (system, obj, rule), ids in done.items()
    )


def _hold_back(conn: sa.Connection, run_id: str, plan: pd.DataFrame, reasons: Mapping[int, str]) -> int:
    """Rewrite held-back plan rows (``reasons`` by position; the frame is indexed by ``seq``) to
    ``quarantine`` with their reason."""
    if not reasons:
        return 0
    table = staging.plan_table
    rules = plan["rules"].to_numpy(dtype=object)
    seqs = plan.index.to_numpy()
    updates = [
        {
            "b_seq": int(seqs[pos]),
            "b_reason": reason,
            "b_rules": json.dumps([*bulk_read.rules_of(rules[pos]), "SYNC-5"]),
        }
        for pos, reason in sorted(reasons.items())
    ]
    stmt = (
        sa.update(table)
        .where(table.c.run_id == run_id, table.c.seq == sa.bindparam("b_seq"))
        .values(action="quarantine", reason=sa.bindparam("b_reason"), rules=sa.bindparam("b_rules"))
    )
    conn.execute(stmt, updates)
    return len(updates)


def _log(engine: sa.Engine, run_id: str, result: Validation) -> None:
    """Per-object counts in the task log and ``sync_log`` (stage ``validate``)."""
    for o in result.objects:
        failing = {k: v for k, v in o.by_check.items() if v}
        log.info(
            "  %-7s %-10s %-24s rows=%-8d failed=%-6d %s",
            o.scope,
            o.system,
            o.object,
            o.rows,
            o.failed,
            failing,
        )
        staging.log_run_stage(
            engine,
            run_id,
            STAGE,
            f"{o.scope}.{o.system}.{o.object}",
            read=o.rows,
            quarantined=o.failed,
            details={"by_check": o.by_check, "samples": {k: v for k, v in o.samples.items() if v}},
        )
