"""The staging lease: one chunk at a time between its rules and its commit.

The rule tasks read the whole staged state, so two chunks planning at once would both plan the
Accounts they share (two HubSpot companies for one Account); their rule tables are scoped by
run, so they no longer clobber each other's intermediate rows. A chunk therefore holds the lease named
``staging`` from its extraction until its commit. The lease is a row in ``staging_lease``;
the holder is the chunk key, so the same chunk re-run by a later DAG run (after a crash)
takes over its own lease at once, while another chunk waits. A lease older than its time to
live is taken over (its holder died without releasing it).

This is the "lock" option for running chunks beside each other (run-scoped rule tables avoid
the clobbering but not the double planning of shared Accounts). A non-dry ``crm_sync`` run takes
the same lease from its first rule task to its end, so an hourly sync and a backfill never plan
creates for the same unlinked records. Callers may pass ``alive`` to take over from a holder
known to be dead before its time to live runs out (:mod:`crm_sync.backfill.holders`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from crm_sync import staging

log = logging.getLogger(__name__)

NAME = "staging"
#: A holder that did not release within this time is presumed dead.
DEFAULT_TTL = timedelta(hours=6)
#: How long a task waiting for the lease is rescheduled for (holding no worker slot meanwhile).
POKE = timedelta(seconds=15)

metadata = sa.MetaData()

table = sa.Table(
    "staging_lease",
    metadata,
    sa.Column("name", sa.Text(), primary_key=True),
    sa.Column("holder", sa.Text(), nullable=False),
    sa.Column("acquired_at", staging.UTCDateTime(), nullable=False),
    sa.Column("expires_at", staging.UTCDateTime(), nullable=False),
)


class LeaseBusyError(RuntimeError):
    """Another holder kept the lease for longer than this caller was willing to wait."""


def ensure(engine: sa.Engine) -> None:
    staging.ensure_schema(engine)
    metadata.create_all(engine, checkfirst=True)


def holder(engine: sa.Engine, name: str = NAME) -> str | None:
    """Who holds the lease now (expired leases included), or ``None``."""
    ensure(engine)
    with engine.connect() as conn:
        value = conn.execute(sa.select(table.c.holder).where(table.c.name == name)).scalar()
    return None if value is None else str(value)


def try_acquire(
    engine: sa.Engine,
    who: str,
    *,
    name: str = NAME,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
    alive: Callable[[str], bool] | None = None,
) -> bool:
    """Take (or renew) the lease if it is free, expired or already ours; atomic per dialect.

    With ``alive``, a holder it says is dead is taken over too (:func:`take_over`).
    """
    ensure(engine)
    at = now or staging.now_utc()
    with engine.begin() as conn:
        # Succeeds for our own lease or an expired one.
        taken = conn.execute(
            sa.update(table)
            .where(table.c.name == name, sa.or_(table.c.holder == who, table.c.expires_at < at))
            .values(holder=who, acquired_at=at, expires_at=at + ttl)
        ).rowcount
    if taken:
        return True
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(table).values(name=name, holder=who, acquired_at=at, expires_at=at + ttl))
    except sa.exc.IntegrityError:  # someone else holds it (or took it just now)
        return alive is not None and _take_from_dead(engine, who, alive, name=name, ttl=ttl)
    return True


def _take_from_dead(
    engine: sa.Engine, who: str, alive: Callable[[str], bool], *, name: str, ttl: timedelta
) -> bool:
    current = holder(engine, name)
    if current is None or alive(current) or not take_over(engine, who, current, name=name, ttl=ttl):
        return False
    log.warning("lease %r: took over from %r, which is no longer alive", name, current)
    return True


def acquire(
    engine: sa.Engine,
    who: str,
    *,
    name: str = NAME,
    wait_s: float = 600.0,
    poll_s: float = 5.0,
    ttl: timedelta = DEFAULT_TTL,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Take the lease, waiting up to ``wait_s`` for its holder; raises :class:`LeaseBusyError`.

    The error is transient: the task's retries try again later.
    """
    deadline = time.monotonic() + wait_s
    while not try_acquire(engine, who, name=name, ttl=ttl):
        current = holder(engine, name)
        if time.monotonic() >= deadline:
            raise LeaseBusyError(f"lease {name!r} is held by {current!r}; {who!r} waited {wait_s:.0f} s")
        log.info("lease %r is held by %r; %r waits", name, current, who)
        sleep(poll_s)


def take_over(
    engine: sa.Engine, who: str, previous: str, *, name: str = NAME, ttl: timedelta = DEFAULT_TTL
) -> bool:
    """Take the lease from ``previous`` (known dead); False if someone else has it by now."""
    at = staging.now_utc()
    with engine.begin() as conn:
        return bool(
            conn.execute(
                sa.update(table)
                .where(table.c.name == name, table.c.holder == previous)
                .values(holder=who, acquired_at=at, expires_at=at + ttl)
            ).rowcount
        )


def reschedule(busy: LeaseBusyError) -> BaseException:
    """The Airflow exception a task waiting for the lease raises: it runs again after
    :data:`POKE`, holding no worker slot meanwhile (``raise reschedule(busy) from busy``)."""
    from airflow.sdk.exceptions import AirflowRescheduleException

    log.info("%s; trying again in %s", busy, POKE)
    return AirflowRescheduleException(staging.now_utc() + POKE)  # type: ignore[no-untyped-call]


def release(engine: sa.Engine, who: str, *, name: str = NAME) -> bool:
    """Give the lease back if we hold it; returns whether we did."""
    ensure(engine)
    with engine.begin() as conn:
        return bool(
            conn.execute(sa.delete(table).where(table.c.name == name, table.c.holder == who)).rowcount
        )
