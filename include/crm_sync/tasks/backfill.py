"""Chunk tasks of ``crm_backfill_opportunities`` and ``crm_resync_accounts``.

Each DAG plans its chunks (:func:`plan_opportunity_chunks`, :func:`plan_account_chunks`), maps
a task group over them, and per chunk calls, in order: :func:`extract_chunk` (window extraction,
ACC-2/DEAL-9 imports), :func:`transform_chunk` (the seven rule stages and validation of
``crm_sync``), :func:`load_chunk` for each CRM (``crm_sync``'s loaders, in the same pools) and
:func:`commit_chunk` (``crm_sync``'s bookkeeping, then the registry); :func:`finish` reports the
whole. Every function returns a small dict for XCom, the *chunk state*, which the next one takes.

Resumability: a chunk the registry knows as ``done`` is skipped by :func:`extract_chunk`
(``{"skipped": ...}``), whichever run finished it. Each new attempt of a chunk gets its own run id
(``<dag>__<window>__<attempt>``), so its plan and load journal are its own; a retried load task of
the same attempt resumes from the journal. Chunks hold the staging lease from extraction to
commit (:mod:`crm_sync.backfill.lease`). The hourly watermarks never move: windows are read
without them and everything else under ``backfill:`` watermarks, which the commit advances.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy as sa

from crm_sync import staging
from crm_sync.backfill import budget, extract, focus, imports, lease, registry, scope
from crm_sync.backfill.holders import run_liveness
from crm_sync.backfill.progress import Progress, progress
from crm_sync.backfill.windows import ACC8_MAX_CHUNK, Chunk, ChunkKind, plan_id_ranges, plan_windows
from crm_sync.rules.inputs import RuleInputs
from crm_sync.rules.pipeline import STAGES
from crm_sync.settings import SyncConfig, load_config
from crm_sync.tasks import rules
from crm_sync.tasks.load import commit, load_target
from crm_sync.tasks.validate import validate_plan

log = logging.getLogger(__name__)

BACKFILL_DAG_ID = "crm_backfill_opportunities"
RESYNC_DAG_ID = "crm_resync_accounts"
#: ``sync_log`` stage of the per-DAG-run plan and progress rows.
LOG_STAGE = "backfill"

R = TypeVar("R")


#: How long the next chunk waits for a failed chunk of its run, which Airflow may still retry
#: (two retries, at most ten minutes apart, in the DAGs' default args).
RETRY_GRACE = timedelta(minutes=30)


class ChunkBlockedError(RuntimeError):
    """An earlier chunk of this run failed holding the lease; re-trigger the run to resume."""


# -- planning ------------------------------------------------------------------------------------


def plan_opportunity_chunks(
    start: str, end: str, chunk_days: int, *, dag_run_id: str, staging_conn_id: str = staging.DEFAULT_CONN_ID
) -> list[dict[str, Any]]:
    """The windows of ``[start, end)``, recorded for progress; done ones are reported, not dropped.

    Every chunk stays in the mapping (so the graph shows the whole range, and a done chunk is
    visibly skipped); the registry decides per chunk.
    """
    return _record_plan(
        "opportunities", plan_windows(start, end, int(chunk_days)), dag_run_id, staging_conn_id
    )


def plan_account_chunks(
    chunk_size: int = ACC8_MAX_CHUNK,
    *,
    dag_run_id: str,
    label: str = "",
    config: SyncConfig | None = None,
    staging_conn_id: str = staging.DEFAULT_CONN_ID,
) -> list[dict[str, Any]]:
    """ACC-8: the linked Accounts (``sync_link``) in Id ranges of at most ``chunk_size``.

    The chunks are scoped by ``label``, by default a fingerprint of the account field mappings:
    re-triggering with the same mappings resumes (finished ranges are skipped), while changed
    mappings, or a new label, start a new resync of every range.
    """
    scope = label or mapping_fingerprint(config or load_config())
    engine = staging.staging_engine(staging_conn_id)
    staging.ensure_schema(engine)
    link = staging.sync_link
    with engine.connect() as conn:
        ids = [
            str(i) for i in conn.execute(sa.select(link.c.sf_id).where(link.c.object == "Account")).scalars()
        ]
    chunks = plan_id_ranges(ids, int(chunk_size), scope=scope)
    return _record_plan("accounts", chunks, dag_run_id, staging_conn_id)


def mapping_fingerprint(config: SyncConfig) -> str:
    """A short, stable digest of the Account <-> company field mappings."""
    text = repr(sorted(repr(m) for m in config.mappings("accounts")))
    return "mappings-" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:10]


def _record_plan(
    kind: ChunkKind, chunks: list[Chunk], dag_run_id: str, staging_conn_id: str
) -> list[dict[str, Any]]:
    """Store the run's chunk keys (``sync_log``, for progress) and log where the range stands."""
    engine = staging.staging_engine(staging_conn_id)
    registry.ensure(engine)
    staging.log_run_stage(
        engine, dag_run_id, LOG_STAGE, "plan", details={"kind": kind, "chunks": [c.key for c in chunks]}
    )
    report = _progress(engine, kind, [c.key for c in chunks])
    log.info("%d chunks planned: %s .. %s", len(chunks), *(_bounds(chunks)))
    log.info("before this run: %s", report.line())
    return [c.as_xcom() for c in chunks]


