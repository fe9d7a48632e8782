"""The contract between the load runner and a CRM writer.

A writer knows one CRM's write APIs (batch sizes, idempotent upserts, retries, rate limits); the
runner knows the plan (order, references, links, dead letters). They meet in :class:`LoadItem`
(one plan row with its references already resolved) and :class:`WriteOutcome` (what happened to
that row). Per-record failures are outcomes, never exceptions, so one bad record cannot sink its
batch; exceptions are kept for what stops the whole load.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from crm_sync.connections import CrmConnectionError


@dataclass(frozen=True, slots=True)
class LoadItem:
    """One plan row to write. ``fields`` hold target field names with references resolved."""

    seq: int
    target: str
    object: str
    action: str
    source_id: str | None
    target_id: str | None
    fields: Mapping[str, Any] = field(default_factory=dict)
    rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """The result of writing one item: the record's id on the target, or the API's error.

    ``children`` carries ids the write made besides the record's own, as (key, id) pairs: the
    stages of a created pipeline, keyed by stage label.
    """

    seq: int
    target_id: str | None = None
    error_code: str | None = None
    message: str | None = None
    retryable: bool = True
    children: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return self.error_code is None


class WriterSetupError(CrmConnectionError):
    """Something the CRM must have before crm-sync can write is missing; the message says how to add it."""


class BatchFailedError(RuntimeError):
    """A whole batch failed after its retries: the task fails and a re-run finishes the job."""


class LoadStoppedError(RuntimeError):
    """The load stopped on purpose (e.g. the API allowance reached its reserve); nothing is lost."""


class Writer(Protocol):
    """What the runner needs from a CRM writer."""

    target: str

    def prepare(self) -> None:
        """Check (or create) what writing needs, failing fast with a message that says the fix."""

    def write(self, object_name: str, action: str, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        """Write one group (same object and action); exactly one outcome per item, by ``seq``."""

    def api_calls(self) -> int:
        """Requests made so far, for ``sync_log``."""

    def close(self) -> None:
        """Release connections."""
