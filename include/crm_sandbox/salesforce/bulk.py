"""Bulk API 2.0: query jobs and CSV ingest jobs, with the job states and CSV of a real org.

Jobs run synchronously when they become runnable (a query job when created, an ingest job when
its state is set to ``UploadComplete``); the answer to that request still shows the state a real
org shows at that moment (``UploadComplete``), and the next ``GET`` shows ``JobComplete`` or
``Failed``. Clients therefore poll exactly as they would against Salesforce.

CSV follows Salesforce: query results and ingest result files quote every value; nulls are empty
strings; booleans ``true``/``false``; datetimes ``2026-01-31T10:00:00.000Z``. Ingest treats an
empty cell as "leave unchanged" and ``#N/A`` as null, resolves ``Account.HubSpot_Id__c``-style
columns through the parent's external id, and fails the whole job (state ``Failed`` with an
``errorMessage``) for an unknown column or a line ending other than the job's.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_sandbox.salesforce.errors import ApiError, RecordError
from crm_sandbox.salesforce.ids import make_id
from crm_sandbox.salesforce.schema import bulk_datetime, now_stored
from crm_sandbox.salesforce.soql import CompiledQuery, Resolved, column_names, execute
from crm_sandbox.salesforce.store import Store, WriteContext

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
DEFAULT_MAX_RECORDS = 50_000


def bulk_error(code: str, message: str, status: int = 400) -> ApiError:
    return ApiError(status, [{"errorCode": code, "message": message}])


@dataclass
class Job:
    """One Bulk API 2.0 job and, once run, its results."""

    id: str
    kind: str  # query | ingest
    operation: str
    object: str
    created_by: str
    created: str
    api_version: str
    line_ending: str = "LF"
    delimiter: str = "COMMA"
    external_id_field: str | None = None
    assignment_rule_id: str | None = None
    state: str = "Open"
    modstamp: str = ""
    error_message: str | None = None
    processed: int = 0
    failed: int = 0
    # query jobs
    query: str = ""
    compiled: CompiledQuery | None = None
    ids: list[str] = field(default_factory=list)
    # ingest jobs
    upload: list[bytes] = field(default_factory=list)
    record_error: str | None = None
    header: list[str] = field(default_factory=list)
    successful: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        """The job info JSON of ``GET /jobs/{query|ingest}/{id}``."""
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": self.created,
            "systemModstamp": self.modstamp or self.created,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter,
        }
        if self.kind == "ingest":
            out["jobType"] = "V2Ingest"
            out["contentUrl"] = f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches"
            if self.external_id_field:
                out["externalIdFieldName"] = self.external_id_field
            if self.assignment_rule_id:
                out["assignmentRuleId"] = self.assignment_rule_id
            out.update(
                numberRecordsProcessed=self.processed,
                numberRecordsFailed=self.failed,
                retries=0,
                totalProcessingTime=0,
                apiActiveProcessingTime=0,
                apexProcessingTime=0,
            )
        else:
            out["jobType"] = "V2Query"
            out.update(numberRecordsProcessed=self.processed, retries=0, totalProcessingTime=0)
            out["isPkChunkingSupported"] = True
        if self.error_message:
            out["errorMessage"] = self.error_message
        return out


class BulkJobs:
    """All Bulk API 2.0 jobs of the emulated org."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.jobs: dict[str, Job] = {}
        self.counter = 0

    def reset(self) -> None:
        self.jobs.clear()

    def _new_id(self) -> str:
        self.counter += 1
        return make_id("750", self.counter)

    def get(self, job_id: str, kind: str) -> Job:
        job = self.jobs.get(job_id) or self.jobs.get(job_id[:15] + job_id[15:].upper())
        if job is None or job.kind != kind:
            raise bulk_error("NOT_FOUND", "The requested resource does not exist", 404)
        return job

    def listing(self, kind: str) -> dict[str, Any]:
        records = [j.info() for j in self.jobs.values() if j.kind == kind]
        return {"done": True, "records": records, "nextRecordsUrl": None}

    def _options(self, body: Mapping[str, Any]) -> tuple[str, str]:
        delimiter = str(body.get("columnDelimiter") or "COMMA")
        line_ending = str(body.get("lineEnding") or "LF")
        if delimiter not in DELIMITERS:
            raise bulk_error("INVALIDJOB", f"Invalid column delimiter: {delimiter}")
        if line_ending not in LINE_ENDINGS:
            raise bulk_error("INVALIDJOB", f"Invalid line ending: {line_ending}")
        content_type = body.get("contentType") or "CSV"
        if content_type != "CSV":
            raise bulk_error("INVALIDJOB", f"Invalid content type: {content_type}")
        return delimiter, line_ending

    # -- query jobs ------------------------------------------------------------------------------
    def create_query(self, body: Mapping[str, Any], user_id: str, version: str) -> dict[str, Any]:
        """Create and run a query job; returns the creation response (state ``UploadComplete``)."""
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise bulk_error("INVALIDJOB", f"Invalid operation for a query job: {operation}")
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            raise bulk_error("INVALIDJOB", "A query is required for a query job")
        delimiter, line_ending = self._options(body)
        result = execute(self.store, text, include_deleted=operation == "queryAll")
        compiled = result.compiled
        if compiled.count is not None or compiled.aggregate is not None:
            raise bulk_error("API_ERROR", "Aggregate queries are not supported by Bulk API 2.0 query jobs")
        compound = next((p.field.name for p in compiled.plain_paths if p.field.type == "address"), None)
        if compound is not None:
            raise bulk_error(
                "API_ERROR", f"FeatureNotEnabled : Cannot serialize value for '{compound}' in CSV format"
            )
        if compiled.offset is not None:
            raise bulk_error("API_ERROR", "OFFSET is not supported by Bulk API 2.0 query jobs")
        if any(c.kind == "child" for c in compiled.columns):
            raise bulk_error(
                "API_ERROR", "Parent-to-child relationship queries are not supported by Bulk API 2.0"
            )
        now = now_stored()
        job = Job(
            self._new_id(), "query", str(operation), compiled.obj.name, user_id, now, version,
            line_ending=line_ending, delimiter=delimiter, state="UploadComplete", query=text,
        )  # fmt: skip
        job.compiled = compiled
        job.ids = list(result.ids)
        job.processed = len(job.ids)
        self.jobs[job.id] = job
        response = job.info()
        job.state = "JobComplete"
        return response

    def query_results(self, job: Job, locator: str | None, max_records: int | None) -> tuple[str, str, int]:
        """One page of results: ``(csv text, next locator or "null", number of records)``."""
        if job.state != "JobComplete" or job.compiled is None:
            raise bulk_error(
                "INVALIDJOBSTATE", f"Job {job.id} is in state {job.state}; results are not available"
            )
        start = 0
        if locator:
            try:
                start = int(base64.b64decode(locator + "=" * (-len(locator) % 4)).decode())
            except ValueError:
                raise bulk_error("INVALIDLOCATOR", f"Invalid locator: {locator}") from None
        size = max_records if max_records and max_records > 0 else DEFAULT_MAX_RECORDS
        page = job.ids[start : start + size]
        end = start + len(page)
        next_locator = (
            "null" if end >= len(job.ids) else base64.b64encode(str(end).encode()).decode().rstrip("=")
        )
        text = self._render_csv(job, job.compiled, page)
        return text, next_locator, len(page)

    def _render_csv(self, job: Job, compiled: CompiledQuery, ids: list[str]) -> str:
        buffer = io.StringIO()
        writer = csv.writer(
            buffer, delimiter=DELIMITERS[job.delimiter], lineterminator=LINE_ENDINGS[job.line_ending],
            quoting=csv.QUOTE_ALL,
        )  # fmt: skip
        writer.writerow(column_names(compiled))
        records = self.store.tables[compiled.obj.name].records
        paths = compiled.plain_paths
        for rid in ids:
            rec = records[rid]
            writer.writerow([_csv_value(p, p.getter(rec)) for p in paths])
        return buffer.getvalue()

    # -- ingest jobs -----------------------------------------------------------------------------
    def create_ingest(self, body: Mapping[str, Any], user_id: str, version: str) -> Job:
        operation = body.get("operation")
        if operation not in INGEST_OPERATIONS:
            raise bulk_error("INVALIDJOB", f"Invalid operation: {operation}")
        if operation == "hardDelete":
            raise bulk_error(
                "FEATURENOTENABLED", "Bulk API Hard Delete permission is not enabled for the current user"
            )
        name = self.store.object_name(str(body.get("object") or ""))
        if name is None:
            raise bulk_error("INVALIDJOB", f"Unable to find object: {body.get('object')}")
        obj = self.store.schema[name]
        external = body.get("externalIdFieldName")
        if operation == "upsert":
            ext = obj.field(str(external or ""))
            if ext is None or not (ext.external_id or ext.name == "Id"):
                raise bulk_error(
                    "INVALIDJOB", f"External ID was blank or not an external ID field on {name}: {external}"
                )
            external = ext.name
        delimiter, line_ending = self._options(body)
        rule = body.get("assignmentRuleId")
        now = now_stored()
        job = Job(
            self._new_id(), "ingest", str(operation), name, user_id, now, version,
            line_ending=line_ending, delimiter=delimiter,
            external_id_field=str(external) if operation == "upsert" else None,
            assignment_rule_id=str(rule) if rule else None,
        )  # fmt: skip
        self.jobs[job.id] = job
        return job

    def upload(self, job: Job, data: bytes, record_error: str | None) -> None:
        if job.state != "Open":
            raise bulk_error(
                "INVALIDJOBSTATE", f"Unable to upload data to job {job.id} in state {job.state}", 409
            )
        job.upload.append(data)
        job.record_error = job.record_error or record_error
        job.modstamp = now_stored()

    def set_state(self, job: Job, state: Any, record_error: str | None) -> dict[str, Any]:
        if state == "Aborted":
            if job.state not in ("Open", "UploadComplete", "InProgress"):
                raise bulk_error("INVALIDJOBSTATE", f"Job {job.id} in state {job.state} cannot be aborted")
            job.state = "Aborted"
            job.modstamp = now_stored()
            return job.info()
        if state != "UploadComplete" or job.kind != "ingest":
            raise bulk_error("INVALIDJOBSTATE", f"Invalid state change for job {job.id}: {state}")
        if job.state != "Open":
            raise bulk_error("INVALIDJOBSTATE", f"Job {job.id} in state {job.state} cannot be closed")
        job.state = "UploadComplete"
        job.modstamp = now_stored()
        response = job.info()
        self._process(job, record_error or job.record_error)
        return response

    def delete(self, job: Job) -> None:
        if job.state in ("Open", "UploadComplete", "InProgress"):
            raise bulk_error("INVALIDJOBSTATE", f"Job {job.id} in state {job.state} cannot be deleted")
        del self.jobs[job.id]

    def _fail(self, job: Job, message: str) -> None:
        job.state = "Failed"
        job.error_message = message
        job.modstamp = now_stored()

    def _process(self, job: Job, record_error: str | None) -> None:
        raw = b"".join(job.upload)
        if not raw:
            self._fail(job, "InvalidBatch : No data was uploaded for this job")
            return
        text = raw.decode("utf-8-sig")
        if job.line_ending == "LF" and "\r\n" in text:
            self._fail(
                job, "ClientInputError : LineEnding is invalid on user data. Current LineEnding setting is LF"
            )
            return
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.delimiter])
        rows = list(reader)
        if not rows:
            self._fail(job, "InvalidBatch : No data was uploaded for this job")
            return
        header = rows[0]
        job.header = header
        obj = self.store.schema[job.object]
        for column in header:
            head = column.split(".", 1)[0]
            if obj.field(column) is None and obj.relationships.get(head.lower()) is None:
                self._fail(job, f"InvalidBatch : Field name not found : {column}")
                return
        if job.operation == "delete" and [c.lower() for c in header] != ["id"]:
            self._fail(job, "InvalidBatch : The 'delete' batch must contain only 'Id' column")
            return
        if job.operation == "update" and "id" not in [c.lower() for c in header]:
            self._fail(job, "InvalidBatch : Field name not found : Id")
            return
        if job.operation == "upsert" and (job.external_id_field or "").lower() not in [
            c.lower() for c in header
        ]:
            self._fail(job, f"InvalidBatch : Field name not found : {job.external_id_field}")
            return
        assignment = job.assignment_rule_id
        for index, values in enumerate(rows[1:]):
            if not values:
                continue
            row = dict(zip(header, values, strict=False))
            ctx = WriteContext(job.created_by, assignment=assignment)
            try:
                if index == 0 and record_error:
                    raise RecordError(record_error, f"{record_error}: injected by the sandbox for one record")
                rid, created = self._apply(job, row, ctx)
            except RecordError as exc:
                job.failures.append([_failed_id(row), exc.bulk_text(), *values])
                job.failed += 1
            else:
                job.successful.append([rid, "true" if created else "false", *values])
            job.processed += 1
        job.state = "JobComplete"
        job.modstamp = now_stored()

    def _apply(self, job: Job, row: dict[str, str], ctx: WriteContext) -> tuple[str, bool]:
        store = self.store
        by_lower = {k.lower(): k for k in row}
        if job.operation == "insert":
            return store.insert(job.object, row, ctx, from_csv=True), True
        if job.operation in ("update", "delete"):
            rid = row[by_lower["id"]]
            if not rid:
                raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            rec = store.existing(job.object, rid)
            if job.operation == "delete":
                store.delete(job.object, rec["Id"], ctx)
                return rec["Id"], False
            body = {k: v for k, v in row.items() if k.lower() != "id"}
            store.update(job.object, rec["Id"], body, ctx, from_csv=True)
            return rec["Id"], False
        ext = job.external_id_field or "Id"
        value = row[by_lower[ext.lower()]]
        body = {k: v for k, v in row.items() if k.lower() != ext.lower()}
        if not value and ext != "Id":
            raise RecordError("MISSING_ARGUMENT", f"{ext} not specified", [ext])
        return store.upsert(job.object, ext, value, body, ctx, from_csv=True)

    def ingest_results(self, job: Job, kind: str) -> str:
        """``successfulResults``, ``failedResults`` or ``unprocessedrecords`` as CSV."""
        if job.kind != "ingest":
            raise bulk_error("NOT_FOUND", "The requested resource does not exist", 404)
        if job.state not in ("JobComplete", "Failed", "Aborted"):
            raise bulk_error(
                "INVALIDJOBSTATE", f"Job {job.id} is in state {job.state}; results are not available"
            )
        buffer = io.StringIO()
        writer = csv.writer(
            buffer, delimiter=DELIMITERS[job.delimiter], lineterminator=LINE_ENDINGS[job.line_ending],
            quoting=csv.QUOTE_ALL,
        )  # fmt: skip
        lower = kind.lower()
        if lower == "successfulresults":
            writer.writerow(["sf__Id", "sf__Created", *job.header])
            writer.writerows(job.successful)
        elif lower == "failedresults":
            writer.writerow(["sf__Id", "sf__Error", *job.header])
            writer.writerows(job.failures)
        elif lower == "unprocessedrecords":
            writer.writerow(job.header)
            writer.writerows(job.unprocessed)
        else:
            raise bulk_error("NOT_FOUND", "The requested resource does not exist", 404)
        return buffer.getvalue()


def _failed_id(row: Mapping[str, str]) -> str:
    for key, value in row.items():
        if key.lower() == "id":
            return value
    return ""


def _csv_value(resolved: Resolved, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if resolved.field.type == "datetime":
        return bulk_datetime(str(value))
    return str(value)
