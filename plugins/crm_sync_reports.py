"""Airflow plugin: the crm-sync data-quality reports, one click from the Airflow UI.

Airflow 3 plugins extend the UI with ``external_views`` (a link or an embedded page, in the
navigation or on a DAG run, templated with ``{DAG_ID}`` / ``{RUN_ID}``) and serve their own
pages through ``fastapi_apps`` mounted on the API server (Airflow docs, "Plugins": external
views and FastAPI apps replace Airflow 2's Flask views). This plugin:

* mounts a small FastAPI app at ``/crm-sync-reports``: ``/`` lists the reports, newest first;
  ``/latest`` shows the newest; ``/runs/{run_id}`` shows that run's ``report.html`` and
  ``/runs/{run_id}/report.json`` its figures;
* adds "Data quality reports" to the Browse menu, and a "Data quality report" tab on every DAG
  run (the tab of a run without a report says so and links to the latest).

Reports are read from the reports directory (:mod:`crm_sync.quality.paths`) at request time.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from airflow.plugins_manager import AirflowPlugin
from crm_sync.quality import paths
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

URL_PREFIX = "/crm-sync-reports"

app = FastAPI(title="crm-sync data-quality reports", docs_url=None, redoc_url=None, openapi_url=None)


def _listing(base: Path) -> list[tuple[str, str, str, float]]:
    """(run id, folder, generated at, match rate) of every report, newest first."""
    rows = []
    if base.is_dir():
        for folder in base.iterdir():
            data_file = folder / paths.JSON
            if data_file.is_file():
                doc = json.loads(data_file.read_text(encoding="utf-8"))
                rows.append(
                    (
                        str(doc.get("run_id", folder.name)),
                        folder.name,
                        str(doc.get("generated_at", "")),
                        float(doc.get("summary", {}).get("match_rate", 0.0)),
                    )
                )
    return sorted(rows, key=lambda r: r[2], reverse=True)


@app.get("/", response_class=HTMLResponse)
def index() -> str:
    """Every report with its match rate, newest first."""
    rows = "".join(
        f'<tr><td><a href="{URL_PREFIX}/runs/{escape(folder)}">{escape(run_id)}</a></td>'
        f"<td>{escape(at)}</td><td>{rate:.1%}</td></tr>"
        for run_id, folder, at, rate in _listing(paths.reports_dir())
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>crm-sync data-quality reports</title></head>"
        "<body style='font-family:system-ui,sans-serif'><h1>crm-sync data-quality reports</h1>"
        f"<table><thead><tr><th>Run</th><th>Generated</th><th>Match rate</th></tr></thead><tbody>{rows}"
        "</tbody></table></body></html>"
    )


@app.get("/latest")
def latest() -> Response:
    folder = paths.latest_report()
    if folder is None:
        raise HTTPException(status_code=404, detail="no data-quality report has been written yet")
    return RedirectResponse(f"{URL_PREFIX}/runs/{folder.name}")


def _folder(run_id: str) -> Path | None:
    """A run's report folder by its run id or by its folder name (the index links folder names)."""
    base = paths.reports_dir()
    found = paths.find_report(run_id, base)
    if found is not None:
        return found
    candidate = base / paths.folder_name(run_id)
    return candidate if candidate.name == run_id and (candidate / paths.JSON).is_file() else None


@app.get("/runs/{run_id}")
def run_report(run_id: str) -> Response:
    folder = _folder(run_id)
    if folder is None:
        return HTMLResponse(
            f"<p>No data-quality report for run <code>{escape(run_id)}</code>. "
            f'<a href="{URL_PREFIX}/latest">The latest report</a> · '
            f'<a href="{URL_PREFIX}/">all reports</a></p>',
            status_code=404,
        )
    return FileResponse(folder / paths.HTML, media_type="text/html")


@app.get("/runs/{run_id}/report.json")
def run_figures(run_id: str) -> Response:
    folder = _folder(run_id)
    if folder is None:
        raise HTTPException(status_code=404, detail=f"no data-quality report for run {run_id}")
    return FileResponse(folder / paths.JSON, media_type="application/json")


class CrmSyncReportsPlugin(AirflowPlugin):
    """Links and serves the data-quality reports (see the module docstring)."""

    name = "crm_sync_reports"
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "crm-sync data-quality reports"}]
    external_views = [
        {
            "name": "Data quality reports",
            "href": f"{URL_PREFIX}/",
            "destination": "nav",
            "category": "browse",
            "url_route": "crm_sync_reports",
        },
        {
            "name": "Data quality report",
            "href": f"{URL_PREFIX}/runs/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "crm_sync_report_run",
        },
    ]
