"""The report as one self-contained HTML file: tables and inline SVG charts, no scripts, no fetches.

A person opens ``report.html`` from a file share, an e-mail or the Airflow plugin; it must show
the same thing everywhere, so styles are inline, charts are SVG drawn here (no JavaScript, no
CDN), and every value is HTML-escaped. The page has:

* the summary (match rate, pairs, what is kept back);
* ``#mismatch-chart``: one bar per object and field, its mismatch rate this run;
* ``#trend-chart``: the overall match rate over the last runs, and the mismatch rate of the
  fields that differ most;
* ``#field-stats``: per object and field, pairs compared, matches, mismatches, missing on either
  side, then examples; then duplicates, quarantine, dead letters, currencies and rollups.

Elements carry ``data-*`` attributes with the exact figures, so tests (and scrapers) read numbers
from the rendered page rather than from pixel positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2933}
body{max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d9e2ec;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #d9e2ec;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f4f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:.75rem}
.card{border:1px solid #d9e2ec;border-radius:6px;padding:.5rem 1rem}
.card b{display:block;font-size:1.3rem}.bad{color:#b42318}.ok{color:#027a48}.muted{color:#7b8794}
svg text{font-size:11px;fill:#1f2933}
"""
_PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")


def _e(value: Any) -> str:
    return "" if value is None else escape(str(value))


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _table(table_id: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: set[int]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in numeric else ''}>{_e(v)}</td>" for i, v in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


#: Rows a long table shows in the page; the JSON keeps them all.
MAX_ROWS = 500


def _capped(table_id: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int]) -> str:
    """A table of at most :data:`MAX_ROWS` rows, saying how many more ``report.json`` holds."""
    more = len(rows) - MAX_ROWS
    note = f'<p class="muted">{more} more rows in report.json.</p>' if more > 0 else ""
    return _table(table_id, headers, rows[:MAX_ROWS], numeric) + note


def _cards(s: dict[str, Any]) -> str:
    items = [
        ("Match rate", _pct(s["match_rate"]), "ok" if s["match_rate"] >= 0.999 else "bad"),
        ("Linked pairs compared", s["pairs_compared"], ""),
        ("Field comparisons", s["fields_compared"], ""),
        ("Mismatches", s["mismatches"], "bad" if s["mismatches"] else "ok"),
        ("Missing in Salesforce", s["missing_salesforce"], ""),
        ("Missing in HubSpot", s["missing_hubspot"], ""),
        ("Duplicate Account groups", s["duplicate_groups"], ""),
        ("Open quarantine", s["open_quarantine"], ""),
        ("Dead letters", s["dead_letters"], ""),
        ("Rollup mismatches", s["rollup_mismatches"], ""),
    ]
    return (
        '<div class="cards" id="summary">'
        + "".join(
            f'<div class="card"><span class="muted">{_e(k)}</span>'
            f'<b class="{c}" data-metric="{_e(k)}">{_e(v)}</b></div>'
            for k, v, c in items
        )
        + "</div>"
    )


def bar_chart(fields: Sequence[dict[str, Any]]) -> str:
    """``#mismatch-chart``: a horizontal bar per object and field, length = its mismatch rate."""
    label_w, bar_w, row_h = 330, 420, 18
    height = max(len(fields), 1) * row_h + 30
    parts = [
        f'<svg id="mismatch-chart" xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 70}" '
        f'height="{height}" role="img" aria-label="Mismatch rate per field">'
    ]
    for i, f in enumerate(fields):
        y = 10 + i * row_h
        rate = float(f["mismatch_rate"])
        label = f"{f['object']}: {f['field']}"
        width = round(rate * bar_w, 1)
        colour = "#dc2626" if rate > 0 else "#16a34a"
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">{_e(label)}</text>')
        parts.append(
            f'<rect class="bar" x="{label_w}" y="{y + 2}" width="{max(width, 1)}" height="{row_h - 5}" '
            f'fill="{colour}" data-field="{_e(label)}" data-rate="{rate:.6f}">'
            f"<title>{_e(label)}: {_pct(rate)}</title></rect>"
        )
        parts.append(f'<text x="{label_w + max(width, 1) + 4}" y="{y + 12}">{_pct(rate)}</text>')
    axis_y = 10 + len(fields) * row_h + 4
    parts.append(
        f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + bar_w}" y2="{axis_y}" stroke="#7b8794"/>'
    )
    parts.append(f'<text x="{label_w}" y="{axis_y + 14}">0%</text>')
    parts.append(f'<text x="{label_w + bar_w}" y="{axis_y + 14}" text-anchor="end">100%</text>')
    parts.append("</svg>")
    return "".join(parts)


