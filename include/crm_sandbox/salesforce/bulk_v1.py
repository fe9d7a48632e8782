"""Bulk API 1.0 (``/services/async/NN.0/``) for clients that still use it (simple-salesforce's
``sf.bulk``, salesforce-bulk, older ETL connectors).

Per the Bulk API Developer Guide (developer.salesforce.com, api_asynch: "Create a Job", "Add a
Batch to a Job", "Get Information About a Batch", "Get Batch Results", "Bulk Query", "Close a
Job", "Errors"):

* the session goes in ``X-SFDC-Session``; a missing or refused one answers ``InvalidSessionId``;
* job and batch descriptions (and errors: ``exceptionCode``, ``exceptionMessage``) are JSON
  for a request sent as ``application/json``, XML (``jobInfo``/``batchInfo`` in the
  ``http://www.force.com/2009/06/asyncapi/dataload`` namespace) for ``application/xml``; results
  follow the job's ``contentType``; every Content-Type is bare (no charset), as clients compare it;
* batches of a ``JSON`` job are JSON arrays of records, of a ``CSV`` job CSV with a header row
  (an empty cell leaves a field unchanged, ``#N/A`` clears it); query batches are the SOQL text;
  at most 10,000 records a batch;
* a batch is answered ``Queued`` and runs at once, so the next ``GET`` shows ``Completed`` (or
  ``Failed`` with a ``stateMessage``): clients poll as they would against a real org;
* DML results are ``[{"success", "created", "id", "errors": [{"statusCode", "message",
  "fields"}]}]`` (JSON) or ``"Id","Success","Created","Error"`` rows (CSV); a query batch's result
  is a list of result ids whose files hold the records (JSON records with ``attributes``, date and
  dateTime values as epoch milliseconds, as Bulk API JSON results carry them; CSV quoted like
  Bulk API 2.0's). Parent-to-child subqueries and aggregate functions fail the batch, as Bulk
  queries do not support them.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.salesforce.bulk import _csv_value
from crm_sandbox.salesforce.errors import ApiError, RecordError
from crm_sandbox.salesforce.ids import make_id
from crm_sandbox.salesforce.schema import datetime_from_stored, now_stored
from crm_sandbox.salesforce.soql import CompiledQuery, column_names, execute, render_record
from crm_sandbox.salesforce.store import Store, WriteContext

NS = "http://www.force.com/2009/06/asyncapi/dataload"
OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete", "query", "queryAll")
MAX_BATCH_RECORDS = 10_000


class BulkV1Error(Exception):
    """A refused Bulk API 1.0 request: ``exceptionCode`` and ``exceptionMessage``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Batch:
    id: str
    job_id: str
    created: str
    request: str
    state: str = "Queued"
    state_message: str | None = None
    modstamp: str = ""
    processed: int = 0
    failed: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    compiled: CompiledQuery | None = None
    ids: list[str] = field(default_factory=list)
    seen: bool = False  # answered once (Queued); the next look shows the outcome

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "apexProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "createdDate": self.created,
            "id": self.id,
            "jobId": self.job_id,
            "numberRecordsFailed": self.failed,
            "numberRecordsProcessed": self.processed,
            "state": self.state if self.seen else "Queued",
            "systemModstamp": self.modstamp or self.created,
            "totalProcessingTime": 0,
        }
        if self.seen and self.state_message:
            out["stateMessage"] = self.state_message
        return out


