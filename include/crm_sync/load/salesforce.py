"""The Salesforce writer: plan rows into an org, idempotently, in batches of 200 or Bulk jobs.

What each (object, action) group becomes:

* ``create`` (Account, Contact, Lead, Opportunity): an upsert on the External ID field
  ``HubSpot_Id__c`` (= the HubSpot id), so a create whose answer was lost and is sent again
  updates the record it made instead of making a second one (SYNC-4, DEAL-5). Up to
  ``bulk_threshold`` rows go through sObject Collections upsert (``PATCH
  /composite/sobjects/{SObject}/HubSpot_Id__c``, 200 per request, ``allOrNone: false``); larger
  groups through Bulk API 2.0 upsert jobs (:mod:`crm_sync.load.salesforce_bulk`).
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections_upsert.htm
* ``update`` and ``link``: ``PATCH /composite/sobjects`` with ``attributes.type`` and ``id``.
* ``delete``: ``DELETE /composite/sobjects?ids=...&allOrNone=false``; a record already deleted
  or gone counts as deleted.
* ``create`` of an OpportunityContactRole, which has no external id: the existing
  (OpportunityId, ContactId) pairs are queried first and reported with their ids; only missing
  roles are created (``POST /composite/sobjects``), and a create whose answer is lost is never
  re-sent before the org was asked again which roles exist.

Lead rows carry the pseudo-field ``_use_assignment_rule`` (OWN-2): it is stripped, and the
request says ``Sforce-Auto-Assign: TRUE`` only for the rows that ask for the org's assignment
rules. Every other write says ``FALSE``: the REST API applies the active assignment rules when
the header is absent, which would re-assign the owners crm-sync decided (OWN-1, OWN-3).
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_autoassign.htm

Per-record failures (``success: false`` results, Bulk failed rows) are outcomes carrying
Salesforce's ``statusCode`` and message; the rest of the batch stays written. Retries, the
daily API allowance and connection errors are :mod:`crm_sync.load.salesforce_http`'s.

The batches of one group go out ``max_parallel`` at a time (a real org answers a collection of
200 in a second or more, so one by one a million records take hours); records that meet a
row lock held by a parallel batch (``UNABLE_TO_LOCK_ROW``) are sent again.

Connection extras (all optional, see :class:`~crm_sync.load.salesforce_http.WriteSettings`):
``bulk_threshold``, ``bulk_job_rows``, ``bulk_poll_seconds``, ``bulk_timeout_seconds``,
``max_parallel``, ``retry_budget_seconds``, ``api_reserve``, ``timeout``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, TypeVar

from crm_sync.connections import SALESFORCE_CONN_ID, _get_connection, salesforce_client, salesforce_errors
from crm_sync.load.salesforce_bulk import TRANSIENT_CODES, BulkRow, BulkUpserter
from crm_sync.load.salesforce_http import (
    RequestRejectedError,
    SalesforceTransport,
    WriteSettings,
    backoff,
)
from crm_sync.load.salesforce_roles import RoleCreator
from crm_sync.load.writer import LoadItem, LoadStoppedError, WriteOutcome, WriterSetupError

if TYPE_CHECKING:
    from simple_salesforce.api import Salesforce

log = logging.getLogger(__name__)

EXTERNAL_ID = "HubSpot_Id__c"
ASSIGNMENT_FLAG = "_use_assignment_rule"
EXTERNAL_ID_OBJECTS = ("Account", "Contact", "Lead", "Opportunity")
ROLE_OBJECT = "OpportunityContactRole"
COLLECTION_SIZE = 200
#: Times a record failing with a transient per-record code is sent again within one write.
RECORD_RETRIES = 2
#: sObject Collections upsert exists from API 46.0 on.
MIN_API_VERSION = 46.0
#: Codes of a delete whose record is already gone: the delete's goal holds.
GONE_CODES = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND"})
Batch = TypeVar("Batch")  # a slice of one group: items, or (item, body) pairs
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


def setup_message(conn_id: str, missing: Sequence[str], not_external: Sequence[str]) -> str:
    """How to create ``HubSpot_Id__c`` where the org lacks it (or has it without External ID)."""
    problems = []
    if missing:
        problems.append(f"has no field {EXTERNAL_ID} on {', '.join(missing)}")
    if not_external:
        problems.append(f"has {EXTERNAL_ID} without the External ID attribute on {', '.join(not_external)}")
    return (
        f"The Salesforce org of connection '{conn_id}' {' and '.join(problems)}. crm-sync creates "
        f"records by upserting on {EXTERNAL_ID} (it holds the HubSpot id), so a create that is sent "
        "twice never makes a second record. Fix, for each object named: Setup > Object Manager > "
        "<object> > Fields & Relationships > New > Text; Field Label 'HubSpot Id', Length 255, Field "
        "Name 'HubSpot_Id'; tick 'Unique' (case insensitive) and 'External ID'; make it visible and "
        "editable for the integration user's profile (field-level security). Then run again"
    )


def item_error(item: LoadItem, code: str, message: str, *, retryable: bool | None = None) -> WriteOutcome:
    permanent = code not in TRANSIENT_CODES
    return WriteOutcome(
        seq=item.seq,
        target_id=item.target_id,
        error_code=code,
        message=message,
        retryable=(not permanent) if retryable is None else retryable,
    )


def result_outcome(item: LoadItem, result: Mapping[str, Any]) -> WriteOutcome:
    """One sObject Collections result (``SaveResult``/``UpsertResult``) as an outcome."""
    if result.get("success"):
        return WriteOutcome(seq=item.seq, target_id=result.get("id") or item.target_id)
    errors = result.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    code = str(first.get("statusCode") or first.get("errorCode") or "UNKNOWN_EXCEPTION")
    message = str(first.get("message") or "")
    fields = first.get("fields")
    if fields:
        message = f"{message} (fields: {', '.join(map(str, fields))})"
    return item_error(item, code, message)


def write_body(item: LoadItem) -> dict[str, Any]:
    """The item's fields as Salesforce takes them: pseudo-fields stripped."""
    return {k: v for k, v in item.fields.items() if k != ASSIGNMENT_FLAG}