def _bounds(chunks: Sequence[Chunk]) -> tuple[str, str]:
    return (chunks[0].lo, chunks[-1].hi) if chunks else ("-", "-")


# -- per chunk -----------------------------------------------------------------------------------


def extract_chunk(
    chunk_xcom: Mapping[str, Any],
    *,
    dag_id: str,
    dag_run_id: str,
    dry_run: bool = False,
    api_share: float = 1.0,
    config: SyncConfig | None = None,
    lease_wait_s: float = 0.0,
    staging_conn_id: str = staging.DEFAULT_CONN_ID,
) -> dict[str, Any]:
    """Skip a done chunk; else take the lease, start an attempt and stage the chunk's records.

    Raises :class:`~crm_sync.backfill.lease.LeaseBusyError` when another chunk holds the lease
    (the DAG reschedules the task) and :class:`ChunkBlockedError` when the holder is a chunk of
    this run that failed.
    """
    chunk = Chunk.from_xcom(dict(chunk_xcom))
    share = budget.check_share(api_share)
    engine = staging.staging_engine(staging_conn_id)
    registry.ensure(engine)
    known = registry.state(engine, chunk)
    if known is not None and known.status == "done":
        log.info("chunk %s already done by run %s: skipped", chunk.key, known.run_id)
        return {"chunk": chunk.as_xcom(), "skipped": "done", "run_id": known.run_id}
    take_lease(engine, chunk, dag_run_id, lease_wait_s)
    attempt = registry.next_attempt(engine, chunk)
    run_id = chunk_run_id(dag_id, chunk, attempt)
    registry.start(engine, chunk, run_id=run_id, dag_run_id=dag_run_id, attempt=attempt)
    if known is not None and known.run_id and staging.abandon_run(engine, known.run_id):
        # The earlier attempt was killed: it never finishes, so its rule rows may be pruned.
        log.warning("chunk %s: attempt %s (run %s) is abandoned", chunk.key, known.attempts, known.run_id)
    state: dict[str, Any] = {
        "chunk": chunk.as_xcom(),
        "run_id": run_id,
        "dag_id": dag_id,
        "dag_run_id": dag_run_id,
        "attempt": attempt,
        "dry_run": bool(dry_run),
        "api_share": share,
        "skipped": None,
    }
    return _guarded(engine, chunk, lambda: _extract(engine, chunk, state, config or load_config()))


