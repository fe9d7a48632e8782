"""A throwaway certificate authority for the Salesforce emulator's HTTPS.

simple-salesforce always builds ``https://`` URLs, so the emulator must speak TLS. A fresh CA is
made at start (trustme) and written next to the server's key pair; clients trust it through
``REQUESTS_CA_BUNDLE``. The bundle also carries certifi's public roots, so pointing
``REQUESTS_CA_BUNDLE`` at it never breaks other HTTPS traffic of the same process.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import certifi
import trustme


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the server's certificate chain, its key, and the CA bundle clients should trust."""

    cert_file: Path
    key_file: Path
    ca_bundle: Path


def sandbox_home() -> Path:
    """Where running sandboxes keep their files; ``CRM_SANDBOX_HOME`` overrides the default."""
    base = os.environ.get("CRM_SANDBOX_HOME") or str(Path(tempfile.gettempdir()) / "crm-sandbox")
    return Path(base)


def tls_dir_for_port(salesforce_port: int) -> Path:
    """The folder a sandbox serving Salesforce on ``salesforce_port`` writes its TLS files to.

    Derived from the port alone, so ``crm-sandbox connections`` (another process) can print the
    CA bundle path of a ``crm-sandbox serve`` it did not start.
    """
    return sandbox_home() / f"salesforce-{salesforce_port}"


#: File name of the CA bundle inside a sandbox's TLS folder.
CA_BUNDLE_NAME = "ca-bundle.pem"


def ca_bundle_for_port(salesforce_port: int) -> Path:
    """The CA bundle a sandbox serving Salesforce on ``salesforce_port`` writes (or will write)."""
    return tls_dir_for_port(salesforce_port) / CA_BUNDLE_NAME


def make_tls_files(directory: Path, extra_hostnames: Sequence[str] = ()) -> TlsFiles:
    """Create a CA and a server certificate for 127.0.0.1/localhost under ``directory``.

    ``extra_hostnames`` are added to the certificate's names, so clients on other hosts can reach
    the emulator by a name of its own (e.g. the ``crm-sandbox`` service in docker-compose).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="crm-sandbox")
    server = ca.issue_cert("127.0.0.1", "localhost", "::1", *extra_hostnames)
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    ca_bundle = directory / CA_BUNDLE_NAME
    server.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in server.cert_chain_pems[1:]:
        with cert_file.open("ab") as fh:
            fh.write(extra.bytes())
    server.private_key_pem.write_to_path(str(key_file))
    key_file.chmod(0o600)
    public_roots = Path(certifi.where()).read_bytes()
    ca_bundle.write_bytes(ca.cert_pem.bytes() + b"\n" + public_roots)
    return TlsFiles(cert_file=cert_file, key_file=key_file, ca_bundle=ca_bundle)