def auto_assign_header(use_rules: bool) -> dict[str, str]:
    return {"Sforce-Auto-Assign": "TRUE" if use_rules else "FALSE"}


def wants_rules(object_name: str, item: LoadItem) -> bool:
    return object_name == "Lead" and bool(item.fields.get(ASSIGNMENT_FLAG))


class SalesforceWriter:
    """Writes plan groups to the org of one Airflow connection (see module docstring)."""

    target = "salesforce"

    @classmethod
    def from_connection(cls, conn_id: str = SALESFORCE_CONN_ID) -> SalesforceWriter:
        """A writer for an Airflow connection (settings from its extras, read on first use)."""
        return cls(conn_id)

    def __init__(self, conn_id: str = SALESFORCE_CONN_ID, *, settings: WriteSettings | None = None) -> None:
        self.conn_id = conn_id
        self._settings = settings
        self._sf: Salesforce | None = None
        self._http: SalesforceTransport | None = None
        self._bulk: BulkUpserter | None = None
        self._roles: RoleCreator | None = None
        self._lead_rule: str | None = None
        self._lead_rule_known = False

    # -- connection ------------------------------------------------------------------------------
    def _connect(self) -> tuple[Salesforce, SalesforceTransport]:
        if self._sf is None or self._http is None:
            settings = self._settings or WriteSettings.from_extra(
                self.conn_id, _get_connection(self.conn_id).extra_dejson or {}
            )
            sf = salesforce_client(self.conn_id)
            http = SalesforceTransport(
                sf.base_url, sf.headers, self.conn_id, settings, refresh=self._session_refresher(sf)
            )
            sf.session.hooks["response"].append(http.observe)  # reads count and report usage too
            self._sf, self._http = sf, http
            self._bulk = BulkUpserter(http)
            self._roles = RoleCreator(http, self.query)
        return self._sf, self._http

    @staticmethod
    def _session_refresher(sf: Salesforce) -> Callable[[], Mapping[str, str]] | None:
        """A new-session function when the connection logs in itself (not for a given session id)."""
        if getattr(sf, "_salesforce_login_partial", None) is None:
            return None

        def refresh() -> Mapping[str, str]:
            sf._refresh_session()  # simple-salesforce's own re-login, as its reads do on a 401
            return dict(sf.headers)

        return refresh

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Reads through the client: connection errors named, a spent daily limit stops the load."""
        from simple_salesforce.exceptions import SalesforceRefusedRequest

        with salesforce_errors(self.conn_id):
            try:
                yield
            except SalesforceRefusedRequest as exc:
                content = exc.content
                first: Any = content[0] if isinstance(content, list) and content else None
                if isinstance(first, dict) and first.get("errorCode") == "REQUEST_LIMIT_EXCEEDED":
                    raise LoadStoppedError(
                        f"Salesforce connection '{self.conn_id}': the org's daily API request limit is "
                        "exhausted. Everything written so far is kept; the next run continues"
                    ) from exc
                raise

    def query(self, soql: str) -> list[dict[str, Any]]:
        """All records of a SOQL query (read retries of :class:`RetryingSession`)."""
        sf, http = self._connect()
        http.check_allowance()
        with self._reading():
            return list(sf.query_all_iter(soql))

    # -- Writer protocol -------------------------------------------------------------------------
    def prepare(self) -> None:
        """Check that ``HubSpot_Id__c`` exists as an External ID on every object crm-sync creates."""
        sf, _ = self._connect()
        if float(sf.sf_version or MIN_API_VERSION) < MIN_API_VERSION:
            raise WriterSetupError(
                f"Salesforce connection '{self.conn_id}' uses API version {sf.sf_version}; crm-sync's "
                f"upserts (sObject Collections upsert) need {MIN_API_VERSION} or later. Fix: set "
                "extra.version to 46.0 or newer, or remove it to use the client's default"
            )
        missing: list[str] = []
        not_external: list[str] = []
        for name in EXTERNAL_ID_OBJECTS:
            with self._reading():
                describe = sf.restful(f"sobjects/{name}/describe")
            fields = {str(f["name"]).lower(): f for f in (describe or {}).get("fields", [])}
            field = fields.get(EXTERNAL_ID.lower())
            if field is None:
                missing.append(name)
            elif not field.get("externalId"):
                not_external.append(name)
            elif not field.get("unique"):
                log.warning(
                    "%s.%s is an External ID but not Unique: duplicates made outside crm-sync make "
                    "upserts fail with MULTIPLE_RECORDS_FOUND; tick 'Unique' on the field",
                    name,
                    EXTERNAL_ID,
                )
        if missing or not_external:
            raise WriterSetupError(setup_message(self.conn_id, missing, not_external))

    def write(self, object_name: str, action: str, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        """Write one group; exactly one outcome per item (any order)."""
        if not items:
            return []
        if action == "create" and object_name == ROLE_OBJECT:
            self._connect()
            assert self._roles is not None
            return self._roles.create(items)
        if action == "create":
            return self._upsert(object_name, items)
        if action in ("update", "link"):
            return self._update(object_name, items)
        if action == "delete":
            return self._delete(items)
        return [
            item_error(i, "UNSUPPORTED_ACTION", f"Salesforce writer cannot {action} {object_name}")
            for i in items
        ]

    def api_calls(self) -> int:
        return self._http.calls if self._http is not None else 0

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        if self._sf is not None:
            self._sf.session.close()

    # -- creates ---------------------------------------------------------------------------------
    def _upsert(self, object_name: str, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome] = []
        ready: list[tuple[LoadItem, dict[str, Any]]] = []
        for item in items:
            body = write_body(item)
            external = body.get(EXTERNAL_ID) or item.source_id
            if not external:
                outcomes.append(
                    item_error(item, "MISSING_EXTERNAL_ID", f"a create needs {EXTERNAL_ID} (the HubSpot id)")
                )
                continue
            body[EXTERNAL_ID] = str(external)
            ready.append((item, body))
        _, http = self._connect()
        use_bulk = len(ready) > http.settings.bulk_threshold
        for use_rules in (False, True):
            group = [(i, b) for i, b in ready if wants_rules(object_name, i) == use_rules]
            if not group:
                continue
            if use_bulk:
                outcomes.extend(self._bulk_upsert(object_name, group, use_rules))
            else:
                path = f"composite/sobjects/{object_name}/{EXTERNAL_ID}"
                outcomes.extend(self._collections("PATCH", path, object_name, group, use_rules))
        return outcomes

    def _bulk_upsert(
        self, object_name: str, group: Sequence[tuple[LoadItem, dict[str, Any]]], use_rules: bool
    ) -> list[WriteOutcome]:
        self._connect()
        assert self._bulk is not None
        rule = self._active_lead_rule() if use_rules else None
        rows = [BulkRow(item.seq, body) for item, body in group]
        return self._bulk.upsert(object_name, EXTERNAL_ID, rows, rule)

    def _active_lead_rule(self) -> str | None:
        """The org's active Lead assignment rule (Bulk API 2.0 names it per job), if any."""
        if not self._lead_rule_known:
            rows = self.query("SELECT Id FROM AssignmentRule WHERE SobjectType = 'Lead' AND Active = true")
            self._lead_rule = str(rows[0]["Id"]) if rows else None
            self._lead_rule_known = True
        return self._lead_rule

    # -- updates and deletes ---------------------------------------------------------------------
    def _update(self, object_name: str, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome] = []
        ready: list[tuple[LoadItem, dict[str, Any]]] = []
        for item in items:
            body = write_body(item)
            if not item.target_id:
                outcomes.append(item_error(item, "MISSING_ARGUMENT", "an update needs the record's Id"))
            elif not body:
                outcomes.append(WriteOutcome(seq=item.seq, target_id=item.target_id))
            else:
                body["id"] = item.target_id
                ready.append((item, body))
        for use_rules in (False, True):
            group = [(i, b) for i, b in ready if wants_rules(object_name, i) == use_rules]
            if group:
                outcomes.extend(
                    self._collections("PATCH", "composite/sobjects", object_name, group, use_rules)
                )
        return outcomes

    def _delete(self, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        outcomes: list[WriteOutcome] = []
        ready: list[LoadItem] = []
        for item in items:
            if item.target_id and _ID_RE.match(item.target_id):
                ready.append(item)
            else:
                outcomes.append(item_error(item, "MALFORMED_ID", f"cannot delete id {item.target_id!r}"))
        batches = [ready[s : s + COLLECTION_SIZE] for s in range(0, len(ready), COLLECTION_SIZE)]
        outcomes.extend(self._in_parallel(self._delete_batch, batches))
        return outcomes

    def _delete_batch(self, batch: Sequence[LoadItem]) -> list[WriteOutcome]:
        """One collections delete of up to 200 ids; a record already gone counts as deleted."""
        _, http = self._connect()
        http.check_allowance()
        params = {"ids": ",".join(str(i.target_id) for i in batch), "allOrNone": "false"}
        try:
            results = http.request("DELETE", "composite/sobjects", params=params, idempotent=True).json()
        except RequestRejectedError as exc:
            return [item_error(i, exc.code, exc.message) for i in batch]
        outcomes = []
        for item, result in zip(batch, results, strict=False):
            outcome = result_outcome(item, result)
            if not outcome.ok and outcome.error_code in GONE_CODES:
                outcome = WriteOutcome(seq=item.seq, target_id=item.target_id)
            outcomes.append(outcome)
        outcomes.extend(
            item_error(i, "NO_RESULT", "Salesforce returned no result for this record")
            for i in batch[len(results) :]
        )
        return outcomes

    def _in_parallel(
        self, send: Callable[[Batch], list[WriteOutcome]], batches: Sequence[Batch]
    ) -> list[WriteOutcome]:
        """``send`` every batch, ``max_parallel`` requests at a time; outcomes of all batches.

        Batches of one group are independent (same object and action, distinct records), so
        their order does not matter. Before each batch the API allowance is checked with the
        requests still in flight counted as spent, so the reserve holds as it does one by one.
        The first exception (load stopped, batch failed, connection lost) stops further batches
        and is raised once the running ones have returned.
        """
        _, http = self._connect()
        workers = min(max(1, http.settings.max_parallel), len(batches))
        if workers <= 1:
            return [o for batch in batches for o in send(batch)]
        outcomes: list[WriteOutcome] = []
        running: set[Future[list[WriteOutcome]]] = set()

        def settle(done: Iterable[Future[list[WriteOutcome]]]) -> None:
            for future in done:
                running.discard(future)
                outcomes.extend(future.result())

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sf-write") as pool:
            try:
                for batch in batches:
                    if len(running) >= workers:
                        settle(wait(running, return_when=FIRST_COMPLETED).done)
                    http.check_allowance(in_flight=len(running))
                    running.add(pool.submit(send, batch))
                settle(wait(running).done)
            except BaseException:
                wait(running)
                raise
        return outcomes

    # -- sObject Collections ---------------------------------------------------------------------
    def _collections(
        self,
        method: str,
        path: str,
        object_name: str,
        group: Sequence[tuple[LoadItem, dict[str, Any]]],
        use_rules: bool,
    ) -> list[WriteOutcome]:
        """Send ``group`` in requests of 200 records (upserts and updates: idempotent).

        Records that fail with a transient per-record code (``UNABLE_TO_LOCK_ROW`` when another
        transaction holds a parent, ``UNKNOWN_EXCEPTION``) are sent again, up to
        ``RECORD_RETRIES`` times; the others are reported at once.
        """
        batches = [group[s : s + COLLECTION_SIZE] for s in range(0, len(group), COLLECTION_SIZE)]
        return self._in_parallel(
            lambda batch: self._collection_batch(method, path, object_name, batch, use_rules), batches
        )

    def _collection_batch(
        self,
        method: str,
        path: str,
        object_name: str,
        batch: Sequence[tuple[LoadItem, dict[str, Any]]],
        use_rules: bool,
    ) -> list[WriteOutcome]:
        """One batch of up to 200 records, its transiently failed records sent again."""
        _, http = self._connect()
        outcomes: list[WriteOutcome] = []
        pending = list(batch)
        for attempt in range(1, RECORD_RETRIES + 2):
            if attempt > 1:
                http.pause(backoff(attempt - 1))
            results = self._send_batch(method, path, object_name, pending, use_rules)
            last = attempt > RECORD_RETRIES
            retry = [
                pair
                for pair, outcome in zip(pending, results, strict=True)
                if not last and outcome.error_code in TRANSIENT_CODES
            ]
            outcomes.extend(o for o in results if last or o.error_code not in TRANSIENT_CODES)
            if not retry:
                break
            log.info("%s: %d records failed transiently; sending them again", object_name, len(retry))
            pending = retry
        return outcomes

    def _send_batch(
        self,
        method: str,
        path: str,
        object_name: str,
        batch: Sequence[tuple[LoadItem, dict[str, Any]]],
        use_rules: bool,
    ) -> list[WriteOutcome]:
        """One collections request; one outcome per record, in the batch's order."""
        _, http = self._connect()
        records = [{"attributes": {"type": object_name}, **body} for _, body in batch]
        http.check_allowance()
        try:
            response = http.request(
                method,
                path,
                body={"allOrNone": False, "records": records},
                headers=auto_assign_header(use_rules),
                idempotent=True,
            )
        except RequestRejectedError as exc:
            return [item_error(item, exc.code, exc.message) for item, _ in batch]
        results = response.json()
        outcomes = [result_outcome(item, result) for (item, _), result in zip(batch, results, strict=False)]
        outcomes.extend(
            item_error(item, "NO_RESULT", "Salesforce returned no result for this record")
            for item, _ in batch[len(results) :]
        )
        return outcomes