def trend_chart(trend: Sequence[dict[str, Any]], top: int = 6) -> str:
    """``#trend-chart``: match rate over the runs, plus the fields with the highest mismatch rates."""
    width, height, left, right, pad = 900, 260, 50, 360, 20
    plot_w, plot_h = width - left - right, height - 2 * pad
    n = len(trend)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(rate: float) -> float:
        return pad + plot_h * (1 - rate)

    worst: dict[str, float] = {}
    for run in trend:
        for name, rate in run["fields"].items():
            worst[name] = max(worst.get(name, 0.0), float(rate))
    lines: list[tuple[str, str, list[float | None]]] = [
        ("match rate (all fields)", "match", [float(r["match_rate"]) for r in trend])
    ]
    for name, _ in sorted(((k, v) for k, v in worst.items() if v > 0), key=lambda kv: (-kv[1], kv[0]))[:top]:
        lines.append((f"mismatch: {name}", "field", [r["fields"].get(name) for r in trend]))
    parts = [
        f'<svg id="trend-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="Trend over the last runs" data-runs="{n}">'
    ]
    for tick in (0.0, 0.5, 1.0):
        parts.append(
            f'<line x1="{left}" y1="{y(tick)}" x2="{left + plot_w}" y2="{y(tick)}" stroke="#d9e2ec"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{y(tick) + 4}" text-anchor="end">{_pct(tick)}</text>')
    for i in range(n):
        tick_label = "now" if i == n - 1 else str(i + 1 - n)
        parts.append(f'<text x="{x(i)}" y="{height - 4}" text-anchor="middle">{tick_label}</text>')
    for j, (label, kind, values) in enumerate(lines):
        colour = _PALETTE[j % len(_PALETTE)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values) if v is not None)
        data = ",".join("" if v is None else f"{v:.6f}" for v in values)
        parts.append(
            f'<polyline class="trend {kind}" fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{points}" '
            f'data-series="{_e(label)}" data-values="{data}"><title>{_e(label)}</title></polyline>'
        )
        for i, v in enumerate(values):
            if v is not None:
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
        ly = pad + 14 * j
        parts.append(f'<rect x="{left + plot_w + 10}" y="{ly}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{left + plot_w + 24}" y="{ly + 9}">{_e(label[:56])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _field_rows(objects: Sequence[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            f["object"],
            f["field"],
            f"{f['salesforce_field']} / {f['hubspot_field']}",
            f["compared"],
            f["matches"],
            f["mismatches"],
            f["missing_salesforce"],
            f["missing_hubspot"],
            _pct(f["mismatch_rate"]),
        ]
        for o in objects
        for f in o["fields"]
    ]


def _examples(objects: Sequence[dict[str, Any]]) -> list[list[Any]]:
    return [
        [f["object"], f["field"], ex["kind"], ex["sf_id"], ex["hs_id"], ex["salesforce"], ex["hubspot"]]
        for o in objects
        for f in o["fields"]
        for ex in f["examples"]
    ]


def _duplicates(groups: Sequence[dict[str, Any]]) -> list[list[Any]]:
    return [
        [g["group_id"], g["size"], f"{g['survivor_id']} ({g['survivor_name'] or '?'})", m["sf_id"], m["name"],
         "survivor" if m["survivor"] else "not synced", m["key"]]
        for g in groups
        for m in g["members"]
    ]  # fmt: skip


def _entries(block: dict[str, Any], table_id: str, empty: str) -> str:
    if not block["available"]:
        return f'<p class="muted" id="{table_id}">{_e(empty)}</p>'
    if not block["entries"]:
        return f'<p id="{table_id}">None open.</p>'
    headers = list(block["entries"][0])
    rows = [[e.get(h) for h in headers] for e in block["entries"]]
    note = f"<p>{block['open']} open; the first {len(rows)}:</p>"
    return note + _table(table_id, headers, rows, set())


