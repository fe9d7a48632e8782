"""Logging in to the Salesforce emulator as real clients do: the OAuth 2.0 token endpoint (password,
refresh token, JWT bearer, client credentials) and the SOAP login, through simple-salesforce's own
login code, and crm-sync's connection paths for real orgs (JWT; username/password/security token)
through an Airflow connection whose ``login_url`` points at the sandbox.

Shapes compared with Salesforce's docs: "OAuth 2.0 Username-Password Flow", "OAuth 2.0 JWT Bearer
Flow", "OAuth 2.0 Client Credentials Flow" (developer.salesforce.com) and "OAuth 2.0 Authorization
Errors" (help.salesforce.com, remoteaccess_oauth_flow_errors.htm).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from crm_sandbox.salesforce.testing import SalesforceEndpoint, sample, serve_salesforce, session_fixtures
from crm_sync.connections import CrmConnectionError, RetryingSession, salesforce_client
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession
from simple_salesforce.login import SalesforceLogin

sandbox, _fresh, sf = session_fixtures()

ADA = "ada@example.com"


def login_session(sandbox: Any) -> RetryingSession:
    """A session that sends simple-salesforce's ``https://<domain>.salesforce.com`` logins to the
    sandbox (crm-sync's ``login_url`` extra) and trusts its CA."""
    session = RetryingSession(timeout=30, max_retries=0, login_url=sandbox.url)
    session.trust_env = False
    session.verify = str(sandbox.ca_bundle)
    sandbox.sessions.append(session)
    return session


def token_request(sandbox: Any, **form: str) -> tuple[int, dict[str, Any]]:
    with sandbox.http(auth=False) as http:
        response = http.post(f"{sandbox.url}/services/oauth2/token", data=form, timeout=30)
    return response.status_code, response.json()


def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_password_grant_answers_the_documented_fields(sandbox: Any) -> None:
    status, body = token_request(
        sandbox, grant_type="password", client_id="app", client_secret="s3cret", username=ADA, password="pw"
    )
    assert status == 200
    assert set(body) == {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"}
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == sandbox.url
    user_id = body["id"].rsplit("/", 1)[1]
    assert body["id"].startswith(f"{sandbox.url}/id/00D")
    assert user_id.startswith("005")
    expected = hmac.new(b"s3cret", (body["id"] + body["issued_at"]).encode(), hashlib.sha256).digest()
    assert body["signature"] == base64.b64encode(expected).decode()
    client = Salesforce(instance_url=body["instance_url"], session_id=body["access_token"],
                        session=sandbox.http(auth=False))  # fmt: skip
    me = client.query(f"SELECT Username FROM User WHERE Id = '{user_id}'")["records"][0]
    assert me["Username"] == ADA


def test_identity_url_answers_for_its_token(sandbox: Any) -> None:
    _, body = token_request(sandbox, grant_type="password", client_id="app", username=ADA, password="pw")
    with sandbox.http(auth=False) as http:
        http.headers["Authorization"] = f"Bearer {body['access_token']}"
        identity = http.get(body["id"], timeout=30).json()
    assert identity["username"] == ADA
    assert identity["organization_id"].startswith("00D")
    assert identity["urls"]["rest"].endswith("/services/data/v{version}/")


@pytest.mark.parametrize(
    ("form", "error", "description"),
    [
        ({"grant_type": "authorization_token"}, "unsupported_grant_type", "grant type not supported"),
        ({"grant_type": "password", "username": ADA, "password": "pw"}, "invalid_client_id",
         "client identifier invalid"),
        ({"grant_type": "password", "client_id": "app", "username": ADA}, "invalid_grant",
         "authentication failure"),
        ({"grant_type": "password", "client_id": "app", "username": "ian@example.com", "password": "pw"},
         "inactive_user", "user is inactive"),
        ({"grant_type": "client_credentials", "client_id": "app"}, "invalid_client",
         "invalid client credentials"),
        ({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "not-a-jwt"},
         "invalid_grant", "invalid assertion"),
    ],
)  # fmt: skip
def test_token_errors_have_salesforce_shape(
    sandbox: Any, form: dict[str, str], error: str, description: str
) -> None:
    status, body = token_request(sandbox, **form)
    assert (status, body) == (400, {"error": error, "error_description": description})


def test_refresh_token_grant(sandbox: Any) -> None:
    status, body = token_request(sandbox, grant_type="refresh_token", client_id="app", refresh_token="5Aep8")
    assert status == 200
    assert body["scope"] == "api"
    assert {"access_token", "instance_url", "id", "token_type", "issued_at", "signature"} <= set(body)


def test_jwt_bearer_login_through_simple_salesforce(sandbox: Any) -> None:
    client = Salesforce(
        username=ADA,
        consumer_key="connected-app",
        privatekey=private_key_pem(),
        session=login_session(sandbox),
    )
    assert client.auth_type == "jwt-bearer"
    assert client.sf_instance == sandbox.url.removeprefix("https://")
    assert client.query("SELECT COUNT() FROM Account")["totalSize"] == 8


def test_expired_jwt_is_refused(sandbox: Any) -> None:
    import jwt

    assertion = jwt.encode(
        {"iss": "app", "sub": ADA, "aud": "https://login.salesforce.com", "exp": 1_000_000},
        private_key_pem(),
        algorithm="RS256",
    )
    status, body = token_request(
        sandbox, grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer", assertion=assertion
    )
    assert (status, body["error"]) == (400, "invalid_grant")


def test_soap_login_with_security_token(sandbox: Any) -> None:
    session_id, instance = SalesforceLogin(
        username=ADA, password="pw", security_token="tok", session=login_session(sandbox), sf_version="59.0"
    )
    assert instance == sandbox.url.removeprefix("https://")
    client = Salesforce(instance=instance, session_id=session_id, session=sandbox.http(auth=False))
    assert client.query("SELECT Id FROM Contact")["totalSize"] == 4


def test_client_credentials_login_through_simple_salesforce(sandbox: Any) -> None:
    client = Salesforce(
        consumer_key="app", consumer_secret="secret", domain="acme.my", session=login_session(sandbox)
    )
    assert client.auth_type == "client-credentials"
    assert client.query("SELECT COUNT() FROM Lead")["totalSize"] == 2


# -- a locked-down org: the scenario lists tokens ------------------------------------------------
@pytest.fixture(scope="module")
def locked() -> Iterator[SalesforceEndpoint]:
    with serve_salesforce({**sample(), "tokens": ["listed-token"]}) as endpoint:
        yield endpoint


def test_locked_org_logs_in_known_users_only(locked: SalesforceEndpoint) -> None:
    session = login_session(locked.session)
    client = Salesforce(username=ADA, password="pw", security_token="tok", session=session)
    assert client.query("SELECT COUNT() FROM Account")["totalSize"] == 8
    with pytest.raises(SalesforceAuthenticationFailed) as failed:
        Salesforce(username="mallory@example.com", password="pw", security_token="tok", session=session)
    assert failed.value.code == "INVALID_LOGIN"
    with pytest.raises(SalesforceAuthenticationFailed) as refused:
        Salesforce(username="mallory@example.com", consumer_key="app", privatekey=private_key_pem(),
                   session=session)  # fmt: skip
    assert refused.value.code == "invalid_grant"


def test_locked_org_refreshes_listed_tokens_only(locked: SalesforceEndpoint) -> None:
    status, body = token_request(
        locked.session, grant_type="refresh_token", client_id="app", refresh_token="listed-token"
    )
    assert status == 200
    status, body = token_request(
        locked.session, grant_type="refresh_token", client_id="app", refresh_token="other"
    )
    assert (status, body["error"]) == (400, "invalid_grant")


def test_locked_org_still_refuses_unissued_sessions(locked: SalesforceEndpoint) -> None:
    client = locked.session.client(session_id="made-up")
    with pytest.raises(SalesforceExpiredSession):
        client.query("SELECT Id FROM Account")


# -- crm-sync's own login paths for real orgs -----------------------------------------------------
def use_connection(monkeypatch: pytest.MonkeyPatch, sandbox: Any, login: str, **extra: str) -> None:
    conn = {"conn_type": "salesforce", "login": login, "extra": {"login_url": sandbox.url, **extra}}
    if "password" in extra:
        conn["password"] = extra.pop("password")
        conn["extra"] = {"login_url": sandbox.url, **extra}
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_bundle))


