"""The backfill's share of each CRM's API budget, so the hourly sync keeps the rest.

HubSpot limits a private app to a number of requests per rolling 10 seconds (the connection's
``requests_per_10s``, 190 by default); a backfill chunk's HubSpot writer paces itself to
``share`` of it, leaving the remainder to ``crm_sync`` and other integrations. Salesforce's budget
is a daily allowance: its writer already stops before the connection's ``api_reserve`` (requests
left to others), which is the knob to set for long backfills; the share does not change it.
"""

from __future__ import annotations

import math
from typing import Any

from crm_sync.connections import HUBSPOT_CONN_ID, hubspot_hook

#: Default share of a CRM's request rate a backfill may use.
DEFAULT_SHARE = 0.5


def check_share(share: float) -> float:
    """``share`` as a float in (0, 1]; raises naming the param otherwise."""
    value = float(share)
    if not 0 < value <= 1:
        raise ValueError(f"api_share must be in (0, 1], got {share!r}")
    return value


def writer_options(target: str, share: float, *, hubspot_conn_id: str = HUBSPOT_CONN_ID) -> dict[str, Any]:
    """Overrides for ``target``'s writer that keep it within ``share`` of the request rate."""
    if target != "hubspot" or share >= 1:
        return {}
    from crm_sync.load.hubspot_pacing import DEFAULT_MAX

    hook = hubspot_hook(hubspot_conn_id)
    extra = hook.get_connection(hubspot_conn_id).extra_dejson or {}
    limit = int(extra.get("requests_per_10s", DEFAULT_MAX))
    return {"requests_per_10s": max(1, math.floor(limit * check_share(share)))}
