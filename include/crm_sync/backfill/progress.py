"""Progress of a backfill or resync: chunks done, records per chunk, estimated time left.

Computed from the registry rows of the run's chunks (pure; unit-tested), so every task that
reports it (after each chunk, and at the end) tells the same story, whichever run did which
chunk. The estimate is the mean duration of the chunks done so far times the chunks left; it
is ``None`` until one chunk has finished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from crm_sync.backfill.registry import ChunkState


@dataclass(frozen=True)
class Progress:
    """Where a backfill stands; :meth:`line` is what the task log shows."""

    total: int
    done: int
    failed: int
    records_done: int
    records_per_chunk: float
    eta_s: float | None

    def line(self) -> str:
        eta = "unknown" if self.eta_s is None else f"{self.eta_s:,.0f} s"
        percent = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"{self.done}/{self.total} chunks done ({percent:.0f}%), {self.failed} failed, "
            f"{self.records_done:,} records, {self.records_per_chunk:,.0f} records/chunk, "
            f"estimated time left {eta}"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def progress(keys: Sequence[str], states: Mapping[str, ChunkState]) -> Progress:
    """Progress of the chunks ``keys`` given their registry rows (no row: pending)."""
    mine = [states[k] for k in keys if k in states]
    done = [s for s in mine if s.status == "done"]
    failed = sum(1 for s in mine if s.status == "failed")
    records = sum(s.records for s in done)
    durations = [s.duration_s for s in done if s.duration_s is not None]
    left = len(keys) - len(done)
    eta = (sum(durations) / len(durations)) * left if durations else None
    return Progress(
        total=len(keys),
        done=len(done),
        failed=failed,
        records_done=records,
        records_per_chunk=records / len(done) if done else 0.0,
        eta_s=0.0 if left == 0 else eta,
    )
