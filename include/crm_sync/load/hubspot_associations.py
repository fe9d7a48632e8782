"""Associations through the v4 API: default (unlabeled) links, the primary company only when free.

``associate`` rows (``fields = {from_type, from_id, to_type, to_id, type_id}``) are written with
``POST /crm/v4/associations/{from}/{to}/batch/associate/default``, HubSpot's "most generic"
association, which is idempotent: associating a pair twice leaves one association. The default
association never touches the primary company of a contact or deal.

When a row asks for the primary type (contact->company 1, deal->company 5, or their reverses 2
and 6), the writer reads the child's company associations and adds the primary label only if
the child has no primary company yet. HubSpot keeps one primary company per record and a new
primary replaces the old one, so writing the label blindly would clobber a primary a user chose.

``delete`` rows use ``batch/archive`` (removing a pair that is not there is not an error).
Per-input failures (a record that does not exist) become outcomes; inputs are matched by
``(from id, to id)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from crm_sync.load import hubspot_results as results
from crm_sync.load.hubspot_retry import Transport
from crm_sync.load.writer import LoadItem, WriteOutcome

log = logging.getLogger(__name__)

#: Inputs per v4 association batch write (HubSpot accepts up to 2,000).
BATCH_SIZE = 1000
#: Inputs per v4 association batch read.
READ_BATCH = 1000
#: Primary (labelled) types by the side that has one primary: child type id, child, parent.
PRIMARY_FROM_CHILD = {1: ("contacts", "companies"), 5: ("deals", "companies")}
#: The same types seen from the company: company->contact 2 is contact->company 1, 6 is 5.
PRIMARY_FROM_PARENT = {2: 1, 6: 5}

Pair = tuple[str, str]


def _pair(item: LoadItem) -> tuple[str, str, str, str]:
    f = item.fields
    return str(f.get("from_type")), str(f.get("from_id")), str(f.get("to_type")), str(f.get("to_id"))


def primary_request(item: LoadItem) -> tuple[int, str, str] | None:
    """``(primary type id, child id, company id)`` when the row asks for a primary company."""
    from_type, from_id, to_type, to_id = _pair(item)
    try:
        type_id = int(item.fields.get("type_id") or 0)
    except (TypeError, ValueError):
        return None
    if type_id in PRIMARY_FROM_CHILD and (from_type, to_type) == PRIMARY_FROM_CHILD[type_id]:
        return type_id, from_id, to_id
    child_type = PRIMARY_FROM_PARENT.get(type_id)
    if child_type is not None and (to_type, from_type) == PRIMARY_FROM_CHILD[child_type]:
        return child_type, to_id, from_id
    return None


class AssociationWriter:
    """Writes the ``associations`` groups of a plan (see module docstring)."""

    def __init__(self, transport: Transport, batch_api: Any) -> None:
        self.transport = transport
        self.batch_api = batch_api

    def write(self, action: str, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        if action not in ("associate", "create", "delete"):
            return results.unsupported(items, f"crm-sync does not {action} HubSpot associations")
        by_pair: dict[Pair, list[LoadItem]] = {}
        for item in items:
            from_type, _, to_type, _ = _pair(item)
            by_pair.setdefault((from_type, to_type), []).append(item)
        outcomes: list[WriteOutcome] = []
        for pair, group in by_pair.items():
            for batch in results.chunks(group, BATCH_SIZE):
                if action == "delete":
                    outcomes += self._archive(pair, batch)
                else:
                    done = self._associate(pair, batch)
                    outcomes += self._primaries(batch, done)
        return outcomes

    # -- default associations ------------------------------------------------------------------------
    def _associate(self, pair: Pair, batch: list[LoadItem]) -> list[WriteOutcome]:
        inputs = [{"from": {"id": _pair(i)[1]}, "to": {"id": _pair(i)[3]}} for i in batch]
        reply = self.transport.call(
            f"association of {len(batch)} {pair[0]} to {pair[1]}",
            self.batch_api.create_default,
            pair[0],
            pair[1],
            {"inputs": inputs},
            idempotent=True,
        )
        if not reply.ok:
            return [results.whole_batch_error(i, reply.status, reply.body) for i in batch]
        return self._per_input(batch, reply.body)

    def _archive(self, pair: Pair, batch: list[LoadItem]) -> list[WriteOutcome]:
        grouped: dict[str, list[str]] = {}
        for item in batch:
            _, from_id, _, to_id = _pair(item)
            grouped.setdefault(from_id, []).append(to_id)
        inputs = [{"from": {"id": f}, "to": [{"id": t} for t in tos]} for f, tos in grouped.items()]
        reply = self.transport.call(
            f"removal of {len(batch)} {pair[0]}-{pair[1]} associations",
            self.batch_api.archive,
            pair[0],
            pair[1],
            {"inputs": inputs},
            idempotent=True,
        )
        if not reply.ok and reply.status != 404:
            return [results.whole_batch_error(i, reply.status, reply.body) for i in batch]
        return self._per_input(batch, reply.body)

    @staticmethod
    def _per_input(batch: list[LoadItem], body: Any) -> list[WriteOutcome]:
        """One outcome per input; errors name ``fromObjectId``/``toObjectId`` (or ``ids``)."""
        body = body if isinstance(body, Mapping) else {}
        failed: dict[int, WriteOutcome] = {}
        for error in body.get("errors") or []:
            context = error.get("context") or {}
            froms = {str(v) for v in context.get("fromObjectId") or context.get("ids") or []}
            tos = {str(v) for v in context.get("toObjectId") or []}
            for item in batch:
                _, from_id, _, to_id = _pair(item)
                if from_id in froms and (not tos or to_id in tos) and item.seq not in failed:
                    failed[item.seq] = results.failure(item.seq, error)
        return [failed.get(i.seq) or WriteOutcome(seq=i.seq, target_id=i.target_id) for i in batch]

    # -- primary companies ---------------------------------------------------------------------------
    def _primaries(self, batch: list[LoadItem], outcomes: list[WriteOutcome]) -> list[WriteOutcome]:
        """Add the primary label where asked and the child has no primary company yet."""
        ok = {o.seq for o in outcomes if o.ok}
        wanted: dict[tuple[int, str], str] = {}
        for item in batch:
            request = primary_request(item)
            if request is not None and item.seq in ok:
                wanted.setdefault((request[0], request[1]), request[2])
        for type_id in sorted({t for t, _ in wanted}):
            child, parent = PRIMARY_FROM_CHILD[type_id]
            children = [c for t, c in wanted if t == type_id]
            taken = self._with_primary(child, parent, children, type_id)
            free = [(c, wanted[(type_id, c)]) for c in children if c not in taken]
            if free:
                self._label(child, parent, free, type_id)
        return outcomes

    def _with_primary(self, child: str, parent: str, ids: list[str], type_id: int) -> set[str]:
        """Which of ``ids`` already have a primary ``parent`` (read through v4 batch read)."""
        taken: set[str] = set()
        for part in results.chunks(ids, READ_BATCH):
            reply = self.transport.call(
                f"read of {child} primary companies",
                self.batch_api.get_page,
                child,
                parent,
                {"inputs": [{"id": i} for i in part]},
                idempotent=True,
            )
            body = reply.body if isinstance(reply.body, Mapping) else {}
            for result in body.get("results") or []:
                for row in result.get("to") or []:
                    if any(int(t.get("typeId", -1)) == type_id for t in row.get("associationTypes") or []):
                        taken.add(str((result.get("from") or {}).get("id")))
        return taken

    def _label(self, child: str, parent: str, pairs: list[tuple[str, str]], type_id: int) -> None:
        spec = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]
        inputs = [{"from": {"id": c}, "to": {"id": p}, "types": spec} for c, p in pairs]
        reply = self.transport.call(
            f"primary company of {len(pairs)} {child}",
            self.batch_api.create,
            child,
            parent,
            {"inputs": inputs},
            idempotent=True,
        )
        if not reply.ok:
            log.warning(
                "hubspot: setting primary companies of %d %s failed (HTTP %d)",
                len(pairs),
                child,
                reply.status,
            )