def _extract(engine: sa.Engine, chunk: Chunk, state: dict[str, Any], config: SyncConfig) -> dict[str, Any]:
    run_id = str(state["run_id"])
    now = staging.now_utc()
    staging.record_run(
        engine,
        run_id,
        dag_id=str(state["dag_id"]),
        logical_date=now,
        data_interval_end=now,
        dry_run=state["dry_run"],
    )
    stats = extract.extract_chunk(engine, chunk, run_id=run_id, settings=config.extract, until=now)
    read = {f"{s.system}.{s.object}": s.read for s in stats}
    api_calls = sum(s.api_calls for s in stats)
    if chunk.kind == "opportunities":
        imported = imports.record_imports(engine, imports.window_ids(engine, chunk), run_id)
        records = imported["Opportunity"]
    else:
        imported = {}
        records = read.get("salesforce.Account", 0)
    registry.add_counts(
        engine, chunk, {"read": read, "imported": imported, "extract_api_calls": api_calls}, records=records
    )
    log.info(
        "chunk %s (attempt %s): %d records, imported %s, %d API calls",
        chunk.key,
        state["attempt"],
        records,
        imported,
        api_calls,
    )
    return {**state, "records": records, "imported": imported, "api_calls": api_calls}


def transform_chunk(
    state: Mapping[str, Any], *, staging_conn_id: str = staging.DEFAULT_CONN_ID
) -> dict[str, Any]:
    """``crm_sync``'s seven rule stages and validation for the chunk's run; a dry run ends here."""
    if state.get("skipped"):
        return dict(state)
    chunk, run_id = Chunk.from_xcom(state["chunk"]), str(state["run_id"])
    engine = staging.staging_engine(staging_conn_id)

    def work() -> dict[str, Any]:
        _hold(engine, chunk)
        whole, focused = _chunk_inputs(engine, chunk, run_id)
        actions: dict[str, int] = {}
        for stage in STAGES:
            inputs = whole if stage in focus.WHOLE_ORG_STAGES else focused
            result = rules.run_stage(stage, run_id=run_id, staging_conn_id=staging_conn_id, inputs=inputs)
            actions = result.get("actions", actions)
        del whole, focused, inputs
        if chunk.kind == "accounts":  # ACC-8: at most the range's companies per chunk
            scoped = scope.scope_run(engine, run_id, chunk)
            actions = {"update": scoped["plan_rows"]}
            log.info("chunk %s: plan scoped to its Account range: %s", chunk.key, scoped)
        validated = validate_plan(run_id, staging_conn_id=staging_conn_id)
        registry.add_counts(engine, chunk, {"plan": actions, "validate": _small(validated)})
        if state.get("dry_run"):
            staging.finish_run(engine, run_id, "planned")
            registry.finish(engine, chunk, "planned")
            lease.release(engine, chunk.key)
            log.info("chunk %s planned (dry run): %s; nothing written", chunk.key, actions)
        return {**state, "plan": actions}

    return _guarded(engine, chunk, work)


def _chunk_inputs(engine: sa.Engine, chunk: Chunk, run_id: str) -> tuple[RuleInputs, RuleInputs]:
    """The staged state, loaded once for all seven stages, whole and as the chunk plans it.

    An Opportunity window plans its neighbourhood (:mod:`crm_sync.backfill.focus`): found in the
    key columns of staging, then only its rows are read, so a chunk's rule work and memory
    follow its neighbourhood rather than everything backfilled so far.
    """
    rules.refresh_links(engine, run_id)
    now = rules.run_time(engine, run_id)
    if chunk.kind != "opportunities":
        inputs = rules.load_inputs(engine, now=now)
        return inputs, inputs
    keys = rules.load_inputs(engine, now=now, view=focus.KEY_VIEW)
    seeds = {"sf_opportunity": imports.window_ids(engine, chunk)["Opportunity"]}
    found = focus.neighbourhood(keys, seeds)
    whole = focus.whole_org_inputs(keys)
    del keys
    log.info("chunk %s plans its neighbourhood (%d rounds): %s", chunk.key, found.rounds, found.counts())
    return whole, rules.load_inputs(engine, now=now, view=focus.neighbourhood_view(found))


