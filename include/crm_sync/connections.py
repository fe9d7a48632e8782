"""Connections to both CRMs, with retries, timeouts and error messages that say what to fix.

Salesforce (connection ``salesforce_default``, type ``salesforce``) goes through Airflow's
:class:`SalesforceHook`. Two ways to authenticate:

- a session: ``extra.instance_url`` plus the session id in ``extra.session_id`` or, when the
  connection has no login, in the password. This is how the crm-sync sandbox is reached
  (``crm-sandbox connections`` prints such a connection) and how an already-obtained OAuth
  access token is used;
- the usual fields for real orgs, read by the hook itself: login/password/``extra.security_token``
  (``extra.domain`` = ``test`` for sandboxes), OAuth ``consumer_key``/``consumer_secret``, or JWT
  ``consumer_key`` + ``private_key``/``private_key_file_path``.

Optional extras: ``timeout`` (seconds per request, default 120), ``max_retries`` (default 5),
``batch_size`` (rows per REST query page, 200-2000, sent as ``Sforce-Query-Options``; default 2000)
and ``login_url``: where the login requests go instead of ``https://<domain>.salesforce.com``
(simple-salesforce builds that host from ``extra.domain`` and cannot be given another), e.g. the
crm-sync sandbox's ``https://127.0.0.1:<port>`` or a login proxy; API calls still go to the
``instance_url`` the login answers.
The hook gets a :class:`RetryingSession`: 429/5xx answers and timeouts on reads are retried with
backoff honouring ``Retry-After``, and every request has a timeout (simple-salesforce sets none).

HubSpot uses the ``HubSpotHook`` in ``plugins/hubspot_hook.py``.

Failures of the connection itself (expired session, wrong token, unreachable host, missing
connection) are raised as :class:`CrmConnectionError` naming the connection id and the fix, so
a failed task's log says what to change rather than showing a client stack trace.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from airflow.providers.salesforce.hooks.salesforce import SalesforceHook
    from simple_salesforce.api import Salesforce

SALESFORCE_CONN_ID = "salesforce_default"
HUBSPOT_CONN_ID = "hubspot_default"
DEFAULT_SF_TIMEOUT = 120.0
DEFAULT_SF_MAX_RETRIES = 5


class CrmConnectionError(RuntimeError):
    """A CRM connection cannot be used; the message names the connection and what to fix."""


class RetryingSession(requests.Session):
    """A requests session with a default timeout and urllib3 retries for transient failures.

    simple-salesforce sends every call, Bulk API 2.0 included, through the session it is given,
    so this is the one place to make Salesforce reads survive a 503, a 429 with ``Retry-After``
    or a hung connection.
    """

    def __init__(
        self, timeout: float, max_retries: int = DEFAULT_SF_MAX_RETRIES, login_url: str | None = None
    ) -> None:
        super().__init__()
        self.default_timeout = timeout
        self.login_url = login_url.rstrip("/") if login_url else None
        retry = Retry(
            total=max_retries,
            connect=max_retries,
            read=max_retries,
            status=max_retries,
            other=0,
            status_forcelist=(429, 500, 502, 503, 504),
            # POST: Bulk API 2.0 query-job creation is the only POST extraction sends; a
            # duplicate query job is harmless.
            allowed_methods=frozenset({"GET", "HEAD", "POST"}),
            backoff_factor=0.5,
            backoff_max=30.0,
            respect_retry_after_header=True,
            retry_after_max=60,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=4)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self.default_timeout)
        if self.login_url:
            text = url.decode() if isinstance(url, bytes) else url
            url = _LOGIN_PATH.sub(lambda m: f"{self.login_url}{m.group(1)}", text, count=1)
        return super().request(method, url, *args, **kwargs)


#: The login requests simple-salesforce sends to ``https://<domain>.salesforce.com``: the OAuth
#: token endpoint and the SOAP partner ``login``.
_LOGIN_PATH = re.compile(r"^https://[^/]+\.salesforce\.com(/services/(?:oauth2/token|Soap/u/[^/]+))$")


def _get_connection(conn_id: str) -> Any:
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException as exc:
        raise CrmConnectionError(
            f"Airflow connection '{conn_id}' is not defined: create it (UI, CLI, or the environment "
            f"variable AIRFLOW_CONN_{conn_id.upper()}); `crm-sandbox connections` prints one for the sandbox"
        ) from exc


def salesforce_session_id(conn: Any) -> str | None:
    """The session id a connection carries: ``extra.session_id``, else a login-less password."""
    extra = conn.extra_dejson or {}
    if extra.get("session_id"):
        return str(extra["session_id"])
    if conn.password and not conn.login:
        return str(conn.password)
    return None


def salesforce_hook(conn_id: str = SALESFORCE_CONN_ID) -> SalesforceHook:
    """A :class:`SalesforceHook` for ``conn_id`` with a session id (if any) and a retrying session."""
    from airflow.providers.salesforce.hooks.salesforce import SalesforceHook

    conn = _get_connection(conn_id)
    extra = conn.extra_dejson or {}
    session = RetryingSession(
        timeout=float(extra.get("timeout", DEFAULT_SF_TIMEOUT)),
        max_retries=int(extra.get("max_retries", DEFAULT_SF_MAX_RETRIES)),
        login_url=extra.get("login_url") or None,
    )
    return SalesforceHook(salesforce_conn_id=conn_id, session_id=salesforce_session_id(conn), session=session)


def salesforce_batch_size(conn_id: str = SALESFORCE_CONN_ID) -> int | None:
    """The connection's ``extra.batch_size`` (REST query page size), if set."""
    extra = _get_connection(conn_id).extra_dejson or {}
    value = extra.get("batch_size")
    return int(value) if value not in (None, "") else None


