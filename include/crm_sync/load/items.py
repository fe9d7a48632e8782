"""Plan rows as load items, in the order a CRM needs them written.

A record must exist before anything points at it: pipelines (and their stages) before deals,
companies/Accounts before the contacts and deals that name them, contacts before associations
and contact roles. Within an object, creates come first so that updates, links and associations
of the same run can name the records they made; deletes come last, in reverse order, so an
association goes before the deal it connects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from itertools import groupby

import sqlalchemy as sa

from crm_sync import staging
from crm_sync.load.writer import LoadItem

#: Objects of each target, in dependency order (one tuple per phase).
PHASES: dict[str, tuple[tuple[str, ...], ...]] = {
    "hubspot": (("pipelines",), ("companies",), ("contacts",), ("deals",), ("associations",)),
    "salesforce": (("Account",), ("Contact", "Lead"), ("Opportunity",), ("OpportunityContactRole",)),
}
#: Actions that write, in the order they run within one object.
WRITE_ACTIONS: tuple[str, ...] = ("create", "update", "link", "associate")
DELETE_ACTION = "delete"


def read_items(engine: sa.Engine, run_id: str, target: str) -> list[LoadItem]:
    """The run's plan rows for ``target`` that write something (not skip/quarantine), by ``seq``."""
    plan = staging.plan_table
    query = (
        sa.select(plan)
        .where(
            plan.c.run_id == run_id,
            plan.c.target == target,
            plan.c.action.in_((*WRITE_ACTIONS, DELETE_ACTION)),
        )
        .order_by(plan.c.seq)
    )
    with engine.connect() as conn:
        return [
            LoadItem(
                seq=int(row.seq),
                target=str(row.target),
                object=str(row.object),
                action=str(row.action),
                source_id=row.source_id,
                target_id=row.target_id,
                fields=json.loads(row.fields) if row.fields else {},
                rules=tuple(json.loads(row.rules) if row.rules else ()),
            )
            for row in conn.execute(query)
        ]


def _rank(target: str) -> dict[str, int]:
    return {obj: rank for rank, objects in enumerate(PHASES[target]) for obj in objects}


def ordered_groups(items: Sequence[LoadItem], target: str) -> Iterator[tuple[str, str, list[LoadItem]]]:
    """(object, action, items) groups: writes in phase order, then deletes in reverse phase order."""
    rank = _rank(target)
    unknown = sorted({i.object for i in items} - rank.keys())
    if unknown:
        raise ValueError(f"plan rows for {target} name objects the loader does not know: {unknown}")
    writes = [i for i in items if i.action != DELETE_ACTION]
    deletes = [i for i in items if i.action == DELETE_ACTION]
    action_rank = {a: n for n, a in enumerate(WRITE_ACTIONS)}

    def write_key(item: LoadItem) -> tuple[int, int, str]:
        return (rank[item.object], action_rank[item.action], item.object)

    def delete_key(item: LoadItem) -> tuple[int, str]:
        return (-rank[item.object], item.object)

    for key_fn, part in ((write_key, writes), (delete_key, deletes)):
        ordered = sorted(part, key=lambda i: (key_fn(i), i.seq))  # type: ignore[operator]
        for (obj, action), group in groupby(ordered, key=lambda i: (i.object, i.action)):
            yield obj, action, list(group)