def test_crm_sync_connection_with_jwt_key(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    use_connection(monkeypatch, sandbox, ADA, consumer_key="connected-app", private_key=private_key_pem())
    client = salesforce_client()
    assert client.auth_type == "jwt-bearer"
    names = {r["Name"] for r in client.query("SELECT Name FROM Opportunity")["records"]}
    assert names == {"Acme Big Deal", "Acme Renewal", "Globex Expansion"}


def test_crm_sync_connection_with_password_and_security_token(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, sandbox, ADA, password="pw", security_token="tok", domain="test")
    client = salesforce_client()
    assert client.auth_type == "password"
    assert client.query("SELECT COUNT() FROM Contact")["totalSize"] == 4


def test_crm_sync_connection_with_a_refused_login_names_the_fix(
    locked: SalesforceEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, locked.session, "mallory@example.com", password="pw", security_token="t")
    with pytest.raises(CrmConnectionError, match=r"could not log in .*INVALID_LOGIN"):
        salesforce_client()


def test_crm_sync_connection_with_client_credentials(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connected app's client-credentials flow (``extra.domain`` is the org's My Domain)."""
    conn = {
        "conn_type": "salesforce",
        "extra": {
            "login_url": sandbox.url,
            "consumer_key": "app",
            "consumer_secret": "s",
            "domain": "acme.my",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_SALESFORCE_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_bundle))
    client = salesforce_client()
    assert client.auth_type == "client-credentials"
    assert client.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 3
