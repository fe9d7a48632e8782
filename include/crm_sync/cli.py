"""``crm-sync``: the command line users read the sync plan (and the data-quality report) with.

``crm-sync plan`` reads staging through the same ``crm_staging`` resolution as the DAGs, so it
shows exactly what a ``dry_run`` left for review (or what a real run is about to apply).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TextIO

import pandas as pd

from crm_sync.plan import PLAN_COLUMNS, summarize

DEFAULT_DAG_ID = "crm_sync"


class CliError(RuntimeError):
    """A user-facing failure: printed without a traceback, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args, sys.stdout)
    except CliError as exc:
        print(f"crm-sync: {exc}", file=sys.stderr)
        return 2
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-sync", description=__doc__.splitlines()[0] if __doc__ else None
    )
    sub = parser.add_subparsers(dest="command", required=True)

    plan = sub.add_parser("plan", help="show the sync plan of a run (default: the latest crm_sync run)")
    plan.add_argument("--run-id", help="Airflow run id; default: the latest crm_sync run in staging")
    plan.add_argument("--format", choices=("table", "jsonl"), default="table")
    plan.add_argument("--dag-id", default=DEFAULT_DAG_ID, help="DAG whose latest run to show")
    plan.add_argument("--conn-id", default="crm_staging", help="Airflow connection of the staging DB")
    plan.set_defaults(handler=_cmd_plan)

    quarantine = sub.add_parser("quarantine", help="records kept back with their reason (SYNC-5)")
    quarantine.add_argument("--all", action="store_true", help="include entries resolved since")
    quarantine.add_argument("--stage", help="only this stage (extract, rules, ...)")
    quarantine.add_argument("--format", choices=("table", "jsonl"), default="table")
    quarantine.add_argument("--conn-id", default="crm_staging", help="Airflow connection of the staging DB")
    quarantine.set_defaults(handler=_cmd_quarantine)

    letters = sub.add_parser(
        "dead-letters", help="writes a CRM rejected, with its error; retried by later runs"
    )
    letters.add_argument("--all", action="store_true", help="include entries written since")
    letters.add_argument("--target", choices=("salesforce", "hubspot"), help="only this CRM")
    letters.add_argument("--format", choices=("table", "jsonl"), default="table")
    letters.add_argument(
        "--release", action="store_true", help="give held entries new attempts (after fixing the data)"
    )
    letters.add_argument("--conn-id", default="crm_staging", help="Airflow connection of the staging DB")
    letters.set_defaults(handler=_cmd_dead_letters)

    report = sub.add_parser("report", help="the data-quality report of a run (default: the latest)")
    report.add_argument("--run-id", help="Airflow run id of the report; default: the latest report written")
    report.add_argument(
        "--format",
        choices=("summary", "path", "json", "html"),
        default="summary",
        help="summary lines, the report.html path, report.json or report.html",
    )
    report.set_defaults(handler=_cmd_report)

    check = sub.add_parser("check-config", help="validate a sync configuration file")
    check.add_argument("path", nargs="?", help="YAML file; default: $CRM_SYNC_CONFIG or the shipped default")
    check.add_argument(
        "--online",
        action="store_true",
        help="also check every mapped field against the org's describe and the portal's properties",
    )
    check.add_argument("--salesforce-conn-id", default="salesforce_default", help="Airflow connection")
    check.add_argument("--hubspot-conn-id", default="hubspot_default", help="Airflow connection")
    check.set_defaults(handler=_cmd_check_config)
    return parser


def _cmd_check_config(args: argparse.Namespace, out: TextIO) -> int:
    """The config offline (keys, values, mapped fields in the catalog); ``--online`` also
    checks the mapped fields against the CRMs behind the two connections."""
    from crm_sync.connections import CrmConnectionError
    from crm_sync.settings import ConfigError, load_config

    try:
        config = load_config(args.path)
        if args.online:
            from crm_sync.mapping_check import check_online, live_field_lister

            check_online(config, live_field_lister(args.salesforce_conn_id, args.hubspot_conn_id))
    except (ConfigError, CrmConnectionError) as exc:
        raise CliError(str(exc)) from exc
    where = " (mapped fields checked against the org and the portal)" if args.online else ""
    out.write(f"{config.source}: valid{where}\n")
    return 0


def _cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    from crm_sync.quality import paths
    from crm_sync.quality.report import summary_lines

    base = paths.reports_dir()
    folder = paths.find_report(args.run_id, base) if args.run_id else paths.latest_report(base)
    if folder is None:
        which = f"for run {args.run_id!r}" if args.run_id else "yet"
        raise CliError(f"no data-quality report {which} in {base} (set CRM_SYNC_REPORTS_DIR or run the DAG)")
    if args.format == "path":
        out.write(f"{folder / paths.HTML}\n")
    elif args.format in ("json", "html"):
        out.write(
            (folder / (paths.JSON if args.format == "json" else paths.HTML)).read_text(encoding="utf-8")
        )
    else:
        doc = json.loads((folder / paths.JSON).read_text(encoding="utf-8"))
        out.write("\n".join(summary_lines(doc, str(folder / paths.HTML))) + "\n")
    return 0


def _staging_engine(conn_id: str) -> Any:
    """The staging engine, or a one-line error naming the connection (no traceback)."""
    from crm_sync import staging

    try:
        engine = staging.staging_engine(conn_id)
        staging.ensure_schema(engine)
    except Exception as exc:  # reported with its cause, never swallowed
        raise CliError(f"cannot open the staging database of connection {conn_id!r}: {exc}") from exc
    return engine


