"""The HubSpot emulator's ASGI app: CRM v3 objects/search/properties/pipelines/owners, v4 associations.

``create_app(scenario)`` seeds a :class:`~crm_sandbox.hubspot.store.Store` from the scenario's
``hubspot`` section and returns a Starlette app wrapped in bearer-token auth, HubSpot's rate
limits and the sandbox control plane (:class:`crm_sandbox.control.SandboxControl`): request
stats, injected faults rendered as HubSpot errors, and ``/__sandbox/reset`` back to the seed.

Behaviour that integrations trip over in production is reproduced on purpose, so a sync that
works here works against a real portal: batch limits of 100 inputs, 207 multi-status for missing
ids (and for invalid inputs only when each carries an ``objectWriteTraceId``, otherwise the whole
batch fails with 400/409 as HubSpot does), unique emails (409 with the existing id), unknown
properties and bad options (400), deal stages that must belong to the deal's pipeline, the
10,000-result search cap, and per-token rate limits with their headers.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.control import ASGIApp, Message, Receive, SandboxControl, Scope, Send, record_error
from crm_sandbox.hubspot.errors import (
    AUTH_MESSAGE,
    PORTAL_ID,
    HubSpotError,
    conflict,
    make_error_shape,
    not_found,
    rate_limit_body,
    validation_error,
)
from crm_sandbox.hubspot.kinds import KINDS, ObjectKind, iso_ms, resolve_kind
from crm_sandbox.hubspot.legacy import LegacyRoutes
from crm_sandbox.hubspot.merge import LifecycleRoutes
from crm_sandbox.hubspot.oauth import AppTokens, OAuthRoutes, is_oauth_path
from crm_sandbox.hubspot.properties import missing_property
from crm_sandbox.hubspot.ratelimit import RateLimiter
from crm_sandbox.hubspot.schemas import MetadataRoutes
from crm_sandbox.hubspot.search import execute, parse_request
from crm_sandbox.hubspot.store import (
    ASSOC_TYPES,
    DEFAULT_TYPE,
    Pipeline,
    Record,
    Stage,
    Store,
    Table,
    stage_metadata,
)

MAX_BATCH = 100
MAX_BATCH_WITH_HISTORY = 50
MAX_LIST_LIMIT = 100
MAX_OWNER_LIMIT = 500
MAX_ASSOC_PAGE = 500
MAX_ASSOC_BATCH_READ = 1000
MAX_ASSOC_BATCH_WRITE = 2000


class Portal:
    """The seeded store plus what is needed to reseed it on reset."""

    def __init__(
        self, scenario: Mapping[str, Any], clock: Callable[[], float], *, auto_companies: bool
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.auto_companies = auto_companies
        self.store = Store(scenario, clock, auto_create_companies=auto_companies)

    def reset(self) -> None:
        self.store = Store(self.scenario, self.clock, auto_create_companies=self.auto_companies)


# -- responses and request parsing ---------------------------------------------------------------


def json_response(body: Any, status: int = 200) -> Response:
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(data, status_code=status, media_type="application/json;charset=utf-8")


def no_content() -> Response:
    return Response(status_code=204)


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise validation_error(
            f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None


def list_param(request: Request, name: str) -> list[str] | None:
    """A multi-valued query parameter: repeated (``a=1&a=2``) or comma-separated, as HubSpot takes."""
    if name not in request.query_params:
        return None
    out: list[str] = []
    for raw in request.query_params.getlist(name):
        out.extend(p.strip() for p in raw.split(",") if p.strip())
    return out


def bool_param(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").strip().lower() == "true"


def int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise validation_error(f"Invalid {name} {raw!r}: must be a positive integer")
    value = int(raw)
    if value > maximum:
        raise validation_error(f"Invalid {name} {value}: the maximum is {maximum}")
    return value


def now_iso(store: Store) -> str:
    return iso_ms(store.now())


def _kind(raw: str) -> ObjectKind:
    kind = resolve_kind(raw)
    if kind is None:
        raise validation_error(f"Unable to infer object type from: {raw}")
    return kind


def _inputs(body: Any, maximum: int) -> list[Any]:
    if not isinstance(body, Mapping) or not isinstance(body.get("inputs"), list):
        raise validation_error("Invalid input JSON: the request needs an 'inputs' list")
    inputs: list[Any] = body["inputs"]
    if not all(isinstance(item, Mapping) for item in inputs):
        raise validation_error("Invalid input JSON: each input must be an object")
    if len(inputs) > maximum:
        raise validation_error(
            f"The maximum number of inputs supported in a batch request is {maximum}. "
            "Please reduce the number of items and try again"
        )
    return inputs


def _batch_body(store: Store, results: list[Any], errors: list[dict[str, Any]]) -> dict[str, Any]:
    stamp = now_iso(store)
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    body["startedAt"] = stamp
    body["completedAt"] = stamp
    return body


def _injected(code: str, kind: ObjectKind, ident: str, trace: str | None) -> dict[str, Any]:
    """The per-input error an injected ``record_error`` fault asks for, in HubSpot's words."""
    messages = {
        "OBJECT_NOT_FOUND": _not_found_message(kind),
        "VALIDATION_ERROR": "Property values were not valid",
        "CONFLICT": f"{kind.upper.capitalize()} already exists.",
        "INVALID_EMAIL": "Email address is invalid",
    }
    context: dict[str, list[str]] = {"ids": [ident]}
    if trace:
        context["objectWriteTraceId"] = [trace]
    return {
        "status": "error",
        "category": code,
        "message": messages.get(code, f"The record could not be processed ({code})."),
        "context": context,
    }


# -- rendering ------------------------------------------------------------------------------------


def render(
    store: Store,
    table: Table,
    rec: Record,
    names: Iterable[str] | None,
    *,
    full: bool = False,
    history: list[str] | None = None,
    associations: list[str] | None = None,
) -> dict[str, Any]:
    """A record as ``SimplePublicObject``: requested properties (null when empty) plus managed ones."""
    kind = table.kind
    props: dict[str, str | None] = {}
    if full:
        props.update(rec.props)
    else:
        active = table.registry.active
        for name in names if names is not None else kind.default_properties:
            if name in active or table.is_virtual(name):
                props[name] = table.value(rec, name)
    props["createdate"] = iso_ms(rec.created)
    props["hs_object_id"] = str(rec.id)
    props[kind.lastmod] = iso_ms(rec.updated)
    out: dict[str, Any] = {
        "id": str(rec.id),
        "properties": props,
        "createdAt": iso_ms(rec.created),
        "updatedAt": iso_ms(rec.updated),
        "archived": rec.archived_at is not None,
    }
    if rec.archived_at is not None:
        out["archivedAt"] = iso_ms(rec.archived_at)
    if history:
        out["propertiesWithHistory"] = _history(table, rec, history)
    if associations:
        assoc = _v3_associations(store, kind, rec.id, associations)
        if assoc:
            out["associations"] = assoc
    return out