def html(doc: dict[str, Any]) -> str:
    """The whole page (see the module docstring)."""
    s = doc["summary"]
    fields = [f for o in doc["objects"] for f in o["fields"]]
    sections = [
        f"<h1>crm-sync data-quality report</h1><p>Run <code>{_e(doc['run_id'])}</code> of "
        f"<code>{_e(doc['dag_id'])}</code>, generated {_e(doc['generated_at'])}"
        + (f"; sync run <code>{_e(doc['source_run_id'])}</code>" if doc.get("source_run_id") else "")
        + ".</p>",
        _cards(s),
        "<h2>Mismatch rate per field</h2><p>Share of linked pairs whose values differ after normalisation "
        "(dates, numbers, value maps, owners by email), or are set on one side only.</p>",
        bar_chart(fields),
        f"<h2>Trend over the last {len(doc['trend'])} runs</h2>",
        trend_chart(doc["trend"]),
        "<h2>Synced fields of linked pairs</h2>",
        _table(
            "field-stats",
            [
                "Object",
                "Field",
                "Salesforce / HubSpot",
                "Pairs compared",
                "Matches",
                "Mismatches",
                "Missing in Salesforce",
                "Missing in HubSpot",
                "Mismatch rate",
            ],
            _field_rows(doc["objects"]),
            {3, 4, 5, 6, 7},
        ),
        _table(
            "objects",
            ["Object", "Linked pairs", "Pairs compared", "Links without both records"],
            [
                [o["object"], o["linked_pairs"], o["pairs_compared"], o["records_missing"]]
                for o in doc["objects"]
            ],
            {1, 2, 3},
        ),
        "<h2>Examples</h2>",
        _table(
            "examples",
            ["Object", "Field", "Kind", "Salesforce id", "HubSpot id", "Salesforce value", "HubSpot value"],
            _examples(doc["objects"]),
            set(),
        ),
        f"<h2>Probable duplicate Accounts (ACC-6)</h2><p>{len(doc['duplicates'])} groups. Only the survivor "
        "syncs; nothing is merged.</p>",
        _capped(
            "duplicates",
            ["Group", "Size", "Survivor", "Account", "Name", "Status", "Matched on"],
            _duplicates(doc["duplicates"]),
            {1},
        ),
        "<h2>Validation of the sync run (before loading)</h2>",
        _table(
            "validation",
            ["Object", "Rows checked", "Rows failing", "Failure rate", "Failing expectations"],
            [
                [
                    v["object"],
                    v["rows"],
                    v["failed"],
                    _pct(v["rate"]),
                    ", ".join(f"{k}: {n}" for k, n in v["failing_expectations"].items()),
                ]
                for v in doc.get("validation", [])
            ],
            {1, 2},
        ),
        "<h2>Quarantine (SYNC-5)</h2>",
        _entries(doc["quarantine"], "quarantine", ""),
        "<h2>Dead letters</h2>",
        _entries(doc["dead_letters"], "dead-letters", "Dead letters are not recorded in this staging yet."),
        "<h2>Mixed-currency rollups (DEAL-8)</h2>",
        _capped(
            "mixed-currency",
            ["Object", "Record", "Currencies", "Closed-won deals", "Total revenue"],
            [
                [m["object"], m["record_id"], m["currencies"], m["won_deals"], m["total_revenue"]]
                for m in doc["mixed_currency"]
            ],
            {3, 4},
        ),
        "<h2>HubSpot rollups vs crm-sync's expectation (ROLL-1..6)</h2>",
        _table(
            "rollups",
            ["Object", "Property", "Rules", "Records compared", "Matches", "Mismatches", "Examples"],
            [
                [
                    r["object"],
                    r["field"],
                    ", ".join(r["rules"]),
                    r["compared"],
                    r["matches"],
                    r["mismatches"],
                    "; ".join(
                        f"{e['record_id']}: expected {e['expected']}, HubSpot {e['hubspot']}"
                        for e in r["examples"]
                    ),
                ]
                for r in doc["rollups"]
            ],
            {3, 4, 5},
        ),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>crm-sync data quality {_e(doc['run_id'])}</title><style>{_STYLE}</style></head><body>"
        + "".join(sections)
        + "</body></html>"
    )
