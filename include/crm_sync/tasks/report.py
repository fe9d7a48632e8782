"""The ``report`` task: compare linked pairs across both CRMs and write the data-quality report.

Which CRM state it reads. The report must describe the CRMs as they are *after* a load, while
staging holds what the sync run read *before* it. So ``crm_data_quality_report`` first runs the
same incremental extraction tasks as ``crm_sync`` (both CRMs, every object, reusing
:mod:`crm_sync.tasks.extract`): the records the load just wrote changed after the last committed
watermark and are re-read, every other staged record is already current, and staging's
content-hash upserts make a re-read write nothing (SYNC-4). The report DAG never commits
watermarks, so ``crm_sync``'s SYNC-1 cursor only moves after its own successful runs; should the
two interleave, ``crm_sync`` merely re-reads a little more next time. Links come from
``sync_link`` plus the link fields just read (:func:`crm_sync.staging.refresh_links_from_staging`).
Expectations that only the rules know (ACC-6 groups, ROLL-1..6 values, DEAL-8 flags) come from
the rule tables' rows of the source run (the latest ``crm_sync`` run unless given; rule tables
are scoped by run), or, when there is no source run, of the latest run that has rows.

Called from ``crm_sync`` itself (its ``report`` task, no extraction), the same function reports
on that run's staged state.

Outputs: ``report.json`` and ``report.html`` in the run's folder under the reports directory
(:mod:`crm_sync.quality.paths`), the figures in ``quality_report``/``quality_field_stats`` (so
trends work), and a summary with the path in the task log. XCom gets the path and the summary.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from crm_sync import staging
from crm_sync.quality import findings, paths, render, store
from crm_sync.quality.comparison import compare_all
from crm_sync.quality.report import document, summary_lines
from crm_sync.rules.owners import build_owner_map
from crm_sync.settings import SyncConfig, load_config

log = logging.getLogger(__name__)

DAG_ID = "crm_data_quality_report"
#: The per-record write failures of the loads (older staging databases may not have it yet).
DEAD_LETTER_TABLE = "dead_letter"
#: Staged tables the report reads whole.
_TABLES: tuple[str, ...] = (
    "sf_account",
    "sf_contact",
    "sf_lead",
    "sf_opportunity",
    "sf_user",
    "sf_opportunity_stage",
    "hs_company",
    "hs_contact",
    "hs_deal",
    "hs_owner",
    "hs_pipeline",
    "hs_pipeline_stage",
    "sync_link",
    "quarantine",
    "sync_log",
    "picklist_options",
)
#: Rule tables the report reads, one run's rows (absent tables and runs read as empty).
_RULE_TABLES: tuple[str, ...] = (
    "rule_pipelines",
    "rule_account_groups",
    "rule_rollups",
    "rule_currency_flags",
)


def read_tables(engine: sa.Engine, source_run_id: str | None) -> dict[str, pd.DataFrame]:
    """Every table the report reads: rule tables with ``source_run_id``'s rows (without a source
    run, those of the latest run that has rows); missing tables are empty frames."""
    inspector = sa.inspect(engine)
    frames = {
        name: staging.read_frame(engine, name) if inspector.has_table(name) else pd.DataFrame()
        for name in _TABLES
    }
    for name in _RULE_TABLES:
        run_id = source_run_id or staging.latest_run_with_rows(engine, name)
        frames[name] = pd.DataFrame() if run_id is None else staging.read_run_rows(engine, name, run_id)
    return frames


def _dead_letters(engine: sa.Engine) -> pd.DataFrame | None:
    if not sa.inspect(engine).has_table(DEAD_LETTER_TABLE):
        return None
    return staging.read_frame(engine, DEAD_LETTER_TABLE)


def gather(
    engine: sa.Engine, config: SyncConfig, source_run_id: str | None = None
) -> tuple[list[Any], dict[str, Any]]:
    """The comparison of every object pair, and the other findings, from staging."""
    frames = read_tables(engine, source_run_id)
    examples = config.quality.examples
    owners = build_owner_map(frames["sf_user"], frames["hs_owner"], config.integration_user_email)
    objects = compare_all(frames, config, owners, examples)
    found = {
        "duplicates": findings.duplicate_groups(frames["rule_account_groups"], frames["sf_account"]),
        "quarantine": findings.open_entries(
            frames["quarantine"],
            ("stage", "system", "object", "rule"),
            ("stage", "system", "object", "record_id", "rule", "reason", "attempts", "last_seen_at"),
            examples * 4,
        ),
        "dead_letters": findings.open_entries(
            _dead_letters(engine),
            ("target", "object", "error_code"),
            ("target", "object", "record_key", "action", "error_code", "message", "attempts", "last_run_id"),
            examples * 4,
        ),
        "validation": findings.validation_outcomes(frames["sync_log"], source_run_id),
        "mixed_currency": findings.mixed_currency(frames["rule_currency_flags"]),
        "rollups": findings.rollup_differences(frames["rule_rollups"], frames, examples),
    }
    return objects, found


def build_report(
    run_id: str,
    *,
    dag_id: str = DAG_ID,
    source_run_id: str | None = None,
    staging_conn_id: str = staging.DEFAULT_CONN_ID,
    reports_dir: Path | None = None,
) -> dict[str, Any]:
    """Write run ``run_id``'s report (see the module docstring); returns its path and summary."""
    config = load_config()
    engine = staging.staging_engine(staging_conn_id)
    staging.ensure_schema(engine)
    store.ensure_tables(engine)
    new_links = staging.refresh_links_from_staging(engine, run_id)
    log.info("links derived from the link fields read: %s", new_links)
    source_run_id = source_run_id or staging.latest_run_id(engine, "crm_sync")
    objects, found = gather(engine, config, source_run_id)
    history = store.history(engine, config.quality.trend_runs - 1, exclude=run_id)
    doc = document(
        run_id=run_id,
        dag_id=dag_id,
        source_run_id=source_run_id,
        generated_at=staging.now_utc(),
        objects=objects,
        findings=found,
        history=history,
    )
    folder = paths.run_dir(run_id, reports_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / paths.JSON).write_text(
        json.dumps(doc, indent=2, sort_keys=False, default=str), encoding="utf-8"
    )
    (folder / paths.HTML).write_text(render.html(doc), encoding="utf-8")
    store.save(engine, doc, str(folder))
    for line in summary_lines(doc, str(folder / paths.HTML)):
        log.info("%s", line)
    return {
        "run_id": run_id,
        "path": str(folder / paths.HTML),
        "folder": str(folder),
        "summary": doc["summary"],
    }
