"""The HubSpot writer: loads plan rows into a portal through ``hubspot-api-client``, idempotently.

Per (object, action) group (see ``INTERFACES.md``):

- ``create`` of companies/contacts/deals: ``batch/upsert`` (100 per call) keyed by the unique
  property ``crm_sync_salesforce_id`` = the Salesforce id. A create whose answer was lost and is
  sent again updates the record the first attempt made instead of making a second one (SYNC-4,
  DEAL-5). :meth:`HubSpotWriter.prepare` creates the property if the portal lacks it.
- ``update`` and ``link``: ``batch/update`` by HubSpot id; ``delete``: ``batch/archive`` (a record
  already gone counts as archived).
- ``pipelines`` and ``associations``: :mod:`crm_sync.load.hubspot_pipelines` and
  :mod:`crm_sync.load.hubspot_associations`.

Per-record failures come back as :class:`WriteOutcome` with HubSpot's code. Every input carries
its ``seq`` as ``objectWriteTraceId``, which makes HubSpot answer a batch with a bad record by
207 and write the others; if a portal still refuses a whole batch (400/409), the batch is split
in halves until the bad record stands alone, so one bad record never sinks the other 99.
Batches of one group run in parallel (``extra.max_parallel``, 4 by default, at most 8) under one
:class:`~crm_sync.load.hubspot_pacing.WindowPacer`; retries live in
:class:`~crm_sync.load.hubspot_retry.Transport`.

Connection extras read here (besides the hook's token/host/timeout): ``retry_budget_seconds``
(120), ``max_parallel`` (4), ``requests_per_10s`` (the window assumed until HubSpot's headers
state it; 100), ``daily_reserve`` (requests of the daily allowance to leave to other
integrations: the load stops with ``LoadStoppedError`` when ``X-HubSpot-RateLimit-Daily-
Remaining`` reaches it; 0, off, by default).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from crm_sync.connections import HUBSPOT_CONN_ID, hubspot_hook
from crm_sync.load import hubspot_results as results
from crm_sync.load.hubspot_associations import AssociationWriter
from crm_sync.load.hubspot_pacing import DEFAULT_MAX, WindowPacer
from crm_sync.load.hubspot_pipelines import PipelineWriter
from crm_sync.load.hubspot_retry import DEFAULT_RETRY_BUDGET, Reply, Transport, no_status_retry
from crm_sync.load.writer import LoadItem, WriteOutcome, Writer, WriterSetupError

log = logging.getLogger(__name__)

BATCH_SIZE = 100
MAX_PARALLEL = 8
RECORD_OBJECTS = ("companies", "contacts", "deals")
_PROPERTY_GROUPS = {
    "companies": "companyinformation",
    "contacts": "contactinformation",
    "deals": "dealinformation",
}


class HubSpotWriter:
    """Writes load items into HubSpot (the ``Writer`` protocol of ``crm_sync.load.writer``)."""

    target = "hubspot"

    def __init__(
        self,
        client: Any,
        *,
        conn_id: str = HUBSPOT_CONN_ID,
        timeout: float = 60.0,
        retry_budget: float = DEFAULT_RETRY_BUDGET,
        daily_reserve: int = 0,
        max_parallel: int = 4,
        requests_per_10s: int = DEFAULT_MAX,
        multi_status: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """``client`` is a ``hubspot.HubSpot``; its urllib3 retries are replaced by
        :func:`no_status_retry` (this writer decides what is safe to repeat). ``multi_status``
        False leaves out the trace ids, as a portal that fails whole batches would behave.
        ``clock``/``sleep`` drive pacing and retry waits (tests move time instead of waiting)."""
        client.config["retry"] = no_status_retry()
        crm = client.crm
        self.conn_id = conn_id
        self.multi_status = multi_status
        self.max_parallel = max(1, min(MAX_PARALLEL, max_parallel))
        self.pacer = WindowPacer(
            initial_max=requests_per_10s, max_parallel=self.max_parallel, clock=clock, sleep=sleep
        )
        self.transport = Transport(
            conn_id=conn_id,
            pacer=self.pacer,
            timeout=timeout,
            retry_budget=retry_budget,
            daily_reserve=daily_reserve,
            sleep=sleep or time.sleep,
            clock=clock,
        )
        self.batch_api = crm.objects.batch_api
        self.properties_api = crm.properties.core_api
        self.pipelines = PipelineWriter(
            self.transport, crm.pipelines.pipelines_api, crm.pipelines.pipeline_stages_api
        )
        self.associations = AssociationWriter(self.transport, crm.associations.v4.batch_api)
        self._pool = ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="hubspot-write")

    @classmethod
    def from_connection(cls, conn_id: str = HUBSPOT_CONN_ID, **overrides: Any) -> HubSpotWriter:
        """A writer for an Airflow connection (see the module docstring for the extras it reads)."""
        hook = hubspot_hook(conn_id)
        extra = hook.get_connection(conn_id).extra_dejson or {}
        options: dict[str, Any] = {
            "timeout": hook.timeout,
            "retry_budget": float(extra.get("retry_budget_seconds", DEFAULT_RETRY_BUDGET)),
            "daily_reserve": int(extra.get("daily_reserve", 0)),
            "max_parallel": int(extra.get("max_parallel", 4)),
            "requests_per_10s": int(extra.get("requests_per_10s", DEFAULT_MAX)),
        }
        options.update(overrides)
        return cls(hook.get_conn(), conn_id=conn_id, **options)

    # -- the Writer protocol -------------------------------------------------------------------------
    def prepare(self) -> None:
        """Make sure each record type has the unique ``crm_sync_salesforce_id`` property."""
        for object_type in RECORD_OBJECTS:
            self._ensure_unique_property(object_type)

    def write(self, object_name: str, action: str, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        """Write one group; exactly one outcome per item (see the module docstring)."""
        if not items:
            return []
        if object_name == "pipelines":
            return self.pipelines.write(action, items)
        if object_name == "associations":
            return self.associations.write(action, items)
        if object_name not in RECORD_OBJECTS:
            return results.unsupported(items, f"crm-sync does not write HubSpot {object_name}")
        if action == "create":
            return self._creates(object_name, items)
        if action in ("update", "link"):
            return self._updates(object_name, items)
        if action == "delete":
            return self._archives(object_name, items)
        return results.unsupported(items, f"action {action!r} is not a write for HubSpot {object_name}")

    def api_calls(self) -> int:
        return self.transport.calls

    def stage_ids(self, pipeline_id: str) -> dict[str, str]:
        """Stage label -> stage id of a deal pipeline (the runner resolves stage references)."""
        return self.pipelines.stage_ids(pipeline_id)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- records -------------------------------------------------------------------------------------
    def _creates(self, object_type: str, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        missing = [i for i in items if not i.source_id]
        outcomes = [
            WriteOutcome(
                seq=i.seq,
                error_code="MISSING_SOURCE_ID",
                message="a create needs the Salesforce id to upsert on (source_id)",
                retryable=False,
            )
            for i in missing
        ]
        keyed = [i for i in items if i.source_id]
        for round_items in results.rounds(keyed, lambda i: i.source_id):
            outcomes += self._parallel(
                round_items,
                lambda batch: self._batch(
                    f"upsert of {len(batch)} {object_type}",
                    self.batch_api.upsert,
                    object_type,
                    batch,
                    results.upsert_input,
                    key_of=lambda i: i.source_id,
                    result_key=lambda r: (r.get("properties") or {}).get(results.UNIQUE_PROPERTY),
                ),
            )
        return outcomes

    def _updates(self, object_type: str, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        outcomes = [
            WriteOutcome(seq=i.seq, error_code="MISSING_TARGET_ID", message="no HubSpot id", retryable=False)
            for i in items
            if not i.target_id
        ]
        outcomes += results.ok_all(i for i in items if i.target_id and not i.fields)  # nothing changed
        todo = [i for i in items if i.target_id and i.fields]
        for round_items in results.rounds(todo, lambda i: i.target_id):
            outcomes += self._parallel(
                round_items,
                lambda batch: self._batch(
                    f"update of {len(batch)} {object_type}",
                    self.batch_api.update,
                    object_type,
                    batch,
                    results.update_input,
                    key_of=lambda i: i.target_id,
                    result_key=lambda r: r.get("id"),
                ),
            )
        return outcomes

    def _archives(self, object_type: str, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        outcomes = results.ok_all(i for i in items if not i.target_id)  # never created: nothing to delete
        todo = [i for i in items if i.target_id]
        outcomes += self._parallel(todo, lambda batch: self._archive_batch(object_type, batch))
        return outcomes

    def _archive_batch(self, object_type: str, batch: list[LoadItem]) -> list[WriteOutcome]:
        body = {"inputs": [{"id": str(i.target_id)} for i in batch]}
        reply = self.transport.call(
            f"archive of {len(batch)} {object_type}",
            self.batch_api.archive,
            object_type,
            body,
            idempotent=True,
        )
        if reply.ok or reply.status == 404:
            by_id: dict[str, list[int]] = {}
            for item in batch:
                by_id.setdefault(str(item.target_id), []).append(item.seq)
            failed: dict[int, WriteOutcome] = {}
            body_out = reply.body if isinstance(reply.body, dict) else {}
            for error in body_out.get("errors") or []:
                if error.get("category") == "OBJECT_NOT_FOUND":
                    continue  # already archived or never there: the goal is reached
                for seq in results.error_seqs(error, by_id):
                    failed.setdefault(seq, results.failure(seq, error))
            return [failed.get(i.seq) or WriteOutcome(seq=i.seq, target_id=i.target_id) for i in batch]
        return self._refused(batch, reply, lambda part: self._archive_batch(object_type, part))

    def _batch(
        self,
        what: str,
        method: Callable[..., Any],
        object_type: str,
        batch: list[LoadItem],
        make_input: Callable[[LoadItem], dict[str, Any]],
        *,
        key_of: Callable[[LoadItem], Any],
        result_key: Callable[[dict[str, Any]], Any],
    ) -> list[WriteOutcome]:
        """One idempotent batch call (upsert/update); a refused batch is split (see module doc)."""
        inputs = [make_input(i) for i in batch]
        if not self.multi_status:
            for entry in inputs:
                entry.pop("objectWriteTraceId", None)
        reply = self.transport.call(what, method, object_type, {"inputs": inputs}, idempotent=True)
        if reply.ok:
            return results.record_outcomes(batch, reply.body, key_of=key_of, result_key=result_key)
        return self._refused(
            batch,
            reply,
            lambda part: self._batch(
                what, method, object_type, part, make_input, key_of=key_of, result_key=result_key
            ),
        )

    @staticmethod
    def _refused(
        batch: list[LoadItem], reply: Reply, retry: Callable[[list[LoadItem]], list[WriteOutcome]]
    ) -> list[WriteOutcome]:
        """A whole batch refused (4xx): bisect until the bad record is alone; its error is its outcome."""
        if len(batch) == 1:
            return [results.whole_batch_error(batch[0], reply.status, reply.body)]
        first, second = results.split(batch)
        log.info("hubspot: a batch of %d was refused (HTTP %d); splitting it", len(batch), reply.status)
        return retry(first) + retry(second)

    def _parallel(
        self, items: Sequence[LoadItem], run: Callable[[list[LoadItem]], list[WriteOutcome]]
    ) -> list[WriteOutcome]:
        batches = results.chunks(items, BATCH_SIZE)
        if len(batches) <= 1 or self.max_parallel == 1:
            return [o for batch in batches for o in run(batch)]
        futures = [self._pool.submit(run, batch) for batch in batches]
        outcomes: list[WriteOutcome] = []
        for future in futures:
            outcomes.extend(future.result())
        return outcomes

    # -- set-up --------------------------------------------------------------------------------------
    def _ensure_unique_property(self, object_type: str) -> None:
        name = results.UNIQUE_PROPERTY
        reply = self.transport.call(
            f"read of property {name} on {object_type}",
            self.properties_api.get_by_name,
            object_type,
            name,
            idempotent=True,
            forbidden_ok=True,
        )
        if reply.ok:
            if not (reply.body or {}).get("hasUniqueValue"):
                raise WriterSetupError(
                    f"HubSpot property {object_type}.{name} exists but does not require unique values, so "
                    "crm-sync cannot upsert on it. Fix: archive it (Settings > Properties) and let crm-sync "
                    "create it again, or create it with 'Require unique values' on"
                )
            return
        if reply.status != 404:
            self._setup_failed(object_type, reply)
        definition = {
            "name": name,
            "label": "Salesforce ID (crm-sync)",
            "type": "string",
            "fieldType": "text",
            "groupName": _PROPERTY_GROUPS[object_type],
            "description": "Id of the Salesforce record this record was created from; set by crm-sync.",
            "hasUniqueValue": True,
            "formField": False,
        }
        created = self.transport.call(
            f"creation of property {name} on {object_type}",
            self.properties_api.create,
            object_type,
            definition,
            idempotent=True,  # a repeat answers 409: the property exists, which is the goal
            forbidden_ok=True,
        )
        if created.ok or created.status == 409:
            log.info("hubspot: created the unique property %s on %s", name, object_type)
            return
        self._setup_failed(object_type, created)

    def _setup_failed(self, object_type: str, reply: Reply) -> None:
        name = results.UNIQUE_PROPERTY
        if reply.status == 403:
            raise WriterSetupError(
                f"HubSpot connection '{self.conn_id}' may not read or create the property "
                f"{object_type}.{name} (HTTP 403). Fix: grant the private app the "
                f"crm.schemas.{object_type}.read and crm.schemas.{object_type}.write scopes, or create "
                "the property yourself: a single-line text property with 'Require unique values' on"
            )
        raise WriterSetupError(
            f"HubSpot could not set up the property {object_type}.{name} (HTTP {reply.status}: "
            f"{str(reply.body)[:300]})"
        )


def _conforms(writer: HubSpotWriter) -> Writer:
    """mypy checks here that :class:`HubSpotWriter` is a :class:`Writer` (structural typing)."""
    return writer