def salesforce_client(conn_id: str = SALESFORCE_CONN_ID) -> Salesforce:
    """A logged-in simple-salesforce client; a bad connection raises :class:`CrmConnectionError`."""
    hook = salesforce_hook(conn_id)
    with salesforce_errors(conn_id):
        try:
            return hook.get_conn()
        except TypeError as exc:  # simple-salesforce: no usable combination of fields
            raise CrmConnectionError(
                f"Salesforce connection '{conn_id}' has no usable credentials ({exc}): set "
                "extra.instance_url and a session id (password or extra.session_id), or login + password "
                "+ extra.security_token, or OAuth/JWT fields (extra.consumer_key with consumer_secret or "
                "private_key)"
            ) from exc


@contextlib.contextmanager
def salesforce_errors(conn_id: str = SALESFORCE_CONN_ID, instance_url: str | None = None) -> Iterator[None]:
    """Turn Salesforce connection failures into :class:`CrmConnectionError` with the fix.

    Only failures of the connection itself are translated (authentication, reachability,
    exhausted retries); anything else propagates unchanged.
    """
    from simple_salesforce.exceptions import (
        SalesforceAuthenticationFailed,
        SalesforceExpiredSession,
        SalesforceGeneralError,
        SalesforceRefusedRequest,
    )

    where = f" at {instance_url}" if instance_url else ""
    try:
        yield
    except SalesforceExpiredSession as exc:
        raise CrmConnectionError(
            f"Salesforce connection '{conn_id}'{where} was rejected: the session is expired or invalid "
            f"(HTTP 401: {_sf_message(exc)}). Fix: put a fresh session id in the connection's password "
            "(or extra.session_id), or configure login + password + extra.security_token (or OAuth/JWT) "
            "so crm-sync can log in itself"
        ) from exc
    except SalesforceAuthenticationFailed as exc:
        raise CrmConnectionError(
            f"Salesforce connection '{conn_id}' could not log in ({exc.code}: {exc.message}). Fix: check "
            "the login, password and extra.security_token (or consumer_key/secret, private key) and "
            "extra.domain ('test' for a sandbox org)"
        ) from exc
    except SalesforceRefusedRequest as exc:
        raise CrmConnectionError(
            f"Salesforce connection '{conn_id}'{where} is not allowed to do this (HTTP 403: "
            f"{_sf_message(exc)}). Fix: give the connection's user API access and read access to the object"
        ) from exc
    except SalesforceGeneralError as exc:
        if exc.status in (429, 500, 502, 503, 504):
            raise CrmConnectionError(
                f"Salesforce connection '{conn_id}'{where} kept failing with HTTP {exc.status} after all "
                f"retries ({_sf_message(exc)}). The run can be retried as is; if it persists, check the "
                "org's API limits and status"
            ) from exc
        raise
    except requests.exceptions.SSLError as exc:
        raise CrmConnectionError(
            f"Salesforce connection '{conn_id}'{where}: TLS verification failed ({exc}). Fix: check "
            "extra.instance_url; for the crm-sync sandbox export REQUESTS_CA_BUNDLE as `crm-sandbox "
            "connections` prints"
        ) from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise CrmConnectionError(
            f"Salesforce connection '{conn_id}' cannot reach its instance{where} ({type(exc).__name__}). "
            "Fix: check extra.instance_url and the network; timeouts are set by extra.timeout"
        ) from exc


