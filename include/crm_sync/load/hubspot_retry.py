"""HubSpot write transport: one paced call, and retries that are safe for writes.

Retries are decided here and only here. The client's urllib3 layer is given
:func:`no_status_retry` (it still re-opens refused connections, which never reached the server,
but never repeats an answered request), so a 429 or 503 is not retried twice over, and a plain
POST create is never repeated behind crm-sync's back.

What :meth:`Transport.call` retries, within a time budget (``retry_budget_seconds``, 120 s by
default):

- 429, for any request: HubSpot refuses it before doing anything. It waits what ``Retry-After``
  says, else what the rate-limit headers say (the window's interval when ``Remaining`` is 0, a
  second for the per-second policy), and holds the shared pacer back as long. A ``DAILY`` 429
  stops the load (:class:`LoadStoppedError`): no retry can fix it today.
- 5xx answers, timeouts and dropped connections, for idempotent requests only (upserts by unique
  property, updates, archives, association PUTs), with exponential backoff and full jitter,
  honouring ``Retry-After``. For a non-idempotent request (creating a pipeline or a stage) it
  raises :class:`AmbiguousWriteError` instead: the caller looks the object up before trying again.

Bodies are read raw and decoded with ``json`` (the generated models cost more CPU than the load).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import urllib3.exceptions
from urllib3.util.retry import Retry

from crm_sync.connections import CrmConnectionError, _is_hubspot_api_exception
from crm_sync.load.hubspot_pacing import WindowPacer
from crm_sync.load.writer import BatchFailedError, LoadStoppedError, WriterSetupError

log = logging.getLogger(__name__)

DEFAULT_RETRY_BUDGET = 120.0
BACKOFF_BASE = 0.5
BACKOFF_MAX = 30.0
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})


def no_status_retry() -> Retry:
    """urllib3 policy for the write client: re-open refused connections, never repeat a request."""
    return Retry(
        total=3,
        connect=3,
        read=0,
        status=0,
        other=0,
        redirect=0,
        status_forcelist=(),
        respect_retry_after_header=False,
        raise_on_status=False,
    )


class AmbiguousWriteError(RuntimeError):
    """A non-idempotent request failed in a way that leaves unknown whether it was applied."""


@dataclass(frozen=True)
class Reply:
    """A HubSpot answer that is not a transient failure: 2xx, or a 4xx about the request itself."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class _Attempt:
    status: int | None  # None: no HTTP answer (timeout, dropped connection)
    body: Any
    headers: Mapping[str, str]
    failure: str


