"""Chunks of a backfill or resync: what one mapped task instance works on (pure; unit-tested).

A chunk's key is derived from its window alone, never from the DAG run, so a cleared or
re-triggered run finds the chunks an earlier run finished in the registry and skips them.

- Opportunity backfill: half-open ``[start, end)`` windows on ``CreatedDate`` of ``chunk_days``
  days each (the last one shorter), in UTC.
- Account resync (ACC-8): ranges ``(after, upto]`` of Salesforce Account Ids in Id order, each
  holding at most ``size`` linked Accounts (HubSpot's resync fails above 200,000 companies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

ChunkKind = Literal["opportunities", "accounts"]

#: HubSpot's cap on one bulk resync of a company/account field mapping (RULES.md ACC-8).
ACC8_MAX_CHUNK = 200_000


@dataclass(frozen=True)
class Chunk:
    """One unit of work; ``lo``/``hi`` are ISO datetimes (windows) or Account Ids (ranges)."""

    kind: ChunkKind
    index: int
    lo: str
    hi: str
    #: Rows the planner knew of (accounts: Ids in the range; windows: unknown, 0).
    expected: int = 0
    #: What else makes two chunks with the same bounds different work (the resync's mapping
    #: fingerprint: a changed mapping is a new resync, an unchanged one resumes the last).
    scope: str = ""

    @property
    def key(self) -> str:
        """Registry key: the window (and scope) itself, independent of any DAG run."""
        return f"{self.kind}:{self.lo}..{self.hi}" + (f"@{self.scope}" if self.scope else "")

    def as_xcom(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_xcom(cls, value: dict[str, Any]) -> Chunk:
        return cls(
            kind=value["kind"],
            index=int(value["index"]),
            lo=str(value["lo"]),
            hi=str(value["hi"]),
            expected=int(value.get("expected", 0)),
            scope=str(value.get("scope", "")),
        )

    def window(self) -> tuple[datetime, datetime]:
        """The ``[start, end)`` datetimes of an opportunities chunk."""
        if self.kind != "opportunities":
            raise ValueError(f"{self.key} is an Id range, not a date window")
        return datetime.fromisoformat(self.lo), datetime.fromisoformat(self.hi)


def as_day(value: date | datetime | str) -> datetime:
    """A DAG param (``2023-01-01``, an ISO datetime or a date) as midnight UTC of that day."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date()
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def plan_windows(start: date | datetime | str, end: date | datetime | str, chunk_days: int) -> list[Chunk]:
    """``[start, end)`` split into windows of ``chunk_days`` days; raises naming a bad param."""
    lo, hi = as_day(start), as_day(end)
    if chunk_days < 1:
        raise ValueError(f"chunk_days must be at least 1, got {chunk_days}")
    if hi <= lo:
        raise ValueError(f"end ({hi.date()}) must be after start ({lo.date()})")
    chunks: list[Chunk] = []
    step = timedelta(days=chunk_days)
    cursor = lo
    while cursor < hi:
        upper = min(cursor + step, hi)
        chunks.append(Chunk("opportunities", len(chunks), cursor.isoformat(), upper.isoformat()))
        cursor = upper
    return chunks


def plan_id_ranges(ids: Sequence[str], size: int = ACC8_MAX_CHUNK, *, scope: str = "") -> list[Chunk]:
    """Sorted, distinct ``ids`` cut into ranges ``(after, upto]`` of at most ``size`` ids.

    The first range starts after ``""`` (below every Id). Ranges are keyed by their bounds, so
    a re-plan over the same Ids yields the same keys; Ids added later fall into some range and
    are picked up by the next resync.
    """
    if not 1 <= size <= ACC8_MAX_CHUNK:
        raise ValueError(f"chunk size must be between 1 and {ACC8_MAX_CHUNK} (ACC-8), got {size}")
    ordered = sorted(set(ids))
    chunks: list[Chunk] = []
    after = ""
    for start in range(0, len(ordered), size):
        part = ordered[start : start + size]
        chunks.append(Chunk("accounts", len(chunks), after, part[-1], expected=len(part), scope=scope))
        after = part[-1]
    return chunks
