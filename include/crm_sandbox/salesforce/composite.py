"""The composite family of the Salesforce emulator: ``/composite``, ``/composite/batch``,
``/composite/tree/{sObject}`` and ``/composite/graph``.

Each subrequest runs through the emulator's own routes in process (:class:`Subrequests`), so it
answers exactly what the same call alone would, while the whole composite request counts once
against the daily API budget, as in a real org. Behaviour follows the REST API Developer Guide
(developer.salesforce.com, api_rest: "Composite", "Composite Subrequest Result",
"allOrNone Parameters in Composite and Collections Requests", "Composite Batch", "sObject Tree",
"Composite Graph"):

* ``/composite``: at most 25 subrequests, of which at most 5 are sObject collections or queries;
  ``referenceId`` required, unique, letters/digits/underscores starting with a letter;
  ``@{referenceId.path}`` references (``@{NewAccount.id}``, ``@{Q.records[0].Id}``) in ``url`` and
  ``body``, resolved from earlier subrequests' response bodies; results
  ``{"compositeResponse": [{"body", "httpHeaders", "httpStatusCode", "referenceId"}]}``, with a
  ``Location`` header for created records. ``allOrNone: true`` rolls everything back when one
  subrequest fails: that one keeps its error, every other answers 400 ``PROCESSING_HALTED``; it
  also makes every sObject collections subrequest all-or-none. Without it, later subrequests still
  run, and one whose reference cannot be resolved answers 400 ``PROCESSING_HALTED``.
* ``/composite/batch``: at most 25 independent subrequests (``url`` relative to
  ``/services/data/``, or the full path; ``richInput`` as body); ``{"hasErrors", "results": [{"statusCode",
  "result"}]}``; with ``haltOnError`` the rest answer 412 ``BATCH_PROCESSING_HALTED``.
* ``/composite/tree/{sObject}``: nested records (children under their relationship name as
  ``{"records": [...]}``), at most 200 records in all, five types and five levels; all or nothing;
  201 ``{"hasErrors": false, "results": [{"referenceId", "id"}]}`` or 400 with
  ``{"referenceId", "errors"}`` for the failed records.
* ``/composite/graph``: graphs of composite subrequests (at most 500 per graph), each graph its
  own all-or-none transaction: ``{"graphs": [{"graphId", "graphResponse": {"compositeResponse"},
  "isSuccessful"}]}``.

Whole-request errors (limits, malformed bodies) are 400 with Salesforce's error list; the exact
wording of the limit messages is ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.control import ASGIApp, Message
from crm_sandbox.salesforce.errors import ApiError, RecordError
from crm_sandbox.salesforce.store import Store, WriteContext

MAX_COMPOSITE = 25
MAX_HEAVY = 5
MAX_BATCH = 25
MAX_TREE = 200
MAX_TREE_TYPES = 5
MAX_TREE_DEPTH = 5
MAX_GRAPH_NODES = 500
#: The state key that makes sObject collections subrequests all-or-none (see app.run_collection).
FORCE_ALL_OR_NONE = "composite_all_or_none"
_REF_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_REFERENCE = re.compile(r"@\{([A-Za-z][A-Za-z0-9_]*)\.([^}]+)\}")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_BATCH_URL = re.compile(r"^/services/data/v\d{2}\.0(/|$)")
_HEAVY = re.compile(r"/(query|queryAll)([/?]|$)|/composite/sobjects")
_ROLLED_BACK = "The transaction was rolled back since another operation in the same transaction failed."


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json;charset=UTF-8")


def _bad(message: str, code: str = "JSON_PARSER_ERROR") -> ApiError:
    return ApiError.of(400, code, message)


@dataclass
class SubResponse:
    """What one subrequest answered."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """An error status, or a collection result with a failed record."""
        if self.status >= 400:
            return True
        return isinstance(self.body, list) and any(
            isinstance(r, dict) and r.get("success") is False for r in self.body
        )


class Subrequests:
    """Runs a subrequest through the emulator's routes (the app behind the session gate)."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def call(
        self,
        outer: Request,
        method: str,
        url: str,
        body: Any,
        *,
        headers: Mapping[str, str] | None = None,
        state: Mapping[str, Any] | None = None,
    ) -> SubResponse:
        assert self.app is not None, "create_app wires the routes in"
        parts = urlsplit(url)
        raw = b"" if body is None else json.dumps(body).encode()
        sent = {k.lower(): v for k, v in (headers or {}).items()}
        keep = {k: v for k, v in outer.headers.items() if k in ("authorization", "sforce-auto-assign")}
        merged = {**keep, **sent, "content-type": "application/json", "content-length": str(len(raw))}
        scope: dict[str, Any] = {
            "type": "http",
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": outer.url.scheme,
            "server": outer.scope.get("server"),
            "client": outer.scope.get("client"),
            "root_path": "",
            "path": unquote(parts.path).rstrip("/") or "/",
            "raw_path": parts.path.encode(),
            "query_string": parts.query.encode(),
            "headers": [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in merged.items()],
            "state": dict(state or {}),
        }
        received = False

        async def receive() -> Message:
            nonlocal received
            if received:
                return {"type": "http.disconnect"}
            received = True
            return {"type": "http.request", "body": raw, "more_body": False}

        status = 500
        out_headers: dict[str, str] = {}
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for key, value in message.get("headers", []):
                    out_headers[bytes(key).decode("latin-1").lower()] = bytes(value).decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))

        await self.app(scope, receive, send)
        data = b"".join(chunks)
        parsed: Any = None
        if data:
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = data.decode("utf-8", "replace")
        return SubResponse(status, parsed, out_headers)