def load_chunk(
    target: str, state: Mapping[str, Any], *, staging_conn_id: str = staging.DEFAULT_CONN_ID
) -> dict[str, Any]:
    """Write the chunk's plan rows for ``target`` with ``crm_sync``'s loader (journaled)."""
    if state.get("skipped") or state.get("dry_run"):
        return {"target": target, "skipped": state.get("skipped") or "dry_run"}
    chunk, run_id = Chunk.from_xcom(state["chunk"]), str(state["run_id"])
    engine = staging.staging_engine(staging_conn_id)

    def work() -> dict[str, Any]:
        _hold(engine, chunk)
        options = budget.writer_options(target, float(state.get("api_share", 1.0)))
        summary = load_target(target, run_id=run_id, staging_conn_id=staging_conn_id, writer_options=options)
        registry.add_counts(engine, chunk, {f"load_{target}": _small(summary)})
        return summary

    return _guarded(engine, chunk, work)


def commit_chunk(
    state: Mapping[str, Any], *, staging_conn_id: str = staging.DEFAULT_CONN_ID
) -> dict[str, Any]:
    """``crm_sync``'s commit (snapshots, links, ``backfill:`` watermarks), then mark the chunk done."""
    if state.get("skipped") or state.get("dry_run"):
        return {"skipped": state.get("skipped") or "dry_run"}
    chunk, run_id = Chunk.from_xcom(state["chunk"]), str(state["run_id"])
    engine = staging.staging_engine(staging_conn_id)

    def work() -> dict[str, Any]:
        _hold(engine, chunk)
        committed = commit(run_id=run_id, staging_conn_id=staging_conn_id)
        staging.finish_run(engine, run_id, "succeeded")
        final = registry.finish(engine, chunk, "done")
        lease.release(engine, chunk.key)
        report = _report(engine, chunk.kind, str(state["dag_run_id"]))
        log.info("chunk %s done in %.1f s: %s", chunk.key, final.duration_s or 0.0, final.counts)
        return {"records": final.records, "committed": _small(committed), "progress": report.as_dict()}

    return _guarded(engine, chunk, work)


def finish(
    kind: ChunkKind, *, dag_run_id: str, staging_conn_id: str = staging.DEFAULT_CONN_ID
) -> dict[str, Any]:
    """Report the run's progress; fails when a chunk is not done, so the run shows it."""
    engine = staging.staging_engine(staging_conn_id)
    report = _report(engine, kind, dag_run_id)
    if report.done + _planned(engine, kind, dag_run_id) < report.total:
        raise RuntimeError(
            f"{report.total - report.done} chunk(s) not done ({report.line()}); re-trigger to resume"
        )
    return report.as_dict()


# -- helpers ---------------------------------------------------------------------------------------


def chunk_run_id(dag_id: str, chunk: Chunk, attempt: int) -> str:
    """A readable, path-safe run id for one attempt of one chunk (unique per key and attempt)."""
    lo, hi = (re.sub(r"[^0-9A-Za-z]+", "", v)[:18] or "start" for v in (chunk.lo, chunk.hi))
    suffix = f"_{re.sub(r'[^0-9A-Za-z]+', '', chunk.scope)}" if chunk.scope else ""
    return f"{dag_id}__{lo}_{hi}{suffix}__{attempt}"


def _guarded(engine: sa.Engine, chunk: Chunk, work: Callable[[], R]) -> R:
    """Run one step; a failure marks the chunk failed (keeping its lease) and propagates."""
    registry.resume(engine, chunk)  # a retry of a step that failed
    try:
        return work()
    except Exception as exc:
        registry.finish(engine, chunk, "failed", error=f"{type(exc).__name__}: {exc}"[:2000])
        raise