class Transport:
    """Paced, counted, budget-retried calls of generated ``hubspot-api-client`` methods."""

    def __init__(
        self,
        *,
        conn_id: str,
        pacer: WindowPacer,
        timeout: float,
        retry_budget: float = DEFAULT_RETRY_BUDGET,
        daily_reserve: int = 0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.conn_id = conn_id
        self.pacer = pacer
        self.timeout = timeout
        self.retry_budget = retry_budget
        #: Requests of the daily allowance left for others: the load stops before using them.
        self.daily_reserve = daily_reserve
        self.daily_remaining: int | None = None
        self.sleep = sleep
        self.clock = clock
        self._lock = threading.Lock()
        self.calls = 0
        self.retries = 0
        self.rate_limited = 0

    def call(
        self,
        what: str,
        method: Callable[..., Any],
        *args: Any,
        idempotent: bool,
        forbidden_ok: bool = False,
        **kwargs: Any,
    ) -> Reply:
        """Call ``method`` until it answers for real; ``what`` names the request in errors and logs.

        A 403 (a scope the private app lacks) fails at once with :class:`WriterSetupError`: no
        retry and no dead letter can fix it. ``forbidden_ok`` hands it to the caller instead."""
        self._check_reserve(what)
        deadline = self.clock() + self.retry_budget
        attempt = 0
        while True:
            result = self._once(method, args, kwargs)
            if result.status is not None and result.status != 429 and result.status not in RETRYABLE_STATUSES:
                return self._final(what, result, forbidden_ok)
            wait = self._wait_for(what, result, attempt, idempotent)
            if self.clock() + wait > deadline:
                raise BatchFailedError(
                    f"HubSpot {what} kept failing for {self.retry_budget:.0f} s ({result.failure}); "
                    f"retry budget of connection '{self.conn_id}' (extra.retry_budget_seconds) spent. "
                    "Re-running the task finishes the load: every write it repeats is idempotent"
                )
            log.info("hubspot %s: %s; retrying in %.1f s", what, result.failure, wait)
            with self._lock:
                self.retries += 1
            self.sleep(wait)
            attempt += 1

    # -- one attempt -------------------------------------------------------------------------------
    def _once(self, method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Attempt:
        self.pacer.acquire()
        headers: Mapping[str, str] = {}
        status: int | None = None
        try:
            response = method(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
            try:
                raw, status, headers = response.data, int(response.status), response.headers
            finally:
                response.release_conn()
            self._note_daily(headers)
            return _Attempt(status, _decode(raw), headers, f"HTTP {status}")
        except urllib3.exceptions.MaxRetryError as exc:
            if isinstance(
                exc.reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
            ):
                raise self._unreachable(exc) from exc
            return _Attempt(None, None, {}, f"{type(exc.reason).__name__}: {exc.reason}")
        except urllib3.exceptions.NewConnectionError as exc:
            raise self._unreachable(exc) from exc
        except urllib3.exceptions.HTTPError as exc:  # read timeout, dropped connection
            return _Attempt(None, None, {}, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            if not _is_hubspot_api_exception(exc):
                raise
            status = int(getattr(exc, "status", 0) or 0)
            headers = getattr(exc, "headers", None) or {}
            self._note_daily(headers)
            if status == 0:  # the client's wrapper of TLS errors
                raise CrmConnectionError(
                    f"HubSpot connection '{self.conn_id}' failed before any answer "
                    f"({getattr(exc, 'reason', exc)})"
                ) from exc
            return _Attempt(status, _decode(getattr(exc, "body", None)), headers, f"HTTP {status}")
        finally:
            self.pacer.release(headers, refused=status == 429)
            with self._lock:
                self.calls += 1

    def _note_daily(self, headers: Mapping[str, str]) -> None:
        raw = headers.get("X-HubSpot-RateLimit-Daily-Remaining") if headers else None
        if raw is not None and str(raw).strip().isdigit():
            with self._lock:
                self.daily_remaining = int(str(raw).strip())

    def _check_reserve(self, what: str) -> None:
        """Stop before eating into the daily allowance other integrations of the portal need."""
        remaining = self.daily_remaining
        if self.daily_reserve and remaining is not None and remaining <= self.daily_reserve:
            raise LoadStoppedError(
                f"HubSpot connection '{self.conn_id}' has {remaining} requests of today's API allowance "
                f"left, at or below the reserve of {self.daily_reserve} (extra.daily_reserve); the load "
                f"stopped before {what} and the next run continues where it stopped"
            )

    def _unreachable(self, exc: Exception) -> CrmConnectionError:
        return CrmConnectionError(
            f"HubSpot connection '{self.conn_id}' cannot reach the API ({type(exc).__name__}). Fix: check "
            "extra.host (unset means https://api.hubapi.com) and the network"
        )

    # -- decisions ---------------------------------------------------------------------------------
    def _final(self, what: str, result: _Attempt, forbidden_ok: bool) -> Reply:
        status = result.status or 0
        if status == 403 and not forbidden_ok:
            raise WriterSetupError(
                f"HubSpot connection '{self.conn_id}' lacks a scope for {what} (HTTP 403: "
                f"{str(result.body)[:300]}). Fix: grant the private app the scope HubSpot names; crm-sync's "
                "writes need crm.objects.companies.write, crm.objects.contacts.write and "
                "crm.objects.deals.write"
            )
        if status == 401:
            raise CrmConnectionError(
                f"HubSpot connection '{self.conn_id}' rejected the access token during {what} (HTTP 401). "
                "Fix: put a valid private-app token in the connection's password (or extra.token)"
            )
        return Reply(status, result.body, result.headers)

    def _wait_for(self, what: str, result: _Attempt, attempt: int, idempotent: bool) -> float:
        if result.status == 429:
            with self._lock:
                self.rate_limited += 1
            body = result.body if isinstance(result.body, Mapping) else {}
            if body.get("policyName") == "DAILY":
                raise LoadStoppedError(
                    f"HubSpot's daily API limit of connection '{self.conn_id}' is spent ({what} answered 429 "
                    "DAILY); the load stopped and the next run continues where it stopped"
                )
            wait = _retry_after(result.headers) or _rate_limit_wait(result.headers, body, self.pacer.interval)
            self.pacer.pause_until(self.clock() + wait)
            return wait
        if not idempotent:
            raise AmbiguousWriteError(
                f"HubSpot {what}: {result.failure}; it may or may not have been applied"
            )
        backoff = random.uniform(0, min(BACKOFF_MAX, BACKOFF_BASE * 2**attempt))
        return max(backoff, _retry_after(result.headers) or 0.0)


def _decode(raw: Any) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return {"message": raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date); None if absent/bad."""
    raw = headers.get("Retry-After") if headers else None
    if raw is None:
        return None
    text = str(raw).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        log.warning("hubspot: unparseable Retry-After header %r; using the rate-limit headers instead", text)
        return None
    return max(0.0, moment.timestamp() - time.time())


def _rate_limit_wait(headers: Mapping[str, str], body: Mapping[str, Any], interval: float) -> float:
    """How long a 429 without ``Retry-After`` asks to wait, from HubSpot's headers and policy."""
    if body.get("policyName") == "SECONDLY" or headers.get("X-HubSpot-RateLimit-Secondly-Remaining") == "0":
        return 1.0
    raw = headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
    if raw is not None and str(raw).isdigit() and headers.get("X-HubSpot-RateLimit-Remaining") == "0":
        # The oldest request leaves the window at some point within one interval; a tenth of it
        # is the expected wait for a slot when the window is evenly used.
        return max(0.5, int(raw) / 1000.0 / 10)
    return max(0.5, interval / 10)
