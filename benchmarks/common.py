"""Shared helpers for benchmarks: time things, summarise samples, print a table, write JSON.

Every benchmark ends with :func:`report`, so results look the same on a terminal and in
``benchmarks/results/<name>.json`` (which CI keeps as an artifact and people diff between runs).
This module has no intra-package imports, so it works both as ``benchmarks.common`` and, with the
folder on ``sys.path``, as ``common``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

#: Where results go; ``CRM_BENCH_RESULTS`` overrides it (e.g. a CI artifact folder).
RESULTS_DIR = Path(os.environ.get("CRM_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")


def environment() -> dict[str, Any]:
    """Facts about the machine that make numbers comparable between runs."""
    try:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        memory_gib = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gib": memory_gib,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 if sys.platform != "darwin" else 1024 * 1024), 1)


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Run ``fn`` ``repeat`` times; return each call's wall time in seconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def summarize(samples: Sequence[float], *, per_call: float = 1.0) -> dict[str, Any]:
    """Latency percentiles in ms and the sequential rate (calls/s, or ``per_call`` units/s)."""
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]

    total = sum(ordered)
    return {
        "n": len(ordered),
        "p50_ms": round(pct(0.5) * 1000, 2),
        "p95_ms": round(pct(0.95) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 2),
        "per_s": round(len(ordered) * per_call / total, 1) if total > 0 else None,
    }


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table; columns are the union of the rows' keys in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    if not columns:
        return "(no rows)"
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(row.get(c), int | float) or row.get(c) is None for row in rows) for c in columns
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        )

    out = [line(columns), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(s.rstrip() for s in out)


def report(name: str, rows: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    """Print ``rows`` as a table and write ``{"name", "meta", "rows"}`` to ``results/<name>.json``.

    ``meta`` describes the run (sizes, seed, settings); machine facts are added under
    ``meta["environment"]``. Returns the JSON file's path.
    """
    print(f"\n== {name} ==")
    for key, value in meta.items():
        if not isinstance(value, dict | list):
            print(f"{key}: {value}")
    print()
    print(format_table(rows))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    target = RESULTS_DIR / f"{name}.json"
    payload = {"name": name, "meta": {**meta, "environment": environment()}, "rows": rows}
    target.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwrote {target}")
    return target