def _cmd_plan(args: argparse.Namespace, out: TextIO) -> int:
    from crm_sync import staging

    engine = _staging_engine(args.conn_id)
    run_id = args.run_id or staging.latest_run_id(engine, args.dag_id)
    if run_id is None:
        raise CliError(
            f"no {args.dag_id} run found in staging ({engine.url.render_as_string(hide_password=True)}); "
            "run `make demo` or trigger the DAG first"
        )
    plan = staging.read_plan(engine, run_id)
    if args.format == "jsonl":
        write_jsonl(plan, out)
    else:
        write_table(plan, run_id, out)
    return 0


QUARANTINE_COLUMNS: tuple[str, ...] = (
    "stage",
    "system",
    "object",
    "record_id",
    "rule",
    "reason",
    "attempts",
    "first_seen_at",
    "last_seen_at",
    "last_run_id",
    "resolved_at",
)


@dataclass(frozen=True)
class EntryListing:
    """How one kept-back table (quarantine, dead letters) is listed: the same shape for both."""

    title: str
    sort: tuple[str, ...]
    jsonl_columns: tuple[str, ...]
    json_column: str
    table_columns: tuple[str, ...]
    text_column: str


QUARANTINE_LISTING = EntryListing(
    "quarantine",
    ("stage", "system", "object", "record_id", "rule"),
    QUARANTINE_COLUMNS,
    "payload",
    ("stage", "system", "object", "record_id", "rule", "attempts", "reason"),
    "reason",
)
DEAD_LETTER_LISTING = EntryListing(
    "dead letters",
    ("target", "object", "record_key"),
    (
        "target",
        "object",
        "record_key",
        "action",
        "source_id",
        "target_id",
        "error_code",
        "message",
        "attempts",
        "first_seen_at",
        "last_seen_at",
        "last_run_id",
        "resolved_at",
    ),
    "fields",
    ("target", "object", "record_key", "error_code", "attempts", "message"),
    "message",
)


def _write_entries(
    entries: pd.DataFrame, listing: EntryListing, args: argparse.Namespace, out: TextIO
) -> int:
    """Open (or, with ``--all``, every) entry as JSON lines or an aligned table."""
    if not args.all:
        entries = entries[entries["resolved_at"].isna()]
    entries = entries.sort_values(list(listing.sort))
    if args.format == "jsonl":
        for record in entries[[*listing.jsonl_columns, listing.json_column]].to_dict("records"):
            row = {k: _plain(v) for k, v in record.items()}
            raw = row[listing.json_column]
            row[listing.json_column] = json.loads(raw) if raw else None
            out.write(json.dumps(row, default=_json_default) + "\n")
        return 0
    state = "entries" if args.all else "open entries"
    out.write(f"{listing.title}: {len(entries)} {state}\n\n")
    if entries.empty:
        return 0
    columns = list(listing.table_columns)
    rows = [
        [
            *(str(rec[c]) for c in columns[:-2]),
            int(rec["attempts"]),
            _clip(str(rec[listing.text_column] or "")),
        ]
        for rec in entries[columns].to_dict("records")
    ]
    out.write(_format_rows(columns, rows))
    return 0


def _cmd_quarantine(args: argparse.Namespace, out: TextIO) -> int:
    from crm_sync import staging

    entries = staging.read_frame(_staging_engine(args.conn_id), "quarantine")
    if args.stage:
        entries = entries[entries["stage"] == args.stage]
    return _write_entries(entries, QUARANTINE_LISTING, args, out)


def _cmd_dead_letters(args: argparse.Namespace, out: TextIO) -> int:
    from crm_sync import staging
    from crm_sync.load import deadletters

    engine = _staging_engine(args.conn_id)
    if args.release:
        released = deadletters.release(engine, args.target)
        out.write(f"dead letters: {released} open entries get new attempts from the next run\n")
        return 0
    entries = staging.read_frame(engine, "dead_letter")
    if args.target:
        entries = entries[entries["target"] == args.target]
    return _write_entries(entries, DEAD_LETTER_LISTING, args, out)


def _clip(text: str, width: int = 120) -> str:
    """One table cell of a long API message (``--format jsonl`` keeps it whole)."""
    return text if len(text) <= width else text[: width - 1] + "…"


def write_jsonl(plan: pd.DataFrame, out: TextIO) -> None:
    """One JSON object per plan row, with exactly the contract's keys (DESIGN.md)."""
    for record in plan[list(PLAN_COLUMNS)].to_dict("records"):
        row = {key: _plain(record[key]) for key in PLAN_COLUMNS}
        out.write(json.dumps(row, default=_json_default, sort_keys=False) + "\n")


def write_table(plan: pd.DataFrame, run_id: str, out: TextIO) -> None:
    """Counts per target, object, action and rule, plus totals per action."""
    out.write(f"plan of run {run_id}: {len(plan)} rows\n\n")
    summary = summarize(plan)
    if summary.empty:
        out.write("(empty plan: nothing to do)\n")
        return
    out.write(_format_rows(["target", "object", "action", "rule", "count"], summary.values.tolist()))
    totals = plan.groupby("action").size().reindex(plan["action"].unique()).sort_index()
    out.write("\n" + _format_rows(["action", "rows"], [[a, int(n)] for a, n in totals.items()]))


def _format_rows(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(isinstance(row[i], int) for row in rows) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])]) + "\n"


def _plain(value: Any) -> Any:
    """Turn pandas' missing markers into JSON null; keep dicts and lists as they are."""
    if isinstance(value, dict | list):
        return value
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return value
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__} in a plan row")


if __name__ == "__main__":
    raise SystemExit(main())
