"""The data-quality report as one JSON-ready document: the figures the HTML, the JSON and the log share.

:func:`document` assembles the comparison of linked pairs
(:mod:`crm_sync.quality.comparison`), the other findings (:mod:`crm_sync.quality.findings`) and
the trend of earlier runs (:mod:`crm_sync.quality.store`) into one dict, and adds a summary.
``report.json`` is exactly this document; ``report.html`` renders it. :func:`summary_lines` is
what the task log and the ``crm-sync report --format summary`` print.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from crm_sync.quality.comparison import ObjectComparison

SCHEMA_VERSION = 1


def _object(o: ObjectComparison) -> dict[str, Any]:
    return {
        "object": o.object,
        "linked_pairs": o.pairs,
        "pairs_compared": o.compared,
        "records_missing": o.records_missing,
        "fields": [f.as_dict() for f in o.fields],
    }


def summarize(objects: Sequence[dict[str, Any]], findings: dict[str, Any]) -> dict[str, Any]:
    """Headline numbers: pairs, field comparisons, matches, the match rate, what is kept back."""
    fields = [f for o in objects for f in o["fields"]]
    compared = sum(f["compared"] for f in fields)
    matches = sum(f["matches"] for f in fields)
    return {
        "linked_pairs": sum(o["linked_pairs"] for o in objects),
        "pairs_compared": sum(o["pairs_compared"] for o in objects),
        "fields_compared": compared,
        "matches": matches,
        "mismatches": sum(f["mismatches"] for f in fields),
        "missing_salesforce": sum(f["missing_salesforce"] for f in fields),
        "missing_hubspot": sum(f["missing_hubspot"] for f in fields),
        "match_rate": round(matches / compared, 6) if compared else 1.0,
        "open_quarantine": findings["quarantine"]["open"],
        "dead_letters": findings["dead_letters"]["open"],
        "duplicate_groups": len(findings["duplicates"]),
        "mixed_currency": len(findings["mixed_currency"]),
        "rollup_mismatches": sum(r["mismatches"] for r in findings["rollups"]),
    }


def document(
    *,
    run_id: str,
    dag_id: str,
    source_run_id: str | None,
    generated_at: datetime,
    objects: Sequence[ObjectComparison],
    findings: dict[str, Any],
    history: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """The report document (see the module docstring); ``history`` excludes this run."""
    objs = [_object(o) for o in objects]
    summary = summarize(objs, findings)
    current = {
        "run_id": run_id,
        "generated_at": generated_at.isoformat(),
        "match_rate": summary["match_rate"],
        "fields": {f"{o['object']}: {f['field']}": f["mismatch_rate"] for o in objs for f in o["fields"]},
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "dag_id": dag_id,
        "source_run_id": source_run_id,
        "generated_at": generated_at.isoformat(),
        "summary": summary,
        "objects": objs,
        **findings,
        "trend": [*history, current],
    }


def summary_lines(doc: dict[str, Any], path: str | None = None) -> list[str]:
    """A few lines for the task log: the match rate, the worst fields, what is kept back, where."""
    s = doc["summary"]
    lines = [
        f"data-quality report {doc['run_id']}: {s['matches']} of {s['fields_compared']} field "
        f"comparisons match ({s['match_rate']:.1%}) over {s['pairs_compared']} linked pairs",
        f"  mismatches {s['mismatches']}, missing in Salesforce {s['missing_salesforce']}, "
        f"missing in HubSpot {s['missing_hubspot']}",
        f"  duplicate Account groups {s['duplicate_groups']}, open quarantine {s['open_quarantine']}, "
        f"dead letters {s['dead_letters']}, mixed-currency rollups {s['mixed_currency']}, "
        f"rollup mismatches {s['rollup_mismatches']}",
    ]
    worst = sorted(
        (f for o in doc["objects"] for f in o["fields"] if f["mismatch_rate"] > 0),
        key=lambda f: (-f["mismatch_rate"], f["object"], f["field"]),
    )
    lines += [
        f"  {f['object']}: {f['field']} differs in {f['compared'] - f['matches']} of {f['compared']} pairs "
        f"({f['mismatch_rate']:.1%})"
        for f in worst[:5]
    ]
    if path:
        lines.append(f"  report: {path}")
    return lines
