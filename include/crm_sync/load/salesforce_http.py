"""HTTP for Salesforce writes: which requests may be retried, for how long, and the API allowance.

Reads keep the policy of :class:`crm_sync.connections.RetryingSession` (urllib3 retries, POST
included, because extraction's only POST creates a harmless query job). Writes cannot share it:
a plain create re-sent after a lost response makes a second record. So writes go through
:class:`SalesforceTransport`, a session without urllib3 retries, where each request says whether
it is idempotent:

* idempotent requests (upserts on an external id, updates by id, deletes, reads) are retried on
  429, 5xx and connection failures, with exponential backoff and full jitter, waiting what
  ``Retry-After`` says when the answer has one, until the request's time budget (connection
  extra ``retry_budget_seconds``) is spent; then :class:`BatchFailedError` fails the task and a
  re-run finishes the job;
* a non-idempotent request (a plain create) is sent once; an answer that leaves its fate unknown
  (a 5xx, a timeout, a dropped connection) raises :class:`AmbiguousWriteError`, and the caller
  must look in the org before sending the records again.

Every answer's ``Sforce-Limit-Info: api-usage=N/M`` header updates :class:`ApiAllowance`; the
writer asks :meth:`SalesforceTransport.check_allowance` before each batch and the load stops
with :class:`LoadStoppedError` once fewer than the reserve of daily requests are left (the org's
other integrations need them too). See
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from crm_sync.connections import CrmConnectionError, salesforce_errors
from crm_sync.load.writer import BatchFailedError, LoadStoppedError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_USAGE_RE = re.compile(r"(?:^|[^-])api-usage=(\d+)/(\d+)")
#: Backoff of the first retry and the longest wait between two tries (seconds).
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0


class AmbiguousWriteError(RuntimeError):
    """A non-idempotent request failed in a way that leaves unknown whether the org applied it.

    ``retry_after`` is the answer's ``Retry-After`` in seconds, when it had one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestRejectedError(RuntimeError):
    """The org refused a whole request (4xx): every record in it failed with ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class WriteSettings:
    """How the Salesforce writer batches and retries; read from the connection's extras.

    Attributes:
        bulk_threshold: creates in one group above this many rows go through Bulk API 2.0.
        retry_budget_seconds: how long one request may keep being retried.
        api_reserve: daily API requests to leave to others; None = max(1000, 5% of the maximum).
        timeout: seconds per HTTP request.
        bulk_poll_seconds: longest wait between two polls of a Bulk API 2.0 job.
        bulk_job_rows: rows per Bulk API 2.0 job (bounds memory and the size of one upload).
        bulk_timeout_seconds: how long a Bulk job may take before the batch fails.
        max_parallel: collection requests of one group in flight at once (1 = one by one).
    """

    bulk_threshold: int = 10_000
    retry_budget_seconds: float = 120.0
    api_reserve: int | None = None
    timeout: float = 120.0
    bulk_poll_seconds: float = 10.0
    bulk_job_rows: int = 100_000
    bulk_timeout_seconds: float = 3600.0
    max_parallel: int = 4

    @classmethod
    def from_extra(cls, conn_id: str, extra: Mapping[str, Any]) -> WriteSettings:
        """Settings from a connection's extras; a value of the wrong type names its key."""
        defaults = cls()
        values: dict[str, Any] = {}
        for key, kind in (
            ("bulk_threshold", int),
            ("retry_budget_seconds", float),
            ("api_reserve", int),
            ("timeout", float),
            ("bulk_poll_seconds", float),
            ("bulk_job_rows", int),
            ("bulk_timeout_seconds", float),
            ("max_parallel", int),
        ):
            raw = extra.get(key)
            if raw in (None, ""):
                continue
            try:
                value = kind(raw)
            except (TypeError, ValueError):
                raise CrmConnectionError(
                    f"Salesforce connection '{conn_id}': extra.{key} must be a number, got {raw!r}"
                ) from None
            if value < 0:
                raise CrmConnectionError(
                    f"Salesforce connection '{conn_id}': extra.{key} must not be negative, got {raw!r}"
                )
            values[key] = value
        merged = {**defaults.__dict__, **values}
        return cls(**merged)


