"""HubSpot load benchmark: creates through HubSpotWriter against the emulator with its rate limits ON.

Run: ``python -m benchmarks.bench_load_hubspot [--sizes 100000,1000000] [--requests-per-10s 190]``.

The emulator runs in its own process (``crm-sandbox serve``, empty portal, HubSpot's 190 requests
per rolling 10 s for a private app), so the peak RSS printed is the writer's alone. Per size, the
portal is reset and ``size`` company creates are written the way the load runner does: in groups
of ``--chunk`` items per ``write()`` call, each split into ``batch/upsert`` calls of 100.

Columns:

- ``records_per_s``: records written per second of wall time;
- ``api_calls`` against ``min_calls`` = ceil(n/100) upserts (``calls_ratio``, target <= 1.05);
  the writer's three property reads of ``prepare()`` are not counted;
- ``budget_share``: requests sent / requests HubSpot allowed in the 10-second windows the load
  spanned, ``calls / (limit * ceil(elapsed / 10 s))`` (target >= 0.9). It can never exceed 1, and
  a last window that is only partly needed lowers it on short loads: 1,000 calls at 190 per
  window need 6 windows, so even perfect pacing shows 0.88 at 100k; at 1M the edge vanishes. A
  load that fits in one window (fewer than ``limit`` calls) shows a low share by construction;
- ``pace``: the seconds the limit alone forces (the k-th call cannot start before
  ``floor((k - 1) / limit)`` windows have passed) / the seconds the load took;
- ``http_429``: rate-limit refusals the emulator answered (``/__sandbox/stats``; target 0);
- ``peak_rss_mib``: this process's peak resident memory (flat in n: items are made per chunk).
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

from benchmarks.common import peak_rss_mib, report

NAME = "load_hubspot"
INTERVAL_S = 10.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(requests_per_10s: int) -> tuple[subprocess.Popen[str], str]:
    sf_port, hs_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crm_sandbox.cli", "serve", "--salesforce-port", str(sf_port),
         "--hubspot-port", str(hs_port), "--hubspot-requests-per-10s", str(requests_per_10s)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("crm-sandbox ready:"):
            return proc, f"http://127.0.0.1:{hs_port}"
    raise RuntimeError(f"crm-sandbox serve exited with {proc.wait()}")


def _control(url: str, name: str, method: str = "GET") -> Any:
    request = urllib.request.Request(f"{url}/__sandbox/{name}", method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"null")


def _items(size: int, chunk: int, seed: int) -> Iterator[list[Any]]:
    from crm_sync.load.writer import LoadItem

    for start in range(0, size, chunk):
        yield [
            LoadItem(
                seq=i,
                target="hubspot",
                object="companies",
                action="create",
                source_id=f"001B{seed:02d}{i:010d}",
                target_id=None,
                fields={
                    "name": f"Company {i}",
                    "domain": f"c{i}.example",
                    "city": "Lyon",
                    "numberofemployees": i % 500,
                },
                rules=("BENCH",),
            )
            for i in range(start, min(size, start + chunk))
        ]


def bench_size(url: str, size: int, chunk: int, seed: int, limit: int, max_parallel: int) -> dict[str, Any]:
    import hubspot
    from crm_sync.load.hubspot import HubSpotWriter

    _control(url, "reset", "POST")
    writer = HubSpotWriter(
        hubspot.HubSpot(access_token="bench", host=url), requests_per_10s=limit, max_parallel=max_parallel
    )
    writer.prepare()
    setup_calls = writer.api_calls()
    written = failed = 0
    started = time.perf_counter()
    for group in _items(size, chunk, seed):
        for outcome in writer.write("companies", "create", group):
            written += outcome.ok
            failed += not outcome.ok
        print(f"[{size}] {written + failed:,} records, {time.perf_counter() - started:.0f} s", flush=True)
    elapsed = time.perf_counter() - started
    writer.close()
    calls = writer.api_calls() - setup_calls
    minimum = math.ceil(size / 100)
    stats = _control(url, "stats")
    return {
        "size": size,
        "seconds": round(elapsed, 1),
        "records_per_s": round(size / elapsed, 1),
        "api_calls": calls,
        "min_calls": minimum,
        "calls_ratio": round(calls / minimum, 3),
        "calls_per_10s": round(calls / elapsed * INTERVAL_S, 1),
        "budget_share": round(calls / (limit * math.ceil(elapsed / INTERVAL_S)), 3),
        "pace": round(((calls - 1) // limit) * INTERVAL_S / elapsed, 3),
        "http_429": int(stats["by_status"].get("429", 0)),
        "written": written,
        "failed": failed,
        "peak_rss_mib": peak_rss_mib(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000", help="comma-separated record counts")
    parser.add_argument("--chunk", type=int, default=10_000, help="items per write() call")
    parser.add_argument(
        "--requests-per-10s", type=int, default=190, help="the emulator's (and portal's) limit"
    )
    parser.add_argument("--max-parallel", type=int, default=4, help="batch calls in flight")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    proc, url = _serve(args.requests_per_10s)
    rows = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(
                bench_size(url, size, args.chunk, args.seed, args.requests_per_10s, args.max_parallel)
            )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    report(
        NAME,
        rows,
        {
            "sizes": args.sizes,
            "chunk": args.chunk,
            "requests_per_10s": args.requests_per_10s,
            "max_parallel": args.max_parallel,
            "targets": "calls_ratio <= 1.05, budget_share >= 0.9 on loads longer than one window, "
            "http_429 = 0",
            "note": "emulator in its own process with HubSpot's rate limits on; company creates by "
            "batch upsert",
        },
    )


if __name__ == "__main__":
    main()
