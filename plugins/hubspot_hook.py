"""Airflow hook for HubSpot, built on the official ``hubspot-api-client`` (no provider exists).

Connection ``hubspot_default`` (type ``hubspot``): the private-app access token in the password
(or ``extra.token`` / ``extra.access_token``); optional ``extra.host`` (or the host field) to
point the client elsewhere than ``https://api.hubapi.com`` — the crm-sync sandbox uses it; and
optional ``extra.timeout`` (seconds per request), ``extra.max_retries`` and
``extra.search_per_second`` (the portal's search rate limit, 5 by default; 0 turns pacing off).

Every API the client builds shares one urllib3 :class:`HubSpotRetry`: 429 and 5xx answers and
timeouts are retried with exponential backoff, waiting what ``Retry-After`` says, or when HubSpot
omits it on a 429, what its rate-limit headers say (``X-HubSpot-RateLimit-Interval-Milliseconds``
when the window's ``Remaining`` is 0, one second when the per-second budget is spent). POST is
retried too: crm-sync's POSTs to HubSpot during extraction are reads (search, batch read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseHook
from hubspot import HubSpot
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

DEFAULT_HOST = "https://api.hubapi.com"
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 6
DEFAULT_SEARCH_PER_SECOND = 5.0
RETRY_STATUSES = (429, 500, 502, 503, 504)


class HubSpotRetry(Retry):
    """urllib3 Retry that honours ``Retry-After`` and, failing that, HubSpot's rate-limit headers."""

    #: Never wait longer than this for one retry (a daily-limit 429 should fail, not hang).
    MAX_WAIT_SECONDS = 60.0

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        seconds = super().get_retry_after(response)
        if seconds is None and response.status == 429:
            headers = response.headers
            if headers.get("X-HubSpot-RateLimit-Secondly-Remaining") == "0":
                seconds = 1.0
            elif headers.get("X-HubSpot-RateLimit-Remaining") == "0":
                interval = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
                if interval and interval.strip().isdigit():
                    seconds = int(interval) / 1000.0
        return None if seconds is None else min(seconds, self.MAX_WAIT_SECONDS)


def hubspot_retry(max_retries: int = DEFAULT_MAX_RETRIES, backoff_factor: float = 0.5) -> HubSpotRetry:
    """The retry policy crm-sync uses for HubSpot reads (see module docstring)."""
    return HubSpotRetry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        other=0,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "HEAD", "POST", "OPTIONS"}),
        backoff_factor=backoff_factor,
        backoff_max=30.0,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


@dataclass(frozen=True)
class HubSpotSettings:
    """What the hook read from its connection."""

    conn_id: str
    token: str
    host: str
    timeout: float
    max_retries: int
    #: HubSpot's search limit (requests per second per token; 0 = do not pace searches).
    search_per_second: float


class HubSpotConnectionError(RuntimeError):
    """The HubSpot connection is missing or incomplete; the message names it and the fix."""


class HubSpotHook(BaseHook):
    """Create ``hubspot.HubSpot`` clients from an Airflow connection, with retries built in."""

    conn_name_attr = "hubspot_conn_id"
    default_conn_name = "hubspot_default"
    conn_type = "hubspot"
    hook_name = "HubSpot"

    def __init__(self, hubspot_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hubspot_conn_id = hubspot_conn_id
        self._settings: HubSpotSettings | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form: the password holds the access token; extra holds host/timeout."""
        return {
            "hidden_fields": ["schema", "port", "login"],
            "relabeling": {"password": "Access token", "host": "API host (optional)"},
            "placeholders": {"extra": '{"host": "https://api.hubapi.com", "timeout": 60}'},
        }

    @property
    def settings(self) -> HubSpotSettings:
        """Token, host and limits from the connection (read once per hook)."""
        if self._settings is None:
            conn = self.get_connection(self.hubspot_conn_id)
            extra = conn.extra_dejson or {}
            token = conn.password or extra.get("token") or extra.get("access_token")
            if not token:
                raise HubSpotConnectionError(
                    f"HubSpot connection '{self.hubspot_conn_id}' has no access token: put the private-app "
                    "token in the connection's password (or extra.token)"
                )
            host = extra.get("host") or (
                conn.host if conn.host and conn.host.startswith(("http://", "https://")) else None
            )
            self._settings = HubSpotSettings(
                conn_id=self.hubspot_conn_id,
                token=str(token),
                host=str(host or DEFAULT_HOST).rstrip("/"),
                timeout=float(extra.get("timeout", DEFAULT_TIMEOUT)),
                max_retries=int(extra.get("max_retries", DEFAULT_MAX_RETRIES)),
                search_per_second=float(extra.get("search_per_second", DEFAULT_SEARCH_PER_SECOND)),
            )
        return self._settings

    @property
    def timeout(self) -> float:
        """Seconds per request; pass it as ``_request_timeout`` (the client has no default)."""
        return self.settings.timeout

    def get_conn(self) -> HubSpot:
        """A ``hubspot.HubSpot`` client for this connection, retrying 429/5xx/timeouts."""
        s = self.settings
        return HubSpot(access_token=s.token, host=s.host, retry=hubspot_retry(s.max_retries))

    def test_connection(self) -> tuple[bool, str]:
        """Read one owner: proves host, token and scopes in one cheap call."""
        try:
            self.get_conn().crm.owners.owners_api.get_page(limit=1, _request_timeout=self.timeout)
        except Exception as exc:  # noqa: BLE001 - the UI wants the message, whatever failed
            return False, f"{type(exc).__name__}: {exc}"
        return True, "Connection successfully tested"
