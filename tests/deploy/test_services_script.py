"""``make services`` (.ci/services.sh): what CI runs before the tests, safe to run any time.

It must leave PostgreSQL and Redis answering where the test suite expects them, and running it
again when they already run must change nothing and still succeed.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]


def _run_services() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ROOT / ".ci" / "services.sh")],
        env={**os.environ, "CRM_SYNC_SKIP_CHROMIUM": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_services_script_is_idempotent_and_leaves_postgres_and_redis_up() -> None:
    for _ in range(2):
        proc = _run_services()
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "PostgreSQL ready on 127.0.0.1:5432" in proc.stdout
        assert "Redis ready on 127.0.0.1:6379" in proc.stdout
    engine = sa.create_engine("postgresql+psycopg2://root@127.0.0.1:5432/test")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select 1")).scalar() == 1
    engine.dispose()
    with socket.create_connection(("127.0.0.1", 6379), timeout=5) as redis:
        redis.sendall(b"PING\r\n")
        assert redis.recv(16) == b"+PONG\r\n"
