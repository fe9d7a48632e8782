"""The report's figures in staging: one row per report, one per object and field (for trends).

``quality_report`` keeps each report's headline numbers and where its files are;
``quality_field_stats`` keeps, per report, every compared field's counts and mismatch rate. The
trend chart reads the last runs back from here, so it works across workers and restarts, and
anyone can query the history with SQL. A re-run of a report replaces its own rows (SYNC-4).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from crm_sync.staging import UTCDateTime, now_utc

metadata = sa.MetaData()

quality_report = sa.Table(
    "quality_report",
    metadata,
    sa.Column("run_id", sa.Text(), primary_key=True),
    sa.Column("dag_id", sa.Text()),
    sa.Column("source_run_id", sa.Text()),
    sa.Column("generated_at", UTCDateTime()),
    sa.Column("linked_pairs", sa.Integer()),
    sa.Column("fields_compared", sa.Integer()),
    sa.Column("matches", sa.Integer()),
    sa.Column("mismatches", sa.Integer()),
    sa.Column("missing", sa.Integer()),
    sa.Column("match_rate", sa.Float()),
    sa.Column("open_quarantine", sa.Integer()),
    sa.Column("dead_letters", sa.Integer()),
    sa.Column("duplicate_groups", sa.Integer()),
    sa.Column("rollup_mismatches", sa.Integer()),
    sa.Column("path", sa.Text()),
)

quality_field_stats = sa.Table(
    "quality_field_stats",
    metadata,
    sa.Column("run_id", sa.Text(), primary_key=True),
    sa.Column("object", sa.Text(), primary_key=True),
    sa.Column("field", sa.Text(), primary_key=True),
    sa.Column("compared", sa.Integer()),
    sa.Column("matches", sa.Integer()),
    sa.Column("mismatches", sa.Integer()),
    sa.Column("missing_salesforce", sa.Integer()),
    sa.Column("missing_hubspot", sa.Integer()),
    sa.Column("mismatch_rate", sa.Float()),
    sa.Column("generated_at", UTCDateTime()),
)


def ensure_tables(engine: sa.Engine) -> None:
    """Create the two report tables if missing (safe to call from every report task)."""
    metadata.create_all(engine, checkfirst=True)


def save(engine: sa.Engine, document: Mapping[str, Any], path: str) -> None:
    """Store a report's figures, replacing that run's earlier rows in one transaction."""
    ensure_tables(engine)
    run_id = str(document["run_id"])
    summary = document["summary"]
    at = now_utc()
    report_row = {
        "run_id": run_id,
        "dag_id": document.get("dag_id"),
        "source_run_id": document.get("source_run_id"),
        "generated_at": at,
        "linked_pairs": summary["linked_pairs"],
        "fields_compared": summary["fields_compared"],
        "matches": summary["matches"],
        "mismatches": summary["mismatches"],
        "missing": summary["missing_salesforce"] + summary["missing_hubspot"],
        "match_rate": summary["match_rate"],
        "open_quarantine": summary["open_quarantine"],
        "dead_letters": summary["dead_letters"],
        "duplicate_groups": summary["duplicate_groups"],
        "rollup_mismatches": summary["rollup_mismatches"],
        "path": path,
    }
    field_rows = [
        {
            "run_id": run_id,
            "object": f["object"],
            "field": f["field"],
            "compared": f["compared"],
            "matches": f["matches"],
            "mismatches": f["mismatches"],
            "missing_salesforce": f["missing_salesforce"],
            "missing_hubspot": f["missing_hubspot"],
            "mismatch_rate": f["mismatch_rate"],
            "generated_at": at,
        }
        for obj in document["objects"]
        for f in obj["fields"]
    ]
    with engine.begin() as conn:
        conn.execute(sa.delete(quality_field_stats).where(quality_field_stats.c.run_id == run_id))
        conn.execute(sa.delete(quality_report).where(quality_report.c.run_id == run_id))
        conn.execute(sa.insert(quality_report), [report_row])
        if field_rows:
            conn.execute(sa.insert(quality_field_stats), field_rows)


def history(engine: sa.Engine, runs: int, *, exclude: str | None = None) -> list[dict[str, Any]]:
    """The last ``runs`` stored reports, oldest first, each with ``fields``: ``{"object: field": rate}``."""
    ensure_tables(engine)
    r = quality_report
    with engine.connect() as conn:
        query = sa.select(r.c.run_id, r.c.generated_at, r.c.match_rate).order_by(r.c.generated_at.desc())
        if exclude is not None:
            query = query.where(r.c.run_id != exclude)
        heads = conn.execute(query.limit(max(runs, 0))).all()
        ids = [h.run_id for h in heads]
        f = quality_field_stats
        stats = conn.execute(
            sa.select(f.c.run_id, f.c.object, f.c.field, f.c.mismatch_rate).where(f.c.run_id.in_(ids))
        ).all()
    by_run: dict[str, dict[str, float]] = {run_id: {} for run_id in ids}
    for s in stats:
        by_run[s.run_id][f"{s.object}: {s.field}"] = float(s.mismatch_rate or 0.0)
    return [
        {
            "run_id": h.run_id,
            "generated_at": h.generated_at.isoformat() if h.generated_at else None,
            "match_rate": float(h.match_rate or 0.0),
            "fields": by_run[h.run_id],
        }
        for h in reversed(heads)
    ]
