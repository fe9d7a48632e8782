"""The Salesforce REST API emulator as an ASGI app: what simple-salesforce talks to in tests.

Entry point: :func:`create_app` (used by :func:`crm_sandbox.server.running_sandbox`). It serves
every ``/services/data/vNN.0/`` version with the resources crm-sync uses: versions and resources,
``limits``, describe (global, basic, full), sObject rows (get with ``?fields=``, create, update,
delete), rows by external id (get, upsert, delete), get-updated and get-deleted, ``query`` and
``queryAll`` with cursors, sObject collections (create, update, upsert, delete, retrieve) and
Bulk API 2.0 (see :mod:`crm_sandbox.salesforce.bulk`); and the logins real clients start with, the
OAuth 2.0 token endpoint and the SOAP ``login`` (see :mod:`crm_sandbox.salesforce.oauth`).

Behaviour a sync must cope with against a real org is reproduced rather than simplified:

* errors in Salesforce's JSON (``[{"message", "errorCode", "fields"}]``) and statuses, so the
  client raises its real exception classes;
* ``Sforce-Limit-Info: api-usage=N/M`` on every API response, and ``403 REQUEST_LIMIT_EXCEEDED``
  once ``daily_api_limit`` requests were made (``POST /__sandbox/reset`` restores the budget);
* ``401 INVALID_SESSION_ID`` for a token outside the scenario's optional ``"tokens"`` list;
* upsert answers ``201`` (created) and, from API 46.0 on, ``200`` with ``"created": false``
  for an update (``204`` before 46.0), as Salesforce documents; ``300`` with the matching record
  URLs when an external id matches several records;
* every write stamps ``LastModifiedDate``/``SystemModstamp`` with "now" at second precision,
  even a write that changes nothing;
* query pages of ``batchSize`` records (default 2000, ``Sforce-Query-Options: batchSize=N``
  honoured between 200 and 2000) linked by ``nextRecordsUrl``;
* the ``Sforce-Auto-Assign`` header on Lead writes (default TRUE; see
  :mod:`crm_sandbox.salesforce.store` for the scenario's assignment rules);
* faults injected through ``/__sandbox/faults`` are answered in Salesforce's shape, and a
  ``record_error`` fault fails exactly the first record of a composite or Bulk batch.

The session user (owner of created records, ``CreatedById``) is the first active User of the
scenario, or a generated "Integration User" when it has none.
"""

from __future__ import annotations

import json
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.control import ASGIApp, Message, Receive, SandboxControl, Scope, Send, record_error
from crm_sandbox.salesforce.bulk import BulkJobs, Job
from crm_sandbox.salesforce.bulk_v1 import BulkV1
from crm_sandbox.salesforce.composite import FORCE_ALL_OR_NONE, CompositeRoutes
from crm_sandbox.salesforce.errors import (
    ApiError,
    RecordError,
    injected_error_shape,
    invalid_session,
    not_found,
    request_limit_exceeded,
)
from crm_sandbox.salesforce.ids import MalformedIdError, make_id, normalize_id
from crm_sandbox.salesforce.oauth import LoginRoutes, Logins
from crm_sandbox.salesforce.schema import (
    COMPOUND_COMPONENTS,
    HUBSPOT_ID_OBJECTS,
    SObjectType,
    datetime_from_stored,
    describe_field,
    describe_global_entry,
    format_datetime,
    object_for_prefix,
    object_urls,
)
from crm_sandbox.salesforce.soql import CompiledQuery, execute, render_record
from crm_sandbox.salesforce.store import Record, Store, WriteContext

DEFAULT_BATCH_SIZE = 2000
MAX_COLLECTION = 200
MAX_RETRIEVE = 2000
MAX_OPEN_CURSORS = 50
_VERSION_RE = re.compile(r"^v(\d{2})\.0$")
_BATCH_RE = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)
_ROLLED_BACK = RecordError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
)
_MASTER_RECORD_TYPE = "012000000000000AAA"


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json;charset=UTF-8",
    )


@dataclass
class Cursor:
    """A query's result snapshot (ids in order) that ``nextRecordsUrl`` pages through."""

    compiled: CompiledQuery
    ids: Sequence[str]
    batch_size: int