# -- references -----------------------------------------------------------------------------------
class UnresolvedReferenceError(Exception):
    """A ``@{ref.path}`` that names no earlier successful subrequest or no value in its body."""


def _lookup(body: Any, path: str) -> Any:
    value = body
    for name, index in _STEP.findall(path):
        if index:
            if not isinstance(value, list) or int(index) >= len(value):
                raise KeyError(path)
            value = value[int(index)]
        elif isinstance(value, dict) and name in value:
            value = value[name]
        else:
            raise KeyError(path)
    return value


def resolve_references(value: Any, done: Mapping[str, SubResponse]) -> Any:
    """``value`` with every ``@{ref.path}`` replaced; a whole-string reference keeps its type."""
    if isinstance(value, dict):
        return {k: resolve_references(v, done) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, done) for v in value]
    if not isinstance(value, str) or "@{" not in value:
        return value

    def one(ref_id: str, path: str) -> Any:
        found = done.get(ref_id)
        try:
            if found is None or found.failed:
                raise KeyError(path)
            return _lookup(found.body, path)
        except KeyError:
            raise UnresolvedReferenceError(
                f"Invalid reference specified. No value for {ref_id}.{path} found in {ref_id}. "
                f"Provided referenceId ('{ref_id}') must be a valid referenceId of a previous "
                "successful subrequest"
            ) from None

    whole = _REFERENCE.fullmatch(value)
    if whole:
        return one(whole.group(1), whole.group(2))
    return _REFERENCE.sub(lambda m: str(one(m.group(1), m.group(2))), value)


def _halted(message: str) -> SubResponse:
    return SubResponse(400, [{"errorCode": "PROCESSING_HALTED", "message": message}])


