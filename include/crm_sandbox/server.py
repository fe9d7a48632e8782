"""Run both emulators on 127.0.0.1: in background threads (tests, demo) or in the foreground (CLI).

Salesforce is served over HTTPS with a certificate made at start (see :mod:`crm_sandbox.tls`);
HubSpot over plain HTTP, since hubspot-api-client accepts any host.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from crm_sandbox.tls import TlsFiles, make_tls_files, tls_dir_for_port


@dataclass(frozen=True)
class SandboxEndpoints:
    """Where a running sandbox listens, and how clients reach it."""

    salesforce_port: int
    hubspot_port: int
    ca_bundle: Path

    @property
    def salesforce_url(self) -> str:
        return f"https://127.0.0.1:{self.salesforce_port}"

    @property
    def hubspot_url(self) -> str:
        return f"http://127.0.0.1:{self.hubspot_port}"

    def airflow_env(
        self,
        session_id: str = "sandbox-session",
        token: str = "sandbox-token",  # noqa: S107
    ) -> dict[str, str]:
        """Environment that points Airflow's connections and ``requests`` at this sandbox."""
        return connection_env(self.salesforce_port, self.hubspot_port, self.ca_bundle, session_id, token)


def connection_env(
    salesforce_port: int,
    hubspot_port: int,
    ca_bundle: Path,
    session_id: str = "sandbox-session",
    token: str = "sandbox-token",  # noqa: S107
) -> dict[str, str]:
    """The ``AIRFLOW_CONN_*`` and ``REQUESTS_CA_BUNDLE`` values for a sandbox on these ports."""
    salesforce = {
        "conn_type": "salesforce",
        "password": session_id,
        "extra": {"instance_url": f"https://127.0.0.1:{salesforce_port}", "session_id": session_id},
    }
    hubspot = {
        "conn_type": "hubspot",
        "password": token,
        "extra": {"host": f"http://127.0.0.1:{hubspot_port}"},
    }
    return {
        "AIRFLOW_CONN_SALESFORCE_DEFAULT": json.dumps(salesforce),
        "AIRFLOW_CONN_HUBSPOT_DEFAULT": json.dumps(hubspot),
        "REQUESTS_CA_BUNDLE": str(ca_bundle),
    }


class _ThreadedServer:
    """One uvicorn server in a daemon thread; knows its real port once started."""

    def __init__(self, app: Any, port: int, tls: TlsFiles | None, host: str = "127.0.0.1") -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            ssl_certfile=str(tls.cert_file) if tls else None,
            ssl_keyfile=str(tls.key_file) if tls else None,
            timeout_keep_alive=30,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name=f"sandbox-{port}")

    def start(self, timeout: float = 20.0) -> int:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("sandbox server failed to start (is the port already in use?)")
            time.sleep(0.01)
        sockets = self.server.servers[0].sockets
        return int(sockets[0].getsockname()[1])

    def request_stop(self) -> None:
        """Ask the server to stop accepting and finish in-flight requests (returns at once)."""
        self.server.should_exit = True

    def stop(self, grace: float = 1.0) -> None:
        """Stop and wait for the thread; after ``grace`` seconds, stop waiting for connections.

        An idle keep-alive TLS connection only closes once its client answers close_notify, which
        a client busy elsewhere (a test, a DAG task) never does, so uvicorn's graceful shutdown
        would wait for it until the join times out. ``force_exit`` ends that wait; requests still
        running after ``grace`` are cut off, which is acceptable for a sandbox.
        """
        self.request_stop()
        self.thread.join(timeout=grace)
        if self.thread.is_alive():
            self.server.force_exit = True
            self.thread.join(timeout=10)


def build_apps(scenario: Mapping[str, Any] | None, **options: Any) -> tuple[Any, Any]:
    """Create the Salesforce and HubSpot ASGI apps seeded from one scenario."""
    from crm_sandbox.hubspot.app import create_app as create_hubspot_app
    from crm_sandbox.salesforce.app import create_app as create_salesforce_app

    scenario = scenario or {}
    return create_salesforce_app(scenario, **options.get("salesforce", {})), create_hubspot_app(
        scenario, **options.get("hubspot", {})
    )


@contextlib.contextmanager
def running_sandbox(
    scenario: Mapping[str, Any] | None = None,
    *,
    salesforce_port: int = 0,
    hubspot_port: int = 0,
    tls_dir: Path | None = None,
    options: Mapping[str, Any] | None = None,
    host: str = "127.0.0.1",
    tls_hostnames: Sequence[str] = (),
) -> Iterator[SandboxEndpoints]:
    """Serve both emulators in background threads for the duration of the block.

    Port 0 picks a free port. ``options`` may hold ``{"salesforce": {...}, "hubspot": {...}}``
    keyword arguments for each emulator's ``create_app`` (e.g. rate-limit settings). ``host`` is
    the bind address and ``tls_hostnames`` extra names for the Salesforce certificate: both only
    matter when clients on other hosts use the sandbox (the docker-compose ``crm-sandbox`` service).
    """
    sf_app, hs_app = build_apps(scenario, **dict(options or {}))
    if tls_dir is None:
        tls_dir = tls_dir_for_port(salesforce_port) if salesforce_port else None
    scratch: Path | None = None
    if tls_dir is None:
        # A throwaway CA for a throwaway server: removed again when the block ends.
        scratch = tls_dir = Path(tempfile.mkdtemp(prefix="crm-sandbox-tls-"))
    tls = make_tls_files(tls_dir, tls_hostnames)
    sf_server = _ThreadedServer(sf_app, salesforce_port, tls, host)
    hs_server = _ThreadedServer(hs_app, hubspot_port, None, host)
    started: list[_ThreadedServer] = []
    try:
        sf_port = sf_server.start()
        started.append(sf_server)
        hs_port = hs_server.start()
        started.append(hs_server)
        yield SandboxEndpoints(salesforce_port=sf_port, hubspot_port=hs_port, ca_bundle=tls.ca_bundle)
    finally:
        for server in started:
            server.request_stop()  # both shut down concurrently
        for server in reversed(started):
            server.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