@dataclass
class V1Job:
    id: str
    operation: str
    object: str
    content_type: str
    created_by: str
    created: str
    api_version: str
    external_id: str | None = None
    assignment_rule_id: str | None = None
    concurrency: str = "Parallel"
    state: str = "Open"
    modstamp: str = ""
    batches: dict[str, Batch] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        batches = list(self.batches.values())
        done = [b for b in batches if b.seen]
        return {
            "apexProcessingTime": 0,
            "apiActiveProcessingTime": 0,
            "apiVersion": float(self.api_version),
            "assignmentRuleId": self.assignment_rule_id,
            "concurrencyMode": self.concurrency,
            "contentType": self.content_type,
            "createdById": self.created_by,
            "createdDate": self.created,
            "externalIdFieldName": self.external_id,
            "fastPathEnabled": False,
            "id": self.id,
            "numberBatchesCompleted": sum(b.state == "Completed" for b in done),
            "numberBatchesFailed": sum(b.state == "Failed" for b in done),
            "numberBatchesInProgress": 0,
            "numberBatchesQueued": len(batches) - len(done),
            "numberBatchesTotal": len(batches),
            "numberRecordsFailed": sum(b.failed for b in batches),
            "numberRecordsProcessed": sum(b.processed for b in batches),
            "numberRetries": 0,
            "object": self.object,
            "operation": self.operation,
            "state": self.state,
            "systemModstamp": self.modstamp or self.created,
            "totalProcessingTime": 0,
        }