def _history(table: Table, rec: Record, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        if table.registry.get(name) is None and not table.is_virtual(name):
            continue
        written = (rec.history or {}).get(name)
        entries: list[dict[str, Any]] = []
        if written:
            for value, ms in reversed(written):
                if value is not None:
                    entries.append({"value": value, "timestamp": iso_ms(ms), "sourceType": "API"})
        else:
            value = table.value(rec, name)
            if value is not None:
                entries.append({"value": value, "timestamp": iso_ms(rec.updated), "sourceType": "IMPORT"})
        out[name] = entries
    return out


def _v3_associations(store: Store, kind: ObjectKind, rid: int, to_names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw in to_names:
        to_kind = resolve_kind(raw)
        if to_kind is None or (kind.name, to_kind.name) not in DEFAULT_TYPE:
            continue
        rows = []
        for to_id, types in sorted(store.assoc.targets(kind.name, rid, to_kind.name).items()):
            for type_id in sorted(types):
                rows.append({"id": str(to_id), "type": ASSOC_TYPES[type_id].v3_name})
        if rows:
            out[to_kind.name] = {"results": rows}
    return out


# -- record lookups -------------------------------------------------------------------------------


def _check_id_property(table: Table, id_property: str | None, verb: str = "update/upsert") -> str:
    name = id_property or "hs_object_id"
    if name != "hs_object_id" and name not in table.unique_properties():
        raise validation_error(
            f"Unable to perform {verb} by non-unique {table.kind.type_id} property: {name}"
        )
    return name


def _lookup(table: Table, ident: str, id_property: str, archived: bool = False) -> Record | None:
    if archived and id_property == "hs_object_id":
        rec = table.records.get(int(ident)) if ident.isdigit() else None
        return rec if rec is not None and rec.archived_at is not None else None
    if archived:  # unique indexes hold live records only; archived lookups by value are rare
        for rid in table.archived:
            rec = table.records[rid]
            value = str(rec.id) if id_property == "hs_object_id" else rec.props.get(id_property)
            if value is not None and (value == ident or (id_property == "email" and value == ident.lower())):
                return rec
        return None
    return table.find_unique(id_property, ident)


# -- the app ----------------------------------------------------------------------------------------


class HubSpotApi:
    """Route handlers; each reads the portal's current store (replaced on reset)."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    @property
    def store(self) -> Store:
        return self.portal.store

    def table(self, request: Request) -> Table:
        return self.store.tables[_kind(request.path_params["objectType"]).name]

    # -- objects ------------------------------------------------------------------------------------
    async def list_objects(self, request: Request) -> Response:
        table = self.table(request)
        limit = int_param(request, "limit", 10, MAX_LIST_LIMIT)
        after = request.query_params.get("after")
        if after is not None and after != "" and not after.isdigit():
            raise validation_error(f"Invalid after value {after!r}")
        archived = bool_param(request, "archived")
        ids = table.archived if archived else table.live
        start = ids.bisect_left(int(after)) if after else 0
        chunk = list(ids.islice(start, start + limit + 1))
        names = list_param(request, "properties")
        history = list_param(request, "propertiesWithHistory")
        assoc = list_param(request, "associations")
        results = [
            render(self.store, table, table.records[rid], names, history=history, associations=assoc)
            for rid in chunk[:limit]
        ]
        body: dict[str, Any] = {"results": results}
        if len(chunk) > limit:
            nxt = str(chunk[limit])
            link = request.url.include_query_params(after=nxt)
            body["paging"] = {"next": {"after": nxt, "link": str(link)}}
        return json_response(body)

    async def get_object(self, request: Request) -> Response:
        table = self.table(request)
        id_property = _check_id_property(table, request.query_params.get("idProperty"), "read")
        rec = _lookup(table, request.path_params["objectId"], id_property, bool_param(request, "archived"))
        if rec is None:
            raise not_found()
        names = list_param(request, "properties")
        return json_response(
            render(
                self.store,
                table,
                rec,
                names,
                history=list_param(request, "propertiesWithHistory"),
                associations=list_param(request, "associations"),
            )
        )

    async def create_object(self, request: Request) -> Response:
        table = self.table(request)
        body = await read_json(request)
        if not isinstance(body, Mapping):
            raise validation_error("Invalid input JSON: expected an object with 'properties'")
        changes, created = self.store.prepare(table, body.get("properties"), None)
        links = self._create_associations(table, body.get("associations"))
        rec = self.store.create(table, changes, created)
        for to_type, to_id, type_ids in links:
            self.store.associate(table.kind.name, rec.id, to_type, to_id, type_ids)
        self._after_contact_write(table, rec, changes)
        return json_response(render(self.store, table, rec, None, full=True), 201)

    def _after_contact_write(self, table: Table, rec: Record, changes: Mapping[str, str | None]) -> None:
        if table.kind.name == "contacts" and changes.get("email"):
            self.store.auto_company(rec)

    def _create_associations(self, table: Table, raw: Any) -> list[tuple[str, int, list[int]]]:
        """Validate the ``associations`` of a create: type ids valid from this type, targets live."""
        if not raw:
            return []
        if not isinstance(raw, list):
            raise validation_error("associations must be a list")
        out: list[tuple[str, int, list[int]]] = []
        for item in raw:
            to_id = str(((item or {}).get("to") or {}).get("id", ""))
            type_ids: list[int] = []
            to_type = None
            for spec in (item or {}).get("types") or []:
                type_id = int(spec.get("associationTypeId", -1))
                known = ASSOC_TYPES.get(type_id)
                if known is None or known.from_type != table.kind.name:
                    raise validation_error(
                        f"{type_id} is not a valid association type id from {table.kind.name}"
                    )
                if to_type not in (None, known.to_type):
                    raise validation_error("All types of one association must join the same object types")
                to_type = known.to_type
                type_ids.append(type_id)
            if to_type is None:
                raise validation_error("Each association needs at least one type")
            if not to_id.isdigit() or self.store.tables[to_type].get_live(int(to_id)) is None:
                raise validation_error(f"Cannot associate to {to_type} {to_id}: it does not exist")
            out.append((to_type, int(to_id), type_ids))
        return out

    async def update_object(self, request: Request) -> Response:
        table = self.table(request)
        id_property = _check_id_property(table, request.query_params.get("idProperty"))
        rec = _lookup(table, request.path_params["objectId"], id_property)
        if rec is None:
            raise not_found()
        body = await read_json(request)
        if not isinstance(body, Mapping):
            raise validation_error("Invalid input JSON: expected an object with 'properties'")
        changes, created = self.store.prepare(table, body.get("properties"), rec)
        self.store.apply(table, rec, changes, created)
        self._after_contact_write(table, rec, changes)
        return json_response(render(self.store, table, rec, None, full=True))

    async def archive_object(self, request: Request) -> Response:
        table = self.table(request)
        ident = request.path_params["objectId"]
        rec = table.get_live(int(ident)) if ident.isdigit() else None
        if rec is not None:
            self.store.archive(table, rec)
        return no_content()

    # -- batch --------------------------------------------------------------------------------------
    async def batch_read(self, request: Request) -> Response:
        table = self.table(request)
        body = await read_json(request)
        inputs = _inputs(body, MAX_BATCH)
        history = [str(p) for p in body.get("propertiesWithHistory") or []]
        if history and len(inputs) > MAX_BATCH_WITH_HISTORY:
            raise validation_error(
                f"The maximum number of inputs supported in a batch request for property histories is "
                f"{MAX_BATCH_WITH_HISTORY}. Please reduce the number of items and try again"
            )
        id_property = _check_id_property(table, body.get("idProperty"), "read")
        archived = bool_param(request, "archived")
        names = [str(p) for p in body.get("properties") or []] or None
        injected = record_error(request)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        missing: list[str] = []
        seen: set[int] = set()
        for item in inputs:
            ident = str((item or {}).get("id", ""))
            rec = _lookup(table, ident, id_property, archived)
            if rec is None:
                missing.append(ident)
                continue
            if rec.id in seen:
                continue
            seen.add(rec.id)
            if injected:
                errors.append(_injected(injected, table.kind, ident, None))
                injected = None
                continue
            results.append(render(self.store, table, rec, names, history=history or None))
        if missing:
            errors.insert(0, _missing_error(table.kind, missing))
        return json_response(_batch_body(self.store, results, errors), 207 if errors else 200)

    async def batch_create(self, request: Request) -> Response:
        table = self.table(request)
        inputs = _inputs(await read_json(request), MAX_BATCH)
        store = self.store
        planned: list[
            tuple[int, dict[str, str | None], int | None, list[tuple[str, int, list[int]]]] | None
        ] = []
        failures: dict[int, HubSpotError] = {}
        claimed: dict[tuple[str, str], int] = {}
        for index, item in enumerate(inputs):
            try:
                if not isinstance(item, Mapping):
                    raise validation_error("Each input must be an object with 'properties'")
                changes, created = store.prepare(table, item.get("properties"), None)
                links = self._create_associations(table, item.get("associations"))
                rid = store.new_id()
                self._claim_unique(table, changes, rid, claimed)
                planned.append((rid, changes, created, links))
            except HubSpotError as exc:
                failures[index] = exc
                planned.append(None)
        self._fail_whole_batch(inputs, failures)
        errors = self._inject(request, table, inputs, planned, failures)
        results = []
        for index, plan in enumerate(planned):
            if plan is None or index in failures:
                continue
            rid, changes, created, links = plan
            rec = store.create(table, changes, created, rid=rid)
            for to_type, to_id, type_ids in links:
                store.associate(table.kind.name, rec.id, to_type, to_id, type_ids)
            self._after_contact_write(table, rec, changes)
            results.append(_traced(render(store, table, rec, None, full=True), inputs[index]))
        errors = [*self._failure_entries(inputs, failures), *errors]
        return json_response(_batch_body(store, results, errors), 207 if errors else 201)

    async def batch_update(self, request: Request) -> Response:
        table = self.table(request)
        inputs = _inputs(await read_json(request), MAX_BATCH)
        _reject_object_id_property(table, inputs)
        store = self.store
        keys = [
            (str((i or {}).get("idProperty") or "hs_object_id"), str((i or {}).get("id", ""))) for i in inputs
        ]
        _reject_duplicate_ids(keys)
        planned: list[tuple[Record, dict[str, str | None], int | None] | None] = []
        failures: dict[int, HubSpotError] = {}
        missing: list[str] = []
        claimed: dict[tuple[str, str], int] = {}
        for index, item in enumerate(inputs):
            id_property = _check_id_property(table, keys[index][0])
            rec = _lookup(table, keys[index][1], id_property)
            if rec is None:
                missing.append(keys[index][1])
                planned.append(None)
                continue
            try:
                changes, created = store.prepare(table, item.get("properties"), rec)
                self._claim_unique(table, changes, rec.id, claimed)
                planned.append((rec, changes, created))
            except HubSpotError as exc:
                failures[index] = exc
                planned.append(None)
        self._fail_whole_batch(inputs, failures)
        errors = self._inject(request, table, inputs, planned, failures)
        results = []
        for index, plan in enumerate(planned):
            if plan is None or index in failures:
                continue
            rec, changes, created = plan
            store.apply(table, rec, changes, created)
            self._after_contact_write(table, rec, changes)
            results.append(_traced(render(store, table, rec, None, full=True), inputs[index]))
        head = [_missing_error(table.kind, missing)] if missing else []
        errors = [*head, *self._failure_entries(inputs, failures), *errors]
        return json_response(_batch_body(store, results, errors), 207 if errors else 200)

    async def batch_upsert(self, request: Request) -> Response:
        table = self.table(request)
        inputs = _inputs(await read_json(request), MAX_BATCH)
        _reject_object_id_property(table, inputs)
        store = self.store
        keys = []
        for item in inputs:
            id_property = _check_id_property(table, str((item or {}).get("idProperty") or "hs_object_id"))
            ident = str((item or {}).get("id", ""))
            keys.append((id_property, ident.lower() if id_property == "email" else ident))
        _reject_duplicate_ids(keys)
        planned: list[tuple[Record | None, dict[str, str | None], int | None, int] | None] = []
        failures: dict[int, HubSpotError] = {}
        missing: list[str] = []
        claimed: dict[tuple[str, str], int] = {}
        for index, item in enumerate(inputs):
            id_property, ident = keys[index]
            rec = _lookup(table, ident, id_property)
            if rec is None and id_property == "hs_object_id":
                missing.append(ident)
                planned.append(None)
                continue
            try:
                props = dict(item.get("properties") or {})
                if rec is None:
                    props[id_property] = ident
                changes, created = store.prepare(table, props, rec)
                rid = rec.id if rec is not None else store.new_id()
                self._claim_unique(table, changes, rid, claimed)
                planned.append((rec, changes, created, rid))
            except HubSpotError as exc:
                failures[index] = exc
                planned.append(None)
        self._fail_whole_batch(inputs, failures)
        errors = self._inject(request, table, inputs, planned, failures)
        results = []
        for index, plan in enumerate(planned):
            if plan is None or index in failures:
                continue
            existing, changes, created, rid = plan
            if existing is None:
                rec = store.create(table, changes, created, rid=rid)
            else:
                rec = existing
                store.apply(table, rec, changes, created)
            self._after_contact_write(table, rec, changes)
            rendered = render(store, table, rec, None, full=True)
            rendered["new"] = existing is None
            results.append(_traced(rendered, inputs[index]))
        head = [_missing_error(table.kind, missing)] if missing else []
        errors = [*head, *self._failure_entries(inputs, failures), *errors]
        return json_response(_batch_body(store, results, errors), 207 if errors else 200)

    async def batch_archive(self, request: Request) -> Response:
        table = self.table(request)
        inputs = _inputs(await read_json(request), MAX_BATCH)
        injected = record_error(request)
        errors: list[dict[str, Any]] = []
        for item in inputs:
            ident = str((item or {}).get("id", ""))
            rec = table.get_live(int(ident)) if ident.isdigit() else None
            if rec is None:
                continue
            if injected:
                errors.append(_injected(injected, table.kind, ident, None))
                injected = None
                continue
            self.store.archive(table, rec)
        if errors:
            return json_response(_batch_body(self.store, [], errors), 207)
        return no_content()

    # -- batch helpers --------------------------------------------------------------------------------
    def _claim_unique(
        self, table: Table, changes: Mapping[str, str | None], rid: int, claimed: dict[tuple[str, str], int]
    ) -> None:
        """Two inputs of one batch may not give the same unique value (e.g. the same email)."""
        for name in table.unique_properties():
            value = changes.get(name)
            if value is None:
                continue
            key = (name, value.lower() if name == "email" else value)
            holder = claimed.get(key)
            if holder is not None and holder != rid:
                raise self.store.duplicate(table, name, value, holder)
            claimed[key] = rid

    @staticmethod
    def _fail_whole_batch(inputs: list[Any], failures: Mapping[int, HubSpotError]) -> None:
        """HubSpot fails the whole batch on an invalid input unless inputs opt in to multi-status.

        Opting in means giving each input an ``objectWriteTraceId``; then invalid inputs are
        reported in a 207 and the rest are written.
        """
        for index in sorted(failures):
            item = inputs[index]
            if not (isinstance(item, Mapping) and item.get("objectWriteTraceId")):
                raise failures[index]

    @staticmethod
    def _failure_entries(inputs: list[Any], failures: Mapping[int, HubSpotError]) -> list[dict[str, Any]]:
        out = []
        for index in sorted(failures):
            trace = str(inputs[index].get("objectWriteTraceId"))
            out.append(failures[index].standard_error({"objectWriteTraceId": [trace]}))
        return out

    @staticmethod
    def _inject(
        request: Request,
        table: Table,
        inputs: list[Any],
        planned: list[Any],
        failures: dict[int, HubSpotError],
    ) -> list[dict[str, Any]]:
        """Fail exactly one otherwise-valid input with the injected ``record_error`` code."""
        code = record_error(request)
        if not code:
            return []
        for index, plan in enumerate(planned):
            if plan is not None and index not in failures:
                item = inputs[index] if isinstance(inputs[index], Mapping) else {}
                ident = str(item.get("id") or "")
                trace = item.get("objectWriteTraceId")
                planned[index] = None
                return [_injected(code, table.kind, ident, str(trace) if trace else None)]
        return []

    # -- search -------------------------------------------------------------------------------------
    async def search(self, request: Request) -> Response:
        table = self.table(request)
        req = parse_request(table, await read_json(request))
        page, total = execute(table, req)
        results = [render(self.store, table, rec, req.properties) for rec in page]
        body: dict[str, Any] = {"total": total, "results": results}
        if req.after + req.limit < total:
            body["paging"] = {"next": {"after": str(req.after + req.limit)}}
        return json_response(body)

    # -- properties ---------------------------------------------------------------------------------
    def _registry_kind(self, request: Request) -> ObjectKind:
        return _kind(request.path_params["objectType"])

    def _render_property(self, kind: ObjectKind, name: str) -> dict[str, Any]:
        definition = self.store.registries[kind.name].active[name]
        return definition.to_json(self.store.dynamic_options(kind.name, name))

    async def list_properties(self, request: Request) -> Response:
        kind = self._registry_kind(request)
        registry = self.store.registries[kind.name]
        if bool_param(request, "archived"):
            return json_response({"results": [d.to_json() for d in registry.archived.values()]})
        return json_response({"results": [self._render_property(kind, name) for name in registry.active]})

    async def get_property(self, request: Request) -> Response:
        kind = self._registry_kind(request)
        name = request.path_params["propertyName"]
        if name not in self.store.registries[kind.name].active:
            raise missing_property(name, kind.name)
        return json_response(self._render_property(kind, name))

    async def create_property(self, request: Request) -> Response:
        kind = self._registry_kind(request)
        body = await read_json(request)
        if not isinstance(body, Mapping):
            raise validation_error("Invalid input JSON: expected a property definition")
        definition = self.store.registries[kind.name].create(body, now_iso(self.store))
        if definition.has_unique_value:
            self.store.tables[kind.name].add_unique_property(definition.name)
        return json_response(self._render_property(kind, definition.name), 201)

    async def update_property(self, request: Request) -> Response:
        kind = self._registry_kind(request)
        body = await read_json(request)
        if not isinstance(body, Mapping):
            raise validation_error("Invalid input JSON: expected a property update")
        name = request.path_params["propertyName"]
        self.store.registries[kind.name].update(name, body, now_iso(self.store))
        return json_response(self._render_property(kind, name))

    async def archive_property(self, request: Request) -> Response:
        kind = self._registry_kind(request)
        self.store.registries[kind.name].archive(request.path_params["propertyName"], now_iso(self.store))
        return no_content()

    # -- pipelines ----------------------------------------------------------------------------------
    def _pipelines_kind(self, request: Request) -> None:
        kind = _kind(request.path_params["objectType"])
        if kind.name != "deals":
            raise validation_error(f"Pipelines are not supported for object type {kind.name} in this sandbox")

    def _pipeline(self, request: Request) -> Pipeline:
        self._pipelines_kind(request)
        pid = request.path_params["pipelineId"]
        pipeline = self.store.pipelines.get(pid)
        if pipeline is None or pipeline.archived:
            raise not_found(f"Unable to find a pipeline with id {pid}")
        return pipeline

    def _stage(self, request: Request) -> tuple[Pipeline, Stage]:
        pipeline = self._pipeline(request)
        sid = request.path_params["stageId"]
        stage = pipeline.stages.get(sid)
        if stage is None or stage.archived:
            raise not_found(f"Unable to find a stage with id {sid} in pipeline {pipeline.id}")
        return pipeline, stage

    def _check_label(self, label: Any, exclude: str | None = None) -> str:
        if not isinstance(label, str) or not label.strip():
            raise validation_error("A pipeline needs a non-empty label")
        for pipeline in self.store.pipelines.values():
            if not pipeline.archived and pipeline.id != exclude and pipeline.label == label:
                raise conflict(f"A pipeline with label {label} already exists for object type DEAL")
        return label

    def _new_stages(self, raw: Any, at: int) -> dict[str, Stage]:
        if not isinstance(raw, list) or not raw:
            raise validation_error("A pipeline needs at least one stage")
        stages: dict[str, Stage] = {}
        labels: set[str] = set()
        for index, item in enumerate(raw):
            stage = self._new_stage(item, index, at)
            if stage.label in labels:
                raise conflict(f"A stage with label {stage.label} already exists in this pipeline")
            labels.add(stage.label)
            stages[stage.id] = stage
        return stages

    def _new_stage(self, item: Any, index: int, at: int) -> Stage:
        if (
            not isinstance(item, Mapping)
            or not isinstance(item.get("label"), str)
            or not item["label"].strip()
        ):
            raise validation_error("Each stage needs a non-empty label")
        meta = stage_metadata(item.get("metadata"), required=True)
        order = int(item.get("displayOrder", index))
        return Stage(str(self.store.new_id()), item["label"], order, meta, at, at)

    async def list_pipelines(self, request: Request) -> Response:
        self._pipelines_kind(request)
        live = [p for p in self.store.pipelines.values() if not p.archived]
        live.sort(key=lambda p: (p.display_order, p.label))
        return json_response({"results": [p.to_json() for p in live]})

    async def get_pipeline(self, request: Request) -> Response:
        return json_response(self._pipeline(request).to_json())

    async def create_pipeline(self, request: Request) -> Response:
        self._pipelines_kind(request)
        body = await read_json(request)
        if not isinstance(body, Mapping):
            raise validation_error("Invalid input JSON: expected a pipeline")
        label = self._check_label(body.get("label"))
        at = self.store.now()
        stages = self._new_stages(body.get("stages"), at)
        pipeline = Pipeline(str(self.store.new_id()), label, int(body.get("displayOrder", 0)), stages, at, at)
        self.store.pipelines[pipeline.id] = pipeline
        return json_response(pipeline.to_json(), 201)

    async def update_pipeline(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        body = await read_json(request)
        if not isinstance(body, Mapping):
            raise validation_error("Invalid input JSON: expected a pipeline update")
        if "label" in body:
            pipeline.label = self._check_label(body["label"], exclude=pipeline.id)
        if "displayOrder" in body:
            pipeline.display_order = int(body["displayOrder"])
        if body.get("archived") is True:
            pipeline.archived = True
        pipeline.updated = self.store.now()
        return json_response(pipeline.to_json())

    async def replace_pipeline(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        body = await read_json(request)
        if not isinstance(body, Mapping):
            raise validation_error("Invalid input JSON: expected a pipeline")
        label = self._check_label(body.get("label"), exclude=pipeline.id)
        at = self.store.now()
        stages = self._new_stages(body.get("stages"), at)
        pipeline.label, pipeline.stages, pipeline.updated = label, stages, at
        pipeline.display_order = int(body.get("displayOrder", pipeline.display_order))
        return json_response(pipeline.to_json())

    async def delete_pipeline(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        if bool_param(request, "validateReferencesBeforeDelete"):
            in_use = self.store.tables["deals"].eq_index("pipeline").get(pipeline.id.lower())
            if in_use:
                raise conflict(f"Pipeline {pipeline.id} is used by {len(in_use)} deals and cannot be deleted")
        pipeline.archived = True
        pipeline.updated = self.store.now()
        return no_content()

    async def list_stages(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        return json_response({"results": [s.to_json() for s in pipeline.live_stages()]})

    async def get_stage(self, request: Request) -> Response:
        return json_response(self._stage(request)[1].to_json())

    async def create_stage(self, request: Request) -> Response:
        pipeline = self._pipeline(request)
        body = await read_json(request)
        stage = self._new_stage(body, len(pipeline.stages), self.store.now())
        if any(s.label == stage.label for s in pipeline.live_stages()):
            raise conflict(f"A stage with label {stage.label} already exists in this pipeline")
        pipeline.stages[stage.id] = stage
        pipeline.updated = stage.created
        return json_response(stage.to_json(), 201)

    async def update_stage(self, request: Request) -> Response:
        pipeline, stage = self._stage(request)
        body = await read_json(request)
        if not isinstance(body, Mapping):
            raise validation_error("Invalid input JSON: expected a stage update")
        if "label" in body:
            label = str(body["label"])
            if any(s.label == label and s.id != stage.id for s in pipeline.live_stages()):
                raise conflict(f"A stage with label {label} already exists in this pipeline")
            stage.label = label
        if "displayOrder" in body:
            stage.display_order = int(body["displayOrder"])
        if "metadata" in body:
            stage.metadata = {**stage.metadata, **stage_metadata(body["metadata"], required=False)}
            self.store.refresh_deal_stage(pipeline, stage)
        if body.get("archived") is True:
            stage.archived = True
        stage.updated = self.store.now()
        return json_response(stage.to_json())

    async def delete_stage(self, request: Request) -> Response:
        _, stage = self._stage(request)
        stage.archived = True
        stage.updated = self.store.now()
        return no_content()

    # -- owners -------------------------------------------------------------------------------------
    async def list_owners(self, request: Request) -> Response:
        limit = int_param(request, "limit", 100, MAX_OWNER_LIMIT)
        after = request.query_params.get("after") or ""
        if after and not after.isdigit():
            raise validation_error(f"Invalid after value {after!r}")
        email = (request.query_params.get("email") or "").strip().lower()
        owners = [
            o
            for o in self.store.live_owners(bool_param(request, "archived"))
            if (not email or o.email.lower() == email) and (not after or o.id >= int(after))
        ]
        body: dict[str, Any] = {"results": [o.to_json() for o in owners[:limit]]}
        if len(owners) > limit:
            nxt = str(owners[limit].id)
            body["paging"] = {
                "next": {"after": nxt, "link": str(request.url.include_query_params(after=nxt))}
            }
        return json_response(body)

    async def get_owner(self, request: Request) -> Response:
        ident = request.path_params["ownerId"]
        by_user = (request.query_params.get("idProperty") or "id") == "userId"
        archived = bool_param(request, "archived")
        for owner in self.store.owners.values():
            key = owner.user_id if by_user else owner.id
            if str(key) == ident and owner.archived == archived:
                return json_response(owner.to_json())
        raise not_found(f"Unable to find owner with {'userId' if by_user else 'id'} {ident}")

    # -- associations v4 ----------------------------------------------------------------------------
    def _pair(self, from_raw: str, to_raw: str) -> tuple[str, str]:
        from_kind, to_kind = _kind(from_raw), _kind(to_raw)
        if (from_kind.name, to_kind.name) not in DEFAULT_TYPE:
            raise validation_error(f"Associations from {from_kind.name} to {to_kind.name} are not supported")
        return from_kind.name, to_kind.name

    def _live(self, object_type: str, ident: Any) -> Record:
        text = str(ident)
        rec = self.store.tables[object_type].get_live(int(text)) if text.isdigit() else None
        if rec is None:
            raise not_found(
                f"Could not find {KINDS[object_type].upper} {text}; it may be deleted or not exist."
            )
        return rec

    @staticmethod
    def _types(pair: tuple[str, str], raw: Any) -> list[int]:
        if not isinstance(raw, list) or not raw:
            raise validation_error(
                "Association types must be a non-empty list of {associationCategory, associationTypeId}"
            )
        out = []
        for spec in raw:
            type_id = int((spec or {}).get("associationTypeId", -1))
            category = (spec or {}).get("associationCategory", "HUBSPOT_DEFINED")
            known = ASSOC_TYPES.get(type_id)
            if category != "HUBSPOT_DEFINED" or known is None or (known.from_type, known.to_type) != pair:
                raise validation_error(
                    f"{category} association type {type_id} is not valid from {pair[0]} to {pair[1]}"
                )
            out.append(type_id)
        return out

    @staticmethod
    def _type_list(types: Iterable[int]) -> list[dict[str, Any]]:
        return [
            {"category": "HUBSPOT_DEFINED", "typeId": t, "label": ASSOC_TYPES[t].label} for t in sorted(types)
        ]

    def _labels(self, pair: tuple[str, str], from_id: int, to_id: int) -> dict[str, Any]:
        types = self.store.assoc.types_between(pair[0], from_id, pair[1], to_id)
        return {
            "fromObjectTypeId": KINDS[pair[0]].type_id,
            "fromObjectId": from_id,
            "toObjectTypeId": KINDS[pair[1]].type_id,
            "toObjectId": to_id,
            "labels": sorted(label for t in types if (label := ASSOC_TYPES[t].label)),
        }

    def _default_results(self, pair: tuple[str, str], from_id: int, to_id: int) -> list[dict[str, Any]]:
        forward = DEFAULT_TYPE[pair]
        reverse = DEFAULT_TYPE[(pair[1], pair[0])]
        return [
            {
                "from": {"id": str(from_id)},
                "to": {"id": str(to_id)},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": forward},
            },
            {
                "from": {"id": str(to_id)},
                "to": {"id": str(from_id)},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": reverse},
            },
        ]

    def _page(
        self, pair: tuple[str, str], from_id: int, after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        targets = self.store.assoc.targets(pair[0], from_id, pair[1])
        ordered = sorted(targets)
        if after:
            if not after.isdigit():
                raise validation_error(f"Invalid after value {after!r}")
            ordered = [t for t in ordered if t >= int(after)]
        rows = [{"toObjectId": t, "associationTypes": self._type_list(targets[t])} for t in ordered[:limit]]
        nxt = str(ordered[limit]) if len(ordered) > limit else None
        return rows, nxt

    async def list_associations(self, request: Request) -> Response:
        pair = self._pair(request.path_params["objectType"], request.path_params["toObjectType"])
        ident = request.path_params["objectId"]
        limit = int_param(request, "limit", MAX_ASSOC_PAGE, MAX_ASSOC_PAGE)
        from_id = int(ident) if ident.isdigit() else -1
        rows, nxt = self._page(pair, from_id, request.query_params.get("after"), limit)
        body: dict[str, Any] = {"results": rows}
        if nxt is not None:
            body["paging"] = {
                "next": {"after": nxt, "link": str(request.url.include_query_params(after=nxt))}
            }
        return json_response(body)

    async def create_default_association(self, request: Request) -> Response:
        pair = self._pair(request.path_params["objectType"], request.path_params["toObjectType"])
        from_rec = self._live(pair[0], request.path_params["objectId"])
        to_rec = self._live(pair[1], request.path_params["toObjectId"])
        self.store.associate(pair[0], from_rec.id, pair[1], to_rec.id, [])
        return json_response(_batch_body(self.store, self._default_results(pair, from_rec.id, to_rec.id), []))

    async def create_labeled_association(self, request: Request) -> Response:
        pair = self._pair(request.path_params["objectType"], request.path_params["toObjectType"])
        type_ids = self._types(pair, await read_json(request))
        from_rec = self._live(pair[0], request.path_params["objectId"])
        to_rec = self._live(pair[1], request.path_params["toObjectId"])
        self.store.associate(pair[0], from_rec.id, pair[1], to_rec.id, type_ids)
        return json_response(self._labels(pair, from_rec.id, to_rec.id), 201)

    async def delete_association(self, request: Request) -> Response:
        pair = self._pair(request.path_params["objectType"], request.path_params["toObjectType"])
        from_raw, to_raw = request.path_params["objectId"], request.path_params["toObjectId"]
        if from_raw.isdigit() and to_raw.isdigit():
            self.store.dissociate(pair[0], int(from_raw), pair[1], int(to_raw))
        return no_content()

    async def batch_read_associations(self, request: Request) -> Response:
        pair = self._pair(request.path_params["fromObjectType"], request.path_params["toObjectType"])
        inputs = _inputs(await read_json(request), MAX_ASSOC_BATCH_READ)
        injected = record_error(request)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            ident = str((item or {}).get("id", ""))
            from_id = int(ident) if ident.isdigit() else -1
            rows, nxt = self._page(pair, from_id, (item or {}).get("after"), MAX_ASSOC_PAGE)
            if not rows:
                errors.append(_no_associations(pair, ident))
                continue
            if injected:
                errors.append(_injected(injected, KINDS[pair[0]], ident, None))
                injected = None
                continue
            result: dict[str, Any] = {"from": {"id": ident}, "to": rows}
            if nxt is not None:
                result["paging"] = {"next": {"after": nxt}}
            results.append(result)
        return json_response(_batch_body(self.store, results, errors), 207 if errors else 200)

    async def batch_create_associations(self, request: Request) -> Response:
        return await self._batch_associate(request, labelled=True)

    async def batch_default_associations(self, request: Request) -> Response:
        return await self._batch_associate(request, labelled=False)

    async def _batch_associate(self, request: Request, *, labelled: bool) -> Response:
        """Batch create of associations: with the labels each input names (``labelled``, answered
        201 with one labels row per pair) or with the default type (200, the default row each
        way). Both fail per input the same way: a bad input or an injected record error lands in
        ``errors`` (and makes the answer 207) while the other inputs are still associated.
        """
        pair = self._pair(request.path_params["fromObjectType"], request.path_params["toObjectType"])
        inputs = _inputs(await read_json(request), MAX_ASSOC_BATCH_WRITE)
        injected = record_error(request)
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for raw_item in inputs:
            item = raw_item if isinstance(raw_item, Mapping) else {}
            from_ident = str((item.get("from") or {}).get("id", ""))
            to_ident = str((item.get("to") or {}).get("id", ""))
            try:
                type_ids = self._types(pair, item.get("types")) if labelled else []
                from_rec = self._live(pair[0], from_ident)
                to_rec = self._live(pair[1], to_ident)
            except HubSpotError as exc:
                errors.append(exc.standard_error({"fromObjectId": [from_ident], "toObjectId": [to_ident]}))
                continue
            if injected:
                errors.append(_injected(injected, KINDS[pair[0]], from_ident, None))
                injected = None
                continue
            self.store.associate(pair[0], from_rec.id, pair[1], to_rec.id, type_ids)
            if labelled:
                results.append(self._labels(pair, from_rec.id, to_rec.id))
            else:
                results.extend(self._default_results(pair, from_rec.id, to_rec.id))
        ok_status = 201 if labelled else 200
        return json_response(_batch_body(self.store, results, errors), 207 if errors else ok_status)

    async def batch_archive_associations(self, request: Request) -> Response:
        pair = self._pair(request.path_params["fromObjectType"], request.path_params["toObjectType"])
        for raw_item in _inputs(await read_json(request), MAX_ASSOC_BATCH_WRITE):
            item = raw_item if isinstance(raw_item, Mapping) else {}
            from_ident = str((item.get("from") or {}).get("id", ""))
            for target in item.get("to") or []:
                to_ident = str((target or {}).get("id", ""))
                if from_ident.isdigit() and to_ident.isdigit():
                    self.store.dissociate(pair[0], int(from_ident), pair[1], int(to_ident))
        return no_content()

    async def batch_archive_labels(self, request: Request) -> Response:
        pair = self._pair(request.path_params["fromObjectType"], request.path_params["toObjectType"])
        for raw_item in _inputs(await read_json(request), MAX_ASSOC_BATCH_WRITE):
            item = raw_item if isinstance(raw_item, Mapping) else {}
            type_ids = self._types(pair, item.get("types"))
            from_ident = str((item.get("from") or {}).get("id", ""))
            to_ident = str((item.get("to") or {}).get("id", ""))
            if from_ident.isdigit() and to_ident.isdigit():
                self.store.dissociate(pair[0], int(from_ident), pair[1], int(to_ident), type_ids)
        return no_content()

    # -- routing ------------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route(r.path, _malformed_input_is_400(r.endpoint), methods=sorted(r.methods or ()))
            for r in self._routes()
        ]

    def _routes(self) -> list[Route]:
        objects = "/crm/v3/objects/{objectType}"
        pipelines = "/crm/v3/pipelines/{objectType}"
        v4 = "/crm/v4/objects/{objectType}/{objectId}/associations"
        v4_batch = "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch"

        def store_of() -> Store:
            return self.portal.store

        return [
            # before the generic ones: .../properties/{objectType}/groups is not a property name
            *MetadataRoutes(store_of).routes(),
            *LifecycleRoutes(store_of, lambda store, table, rec: render(store, table, rec, None)).routes(),
            *LegacyRoutes(store_of).routes(),
            Route(objects, self.list_objects, methods=["GET"]),
            Route(objects, self.create_object, methods=["POST"]),
            Route(objects + "/search", self.search, methods=["POST"]),
            Route(objects + "/batch/read", self.batch_read, methods=["POST"]),
            Route(objects + "/batch/create", self.batch_create, methods=["POST"]),
            Route(objects + "/batch/update", self.batch_update, methods=["POST"]),
            Route(objects + "/batch/upsert", self.batch_upsert, methods=["POST"]),
            Route(objects + "/batch/archive", self.batch_archive, methods=["POST"]),
            Route(objects + "/{objectId}", self.get_object, methods=["GET"]),
            Route(objects + "/{objectId}", self.update_object, methods=["PATCH"]),
            Route(objects + "/{objectId}", self.archive_object, methods=["DELETE"]),
            Route("/crm/v3/properties/{objectType}", self.list_properties, methods=["GET"]),
            Route("/crm/v3/properties/{objectType}", self.create_property, methods=["POST"]),
            Route("/crm/v3/properties/{objectType}/{propertyName}", self.get_property, methods=["GET"]),
            Route("/crm/v3/properties/{objectType}/{propertyName}", self.update_property, methods=["PATCH"]),
            Route(
                "/crm/v3/properties/{objectType}/{propertyName}", self.archive_property, methods=["DELETE"]
            ),
            Route(pipelines, self.list_pipelines, methods=["GET"]),
            Route(pipelines, self.create_pipeline, methods=["POST"]),
            Route(pipelines + "/{pipelineId}", self.get_pipeline, methods=["GET"]),
            Route(pipelines + "/{pipelineId}", self.update_pipeline, methods=["PATCH"]),
            Route(pipelines + "/{pipelineId}", self.replace_pipeline, methods=["PUT"]),
            Route(pipelines + "/{pipelineId}", self.delete_pipeline, methods=["DELETE"]),
            Route(pipelines + "/{pipelineId}/stages", self.list_stages, methods=["GET"]),
            Route(pipelines + "/{pipelineId}/stages", self.create_stage, methods=["POST"]),
            Route(pipelines + "/{pipelineId}/stages/{stageId}", self.get_stage, methods=["GET"]),
            Route(pipelines + "/{pipelineId}/stages/{stageId}", self.update_stage, methods=["PATCH"]),
            Route(pipelines + "/{pipelineId}/stages/{stageId}", self.delete_stage, methods=["DELETE"]),
            Route("/crm/v3/owners", self.list_owners, methods=["GET"]),
            Route("/crm/v3/owners/", self.list_owners, methods=["GET"]),
            Route("/crm/v3/owners/{ownerId}", self.get_owner, methods=["GET"]),
            Route(v4 + "/{toObjectType}", self.list_associations, methods=["GET"]),
            Route(
                v4 + "/default/{toObjectType}/{toObjectId}",
                self.create_default_association,
                methods=["PUT"],
            ),
            Route(v4 + "/{toObjectType}/{toObjectId}", self.create_labeled_association, methods=["PUT"]),
            Route(v4 + "/{toObjectType}/{toObjectId}", self.delete_association, methods=["DELETE"]),
            Route(v4_batch + "/read", self.batch_read_associations, methods=["POST"]),
            Route(v4_batch + "/create", self.batch_create_associations, methods=["POST"]),
            Route(v4_batch + "/associate/default", self.batch_default_associations, methods=["POST"]),
            Route(v4_batch + "/archive", self.batch_archive_associations, methods=["POST"]),
            Route(v4_batch + "/labels/archive", self.batch_archive_labels, methods=["POST"]),
        ]


Endpoint = Callable[[Request], Awaitable[Response]]


def _malformed_input_is_400(endpoint: Any) -> Endpoint:
    """Answer a request body of the wrong shape (a string where a number belongs...) with a 400.

    HubSpot rejects such input as ``VALIDATION_ERROR``; without this the emulator would answer
    500, which a client would wrongly treat as a transient server fault and retry.
    """
    handler: Endpoint = endpoint

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except (ValueError, TypeError, KeyError) as exc:
            raise validation_error(f"Invalid input JSON: {exc}") from None

    return wrapped


def _traced(rendered: dict[str, Any], item: Any) -> dict[str, Any]:
    trace = item.get("objectWriteTraceId") if isinstance(item, Mapping) else None
    if trace:
        rendered["objectWriteTraceId"] = str(trace)
    return rendered


def _not_found_message(kind: ObjectKind) -> str:
    prefix = f"Could not get some {kind.upper} objects"
    return f"{prefix}, they may be deleted or not exist. Check that ids are valid."


def _missing_error(kind: ObjectKind, ids: list[str]) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": _not_found_message(kind),
        "context": {"ids": ids},
    }


def _no_associations(pair: tuple[str, str], ident: str) -> dict[str, Any]:
    to_name = KINDS[pair[1]].upper.lower()
    from_name = KINDS[pair[0]].upper.lower()
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
        "message": f"No {to_name} is associated with {from_name} {ident}.",
        "context": {"fromObjectId": [ident], "toObjectType": [to_name]},
    }


def _reject_object_id_property(table: Table, inputs: list[Any]) -> None:
    """``hs_object_id`` is the record id, not a unique property: naming it as ``idProperty`` of a
    batch update/upsert fails the batch (the record id goes in ``id`` with no ``idProperty``).
    Seen in production: https://github.com/segmentio/action-destinations/pull/3957
    """
    if any(isinstance(i, Mapping) and i.get("idProperty") == "hs_object_id" for i in inputs):
        raise validation_error(
            f"Unable to perform update/upsert by non-unique {table.kind.type_id} property hs_object_id "
            f"in portal ID {PORTAL_ID}"
        )


def _reject_duplicate_ids(keys: list[tuple[str, str]]) -> None:
    seen: set[tuple[str, str]] = set()
    duplicates: list[str] = []
    for key in keys:
        if key in seen and key[1] not in duplicates:
            duplicates.append(key[1])
        seen.add(key)
    if duplicates:
        listed = ", ".join(duplicates)
        raise validation_error(f"Duplicate IDs found in batch input: [{listed}]. IDs must be unique")


# -- auth and rate limits --------------------------------------------------------------------------


def _bearer(scope: Scope) -> str:
    for key, value in scope.get("headers") or []:
        if key == b"authorization":
            text = bytes(value).decode("latin-1").strip()
            if text.lower().startswith("bearer "):
                return text[7:].strip()
            return ""
    return ""


async def _send_json(send: Send, status: int, body: Any, headers: Mapping[str, str]) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json;charset=utf-8"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def guard(app: ASGIApp, tokens: set[str] | None, limiter: RateLimiter) -> ASGIApp:
    """Bearer-token auth (401 in HubSpot's shape) and rate limits (429 + headers) around the API."""

    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_oauth_path(str(scope["path"])):
            await app(scope, receive, send)
            return
        token = _bearer(scope)
        if not token or (tokens is not None and token not in tokens):
            body = HubSpotError(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION").body()
            await _send_json(send, 401, body, {})
            return
        is_search = scope["method"] == "POST" and str(scope["path"]).rstrip("/").endswith("/search")
        decision = limiter.check(token, search=is_search)
        if not decision.allowed:
            await _send_json(
                send, 429, rate_limit_body(decision.policy or "TEN_SECONDLY_ROLLING"), decision.headers
            )
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in decision.headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await app(scope, receive, send_with_headers)

    return guarded


async def _hubspot_error(request: Request, exc: Exception) -> Response:
    del request
    assert isinstance(exc, HubSpotError)
    return json_response(exc.body(), exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    del request
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return json_response(HubSpotError(405, "Method Not Allowed", "VALIDATION_ERROR").body(), 405)
    return json_response(not_found().body(), 404)


def create_app(
    scenario: Mapping[str, Any],
    *,
    requests_per_10s: int = 190,
    search_per_second: int = 5,
    daily_limit: int = 1_000_000,
    auto_create_companies: bool | None = None,
    clock: Callable[[], float] = time.time,
) -> ASGIApp:
    """The HubSpot emulator seeded from ``scenario['hubspot']``, wrapped by :class:`SandboxControl`.

    ``requests_per_10s``/``search_per_second``/``daily_limit`` are the per-token rate limits;
    ``clock`` (a ``time.time``-like callable) drives record timestamps and rate windows, so tests
    can move time instead of sleeping. A top-level ``scenario['tokens']`` restricts accepted
    bearer tokens; without it any non-empty token is accepted.

    ``auto_create_companies`` turns on HubSpot's "create and associate companies with contacts"
    account setting (on in new real portals; off here unless asked, so counts stay predictable);
    ``scenario['hubspot']['settings']['auto_create_companies']`` sets it from a scenario file.
    """
    if auto_create_companies is None:
        settings = (scenario.get("hubspot") or {}).get("settings") or {}
        auto_create_companies = bool(settings.get("auto_create_companies", False))
    portal = Portal(scenario, clock, auto_companies=auto_create_companies)
    api = HubSpotApi(portal)
    limiter = RateLimiter(
        requests_per_10s=requests_per_10s,
        search_per_second=search_per_second,
        daily_limit=daily_limit,
        clock=clock,
    )
    raw_tokens = scenario.get("tokens")
    tokens = {str(t) for t in raw_tokens} if raw_tokens is not None else None
    app_tokens = AppTokens(tokens, frozenset(tokens or ()))
    starlette = Starlette(
        routes=[*api.routes(), *OAuthRoutes(app_tokens).routes()],
        exception_handlers={HubSpotError: _hubspot_error, HTTPException: _http_error},
    )

    def on_reset() -> None:
        portal.reset()
        limiter.reset()

    control = SandboxControl(error_shape=make_error_shape(requests_per_10s), on_reset=on_reset)
    return control.wrap(guard(starlette, tokens, limiter))
