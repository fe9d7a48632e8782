"""Apply one target's part of a run's plan: ordered, resumable, nothing lost.

The runner owns everything that is the same for both CRMs: reading the plan's write rows,
writing them group by group in dependency order through a :class:`~crm_sync.load.writer.Writer`,
resolving references to records created earlier in the run, journaling every batch (so a re-run
skips what is done), storing links at once, writing created records' ids back to their source
CRM, and keeping per-record failures as dead letters while the rest of the batch proceeds.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from crm_sync import staging
from crm_sync.load import assignment, deadletters, journal, links
from crm_sync.load.items import ordered_groups, read_items
from crm_sync.load.refs import RefResolver, UnresolvedReferenceError
from crm_sync.load.writer import LoadItem, LoadStoppedError, WriteOutcome, Writer

log = logging.getLogger(__name__)

#: Rows handed to a writer at once (large enough for Bulk API 2.0 above its threshold); each
#: chunk is journaled before the next one is written.
DEFAULT_CHUNK = 50_000
HELD = "HELD"
#: What :class:`LoadCounts` counts per (object, action).
COUNTS: tuple[str, ...] = ("planned", "written", "failed", "held", "retried")
UNRESOLVED = "UNRESOLVED_REFERENCE"


@dataclass
class LoadCounts:
    """Per (object, action): rows planned, written, failed and held back; and API calls."""

    planned: Counter[tuple[str, str]] = field(default_factory=Counter)
    written: Counter[tuple[str, str]] = field(default_factory=Counter)
    failed: Counter[tuple[str, str]] = field(default_factory=Counter)
    held: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: Rows written this run that an earlier run had failed (their dead letters are closed).
    retried: Counter[tuple[str, str]] = field(default_factory=Counter)
    stopped: str | None = None

    def add(self, item: LoadItem, outcome: WriteOutcome) -> None:
        key = (item.object, item.action)
        if outcome.ok:
            self.written[key] += 1
        elif outcome.error_code == HELD:
            self.held[key] += 1
        else:
            self.failed[key] += 1

    def totals(self) -> dict[str, int]:
        return {name: sum(getattr(self, name).values()) for name in COUNTS}


class LoadRunner:
    """Writes the plan rows of ``run_id`` for ``writer.target``."""

    def __init__(
        self,
        engine: sa.Engine,
        run_id: str,
        writer: Writer,
        *,
        counterpart: Writer | None = None,
        max_attempts: int = deadletters.DEFAULT_MAX_ATTEMPTS,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        self.engine = engine
        self.run_id = run_id
        self.writer = writer
        self.counterpart = counterpart
        self.max_attempts = max_attempts
        self.chunk_size = chunk_size
        self.counts = LoadCounts()
        self._resolver = RefResolver.for_run(engine, run_id)
        self._held: set[tuple[str, str]] = set()
        self._done: dict[int, WriteOutcome] = {}

    @property
    def target(self) -> str:
        return self.writer.target

    def run(self) -> LoadCounts:
        """Write every pending row; per-record failures become dead letters, the rest proceeds."""
        items = read_items(self.engine, self.run_id, self.target)
        done = journal.done(self.engine, self.run_id, self.target)
        self._done = done
        for item in items:
            self.counts.planned[(item.object, item.action)] += 1
            if item.seq in done:
                self._remember(item, done[item.seq])
        self._held = deadletters.held(self.engine, self.target, self.max_attempts)
        if items:
            self.writer.prepare()
        try:
            for obj, action, group in ordered_groups(items, self.target):
                pending = [i for i in group if i.seq not in done]
                self.counts.written[(obj, action)] += len(group) - len(pending)
                for chunk in staging.chunked(pending, self.chunk_size):
                    self._write_chunk(obj, action, chunk)
        except LoadStoppedError as stop:
            self.counts.stopped = str(stop)
            log.warning("load of %s stopped before the end: %s", self.target, stop)
        if self.counts.stopped is None:
            self._write_back_links(items, done)
            with self.engine.begin() as conn:
                deadletters.supersede(conn, self.target, items, staging.now_utc())
        return self.counts

    def _write_chunk(self, obj: str, action: str, chunk: Sequence[LoadItem]) -> None:
        ready, outcomes = self._prepare_chunk(chunk)
        if ready:
            outcomes.extend(self.writer.write(obj, action, ready))
        by_seq = {i.seq: i for i in chunk}
        self._commit(by_seq, outcomes)
        for outcome in outcomes:
            self.counts.add(by_seq[outcome.seq], outcome)
            if outcome.ok:
                self._done[outcome.seq] = outcome
                self._remember(by_seq[outcome.seq], outcome)
        failed = [o for o in outcomes if not o.ok]
        log.info(
            "%s %s %s: %d written, %d failed",
            self.target,
            obj,
            action,
            len(outcomes) - len(failed),
            len(failed),
        )
        for outcome in failed[:3]:
            item = by_seq[outcome.seq]
            log.warning(
                "  %s %s %s kept as a dead letter: %s %s",
                obj,
                action,
                item.source_id or item.target_id,
                outcome.error_code,
                outcome.message,
            )

    def _prepare_chunk(self, chunk: Sequence[LoadItem]) -> tuple[list[LoadItem], list[WriteOutcome]]:
        """Resolve references; rows held back or naming a record not created stay unwritten."""
        ready: list[LoadItem] = []
        outcomes: list[WriteOutcome] = []
        for item in chunk:
            if (item.object, deadletters.record_key(item)) in self._held:
                message = (
                    f"held after {self.max_attempts} failed runs; "
                    "release it with `crm-sync dead-letters --release` once the data is fixed"
                )
                outcomes.append(WriteOutcome(item.seq, error_code=HELD, message=message, retryable=False))
                continue
            try:
                ready.append(self._resolver.resolve_item(item))
            except UnresolvedReferenceError as exc:
                outcomes.append(WriteOutcome(item.seq, error_code=UNRESOLVED, message=str(exc)))
        return ready, outcomes

    def _commit(self, items: dict[int, LoadItem], outcomes: Sequence[WriteOutcome]) -> None:
        """Journal the chunk, store its links and keep its failures, in one transaction."""
        at = staging.now_utc()
        failures = [
            deadletters.DeadLetter(items[o.seq], o) for o in outcomes if not o.ok and o.error_code != HELD
        ]
        new_links = [link for o in outcomes if (link := links.link_of(items[o.seq], o)) is not None]
        with self.engine.begin() as conn:
            journal.write(conn, self.run_id, items, outcomes, at)
            links.store(conn, new_links, self.run_id, at)
            deadletters.record(conn, self.run_id, failures, at)
            written = [items[o.seq] for o in outcomes if o.ok]
            retried = deadletters.resolve(conn, written, at)
        if written and retried:
            self.counts.retried[(written[0].object, written[0].action)] += retried

    def _remember(self, item: LoadItem, outcome: WriteOutcome) -> None:
        if item.action == "create":
            self._resolver.created(item.object, item.source_id, outcome.target_id)
            if item.object == "pipelines":
                self._resolver.created_children(item.source_id, outcome.children)

    def _write_back_links(self, items: Iterable[LoadItem], done: dict[int, WriteOutcome]) -> None:
        """Write created records' ids into their source records, through the other CRM's writer."""
        if self.counterpart is None:
            return
        other = self.counterpart.target
        already = journal.done(self.engine, self.run_id, other)
        created = [(i, done[i.seq]) for i in items if i.seq in done and -1 - i.seq not in already]
        owners = self._assigned_owners(created)
        groups: dict[tuple[str, str], list[LoadItem]] = {}
        for item, outcome in created:
            back = links.back_link(item, outcome, seq=-1 - item.seq)
            if back is not None:
                extra = owners.get(outcome.target_id or "", {})
                back = replace(back, fields={**back.fields, **extra})
                groups.setdefault((back.object, back.action), []).append(back)
        if not groups:
            return
        self.counterpart.prepare()
        for (obj, action), group in groups.items():
            outcomes = self.counterpart.write(obj, action, group)
            self._commit({i.seq: i for i in group}, outcomes)
            log.info("back-links to %s %s: %d written", other, obj, sum(o.ok for o in outcomes))

    def _assigned_owners(
        self, created: Sequence[tuple[LoadItem, WriteOutcome]]
    ) -> Mapping[str, dict[str, str]]:
        """Owners Salesforce's assignment rules gave the records this run created (OWN-2, OWN-3)."""
        if not isinstance(self.writer, assignment.Queryable):
            return {}
        chosen = [(i.object, o.target_id) for i, o in created if assignment.assigned(i) and o.target_id]
        return assignment.owner_fields(self.writer, self.engine, self.run_id, chosen)

    def summary(self) -> dict[str, Any]:
        """Counts for XCom and the task log."""
        calls = self.writer.api_calls() + (self.counterpart.api_calls() if self.counterpart else 0)
        totals = self.counts.totals()
        return {"target": self.target, **totals, "api_calls": calls, "stopped": self.counts.stopped}
