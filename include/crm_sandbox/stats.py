"""Reading a running emulator's request counts (``GET /__sandbox/stats``) from outside it.

Tests and the demo use these counts as proof of what a run did to a CRM: above all, that a run
after a complete sync makes no write request at all. Reads sent as POST (HubSpot search and
batch read, Salesforce Bulk query jobs) do not count as writes.
"""

from __future__ import annotations

import re
from typing import Any

import requests

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
#: Paths that are reads even when sent with POST.
READ_PATHS = re.compile(r"(/search$|/batch/read$|/jobs/query|/oauth|/__sandbox/)")


def fetch_stats(base_url: str, *, verify: bool | str = True) -> dict[str, Any]:
    """The emulator's stats document (``base_url`` like ``http://127.0.0.1:PORT``)."""
    response = requests.get(f"{base_url.rstrip('/')}/__sandbox/stats", timeout=10, verify=verify)
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


def write_requests(stats: dict[str, Any]) -> dict[str, int]:
    """Write requests by ``"METHOD path"`` (empty when the CRM was only read)."""
    return {
        f"{row['method']} {row['path']}": int(row["count"])
        for row in stats.get("requests", [])
        if row["method"] in WRITE_METHODS and not READ_PATHS.search(row["path"])
    }


def writes_between(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """Write requests made between two stats documents, by ``"METHOD path"``."""
    earlier = write_requests(before)
    return {
        key: count - earlier.get(key, 0)
        for key, count in write_requests(after).items()
        if count > earlier.get(key, 0)
    }