class ApiAllowance:
    """The org's daily API usage as the last ``Sforce-Limit-Info`` header reported it."""

    def __init__(self, reserve: int | None) -> None:
        self.reserve_setting = reserve
        self.used: int | None = None
        self.maximum: int | None = None

    def observe(self, header: str | None) -> None:
        if not header:
            return
        match = _USAGE_RE.search(header)
        if match:
            self.used, self.maximum = int(match.group(1)), int(match.group(2))

    @property
    def reserve(self) -> int | None:
        if self.reserve_setting is not None:
            return self.reserve_setting
        if self.maximum is None:
            return None
        return max(1000, self.maximum * 5 // 100)

    def check(self, conn_id: str, in_flight: int = 0) -> None:
        """Raise :class:`LoadStoppedError` when fewer requests than the reserve are left today,
        counting ``in_flight`` requests sent but not yet answered as used."""
        reserve = self.reserve
        if self.used is None or self.maximum is None or reserve is None:
            return
        remaining = self.maximum - self.used - in_flight
        if remaining < reserve:
            raise LoadStoppedError(
                f"Salesforce load stopped before the next batch: the org has used {self.used} of its "
                f"{self.maximum} daily API requests ({remaining} left), below the reserve of {reserve} "
                f"kept for other integrations (connection '{conn_id}', extra.api_reserve). Everything "
                "written so far is kept; the next run continues once the 24-hour allowance recovers, "
                "or lower extra.api_reserve"
            )


def json_default(value: Any) -> Any:
    """JSON for the values plan rows may hold besides JSON's own types."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def retry_after_seconds(raw: str | None) -> float | None:
    """``Retry-After`` as seconds (delta or HTTP date); None when absent or unparseable."""
    if raw is None:
        return None
    text = raw.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        log.warning("Salesforce sent an unparseable Retry-After %r; backing off exponentially instead", raw)
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def backoff(attempt: int) -> float:
    """Seconds before retry number ``attempt``: exponential, capped, jittered over its upper half."""
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def error_of(response: requests.Response) -> tuple[str, str]:
    """``(errorCode, message)`` of a REST error answer (Salesforce's ``[{errorCode, message}]``)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP_{response.status_code}", response.text[:300]
    first = body[0] if isinstance(body, list) and body else body
    if isinstance(first, dict):
        code = first.get("errorCode") or first.get("statusCode") or f"HTTP_{response.status_code}"
        return str(code), str(first.get("message", ""))
    return f"HTTP_{response.status_code}", str(body)[:300]


class SalesforceTransport:
    """Sends write requests for one connection: retry policy, call count, API allowance.

    Args:
        base_url: ``https://<instance>/services/data/vNN.0/`` (the client's ``base_url``).
        auth_headers: the client's headers (``Authorization``).
        conn_id: named in every error message.
        settings: timeouts, budgets and reserve.
        refresh: logs in again and returns fresh auth headers, for connections that can (login,
            OAuth or JWT); a 401 ``INVALID_SESSION_ID`` is then answered by one new session and
            the same request again (safe for any request: the org refused it unprocessed).
            Without it a 401 fails the load with :class:`CrmConnectionError`.
        sleep/clock: injectable for the retry loop (production uses ``time``).
    """

    def __init__(
        self,
        base_url: str,
        auth_headers: Mapping[str, str],
        conn_id: str,
        settings: WriteSettings,
        *,
        refresh: Callable[[], Mapping[str, str]] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url
        self._refresh = refresh
        self.conn_id = conn_id
        self.settings = settings
        self.allowance = ApiAllowance(settings.api_reserve)
        self.calls = 0
        self._lock = threading.Lock()  # batches of one group may be sent from several threads
        self._sleep = sleep
        self._clock = clock
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=0, pool_maxsize=max(4, settings.max_parallel))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update(auth_headers)
        self.session.headers.pop("X-PrettyPrint", None)
        self.session.hooks["response"].append(self.observe)

    # -- bookkeeping -----------------------------------------------------------------------------
    def observe(self, response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        """Response hook (this session's and the read client's): count it, read the allowance."""
        with self._lock:
            self.calls += 1
            self.allowance.observe(response.headers.get("Sforce-Limit-Info"))

    def check_allowance(self, in_flight: int = 0) -> None:
        """Stop the load (:class:`LoadStoppedError`) when the daily allowance reached its reserve."""
        with self._lock:
            self.allowance.check(self.conn_id, in_flight)

    def pause(self, seconds: float) -> None:
        """Wait between two tries (the injectable sleep)."""
        self._sleep(seconds)

    def close(self) -> None:
        self.session.close()

    @property
    def instance_url(self) -> str:
        return self.base_url.split("/services/", 1)[0]

    @contextlib.contextmanager
    def connection_errors(self) -> Iterator[None]:
        """Connection failures as :class:`CrmConnectionError` naming the connection and the fix."""
        with salesforce_errors(self.conn_id, self.instance_url):
            yield

    # -- requests --------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        body: Any = None,
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send ``method path`` (relative to ``base_url`` unless it starts with ``/``).

        Returns the 2xx response. Raises :class:`RequestRejectedError` for a 4xx the records
        caused, :class:`CrmConnectionError` for a bad session or permissions,
        :class:`LoadStoppedError` when the org refuses for its daily limit,
        :class:`AmbiguousWriteError` (non-idempotent) or :class:`BatchFailedError` (budget spent).
        """
        url = self.instance_url + path if path.startswith("/") else self.base_url + path
        send_headers = dict(headers or {})
        payload = data
        if body is not None:
            payload = json.dumps(body, default=json_default).encode()
            send_headers.setdefault("Content-Type", "application/json")
        deadline = self._clock() + self.settings.retry_budget_seconds
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            response, failure = self._send(method, url, payload, params, send_headers)
            if response is not None and response.status_code < 300:
                return response
            if response is not None and response.status_code == 401 and self._refresh and not refreshed:
                log.info("Salesforce session of connection '%s' expired; logging in again", self.conn_id)
                with self.connection_errors():
                    self.session.headers.update(self._refresh())
                refreshed = True
                continue
            if response is not None and response.status_code not in RETRY_STATUSES:
                self._raise_for(response, method, path)
            what = failure or f"HTTP {response.status_code if response is not None else '?'}"
            if not idempotent:
                raise AmbiguousWriteError(
                    f"{method} {path} failed ({what}); the org may or may not have applied it",
                    retry_after=self._retry_after(response),
                )
            wait = self._wait(response, attempt)
            if self._clock() + wait > deadline:
                raise BatchFailedError(
                    f"Salesforce connection '{self.conn_id}': {method} {path} still failing ({what}) after "
                    f"{attempt} tries in the {self.settings.retry_budget_seconds:.0f} s retry budget "
                    "(extra.retry_budget_seconds). Nothing was lost: re-run the task to finish the load"
                )
            log.info("Salesforce %s %s: %s; retry %d in %.1f s", method, path, what, attempt, wait)
            self._sleep(wait)

    def _send(
        self,
        method: str,
        url: str,
        payload: bytes | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
    ) -> tuple[requests.Response | None, str | None]:
        try:
            response = self.session.request(
                method, url, data=payload, params=params, headers=headers, timeout=self.settings.timeout
            )
        except requests.exceptions.SSLError:
            with self.connection_errors():
                raise
            raise  # pragma: no cover - salesforce_errors always translates
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            return None, type(exc).__name__
        return response, None

    @staticmethod
    def _retry_after(response: requests.Response | None) -> float | None:
        return None if response is None else retry_after_seconds(response.headers.get("Retry-After"))

    def _wait(self, response: requests.Response | None, attempt: int) -> float:
        """``Retry-After`` when given, else exponential backoff with jitter."""
        after = self._retry_after(response)
        return after if after is not None else backoff(attempt)

    def _raise_for(self, response: requests.Response, method: str, path: str) -> None:
        code, message = error_of(response)
        status = response.status_code
        if status == 403 and code == "REQUEST_LIMIT_EXCEEDED":
            raise LoadStoppedError(
                f"Salesforce connection '{self.conn_id}' refused {method} {path}: the org's API request "
                f"limit is exhausted ({message}). Everything written so far is kept; the next run "
                "continues once the 24-hour allowance recovers"
            )
        if status in (401, 403):
            from simple_salesforce.util import exception_handler

            with self.connection_errors():
                exception_handler(response, name=path)
        raise RequestRejectedError(status, code, message)
