"""How connections are read: session ids, tokens, hosts and the messages when one is missing."""

from __future__ import annotations

import json

import pytest
from airflow.sdk.definitions.connection import Connection
from crm_sync.connections import (
    CrmConnectionError,
    RetryingSession,
    hubspot_hook,
    salesforce_batch_size,
    salesforce_hook,
    salesforce_session_id,
)
from hubspot_hook import DEFAULT_HOST, HubSpotConnectionError, HubSpotHook


def conn(**fields: object) -> Connection:
    return Connection.from_json(json.dumps(fields), conn_id="x")


def test_salesforce_session_id_comes_from_extra_or_a_login_less_password() -> None:
    assert salesforce_session_id(conn(conn_type="salesforce", password="tok")) == "tok"
    assert (
        salesforce_session_id(conn(conn_type="salesforce", password="p", extra={"session_id": "sid"}))
        == "sid"
    )
    # With a login the password is a password: the hook logs in itself.
    assert salesforce_session_id(conn(conn_type="salesforce", login="u@x.com", password="p")) is None


def test_salesforce_hook_gets_the_session_and_a_retrying_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SALESFORCE_DEFAULT",
        json.dumps({"conn_type": "salesforce", "password": "sid-123",
                    "extra": {"instance_url": "https://127.0.0.1:1", "timeout": 7, "batch_size": 500}}),
    )  # fmt: skip
    hook = salesforce_hook()
    assert hook.session_id == "sid-123"
    assert isinstance(hook.session, RetryingSession)
    assert hook.session.default_timeout == 7.0
    assert hook.session.get_adapter("https://x").max_retries.status_forcelist == (429, 500, 502, 503, 504)
    assert salesforce_batch_size() == 500


def test_a_missing_connection_is_named_with_how_to_create_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SALESFORCE_NOWHERE", raising=False)
    with pytest.raises(
        CrmConnectionError, match=r"'salesforce_nowhere' is not defined.*AIRFLOW_CONN_SALESFORCE_NOWHERE"
    ):
        salesforce_hook("salesforce_nowhere")
    with pytest.raises(CrmConnectionError, match=r"'hubspot_nowhere' is not defined"):
        hubspot_hook("hubspot_nowhere")


def test_hubspot_hook_reads_token_host_and_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT",
        json.dumps({"conn_type": "hubspot", "password": "pat-1",
                    "extra": {"host": "http://127.0.0.1:9/", "timeout": 3, "search_per_second": 0}}),
    )  # fmt: skip
    hook = HubSpotHook()
    assert (hook.settings.token, hook.settings.host, hook.timeout) == ("pat-1", "http://127.0.0.1:9", 3.0)
    assert hook.settings.search_per_second == 0
    client = hook.get_conn()
    api = client.crm.objects.basic_api
    assert api.api_client.configuration.host == "http://127.0.0.1:9"
    assert api.api_client.configuration.retries.status_forcelist == (429, 500, 502, 503, 504)
    assert (HubSpotHook.default_conn_name, HubSpotHook.conn_type) == ("hubspot_default", "hubspot")


def test_hubspot_token_may_sit_in_extra_and_host_defaults_to_hubspot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps({"conn_type": "hubspot", "extra": {"token": "t"}})
    )
    assert (HubSpotHook().settings.token, HubSpotHook().settings.host) == ("t", DEFAULT_HOST)
    monkeypatch.setenv("AIRFLOW_CONN_HUBSPOT_DEFAULT", json.dumps({"conn_type": "hubspot"}))
    with pytest.raises(HubSpotConnectionError, match=r"'hubspot_default' has no access token.*password"):
        _ = HubSpotHook().settings