def _sf_message(exc: Any) -> str:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return f"{first.get('errorCode', '')} {first.get('message', '')}".strip()
    return str(content)[:300]


# -- HubSpot -----------------------------------------------------------------------------------


def _plugins_on_path() -> None:
    """Make ``plugins/`` importable outside Airflow's processes (tests, CLI), as Airflow does."""
    candidates: list[Path] = []
    try:
        from airflow.configuration import conf

        candidates.append(Path(conf.get("core", "plugins_folder")))
    except Exception:  # noqa: BLE001, S110 - no Airflow config: fall back to the repository layout
        pass
    candidates.append(Path(__file__).resolve().parents[2] / "plugins")
    for folder in candidates:
        if (folder / "hubspot_hook.py").is_file() and str(folder) not in sys.path:
            sys.path.append(str(folder))
            return


def hubspot_hook(conn_id: str = HUBSPOT_CONN_ID) -> Any:
    """The ``HubSpotHook`` from ``plugins/hubspot_hook.py`` for ``conn_id``."""
    try:
        module = importlib.import_module("hubspot_hook")
    except ImportError:
        _plugins_on_path()
        module = importlib.import_module("hubspot_hook")
    _get_connection(conn_id)  # a clear message when the connection is missing
    return module.HubSpotHook(hubspot_conn_id=conn_id)


@contextlib.contextmanager
def hubspot_errors(conn_id: str = HUBSPOT_CONN_ID, host: str | None = None) -> Iterator[None]:
    """Turn HubSpot connection failures into :class:`CrmConnectionError` with the fix."""
    import urllib3.exceptions

    where = f" at {host}" if host else ""
    try:
        yield
    except urllib3.exceptions.HTTPError as exc:
        raise CrmConnectionError(
            f"HubSpot connection '{conn_id}' cannot reach the API{where} ({type(exc).__name__}: "
            f"{getattr(exc, 'reason', exc)}). Fix: check extra.host (unset means https://api.hubapi.com) "
            "and the network; timeouts are set by extra.timeout"
        ) from exc
    except Exception as exc:
        status = getattr(exc, "status", None)
        if not _is_hubspot_api_exception(exc):
            raise
        body = str(getattr(exc, "body", "") or "")[:300]
        if status == 401:
            raise CrmConnectionError(
                f"HubSpot connection '{conn_id}'{where} rejected the access token (HTTP 401: {body}). "
                "Fix: put a valid private-app token in the connection's password (or extra.token)"
            ) from exc
        if status == 403:
            raise CrmConnectionError(
                f"HubSpot connection '{conn_id}'{where} lacks a scope for this call (HTTP 403: {body}). Fix: "
                "grant the private app the crm.objects.*.read, crm.schemas.*.read and owners scopes"
            ) from exc
        if status in (0, 429, 500, 502, 503, 504):
            raise CrmConnectionError(
                f"HubSpot connection '{conn_id}'{where} kept failing with HTTP {status} after all retries "
                f"({body or getattr(exc, 'reason', '')}). The run can be retried as is; if it persists, "
                "check HubSpot's status and the app's rate limits"
            ) from exc
        raise


def _is_hubspot_api_exception(exc: BaseException) -> bool:
    """True for any of the generated ``ApiException`` classes (one per hubspot sub-package)."""
    return any(
        cls.__name__ == "ApiException" and cls.__module__.startswith("hubspot.") for cls in type(exc).__mro__
    )