def take_lease(
    engine: sa.Engine, chunk: Chunk, dag_run_id: str, wait_s: float = 0.0, *, now: datetime | None = None
) -> None:
    """Take the staging lease for ``chunk``, or explain why not.

    A holder that is a chunk of an earlier run (crashed, failed, or finished without releasing)
    is taken over: ``max_active_runs=1`` means that run is over. A chunk of this run that failed
    may still be retried by Airflow, so we wait for it for :data:`RETRY_GRACE`; after that it
    blocks the run (:class:`ChunkBlockedError`: re-trigger to resume). A running holder, or
    another DAG's, makes us wait (:class:`~crm_sync.backfill.lease.LeaseBusyError` after ``wait_s``);
    a ``crm_sync`` run that is over (finished, failed, abandoned) is taken over at once.
    """
    if lease.try_acquire(engine, chunk.key, alive=run_liveness(engine)):
        return
    holder = lease.holder(engine)
    held = registry.state_of(engine, holder) if holder and holder.startswith(f"{chunk.kind}:") else None
    if held is not None and holder is not None:
        if held.dag_run_id != dag_run_id or held.status in ("done", "planned"):
            if lease.take_over(engine, chunk.key, holder):
                log.warning(
                    "took over the staging lease from %s (%s in run %s)", holder, held.status, held.dag_run_id
                )
                return
        elif held.status == "failed":
            since = (now or staging.now_utc()) - (held.finished_at or staging.now_utc())
            if since > RETRY_GRACE:
                raise ChunkBlockedError(f"chunk {holder} of this run failed; re-trigger the run to resume")
    lease.acquire(engine, chunk.key, wait_s=wait_s)


def _hold(engine: sa.Engine, chunk: Chunk) -> None:
    """Renew the lease for this chunk's next step; another holder means it was taken over."""
    if not lease.try_acquire(engine, chunk.key):
        raise ChunkBlockedError(f"chunk {chunk.key} lost the staging lease to {lease.holder(engine)!r}")


def _plan_keys(engine: sa.Engine, dag_run_id: str) -> list[str]:
    log_rows = staging.read_frame(engine, "sync_log")
    mine = log_rows[
        (log_rows["run_id"] == dag_run_id) & (log_rows["stage"] == LOG_STAGE) & (log_rows["object"] == "plan")
    ]
    if mine.empty:
        return []
    return [str(k) for k in json.loads(mine.iloc[0]["details"]).get("chunks", [])]


def _progress(engine: sa.Engine, kind: str, keys: Sequence[str]) -> Progress:
    return progress(keys, registry.read(engine, kind, keys))


def _planned(engine: sa.Engine, kind: str, dag_run_id: str) -> int:
    keys = _plan_keys(engine, dag_run_id)
    return sum(1 for s in registry.read(engine, kind, keys).values() if s.status == "planned")


def _report(engine: sa.Engine, kind: str, dag_run_id: str) -> Progress:
    """Progress of this run's chunks, in the task log and ``sync_log`` (stage ``backfill``)."""
    report = _progress(engine, kind, _plan_keys(engine, dag_run_id))
    log.info("progress: %s", report.line())
    staging.log_run_stage(
        engine,
        dag_run_id,
        LOG_STAGE,
        "progress",
        read=report.records_done,
        created=report.done,
        skipped=report.total - report.done,
        details=report.as_dict(),
    )
    return report


def _small(value: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level counts (numbers and strings) of a step's result, for the registry and XCom."""
    return {str(k): v for k, v in value.items() if isinstance(v, int | float | str | None)}


# -- Airflow adapters (the DAGs' tasks call these) -------------------------------------------------


def extract_task(chunk_xcom: Mapping[str, Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`extract_chunk` for a DAG task: done -> skipped, lease busy -> rescheduled."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from crm_sync.tasks import failfast

    dag = context.get("dag")
    params = context.get("params") or {}
    try:
        state = failfast.run(
            extract_chunk,
            chunk_xcom,
            dag_id=str(getattr(dag, "dag_id", None) or context.get("dag_id")),
            dag_run_id=str(context["run_id"]),
            dry_run=bool(params.get("dry_run", False)),
            api_share=float(params.get("api_share", budget.DEFAULT_SHARE)),
        )
    except lease.LeaseBusyError as busy:
        raise lease.reschedule(busy) from busy
    except ChunkBlockedError as blocked:
        raise AirflowFailException(str(blocked)) from blocked
    if state.get("skipped"):
        raise AirflowSkipException(f"chunk already {state['skipped']} (run {state.get('run_id')})")
    return state


def finish_task(kind: ChunkKind, context: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`finish` for a DAG task: chunks left undone fail the run (no retry can do them)."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        return finish(kind, dag_run_id=str(context["run_id"]))
    except RuntimeError as undone:
        raise AirflowFailException(str(undone)) from undone
