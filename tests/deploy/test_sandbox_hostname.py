"""The compose ``crm-sandbox`` service: workers reach it by service name over verified TLS.

``crm-sandbox serve --tls-hostname NAME`` adds NAME to the Salesforce emulator's certificate, so
simple-salesforce (through requests, trusting the sandbox's CA bundle) accepts
``https://crm-sandbox:8443`` from another container; names not asked for stay rejected.
"""

from __future__ import annotations

import socket
import ssl

import pytest
from crm_sandbox.server import running_sandbox


def _handshake(port: int, ca_bundle: str, server_hostname: str) -> None:
    context = ssl.create_default_context(cafile=ca_bundle)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname),
    ):
        pass


def test_certificate_is_valid_for_the_extra_hostname_only() -> None:
    with running_sandbox({}, tls_hostnames=["crm-sandbox"]) as endpoints:
        bundle = str(endpoints.ca_bundle)
        _handshake(endpoints.salesforce_port, bundle, "crm-sandbox")
        _handshake(endpoints.salesforce_port, bundle, "localhost")
        with pytest.raises(ssl.SSLCertVerificationError):
            _handshake(endpoints.salesforce_port, bundle, "salesforce.example")