class BulkV1:
    """Jobs, batches and results of Bulk API 1.0 over one store."""

    def __init__(self, store: Store, accepts: Callable[[str], bool]) -> None:
        self.store = store
        self.accepts = accepts
        self.jobs: dict[str, V1Job] = {}
        self.counter = 0

    def reset(self) -> None:
        self.jobs.clear()

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return make_id(prefix, self.counter)

    # -- request plumbing ----------------------------------------------------------------------
    def job(self, request: Request) -> V1Job:
        job = self.jobs.get(str(request.path_params["job_id"]))
        if job is None:
            raise BulkV1Error("InvalidJob", f"Unable to find job by id: {request.path_params['job_id']}")
        return job

    def batch(self, request: Request, job: V1Job) -> Batch:
        batch = job.batches.get(str(request.path_params["batch_id"]))
        if batch is None:
            raise BulkV1Error(
                "InvalidBatch", f"Unable to find batch for id: {request.path_params['batch_id']}"
            )
        return batch

    def handler(self, fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        """Session check and errors in the job's format around one endpoint."""

        async def run(request: Request) -> Response:
            as_json = _wants_json(request, self.jobs.get(str(request.path_params.get("job_id", ""))))
            token = (request.headers.get("x-sfdc-session") or "").strip()
            if not token or not self.accepts(token):
                return _error(BulkV1Error("InvalidSessionId", "Invalid session id"), as_json)
            try:
                response: Response = await fn(request)
            except BulkV1Error as exc:
                return _error(exc, as_json)
            return response

        return run

    # -- jobs ----------------------------------------------------------------------------------
    async def create_job(self, request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        as_json = "json" in (request.headers.get("content-type") or "").lower()
        spec = _parse_job(raw, as_json)
        operation = str(spec.get("operation") or "")
        if operation not in OPERATIONS:
            raise BulkV1Error("InvalidJob", f"Invalid operation: {operation}")
        name = self.store.object_name(str(spec.get("object") or ""))
        if name is None:
            raise BulkV1Error("InvalidJob", f"Unable to find object: {spec.get('object')}")
        content_type = str(spec.get("contentType") or ("JSON" if as_json else "XML")).upper()
        if content_type not in ("JSON", "CSV", "XML"):
            raise BulkV1Error("InvalidJob", f"Invalid content type: {content_type}")
        if content_type == "XML":
            raise BulkV1Error("FeatureNotEnabled", "XML batches are not supported by the crm-sync sandbox")
        external = spec.get("externalIdFieldName")
        if operation == "upsert" and not external:
            raise BulkV1Error("InvalidJob", "External ID was blank for upsert")
        now = now_stored()
        job = V1Job(
            self.new_id("750"), operation, name, content_type, self.store.current_user_id, now,
            str(request.path_params["version"]), str(external) if external else None,
            str(spec["assignmentRuleId"]) if spec.get("assignmentRuleId") else None,
            "Serial" if str(spec.get("concurrencyMode")) in ("Serial", "1") else "Parallel",
        )  # fmt: skip
        self.jobs[job.id] = job
        return _render(job.info(), "jobInfo", as_json, 201)

    async def job_info(self, request: Request) -> Response:
        job = self.job(request)
        as_json = _wants_json(request, job)
        if request.method == "GET":
            return _render(job.info(), "jobInfo", as_json)
        raw = (await request.body()).decode("utf-8", "replace")
        state = str(_parse_job(raw, as_json).get("state") or "")
        if state not in ("Closed", "Aborted"):
            raise BulkV1Error("InvalidJobState", f"Invalid state: {state}")
        if job.state != "Open":
            raise BulkV1Error("InvalidJobState", f"Job {job.id} is not open")
        job.state, job.modstamp = state, now_stored()
        return _render(job.info(), "jobInfo", as_json)

    # -- batches -------------------------------------------------------------------------------
    async def add_batch(self, request: Request) -> Response:
        job = self.job(request)
        if job.state != "Open":
            raise BulkV1Error("InvalidJobState", f"Job {job.id} is not open and can't accept new batches")
        text = (await request.body()).decode("utf-8-sig", "replace")
        batch = Batch(self.new_id("751"), job.id, now_stored(), text)
        job.batches[batch.id] = batch
        try:
            if job.operation in ("query", "queryAll"):
                self.run_query(job, batch)
            else:
                self.run_dml(job, batch)
        except BulkV1Error as exc:
            batch.state, batch.state_message = "Failed", f"{exc.code} : {exc.message}"
        batch.modstamp = now_stored()
        response = _render(batch.info(), "batchInfo", _wants_json(request, job), 201)
        batch.seen = True
        return response

    def run_query(self, job: V1Job, batch: Batch) -> None:
        try:
            result = execute(self.store, batch.request.strip(), include_deleted=job.operation == "queryAll")
        except ApiError as exc:
            first = exc.body[0] if isinstance(exc.body, list) and exc.body else {}
            raise BulkV1Error(
                "InvalidBatch", f"Failed to process query: {first.get('errorCode')}: {first.get('message')}"
            ) from None
        compiled = result.compiled
        if result.aggregate is not None or any(c.kind != "field" for c in compiled.columns):
            raise BulkV1Error("InvalidBatch", "Aggregate Relationships not supported in Bulk Query")
        compound = next((p.field.name for p in compiled.plain_paths if p.field.type == "address"), None)
        if compound is not None:
            serialized = "JSON" if job.content_type == "JSON" else "CSV"
            raise BulkV1Error(
                "FeatureNotEnabled", f"Cannot serialize value for '{compound}' in {serialized} format"
            )
        if compiled.obj.name != job.object:
            raise BulkV1Error(
                "InvalidBatch", f"Query object {compiled.obj.name} does not match job {job.object}"
            )
        batch.compiled, batch.ids = compiled, list(result.ids)
        batch.processed = len(batch.ids)
        batch.state = "Completed"

    def run_dml(self, job: V1Job, batch: Batch) -> None:
        records = _records(batch.request, job.content_type)
        if len(records) > MAX_BATCH_RECORDS:
            raise BulkV1Error("InvalidBatch", f"Records in a batch cannot exceed {MAX_BATCH_RECORDS}")
        ctx = WriteContext(self.store.current_user_id, assignment=job.assignment_rule_id or "default")
        from_csv = job.content_type == "CSV"
        for rec in records:
            try:
                rid, created = self.apply(job, rec, ctx, from_csv)
            except RecordError as exc:
                batch.results.append({"success": False, "created": False, "id": None,
                                      "errors": [exc.collection_item()]})  # fmt: skip
                batch.failed += 1
            else:
                batch.results.append({"success": True, "created": created, "id": rid, "errors": []})
            batch.processed += 1
        batch.state = "Completed"

    def apply(self, job: V1Job, rec: dict[str, Any], ctx: WriteContext, from_csv: bool) -> tuple[str, bool]:
        store = self.store
        by_lower = {k.lower(): k for k in rec}
        if job.operation == "insert":
            return store.insert(job.object, rec, ctx, from_csv=from_csv), True
        if job.operation == "upsert":
            ext = job.external_id or "Id"
            value = str(rec.get(by_lower.get(ext.lower(), ext)) or "")
            body = {k: v for k, v in rec.items() if k.lower() != ext.lower()}
            if not value and ext != "Id":
                raise RecordError("MISSING_ARGUMENT", f"{ext} not specified", [ext])
            return store.upsert(job.object, ext, value, body, ctx, from_csv=from_csv)
        rid = str(rec.get(by_lower.get("id", "Id")) or "")
        if not rid:
            raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        existing = store.existing(job.object, rid)
        if job.operation == "update":
            body = {k: v for k, v in rec.items() if k.lower() != "id"}
            store.update(job.object, existing["Id"], body, ctx, from_csv=from_csv)
        else:
            store.delete(job.object, existing["Id"], ctx)
        return str(existing["Id"]), False

    async def list_batches(self, request: Request) -> Response:
        job = self.job(request)
        infos = [b.info() for b in job.batches.values()]
        if _wants_json(request, job):
            return _json({"batchInfo": infos})
        inner = "".join(f"<batchInfo>{_xml_fields(i)}</batchInfo>" for i in infos)
        return _xml(f'<batchInfoList xmlns="{NS}">{inner}</batchInfoList>')

    async def batch_info(self, request: Request) -> Response:
        job = self.job(request)
        batch = self.batch(request, job)
        response = _render(batch.info(), "batchInfo", _wants_json(request, job))
        batch.seen = True
        return response

    async def batch_request(self, request: Request) -> Response:
        job = self.job(request)
        batch = self.batch(request, job)
        media = {"JSON": "application/json", "CSV": "text/csv"}.get(job.content_type, "application/xml")
        return _typed(batch.request.encode(), media)

    async def batch_result(self, request: Request) -> Response:
        job = self.job(request)
        batch = self.batch(request, job)
        if not batch.seen or batch.state != "Completed":
            raise BulkV1Error("InvalidBatch", f"Batch not completed: {batch.id}")
        as_json = job.content_type == "JSON"
        if batch.compiled is not None:
            result_id = _result_id(batch)
            if as_json:
                return _json([result_id])
            return _xml(f'<result-list xmlns="{NS}"><result>{result_id}</result></result-list>')
        if as_json:
            return _json(batch.results)
        return _csv(_dml_csv(batch.results))

    async def query_result(self, request: Request) -> Response:
        job = self.job(request)
        batch = self.batch(request, job)
        if batch.compiled is None or str(request.path_params["result_id"]) != _result_id(batch):
            raise BulkV1Error(
                "InvalidBatch", f"Unable to find result for id: {request.path_params['result_id']}"
            )
        records = self.store.tables[batch.compiled.obj.name].records
        rows = [records[i] for i in batch.ids if i in records]
        if job.content_type == "JSON":
            compiled = batch.compiled
            rendered = [render_record(self.store, compiled, r, job.api_version) for r in rows]
            return _json([_epoch_dates(compiled, row) for row in rendered])
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(column_names(batch.compiled))
        paths = batch.compiled.plain_paths
        writer.writerows([_csv_value(p, p.getter(r)) for p in paths] for r in rows)
        return _csv(buffer.getvalue())

    def routes(self) -> list[Route]:
        base = "/services/async/{version}/job"
        batch = base + "/{job_id}/batch/{batch_id}"
        h = self.handler
        return [
            Route(base, h(self.create_job), methods=["POST"]),
            Route(base + "/{job_id}", h(self.job_info), methods=["GET", "POST"]),
            Route(base + "/{job_id}/batch", h(self.add_batch), methods=["POST"]),
            Route(base + "/{job_id}/batch", h(self.list_batches), methods=["GET"]),
            Route(batch, h(self.batch_info), methods=["GET"]),
            Route(batch + "/request", h(self.batch_request), methods=["GET"]),
            Route(batch + "/result", h(self.batch_result), methods=["GET"]),
            Route(batch + "/result/{result_id}", h(self.query_result), methods=["GET"]),
        ]


# -- formats ---------------------------------------------------------------------------------------
def _wants_json(request: Request, job: V1Job | None = None) -> bool:
    """Job and batch descriptions follow the request's Content-Type (a JSON job created with an
    XML request is described in XML); without one, the job's content type."""
    sent = (request.headers.get("content-type") or "").lower()
    if sent:
        return "json" in sent
    return job is not None and job.content_type == "JSON"


def _parse_job(raw: str, as_json: bool) -> dict[str, Any]:
    if as_json:
        try:
            body = json.loads(raw or "{}")
        except ValueError:
            raise BulkV1Error("InvalidJob", "Unable to parse the job: invalid JSON") from None
        if not isinstance(body, dict):
            raise BulkV1Error("InvalidJob", "Unable to parse the job: expected an object")
        return body
    try:
        root = ET.fromstring(raw)  # noqa: S314 - a local emulator parsing its client's request
    except ET.ParseError:
        raise BulkV1Error("InvalidXML", "Unable to parse the job: invalid XML") from None
    return {child.tag.split("}", 1)[-1]: (child.text or "").strip() for child in root}


def _records(text: str, content_type: str) -> list[dict[str, Any]]:
    if content_type == "JSON":
        try:
            body = json.loads(text or "[]")
        except ValueError:
            raise BulkV1Error("InvalidBatch", "Unable to parse the batch: invalid JSON") from None
        if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
            raise BulkV1Error("InvalidBatch", "A JSON batch must be an array of records")
        return [{k: v for k, v in r.items() if k != "attributes"} for r in body]
    return [dict(row) for row in csv.DictReader(io.StringIO(text, newline=""))]


def _result_id(batch: Batch) -> str:
    return "752" + batch.id[3:]


def _epoch_dates(compiled: CompiledQuery, row: dict[str, Any]) -> dict[str, Any]:
    """Bulk API JSON query results carry date and dateTime values as epoch milliseconds."""
    for resolved in compiled.plain_paths:
        if resolved.hops or resolved.field.type not in ("date", "datetime"):
            continue
        value = row.get(resolved.field.name)
        if value is None:
            continue
        if resolved.field.type == "datetime":
            moment = datetime_from_stored(str(value))
        else:
            moment = datetime.combine(date.fromisoformat(str(value)[:10]), time(), tzinfo=UTC)
        row[resolved.field.name] = int(moment.timestamp() * 1000)
    return row


def _dml_csv(results: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(["Id", "Success", "Created", "Error"])
    for r in results:
        errors = "; ".join(
            f"{e['statusCode']}:{e['message']}:{','.join(e['fields'])} --" for e in r["errors"]
        )
        writer.writerow([r["id"] or "", str(r["success"]).lower(), str(r["created"]).lower(), errors])
    return buffer.getvalue()


def _xml_fields(info: dict[str, Any]) -> str:
    parts = []
    for key, value in info.items():
        if value is None:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if key in ("createdDate", "systemModstamp"):
            text = text[:23] + "Z"
        parts.append(f"<{key}>{escape(text)}</{key}>")
    return "".join(parts)


def _render(info: dict[str, Any], root: str, as_json: bool, status: int = 200) -> Response:
    if as_json:
        return _json(info, status)
    return _xml(f'<{root} xmlns="{NS}">{_xml_fields(info)}</{root}>', status)


def _typed(content: bytes, content_type: str, status: int = 200) -> Response:
    """A response with exactly this Content-Type: Bulk API 1.0 sends bare ``text/csv``,
    ``application/json`` and ``application/xml`` (no charset), and clients such as salesforce-bulk
    compare the header verbatim to pick a parser."""
    return Response(content, status_code=status, headers={"Content-Type": content_type})


def _json(body: Any, status: int = 200) -> Response:
    return _typed(json.dumps(body).encode(), "application/json", status)


def _xml(body: str, status: int = 200) -> Response:
    return _typed(f'<?xml version="1.0" encoding="UTF-8"?>{body}'.encode(), "application/xml", status)


def _csv(text: str) -> Response:
    return _typed(text.encode(), "text/csv")


def _error(exc: BulkV1Error, as_json: bool) -> Response:
    if as_json:
        return _json({"exceptionCode": exc.code, "exceptionMessage": exc.message}, exc.status)
    body = (
        f"<exceptionCode>{exc.code}</exceptionCode><exceptionMessage>{escape(exc.message)}</exceptionMessage>"
    )
    return _xml(f'<error xmlns="{NS}">{body}</error>', exc.status)
