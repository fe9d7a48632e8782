"""Helpers for tests and benchmarks that talk to the HubSpot emulator over real HTTP.

:func:`hubspot_sandbox` serves the emulator on a free 127.0.0.1 port for the duration of a
``with`` block and yields its base URL, for ``HubSpot(access_token=..., host=url)``. It goes
through :func:`crm_sandbox.server.running_sandbox` (both emulators, as the DAGs see them) when
the Salesforce emulator is installed, and serves HubSpot alone otherwise. :class:`FakeClock`
lets a test move time (rate-limit windows, record timestamps) instead of sleeping.
:func:`client_fixtures` makes the pytest fixtures a HubSpot test module starts with.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any


class FakeClock:
    """A ``time.time()`` stand-in that only moves when told to; safe across threads."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


def sandbox_call(base_url: str, method: str, name: str, payload: Any = None) -> Any:
    """Call a ``/__sandbox/<name>`` control endpoint (stats, faults, reset); returns its JSON."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(  # noqa: S310 - a local sandbox URL
        f"{base_url}/__sandbox/{name}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def _salesforce_available() -> bool:
    try:
        return importlib.util.find_spec("crm_sandbox.salesforce.app") is not None
    except ModuleNotFoundError:
        return False


@contextlib.contextmanager
def hubspot_sandbox(scenario: Mapping[str, Any] | None = None, **options: Any) -> Iterator[str]:
    """Serve the HubSpot emulator seeded with ``scenario``; yields ``http://127.0.0.1:<port>``.

    ``options`` are keyword arguments of :func:`crm_sandbox.hubspot.app.create_app` (rate
    limits, ``clock``).
    """
    scenario = scenario or {}
    if _salesforce_available():
        from crm_sandbox.server import running_sandbox

        with running_sandbox(scenario, options={"hubspot": options}) as endpoints:
            yield endpoints.hubspot_url
        return
    from crm_sandbox.hubspot.app import create_app
    from crm_sandbox.server import _ThreadedServer

    server = _ThreadedServer(create_app(scenario, **options), 0, None)
    port = server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def client_fixtures(scenario: Mapping[str, Any]) -> tuple[object, object]:
    """The ``base_url`` and ``client`` pytest fixtures of a HubSpot emulator test module.

    Unpack them at module level, where pytest collects fixtures::

        base_url, client = client_fixtures(SCENARIO)

    * ``base_url`` (module scope): the emulator seeded with ``scenario``; one server per module
      keeps the suite fast.
    * ``client``: resets the portal (so no test sees another's writes) and returns a real
      ``hubspot.HubSpot`` client of it.

    pytest and the HubSpot client are imported here, not at module level, so that
    :func:`hubspot_sandbox` stays usable without them (benchmarks, scripts).
    """
    import hubspot
    import pytest

    @pytest.fixture(scope="module", name="base_url")
    def base_url() -> Iterator[str]:
        with hubspot_sandbox(scenario) as url:
            yield url

    @pytest.fixture(name="client")
    def client(base_url: str) -> hubspot.HubSpot:
        sandbox_call(base_url, "POST", "reset")
        # Any token passes unless the scenario lists "tokens".
        return hubspot.HubSpot(access_token="test-token", host=base_url)  # noqa: S106

    return base_url, client