# -- the resources --------------------------------------------------------------------------------
class CompositeRoutes:
    """``/composite``, ``/composite/batch``, ``/composite/tree/{sObject}``, ``/composite/graph``."""

    def __init__(
        self,
        store: Store,
        version: Callable[[Request], str],
        context: Callable[[Request], WriteContext],
    ) -> None:
        self.store = store
        self.version = version
        self.context = context
        self.subrequests = Subrequests()

    @staticmethod
    async def body(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError as exc:
            raise _bad(f"Unexpected character in request body: {exc}") from None
        if not isinstance(body, dict):
            raise _bad("Cannot deserialize the request body: expected a JSON object")
        return body

    # -- /composite --------------------------------------------------------------------------
    async def composite(self, request: Request) -> Response:
        self.version(request)
        body = await self.body(request)
        items = self.checked_items(body.get("compositeRequest"), "compositeRequest", MAX_COMPOSITE)
        heavy = sum(bool(_HEAVY.search(str(i.get("url", "")))) for i in items)
        if heavy > MAX_HEAVY:
            raise _bad(
                f"A composite request can contain at most {MAX_HEAVY} sObject Collections or query "
                f"subrequests; found {heavy}",
                "LIMIT_EXCEEDED",
            )
        results = await self.run(request, items, bool(body.get("allOrNone", False)))
        return json_response({"compositeResponse": results})

    @staticmethod
    def checked_items(raw: Any, name: str, limit: int) -> list[dict[str, Any]]:
        if not isinstance(raw, list) or not raw:
            raise _bad(f"{name} must be a non-empty array of subrequests")
        if len(raw) > limit:
            raise _bad(
                f"{name} exceeds the limit of {limit} subrequests: {len(raw)} were sent", "LIMIT_EXCEEDED"
            )
        seen: set[str] = set()
        for item in raw:
            if not isinstance(item, dict):
                raise _bad(f"Each {name} item must be a JSON object")
            for key in ("method", "url", "referenceId"):
                if not item.get(key):
                    raise _bad(f"Missing required field: {key}", "INVALID_INPUT")
            ref = str(item["referenceId"])
            if not _REF_ID.match(ref):
                raise _bad(
                    f"Invalid referenceId ('{ref}'): it must start with a letter and contain only "
                    "letters, digits and underscores",
                    "INVALID_INPUT",
                )
            if ref in seen:
                raise _bad(f"Duplicate referenceId provided in the request: {ref}", "INVALID_INPUT")
            seen.add(ref)
        return raw

    async def run(
        self, request: Request, items: Sequence[dict[str, Any]], all_or_none: bool
    ) -> list[dict[str, Any]]:
        """Run the subrequests in order; with ``all_or_none`` the first failure undoes them all."""
        done: dict[str, SubResponse] = {}
        order: list[str] = []
        failed_ref: str | None = None
        state = {FORCE_ALL_OR_NONE: True} if all_or_none else {}
        if all_or_none:
            self.store.begin()
        try:
            for item in items:
                ref = str(item["referenceId"])
                done[ref] = await self.one(request, item, done, state)
                order.append(ref)
                if all_or_none and done[ref].failed:
                    failed_ref = ref
                    break
        except BaseException:
            if all_or_none:
                self.store.rollback()
            raise
        if all_or_none and failed_ref is not None:
            self.store.rollback()
            return [
                _result(ref, done[ref] if ref == failed_ref else _halted(_ROLLED_BACK))
                for ref in (str(i["referenceId"]) for i in items)
            ]
        if all_or_none:
            self.store.commit()
        return [_result(ref, done[ref]) for ref in order]

    async def one(
        self,
        request: Request,
        item: dict[str, Any],
        done: Mapping[str, SubResponse],
        state: Mapping[str, Any],
    ) -> SubResponse:
        try:
            url = str(resolve_references(str(item["url"]), done))
            body = resolve_references(item.get("body"), done)
        except UnresolvedReferenceError as exc:
            return _halted(str(exc))
        if not url.startswith("/services/data/v"):
            return SubResponse(
                400, [{"errorCode": "INVALID_INPUT", "message": f"Invalid subrequest url: {url}"}]
            )
        headers = item.get("httpHeaders") if isinstance(item.get("httpHeaders"), dict) else None
        response = await self.subrequests.call(
            request, str(item["method"]), url, body, headers=headers, state=state
        )
        shown: dict[str, str] = {}
        if response.status == 201 and isinstance(response.body, dict) and response.body.get("id"):
            shown["Location"] = f"{urlsplit(url).path.rstrip('/')}/{response.body['id']}"
        return SubResponse(response.status, response.body, shown)

    # -- /composite/batch --------------------------------------------------------------------
    async def batch(self, request: Request) -> Response:
        self.version(request)
        body = await self.body(request)
        raw = body.get("batchRequests")
        if not isinstance(raw, list) or not raw:
            raise _bad("batchRequests must be a non-empty array of subrequests")
        if len(raw) > MAX_BATCH:
            raise _bad(
                f"batchRequests exceeds the limit of {MAX_BATCH} subrequests: {len(raw)} were sent",
                "LIMIT_EXCEEDED",
            )
        halt = bool(body.get("haltOnError", False))
        results: list[dict[str, Any]] = []
        has_errors = False
        for item in raw:
            if halt and has_errors:
                halted = [
                    {"errorCode": "BATCH_PROCESSING_HALTED", "message": "Batch processing halted per request"}
                ]
                results.append({"statusCode": 412, "result": halted})
                continue
            if not isinstance(item, dict) or not item.get("method") or not item.get("url"):
                raise _bad("Each batch request needs a method and a url", "INVALID_INPUT")
            given = str(item["url"])
            # "vNN.0/..." as documented; the full "/services/data/vNN.0/..." is taken too (clients
            # such as aiosalesforce send it)
            url = given if given.startswith("/services/data/") else "/services/data/" + given.lstrip("/")
            if not _BATCH_URL.match(url):
                raise _bad(f"Invalid batch request url: {item['url']}", "INVALID_INPUT")
            response = await self.subrequests.call(request, str(item["method"]), url, item.get("richInput"))
            has_errors = has_errors or response.status >= 400
            results.append({"statusCode": response.status, "result": response.body})
        return json_response({"hasErrors": has_errors, "results": results})

    # -- /composite/tree/{sObject} -----------------------------------------------------------
    async def tree(self, request: Request) -> Response:
        self.version(request)
        name = self.store.object_name(str(request.path_params["sobject"]))
        if name is None:
            raise ApiError.of(404, "NOT_FOUND", "The requested resource does not exist")
        records = (await self.body(request)).get("records")
        if not isinstance(records, list) or not records:
            raise _bad("The request body must have a records array")
        flat = list(self.flatten(name, records, None, 1))
        if len(flat) > MAX_TREE:
            raise _bad(
                f"The request exceeds the limit of {MAX_TREE} records: {len(flat)} were sent",
                "LIMIT_EXCEEDED",
            )
        if len({obj for obj, *_ in flat}) > MAX_TREE_TYPES:
            raise _bad(f"The request can contain at most {MAX_TREE_TYPES} object types", "LIMIT_EXCEEDED")
        refs = [ref for _, ref, *_ in flat]
        duplicate = next((r for r in refs if refs.count(r) > 1), None)
        if duplicate is not None:
            raise _bad(f"Duplicate ReferenceId provided in the request: {duplicate}", "INVALID_INPUT")
        return self.insert_tree(request, flat)

    def flatten(
        self, name: str, records: Sequence[Any], parent: tuple[str, str] | None, depth: int
    ) -> list[tuple[str, str, dict[str, Any], tuple[str, str] | None]]:
        """Depth-first ``(object, referenceId, fields, (parent referenceId, lookup field))``."""
        if depth > MAX_TREE_DEPTH:
            raise _bad(f"The request can nest records at most {MAX_TREE_DEPTH} levels deep", "LIMIT_EXCEEDED")
        obj = self.store.schema[name]
        children = {rel.name.casefold(): rel for rel in obj.child_relationships}
        out: list[tuple[str, str, dict[str, Any], tuple[str, str] | None]] = []
        for rec in records:
            attributes = rec.get("attributes") if isinstance(rec, dict) else None
            if not isinstance(attributes, dict) or not attributes.get("referenceId"):
                raise _bad("Each record needs attributes with a type and a referenceId", "INVALID_INPUT")
            if self.store.object_name(str(attributes.get("type", ""))) != name:
                raise _bad(f"Record type {attributes.get('type')} does not match {name}", "INVALID_TYPE")
            ref = str(attributes["referenceId"])
            fields: dict[str, Any] = {}
            nested: list[tuple[str, Any]] = []
            for key, value in rec.items():
                if key == "attributes":
                    continue
                if key.casefold() in children and isinstance(value, dict):
                    nested.append((key, value.get("records")))
                else:
                    fields[key] = value
            out.append((name, ref, fields, parent))
            for key, child_records in nested:
                rel = children[key.casefold()]
                if not isinstance(child_records, list):
                    raise _bad(f"{key} must hold a records array", "INVALID_INPUT")
                out.extend(self.flatten(rel.child, child_records, (ref, rel.field), depth + 1))
        return out

    def insert_tree(
        self, request: Request, flat: Sequence[tuple[str, str, dict[str, Any], tuple[str, str] | None]]
    ) -> Response:
        ctx = self.context(request)
        ids: dict[str, str] = {}
        errors: list[dict[str, Any]] = []
        self.store.begin()
        try:
            for name, ref, fields, parent in flat:
                values = dict(fields)
                if parent is not None:
                    if parent[0] not in ids:
                        continue  # its parent failed: reported through the parent
                    values[parent[1]] = ids[parent[0]]
                try:
                    if any(k.casefold() == "id" for k in values):
                        raise RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
                    ids[ref] = self.store.insert(name, values, ctx)
                except RecordError as exc:
                    errors.append({"referenceId": ref, "errors": [exc.collection_item()]})
        except BaseException:
            self.store.rollback()
            raise
        if errors:
            self.store.rollback()
            return json_response({"hasErrors": True, "results": errors}, 400)
        self.store.commit()
        results = [{"referenceId": ref, "id": ids[ref]} for _, ref, _, _ in flat]
        return json_response({"hasErrors": False, "results": results}, 201)

    # -- /composite/graph --------------------------------------------------------------------
    async def graph(self, request: Request) -> Response:
        self.version(request)
        graphs = (await self.body(request)).get("graphs")
        if not isinstance(graphs, list) or not graphs:
            raise _bad("graphs must be a non-empty array")
        out: list[dict[str, Any]] = []
        for graph in graphs:
            if not isinstance(graph, dict) or not graph.get("graphId"):
                raise _bad("Each graph needs a graphId and a compositeRequest", "INVALID_INPUT")
            items = self.checked_items(graph.get("compositeRequest"), "compositeRequest", MAX_GRAPH_NODES)
            results = await self.run(request, items, all_or_none=True)
            ok = not any(r["httpStatusCode"] >= 400 for r in results)
            out.append(
                {
                    "graphId": str(graph["graphId"]),
                    "graphResponse": {"compositeResponse": results},
                    "isSuccessful": ok,
                }
            )
        return json_response({"graphs": out})

    def routes(self, v: str) -> list[Route]:
        return [
            Route(f"{v}/composite", self.composite, methods=["POST"]),
            Route(f"{v}/composite/batch", self.batch, methods=["POST"]),
            Route(f"{v}/composite/tree/{{sobject}}", self.tree, methods=["POST"]),
            Route(f"{v}/composite/graph", self.graph, methods=["POST"]),
        ]


def _result(ref: str, response: SubResponse) -> dict[str, Any]:
    return {
        "body": response.body,
        "httpHeaders": response.headers,
        "httpStatusCode": response.status,
        "referenceId": ref,
    }
