"""Who holds the staging lease, and whether that holder is still alive.

Two kinds of holder take the lease (:mod:`crm_sync.backfill.lease`): a backfill or resync chunk,
named by its chunk key (``opportunities:...``, ``accounts:...``), from its extraction to its
commit; and a non-dry ``crm_sync`` run, named ``run:<run_id>``, from its first rule task to its
end. A holder that died without releasing must not block the other for the lease's hours-long
time to live, so each kind's liveness is read from where it records its own state, here and
nowhere else: a run is alive while ``sync_run`` says ``running`` (finished, failed and
abandoned runs are not); a chunk while the chunk registry says ``running`` (not ``failed``,
``done`` or ``planned``). A holder neither knows of counts as alive; the time to live decides.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import sqlalchemy as sa

from crm_sync import staging
from crm_sync.backfill import registry

RUN_PREFIX = "run:"


def for_run(run_id: str) -> str:
    """The lease holder name of a ``crm_sync`` run."""
    return f"{RUN_PREFIX}{run_id}"


def is_run(holder: str) -> bool:
    """Whether ``holder`` names a ``crm_sync`` run (not a chunk)."""
    return holder.startswith(RUN_PREFIX)


def alive(engine: sa.Engine, holder: str) -> bool:
    """Whether ``holder`` may still be working under the lease (see the module docstring)."""
    if is_run(holder):
        run = staging.sync_run
        with engine.connect() as conn:
            status = conn.execute(
                sa.select(run.c.status).where(run.c.run_id == holder.removeprefix(RUN_PREFIX))
            ).scalar()
        return status is None or status == "running"
    chunk = registry.state_of(engine, holder)
    return chunk is None or chunk.status == "running"


def liveness(engine: sa.Engine) -> Callable[[str], bool]:
    """:func:`alive` for every kind of holder: what ``crm_sync`` may take the lease over from."""
    return partial(alive, engine)


def run_liveness(engine: sa.Engine) -> Callable[[str], bool]:
    """Dead only for a ``crm_sync`` run that is over: what a chunk may take the lease over from
    (dead chunks are the backfill's own affair, decided with their DAG run and retries)."""
    return lambda holder: not is_run(holder) or alive(engine, holder)
