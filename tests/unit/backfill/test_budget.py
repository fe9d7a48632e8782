"""The backfill's share of HubSpot's request rate (the hourly sync keeps the rest)."""

from __future__ import annotations

import json

import pytest
from crm_sync.backfill.budget import check_share, writer_options


def test_the_hubspot_writer_is_paced_to_the_share_of_the_connections_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = {
        "conn_type": "hubspot",
        "password": "t",
        "extra": {"host": "http://127.0.0.1:9", "requests_per_10s": 100},
    }
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps(conn))
    assert writer_options("hubspot", 0.3) == {"requests_per_10s": 30}
    assert writer_options("hubspot", 1.0) == {}
    assert writer_options("salesforce", 0.3) == {}  # a daily allowance: the api_reserve extra guards it


@pytest.mark.parametrize("share", [0, -0.5, 1.5])
def test_a_share_outside_0_1_fails_naming_the_param(share: float) -> None:
    with pytest.raises(ValueError, match="api_share"):
        check_share(share)
