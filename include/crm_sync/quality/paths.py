"""Where reports live: one folder per run under the reports directory.

The directory is ``$CRM_SYNC_REPORTS_DIR``, else ``$AIRFLOW_HOME/crm_sync_reports`` (DESIGN.md);
each run writes ``<run folder>/report.html`` and ``report.json``. Run ids contain ``:`` and
``+`` (``scheduled__2026-12-06T00:00:00+00:00``), which are not portable in file names, so the
folder is a readable slug of the run id; ``report.json`` records the exact run id, which is what
:func:`find_report` matches. The task, the ``crm-sync report`` CLI and the Airflow plugin all
resolve paths here, read from the environment when called.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

ENV_VAR = "CRM_SYNC_REPORTS_DIR"
FOLDER = "crm_sync_reports"
HTML = "report.html"
JSON = "report.json"


def reports_dir() -> Path:
    """``$CRM_SYNC_REPORTS_DIR``, else ``$AIRFLOW_HOME/crm_sync_reports`` (home ``~/airflow``)."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    home = os.environ.get("AIRFLOW_HOME") or str(Path("~/airflow").expanduser())
    return Path(home) / FOLDER


def folder_name(run_id: str) -> str:
    """A file-system-safe, readable folder name for a run id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._") or "run"


def run_dir(run_id: str, base: Path | None = None) -> Path:
    return (base or reports_dir()) / folder_name(run_id)


def _reports(base: Path) -> list[Path]:
    if not base.is_dir():
        return []
    return [p for p in base.iterdir() if (p / JSON).is_file()]


def latest_report(base: Path | None = None) -> Path | None:
    """The folder of the most recently written report, or ``None``."""
    found = _reports(base or reports_dir())
    return max(found, key=lambda p: (p / JSON).stat().st_mtime_ns) if found else None


def find_report(run_id: str, base: Path | None = None) -> Path | None:
    """The folder of ``run_id``'s report (by its slug, confirmed by the run id it records)."""
    folder = run_dir(run_id, base)
    if (folder / JSON).is_file():
        recorded = json.loads((folder / JSON).read_text(encoding="utf-8")).get("run_id")
        if recorded == run_id:
            return folder
    return None
