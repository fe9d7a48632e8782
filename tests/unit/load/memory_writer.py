"""An in-memory CRM that implements the writer contract, for testing the runner's own logic.

It is not a stand-in for either CRM's API (the writers are tested against the sandbox through
the real clients); it only lets the runner's ordering, references, journal, links and dead
letters be checked row by row. Creates are idempotent by ``source_id`` like the real upserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crm_sync.load.writer import LoadItem, LoadStoppedError, WriteOutcome


@dataclass
class MemoryWriter:
    target: str
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    fail_values: set[str] = field(default_factory=lambda: {"REJECT"})
    stop_after_calls: int | None = None
    _next: int = 0

    def prepare(self) -> None:
        return None

    def write(self, object_name: str, action: str, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        if self.stop_after_calls is not None and len(self.calls) >= self.stop_after_calls:
            raise LoadStoppedError("API allowance reserve reached")
        self.calls.append((object_name, action, len(items)))
        return [self._one(object_name, action, item) for item in items]

    def _one(self, object_name: str, action: str, item: LoadItem) -> WriteOutcome:
        if any(v in self.fail_values for v in item.fields.values() if isinstance(v, str)):
            return WriteOutcome(item.seq, error_code="INVALID_FIELD", message="rejected value")
        table = self.records.setdefault(object_name, {})
        if action == "create":
            existing = next((k for k, r in table.items() if r.get("_source") == item.source_id), None)
            record_id = existing or f"{object_name[:3]}{self._bump()}"
            table.setdefault(record_id, {"_source": item.source_id}).update(item.fields)
            children = tuple(
                (s["label"], f"st{record_id}-{n}") for n, s in enumerate(item.fields.get("stages", []))
            )
            return WriteOutcome(item.seq, target_id=record_id, children=children)
        key = item.target_id or f"{item.fields}"
        if action == "delete":
            table.pop(key, None)
        else:
            table.setdefault(key, {}).update(item.fields)
        return WriteOutcome(item.seq, target_id=item.target_id)

    def _bump(self) -> int:
        self._next += 1
        return self._next

    def api_calls(self) -> int:
        return len(self.calls)

    def close(self) -> None:
        return None