class SalesforceEmulator:
    """State and request handlers of one emulated org."""

    def __init__(
        self,
        scenario: Mapping[str, Any],
        *,
        daily_api_limit: int,
        api_version: str,
        hubspot_id_objects: Iterable[str] = HUBSPOT_ID_OBJECTS,
    ) -> None:
        self.store = Store(scenario, hubspot_id_objects)
        self.bulk = BulkJobs(self.store)
        tokens = scenario.get("tokens")
        self.tokens: frozenset[str] | None = frozenset(str(t) for t in tokens) if tokens else None
        self.logins = Logins(
            self.store, locked=self.tokens is not None, refresh_tokens=self.tokens or frozenset()
        )
        self.composite = CompositeRoutes(self.store, self.version, self.context)
        self.bulk_v1 = BulkV1(self.store, self.accepts_token)
        self.daily_api_limit = daily_api_limit
        self.api_version = api_version
        self.api_used = 0
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self.cursor_counter = 0

    def reset(self) -> None:
        """Restore the seeded org: records, jobs, cursors and the daily API budget."""
        self.store.load()
        self.bulk.reset()
        self.bulk_v1.reset()
        self.cursors.clear()
        self.api_used = 0

    # -- helpers ---------------------------------------------------------------------------------
    def accepts_token(self, token: str) -> bool:
        """Any non-empty session id, or only listed and issued ones when the scenario lists tokens."""
        return bool(token) and (self.tokens is None or token in self.tokens or self.logins.accepts(token))

    @staticmethod
    def version(request: Request) -> str:
        match = _VERSION_RE.match(str(request.path_params.get("version", "")))
        if match is None:
            raise not_found()
        return f"{match.group(1)}.0"

    def sobject(self, request: Request, key: str = "sobject") -> SObjectType:
        name = self.store.object_name(str(request.path_params[key]))
        if name is None:
            raise not_found()
        return self.store.schema[name]

    @staticmethod
    async def json_body(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise ApiError.of(
                400, "JSON_PARSER_ERROR", f"Unexpected character in request body: {exc}"
            ) from None

    async def json_object(self, request: Request) -> dict[str, Any]:
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise ApiError.of(
                400, "JSON_PARSER_ERROR", "Cannot deserialize instance of SObject from a non-object"
            )
        return body

    def context(self, request: Request) -> WriteContext:
        raw = request.headers.get("sforce-auto-assign")
        assignment: str | None = "default"
        if raw is not None:
            value = raw.strip()
            if value.lower() == "false":
                assignment = None
            elif value.lower() != "true":
                try:
                    assignment = normalize_id(value)
                except MalformedIdError:
                    raise ApiError.of(400, "MALFORMED_ID", f"Invalid assignment rule id: {value}") from None
        return WriteContext(self.store.current_user_id, assignment=assignment)

    def render(
        self, obj: SObjectType, rec: Record, version: str, fields: Sequence[str] | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": obj.name,
                "url": f"/services/data/v{version}/sobjects/{obj.name}/{rec['Id']}",
            }
        }
        names = fields if fields is not None else list(obj.fields)
        for name in names:
            out[name] = rec.get(name)
        return out

    def field_list(self, obj: SObjectType, raw: str | Sequence[str] | None) -> list[str] | None:
        if raw is None:
            return None
        names = [n.strip() for n in raw.split(",")] if isinstance(raw, str) else [str(n) for n in raw]
        out = []
        for name in names:
            if not name:
                continue
            f = obj.field(name)
            if f is None:
                raise ApiError.of(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on entity '{obj.name}'. If you are attempting to use a custom "
                    "field, be sure to append the '__c' after the custom field name. Please reference your "
                    "WSDL or the describe call for the appropriate names.",
                )
            out.append(f.name)
        return out

    # -- discovery -------------------------------------------------------------------------------
    async def versions(self, _request: Request) -> Response:
        major = int(float(self.api_version))
        return json_response(
            [
                {"label": f"API {v}.0", "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                for v in range(31, major + 1)
            ]
        )

    async def resources(self, request: Request) -> Response:
        base = f"/services/data/v{self.version(request)}"
        names = ["sobjects", "query", "queryAll", "limits", "composite", "jobs/ingest", "jobs/query"]
        return json_response({name.replace("jobs/", "jobs"): f"{base}/{name}" for name in names})

    async def limits(self, request: Request) -> Response:
        self.version(request)

        def pair(maximum: int, remaining: int) -> dict[str, int]:
            return {"Max": maximum, "Remaining": remaining}

        return json_response(
            {
                "DailyApiRequests": pair(self.daily_api_limit, max(0, self.daily_api_limit - self.api_used)),
                "DailyAsyncApexExecutions": pair(250000, 250000),
                "DailyBulkApiBatches": pair(15000, 15000),
                "DailyBulkV2QueryFileStorageMB": pair(976562, 976562),
                "DailyBulkV2QueryJobs": pair(
                    10000, 10000 - sum(j.kind == "query" for j in self.bulk.jobs.values())
                ),
                "DataStorageMB": pair(5, 5),
                "FileStorageMB": pair(20, 20),
                "HourlyODataCallout": pair(10000, 10000),
                "SingleEmail": pair(15, 15),
            }
        )

    async def describe_global(self, request: Request) -> Response:
        version = self.version(request)
        return json_response(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [describe_global_entry(o, version) for o in self.store.schema.values()],
            }
        )

    async def sobject_basic(self, request: Request) -> Response:
        version = self.version(request)
        obj = self.sobject(request)
        if request.method == "POST":
            return await self.create(request, obj, version)
        table = self.store.tables[obj.name]
        recent = sorted(
            (r for r in table.records.values() if not r["IsDeleted"]),
            key=lambda r: r["LastModifiedDate"],
            reverse=True,
        )[:10]
        items = [self.render(obj, r, version, [n for n in ("Id", "Name") if n in obj.fields]) for r in recent]
        return json_response({"objectDescribe": describe_global_entry(obj, version), "recentItems": items})

    async def describe(self, request: Request) -> Response:
        version = self.version(request)
        obj = self.sobject(request)
        body = describe_global_entry(obj, version)
        body["fields"] = [
            describe_field(
                f,
                self.store.picklist_values(f),
                self.store.default_value(f),
                COMPOUND_COMPONENTS.get((obj.name, f.name)),
            )
            for f in obj.fields.values()
        ]
        body["childRelationships"] = [
            {
                "cascadeDelete": True,
                "childSObject": rel.child,
                "field": rel.field,
                "relationshipName": rel.name,
                "deprecatedAndHidden": False,
                "restrictedDelete": False,
            }
            for rel in obj.child_relationships
        ]
        body["recordTypeInfos"] = self.record_type_infos(obj, version)
        body["urls"] = object_urls(version, obj.name)
        return json_response(body)

    def record_type_infos(self, obj: SObjectType, version: str) -> list[dict[str, Any]]:
        infos: list[dict[str, Any]] = []
        types = [
            r
            for r in self.store.tables["RecordType"].records.values()
            if r["SobjectType"] == obj.name and not r["IsDeleted"]
        ]
        default = next((r["Id"] for r in types if r["IsActive"]), None)
        layouts = f"/services/data/v{version}/sobjects/{obj.name}/describe/layouts"
        for rec in types:
            infos.append(
                {
                    "active": rec["IsActive"],
                    "available": rec["IsActive"],
                    "defaultRecordTypeMapping": rec["Id"] == default,
                    "developerName": rec["DeveloperName"],
                    "master": False,
                    "name": rec["Name"],
                    "recordTypeId": rec["Id"],
                    "urls": {"layout": f"{layouts}/{rec['Id']}"},
                }
            )
        infos.append(
            {
                "active": True,
                "available": not types,
                "defaultRecordTypeMapping": not types,
                "developerName": "Master",
                "master": True,
                "name": "Master",
                "recordTypeId": _MASTER_RECORD_TYPE,
                "urls": {"layout": f"{layouts}/{_MASTER_RECORD_TYPE}"},
            }
        )
        return infos

    # -- rows ------------------------------------------------------------------------------------
    async def create(self, request: Request, obj: SObjectType, version: str) -> Response:
        body = await self.json_object(request)
        ctx = self.context(request)
        if "Id" in body or "id" in body:
            raise ApiError.of(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        try:
            rid = self.store.insert(obj.name, body, ctx)
        except RecordError as exc:
            raise ApiError.from_record(exc) from None
        del version
        return json_response({"id": rid, "success": True, "errors": []}, 201)

    def live_record(self, obj: SObjectType, raw_id: str) -> Record:
        try:
            normalize_id(raw_id)
        except MalformedIdError:
            raise ApiError.of(
                404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {raw_id}"
            ) from None
        try:
            return self.store.existing(obj.name, raw_id)
        except RecordError as exc:
            raise ApiError.from_record(exc) from None

    async def row(self, request: Request) -> Response:
        version = self.version(request)
        obj = self.sobject(request)
        raw_id = str(request.path_params["record_id"])
        if request.method == "POST":
            if raw_id == "Id":  # API 37.0+: POST to .../sobjects/{Object}/Id creates
                return await self.create(request, obj, version)
            raise ApiError.of(
                405, "METHOD_NOT_ALLOWED", "HTTP Method 'POST' not allowed. Allowed are GET,PATCH,DELETE,HEAD"
            )
        rec = self.live_record(obj, raw_id)
        if request.method == "GET":
            fields = self.field_list(obj, request.query_params.get("fields"))
            return json_response(self.render(obj, rec, version, fields))
        ctx = self.context(request)
        try:
            if request.method == "PATCH":
                body = await self.json_object(request)
                self.store.update(obj.name, rec["Id"], body, ctx)
            else:
                self.store.delete(obj.name, rec["Id"], ctx)
        except RecordError as exc:
            raise ApiError.from_record(exc) from None
        return Response(status_code=204)

    async def row_by_external_id(self, request: Request) -> Response:
        version = self.version(request)
        obj = self.sobject(request)
        ext_name = str(request.path_params["field"])
        value = str(request.path_params["value"])
        try:
            ext, ids = self.store.find_external(obj.name, ext_name, value)
        except RecordError as exc:
            raise ApiError.from_record(exc) from None
        if request.method != "PATCH":
            if len(ids) > 1:
                return json_response([f"/services/data/v{version}/sobjects/{obj.name}/{i}" for i in ids], 300)
            if not ids:
                raise not_found()
            if request.method == "GET":
                fields = self.field_list(obj, request.query_params.get("fields"))
                return json_response(
                    self.render(obj, self.store.tables[obj.name].records[ids[0]], version, fields)
                )
            try:
                self.store.delete(obj.name, ids[0], self.context(request))
            except RecordError as exc:
                raise ApiError.from_record(exc) from None
            return Response(status_code=204)
        if len(ids) > 1:
            return json_response([f"/services/data/v{version}/sobjects/{obj.name}/{i}" for i in ids], 300)
        body = await self.json_object(request)
        try:
            rid, created = self.store.upsert(obj.name, ext.name, value, body, self.context(request))
        except RecordError as exc:
            raise ApiError.from_record(exc) from None
        modern = float(version) >= 46.0
        if created:
            result: dict[str, Any] = {"id": rid, "success": True, "errors": []}
            if modern:
                result["created"] = True
            return json_response(result, 201)
        if modern:
            return json_response({"id": rid, "success": True, "errors": [], "created": False}, 200)
        return Response(status_code=204)

    # -- replication -----------------------------------------------------------------------------
    def replication_window(self, request: Request, max_days: int) -> tuple[str, str, str]:
        def parse(name: str) -> datetime:
            raw = request.query_params.get(name)
            if not raw:
                raise ApiError.of(400, "MISSING_ARGUMENT", f"{name} parameter is required")
            try:
                value = datetime.fromisoformat(raw.strip().replace(" ", "+"))
            except ValueError:
                raise ApiError.of(400, "INVALID_REPLICATION_DATE", f"Invalid {name} date: {raw}") from None
            return value if value.tzinfo else value.replace(tzinfo=UTC)

        start, end = parse("start"), parse("end")
        now = datetime.now(UTC)
        if start > end:
            raise ApiError.of(
                400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate"
            )
        if start < now - timedelta(days=max_days):
            raise ApiError.of(
                400, "INVALID_REPLICATION_DATE", f"startDate cannot be more than {max_days} days ago"
            )
        covered = min(end, now).replace(second=0, microsecond=0)
        return format_datetime(start), format_datetime(end), format_datetime(covered)

    async def updated(self, request: Request) -> Response:
        self.version(request)
        obj = self.sobject(request)
        start, end, covered = self.replication_window(request, 30)
        table = self.store.tables[obj.name]
        found = table.sorted_index("SystemModstamp").range(start, True, end, True)
        ids = [rid for rid in found if not table.records[rid]["IsDeleted"]]
        return json_response({"ids": ids, "latestDateCovered": covered})

    async def deleted(self, request: Request) -> Response:
        self.version(request)
        obj = self.sobject(request)
        start, end, covered = self.replication_window(request, 15)
        table = self.store.tables[obj.name]
        found = []
        for rid in table.deleted:
            rec = table.records[rid]
            if start <= rec["SystemModstamp"] <= end:
                found.append({"id": rid, "deletedDate": rec["SystemModstamp"]})
        found.sort(key=lambda r: (r["deletedDate"], r["id"]))
        earliest = min([r["SystemModstamp"] for r in (table.records[i] for i in table.deleted)] or [covered])
        earliest_dt = datetime_from_stored(earliest).replace(second=0)
        return json_response(
            {
                "deletedRecords": found,
                "earliestDateAvailable": format_datetime(earliest_dt),
                "latestDateCovered": covered,
            }
        )

    # -- query -----------------------------------------------------------------------------------
    def batch_size(self, request: Request) -> int:
        options = request.headers.get("sforce-query-options") or ""
        match = _BATCH_RE.search(options)
        if not match:
            return DEFAULT_BATCH_SIZE
        return max(200, min(DEFAULT_BATCH_SIZE, int(match.group(1))))

    async def query(self, request: Request) -> Response:
        version = self.version(request)
        include_deleted = request.url.path.rstrip("/").endswith("queryAll")
        text = request.query_params.get("q")
        if not text:
            raise ApiError.of(400, "MALFORMED_QUERY", "A query string has to be specified")
        result = execute(self.store, text, include_deleted=include_deleted)
        if result.aggregate is not None:
            return json_response({"totalSize": result.total_size, "done": True, "records": result.aggregate})
        cursor = Cursor(result.compiled, result.ids, self.batch_size(request))
        return json_response(self.page(cursor, 0, version, "queryAll" if include_deleted else "query", None))

    async def query_more(self, request: Request) -> Response:
        version = self.version(request)
        locator = str(request.path_params["locator"])
        cursor_id, _, raw_offset = locator.rpartition("-")
        cursor = self.cursors.get(cursor_id)
        if cursor is None or not raw_offset.isdigit():
            raise ApiError.of(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        endpoint = "queryAll" if "/queryAll/" in request.url.path else "query"
        return json_response(self.page(cursor, int(raw_offset), version, endpoint, cursor_id))

    def page(
        self, cursor: Cursor, offset: int, version: str, endpoint: str, cursor_id: str | None
    ) -> dict[str, Any]:
        ids = cursor.ids[offset : offset + cursor.batch_size]
        records = self.store.tables[cursor.compiled.obj.name].records
        rows = [render_record(self.store, cursor.compiled, records[i], version) for i in ids if i in records]
        end = offset + len(ids)
        body: dict[str, Any] = {"totalSize": len(cursor.ids), "done": end >= len(cursor.ids)}
        if not body["done"]:
            if cursor_id is None:
                self.cursor_counter += 1
                cursor_id = make_id("01g", self.cursor_counter)
                self.cursors[cursor_id] = cursor
                while len(self.cursors) > MAX_OPEN_CURSORS:
                    self.cursors.popitem(last=False)
            body["nextRecordsUrl"] = f"/services/data/v{version}/{endpoint}/{cursor_id}-{end}"
        elif cursor_id is not None:
            self.cursors.pop(cursor_id, None)
        body["records"] = rows
        return body

    # -- sObject collections ---------------------------------------------------------------------
    @staticmethod
    def collection_body(body: Any) -> tuple[bool, list[dict[str, Any]]]:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiError.of(400, "JSON_PARSER_ERROR", "The request body must have a records list")
        records = body["records"]
        if len(records) > MAX_COLLECTION:
            raise ApiError.of(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        return bool(body.get("allOrNone", False)), records

    def record_type(self, item: Any) -> SObjectType:
        if not isinstance(item, dict):
            raise RecordError("JSON_PARSER_ERROR", "Each record must be a JSON object")
        attributes = item.get("attributes")
        type_name = attributes.get("type") if isinstance(attributes, dict) else None
        if not type_name:
            raise RecordError("INVALID_TYPE", "Must specify a type in the attributes of each record")
        name = self.store.object_name(str(type_name))
        if name is None:
            raise RecordError("INVALID_TYPE", f"sObject type '{type_name}' is not supported.")
        return self.store.schema[name]

    def run_collection(
        self,
        request: Request,
        items: Sequence[Any],
        all_or_none: bool,
        op: Callable[[int, Any], dict[str, Any]],
        failure: Callable[[Any], dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """Apply ``op`` to every item; per-record errors; all-or-none rollback; injected error."""
        injected = record_error(request)
        # In an all-or-none composite request every collection is all-or-none too.
        all_or_none = all_or_none or bool((request.scope.get("state") or {}).get(FORCE_ALL_OR_NONE))
        results: list[dict[str, Any]] = []
        failed = False
        if all_or_none:
            self.store.begin()
        try:
            for index, item in enumerate(items):
                try:
                    if index == 0 and injected:
                        raise RecordError(injected, f"{injected}: injected by the sandbox for one record")
                    results.append(op(index, item))
                except RecordError as exc:
                    failed = True
                    results.append({**failure(item), "success": False, "errors": [exc.collection_item()]})
        except BaseException:
            if all_or_none:
                self.store.rollback()
            raise
        if all_or_none:
            if failed:
                self.store.rollback()
                results = [
                    {**r, "id": None, "success": False, "errors": [_ROLLED_BACK.collection_item()]}
                    if r["success"]
                    else r
                    for r in results
                ]
            else:
                self.store.commit()
        return results

    async def collection(self, request: Request) -> Response:
        self.version(request)
        ctx = self.context(request)
        if request.method == "DELETE":
            raw_ids = [i for i in (request.query_params.get("ids") or "").split(",") if i]
            if len(raw_ids) > MAX_COLLECTION:
                raise ApiError.of(
                    400,
                    "EXCEEDED_ID_LIMIT",
                    "record limit reached. cannot submit more than 200 records into this call",
                )
            all_or_none = (request.query_params.get("allOrNone") or "").lower() == "true"
            return json_response(
                self.run_collection(request, raw_ids, all_or_none, lambda _, rid: self.delete_one(rid, ctx),
                                    lambda rid: {"id": rid})
            )  # fmt: skip
        all_or_none, records = self.collection_body(await self.json_body(request))
        if request.method == "POST":

            def create(_: int, item: Any) -> dict[str, Any]:
                obj = self.record_type(item)
                if any(k.lower() == "id" for k in item):
                    raise RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
                return {"id": self.store.insert(obj.name, item, ctx), "success": True, "errors": []}

            return json_response(
                self.run_collection(request, records, all_or_none, create, lambda _: {"id": None})
            )

        def update(_: int, item: Any) -> dict[str, Any]:
            obj = self.record_type(item)
            raw_id = next((v for k, v in item.items() if k.lower() == "id"), None)
            if not raw_id:
                raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            body = {k: v for k, v in item.items() if k.lower() != "id"}
            rec = _existing_in_batch(self.store, obj.name, str(raw_id))
            self.store.update(obj.name, rec["Id"], body, ctx)
            return {"id": rec["Id"], "success": True, "errors": []}

        return json_response(
            self.run_collection(request, records, all_or_none, update, lambda _: {"id": None})
        )

    def delete_one(self, raw_id: str, ctx: WriteContext) -> dict[str, Any]:
        try:
            rid = normalize_id(raw_id)
        except MalformedIdError:
            raise RecordError("MALFORMED_ID", f"malformed id {raw_id}", []) from None
        obj = object_for_prefix(self.store.schema, rid)
        if obj is None:
            raise RecordError("MALFORMED_ID", f"malformed id {raw_id}", [])
        rec = _existing_in_batch(self.store, obj.name, rid)
        self.store.delete(obj.name, rec["Id"], ctx)
        return {"id": rid, "success": True, "errors": []}

    async def collection_upsert(self, request: Request) -> Response:
        self.version(request)
        obj = self.sobject(request)
        ext = obj.field(str(request.path_params["field"]))
        if ext is None or not (ext.external_id or ext.name == "Id"):
            missing = request.path_params["field"]
            raise not_found(f"Provided external ID field does not exist or is not accessible: {missing}")
        all_or_none, records = self.collection_body(await self.json_body(request))
        ctx = self.context(request)

        def ext_value(item: Any) -> str:
            if not isinstance(item, dict):
                return ""
            value = next((v for k, v in item.items() if k.lower() == ext.name.lower()), None)
            return "" if value is None else str(value)

        counts = Counter(v.casefold() for v in map(ext_value, records) if v)

        def upsert(_: int, item: Any) -> dict[str, Any]:
            item_obj = self.record_type(item)
            if item_obj.name != obj.name:
                raise RecordError("INVALID_TYPE", f"Record type {item_obj.name} does not match {obj.name}")
            value = ext_value(item)
            if not value and ext.name != "Id":
                raise RecordError("MISSING_ARGUMENT", f"{ext.name} not specified", [ext.name])
            if value and counts[value.casefold()] > 1:
                raise RecordError(
                    "DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {value}", [ext.name]
                )
            ids: list[str] = self.store.find_external(obj.name, ext.name, value)[1] if value else []
            if len(ids) > 1:
                raise RecordError(
                    "DUPLICATE_EXTERNAL_ID",
                    f"{ext.name}: more than one record found for external id field: {ids}",
                    [ext.name],
                )
            body = {k: v for k, v in item.items() if k.lower() != ext.name.lower()}
            rid, created = self.store.upsert(obj.name, ext.name, value, body, ctx)
            return {"id": rid, "success": True, "errors": [], "created": created}

        return json_response(
            self.run_collection(
                request, records, all_or_none, upsert, lambda _: {"id": None, "created": False}
            )
        )

    async def collection_retrieve(self, request: Request) -> Response:
        version = self.version(request)
        obj = self.sobject(request)
        if request.method == "POST":
            body = await self.json_object(request)
            raw_ids, raw_fields = body.get("ids"), body.get("fields")
        else:
            raw_ids = [i for i in (request.query_params.get("ids") or "").split(",") if i]
            raw_fields = request.query_params.get("fields")
        if not raw_ids or not raw_fields:
            raise ApiError.of(400, "MISSING_ARGUMENT", "ids and fields are required")
        if not isinstance(raw_ids, list) or len(raw_ids) > MAX_RETRIEVE:
            raise ApiError.of(400, "EXCEEDED_ID_LIMIT", "Cannot retrieve more than 2000 records")
        fields = self.field_list(obj, raw_fields) or []
        table = self.store.tables[obj.name]
        out: list[dict[str, Any] | None] = []
        for raw in raw_ids:
            try:
                rid = normalize_id(str(raw))
            except MalformedIdError:
                raise ApiError.of(400, "MALFORMED_ID", f"malformed id {raw}") from None
            rec = table.records.get(rid)
            out.append(
                self.render(obj, rec, version, fields) if rec is not None and not rec["IsDeleted"] else None
            )
        return json_response(out)

    # -- Bulk API 2.0 ----------------------------------------------------------------------------
    async def query_jobs(self, request: Request) -> Response:
        version = self.version(request)
        if request.method == "GET":
            return json_response(self.bulk.listing("query"))
        body = await self.json_object(request)
        return json_response(self.bulk.create_query(body, self.store.current_user_id, version))

    async def query_job(self, request: Request) -> Response:
        self.version(request)
        job = self.bulk.get(str(request.path_params["job_id"]), "query")
        return await self._job_common(request, job)

    async def _job_common(self, request: Request, job: Job) -> Response:
        if request.method == "GET":
            return json_response(job.info())
        if request.method == "DELETE":
            self.bulk.delete(job)
            return Response(status_code=204)
        body = await self.json_object(request)
        return json_response(self.bulk.set_state(job, body.get("state"), record_error(request)))

    async def query_results(self, request: Request) -> Response:
        self.version(request)
        job = self.bulk.get(str(request.path_params["job_id"]), "query")
        raw_max = request.query_params.get("maxRecords")
        if raw_max is not None and not raw_max.isdigit():
            raise ApiError(
                400, [{"errorCode": "INVALIDREQUEST", "message": f"Invalid maxRecords: {raw_max}"}]
            )
        text, locator, count = self.bulk.query_results(
            job, request.query_params.get("locator"), int(raw_max) if raw_max else None
        )
        headers = {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(count)}
        return Response(text.encode(), headers=headers, media_type="text/csv")

    async def ingest_jobs(self, request: Request) -> Response:
        version = self.version(request)
        if request.method == "GET":
            return json_response(self.bulk.listing("ingest"))
        body = await self.json_object(request)
        return json_response(self.bulk.create_ingest(body, self.store.current_user_id, version).info())

    async def ingest_job(self, request: Request) -> Response:
        self.version(request)
        job = self.bulk.get(str(request.path_params["job_id"]), "ingest")
        return await self._job_common(request, job)

    async def ingest_upload(self, request: Request) -> Response:
        self.version(request)
        job = self.bulk.get(str(request.path_params["job_id"]), "ingest")
        self.bulk.upload(job, await request.body(), record_error(request))
        return Response(status_code=201)

    async def ingest_results(self, request: Request) -> Response:
        self.version(request)
        job = self.bulk.get(str(request.path_params["job_id"]), "ingest")
        text = self.bulk.ingest_results(job, str(request.path_params["kind"]))
        return Response(text.encode(), media_type="text/csv")

    # -- app -------------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        v = "/services/data/{version}"
        return [
            *LoginRoutes(self.logins).routes(),
            Route("/services/data", self.versions, methods=["GET"]),
            Route(v, self.resources, methods=["GET"]),
            Route(f"{v}/limits", self.limits, methods=["GET"]),
            Route(f"{v}/sobjects", self.describe_global, methods=["GET"]),
            Route(f"{v}/sobjects/{{sobject}}", self.sobject_basic, methods=["GET", "POST"]),
            Route(f"{v}/sobjects/{{sobject}}/describe", self.describe, methods=["GET"]),
            Route(f"{v}/sobjects/{{sobject}}/updated", self.updated, methods=["GET"]),
            Route(f"{v}/sobjects/{{sobject}}/deleted", self.deleted, methods=["GET"]),
            Route(
                f"{v}/sobjects/{{sobject}}/{{record_id}}",
                self.row,
                methods=["GET", "PATCH", "DELETE", "POST"],
            ),
            Route(
                f"{v}/sobjects/{{sobject}}/{{field}}/{{value}}",
                self.row_by_external_id,
                methods=["GET", "PATCH", "DELETE"],
            ),
            Route(f"{v}/query", self.query, methods=["GET"]),
            Route(f"{v}/query/{{locator}}", self.query_more, methods=["GET"]),
            Route(f"{v}/queryAll", self.query, methods=["GET"]),
            Route(f"{v}/queryAll/{{locator}}", self.query_more, methods=["GET"]),
            *self.composite.routes(v),
            *self.bulk_v1.routes(),
            Route(f"{v}/composite/sobjects", self.collection, methods=["POST", "PATCH", "DELETE"]),
            Route(f"{v}/composite/sobjects/{{sobject}}", self.collection_retrieve, methods=["GET", "POST"]),
            Route(f"{v}/composite/sobjects/{{sobject}}/{{field}}", self.collection_upsert, methods=["PATCH"]),
            Route(f"{v}/jobs/query", self.query_jobs, methods=["GET", "POST"]),
            Route(f"{v}/jobs/query/{{job_id}}", self.query_job, methods=["GET", "PATCH", "DELETE"]),
            Route(f"{v}/jobs/query/{{job_id}}/results", self.query_results, methods=["GET"]),
            Route(f"{v}/jobs/ingest", self.ingest_jobs, methods=["GET", "POST"]),
            Route(f"{v}/jobs/ingest/{{job_id}}", self.ingest_job, methods=["GET", "PATCH", "DELETE"]),
            Route(f"{v}/jobs/ingest/{{job_id}}/batches", self.ingest_upload, methods=["PUT"]),
            Route(f"{v}/jobs/ingest/{{job_id}}/{{kind}}", self.ingest_results, methods=["GET"]),
        ]

    def gate(self, app: ASGIApp) -> ASGIApp:
        """Trailing-slash tolerance, session check, daily API budget and ``Sforce-Limit-Info``."""

        async def gate(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                path = path.rstrip("/")
                scope["path"] = path
            if not path.startswith("/services/data/v"):
                await app(scope, receive, send)
                return
            token = _bearer(scope)
            if not token or not self.accepts_token(token):
                await _send_error(send, invalid_session())
                return
            if self.api_used >= self.daily_api_limit:
                await _send_error(send, request_limit_exceeded(), self.limit_header())
                return
            self.api_used += 1
            limit_header = self.limit_header()

            async def send_with_limits(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), limit_header]
                await send(message)

            await app(scope, receive, send_with_limits)

        return gate

    def limit_header(self) -> tuple[bytes, bytes]:
        return (b"sforce-limit-info", f"api-usage={self.api_used}/{self.daily_api_limit}".encode())


def _existing_in_batch(store: Store, obj_name: str, raw_id: str) -> Record:
    """The live record for a batch item; a missing id is a cross-reference error per record."""
    try:
        return store.existing(obj_name, raw_id)
    except RecordError as exc:
        if exc.code == "NOT_FOUND":
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", []) from None
        if exc.code == "MALFORMED_ID":
            raise RecordError("MALFORMED_ID", f"malformed id {raw_id}", []) from None
        raise


def _bearer(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key == b"authorization":
            text = bytes(value).decode("latin-1").strip()
            scheme, _, token = text.partition(" ")
            if scheme.lower() in ("bearer", "oauth") and token.strip():
                return token.strip()
            return None
    return None


async def _send_error(send: Send, error: ApiError, extra: tuple[bytes, bytes] | None = None) -> None:
    data = json.dumps(error.body).encode()
    headers = [
        (b"content-type", b"application/json;charset=UTF-8"),
        (b"content-length", str(len(data)).encode()),
    ]
    if extra is not None:
        headers.append(extra)
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _api_error(request: Request, exc: Exception) -> Response:
    del request
    if isinstance(exc, RecordError):
        exc = ApiError.from_record(exc)
    assert isinstance(exc, ApiError)
    return json_response(exc.body, exc.status, exc.headers)


def create_app(
    scenario: Mapping[str, Any],
    *,
    daily_api_limit: int = 100_000,
    api_version: str = "59.0",
    hubspot_id_objects: Iterable[str] = HUBSPOT_ID_OBJECTS,
) -> ASGIApp:
    """The Salesforce emulator for ``scenario`` wrapped with the sandbox control plane.

    Args:
        scenario: the whole scenario dict; ``scenario["salesforce"]`` maps SObject names to seed
            records and the optional ``scenario["tokens"]`` lists the accepted session ids.
        daily_api_limit: ``DailyApiRequests`` maximum; requests beyond it get 403
            ``REQUEST_LIMIT_EXCEEDED``.
        api_version: the newest version the versions list advertises (all ``vNN.0`` are served).
        hubspot_id_objects: the objects whose admin created the External ID ``HubSpot_Id__c``
            (all four by default; fewer models an org not yet set up for crm-sync).
    """
    emulator = SalesforceEmulator(
        scenario,
        daily_api_limit=daily_api_limit,
        api_version=api_version,
        hubspot_id_objects=hubspot_id_objects,
    )
    starlette = Starlette(
        routes=emulator.routes(),
        exception_handlers={
            ApiError: _api_error,
            RecordError: _api_error,
            404: _not_found,
            405: _not_allowed,
        },
    )
    emulator.composite.subrequests.app = starlette
    control = SandboxControl(error_shape=injected_error_shape, on_reset=emulator.reset)
    return control.wrap(emulator.gate(starlette))


async def _not_found(request: Request, exc: Exception) -> Response:
    del request, exc
    return json_response(not_found().body, 404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    del exc
    body = [{"errorCode": "METHOD_NOT_ALLOWED", "message": f"HTTP Method '{request.method}' not allowed."}]
    return json_response(body, 405)
