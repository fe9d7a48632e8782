"""The contract between the load runner and the per-CRM writers (see INTERFACES.md).

Placeholder copy in the ``hswriter`` branch until the lead's version lands on main; names and
fields are identical, so the lead's file replaces this one at merge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from crm_sync.connections import CrmConnectionError


@dataclass(frozen=True, slots=True)
class LoadItem:
    """One plan row to write: identity ``seq``, what to do, and the resolved field values."""

    seq: int
    target: str
    object: str
    action: str
    source_id: str | None
    target_id: str | None
    fields: dict[str, Any]
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What became of one :class:`LoadItem` (same ``seq``); ``error_code`` None means written."""

    seq: int
    target_id: str | None = None
    error_code: str | None = None
    message: str | None = None
    retryable: bool = True
    #: Extra ids a write produced: for a created pipeline, (stage label, stage id) pairs.
    children: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.error_code is None


class WriterSetupError(CrmConnectionError):
    """A prerequisite is missing in the CRM; the message says how to fix it."""


class BatchFailedError(RuntimeError):
    """A whole batch failed after its retries: the task fails and a re-run finishes the job."""


class LoadStoppedError(RuntimeError):
    """The API allowance reserve was reached: the load stops cleanly; the message says why."""


class Writer(Protocol):
    """A target CRM's writer; the runner calls :meth:`write` per (object, action) group."""

    target: str

    def prepare(self) -> None: ...

    def write(self, object: str, action: str, items: Sequence[LoadItem]) -> list[WriteOutcome]: ...

    def api_calls(self) -> int: ...

    def close(self) -> None: ...
