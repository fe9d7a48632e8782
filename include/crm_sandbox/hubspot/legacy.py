"""The legacy HubSpot endpoints widely used connectors still call, each in its own API's shape.

* Properties v1/v2 (developers.hubspot.com legacy "Contact Properties API" / "Company Properties
  API" / "Deal Properties API"): ``GET /properties/v2/{objectType}/properties`` (and ``v1``, for
  every object, with or without a trailing slash, as older clients send it) answer a bare JSON
  list of property definitions with ``name``, ``label``, ``description``, ``groupName``,
  ``type``, ``fieldType``, ``options`` (``label``, ``value``, ``displayOrder``, ``hidden``,
  ``description``, ``readOnly``),
  ``readOnlyValue``, ``readOnlyDefinition``, ``calculated``, ``externalOptions``,
  ``hasUniqueValue``, ``hubspotDefined``, ``createdAt``/``updatedAt`` in epoch milliseconds,
  ``deleted``…; ``.../properties/named/{name}`` one of them (404 when unknown);
  ``GET /properties/v2/{objectType}/groups`` the groups (``name``, ``displayName``,
  ``displayOrder``, ``hubspotDefined``; with ``includeProperties=true`` their ``properties``).
* CRM Pipelines v1 (legacy "CRM Pipelines API"): ``GET /crm-pipelines/v1/pipelines/deals``
  answers ``{"results": [pipeline]}`` with ``pipelineId``, ``objectType`` ``DEAL``,
  ``objectTypeId`` ``0-3``, ``label``, ``displayOrder``, ``active``, ``default``, epoch-ms
  ``createdAt``/``updatedAt`` and ``stages`` (``stageId``, ``label``, ``displayOrder``,
  ``probability`` as a number, ``closedWon``, ``active``, ``metadata``); the older Deal Pipelines
  API ``GET /deals/v1/pipelines`` answers the same pipelines as a bare list.
* Owners v2 (legacy "Owners API"): ``GET /owners/v2/owners``, a bare list of owners with numeric
  ``ownerId``, ``portalId``, ``type``, names, ``email``, epoch-ms ``createdAt``/``updatedAt``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.hubspot.errors import PORTAL_ID, HubSpotError, validation_error
from crm_sandbox.hubspot.kinds import ObjectKind, resolve_kind
from crm_sandbox.hubspot.properties import PropertyDef
from crm_sandbox.hubspot.schemas import DEFAULT_GROUPS
from crm_sandbox.hubspot.store import Pipeline, Stage, Store


def epoch_ms(iso: str | None) -> int:
    if not iso:
        return 0
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def v2_property(definition: PropertyDef, options: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One property in the v1/v2 Properties API's shape."""
    shown = options if options is not None else [o.to_json() for o in definition.options]
    return {
        "name": definition.name,
        "label": definition.label,
        "description": definition.description,
        "groupName": definition.group_name,
        "type": definition.type,
        "fieldType": definition.field_type,
        "fieldLevelPermission": None,
        "options": [{**o, "readOnly": definition.hubspot_defined} for o in shown],
        "displayOrder": definition.display_order,
        "readOnlyValue": definition.read_only_value,
        "readOnlyDefinition": definition.hubspot_defined,
        "hidden": definition.hidden,
        "mutableDefinitionNotDeletable": definition.hubspot_defined,
        "favorited": False,
        "favoritedOrder": -1,
        "calculated": definition.calculated,
        "externalOptions": definition.dynamic_options,
        "displayMode": "current_value",
        "formField": definition.form_field,
        "hubspotDefined": True if definition.hubspot_defined else None,
        "createdUserId": None,
        "updatedUserId": None,
        "searchableInGlobalSearch": False,
        "hasUniqueValue": definition.has_unique_value,
        "deleted": definition.archived,
        "createdAt": epoch_ms(definition.created_at),
        "updatedAt": epoch_ms(definition.updated_at),
        "currencyPropertyName": None,
        "numberDisplayHint": None,
        "showCurrencySymbol": None,
        "optionsAreMutable": None,
        "referencedObjectType": None,
        "isCustomizedDefault": False,
    }


def v1_stage(stage: Stage) -> dict[str, Any]:
    return {
        "stageId": stage.id,
        "label": stage.label,
        "displayOrder": stage.display_order,
        "probability": stage.probability,
        "closedWon": stage.is_closed and stage.probability >= 1.0,
        "active": not stage.archived,
        "metadata": dict(stage.metadata),
        "createdAt": stage.created,
        "updatedAt": stage.updated,
    }


def v1_pipeline(pipeline: Pipeline, *, default: bool) -> dict[str, Any]:
    return {
        "pipelineId": pipeline.id,
        "objectType": "DEAL",
        "objectTypeId": "0-3",
        "label": pipeline.label,
        "displayOrder": pipeline.display_order,
        "active": not pipeline.archived,
        "default": default,
        "stages": [v1_stage(s) for s in pipeline.live_stages()],
        "createdAt": pipeline.created,
        "updatedAt": pipeline.updated,
    }


class LegacyRoutes:
    """Properties v1/v2 and deal pipelines v1, read from the portal's current store."""

    def __init__(self, store_of: Callable[[], Store]) -> None:
        self.store_of = store_of

    def kind(self, request: Request) -> ObjectKind:
        raw = str(request.path_params.get("objectType", "contacts"))
        kind = resolve_kind(raw)
        if kind is None:
            raise validation_error(f"Unable to infer object type from: {raw}")
        return kind

    def rendered(self, kind: ObjectKind, definition: PropertyDef) -> dict[str, Any]:
        store = self.store_of()
        dynamic = store.dynamic_options(kind.name, definition.name) if definition.dynamic_options else None
        return v2_property(definition, [o.to_json() for o in dynamic] if dynamic is not None else None)

    async def properties(self, request: Request) -> Response:
        kind = self.kind(request)
        registry = self.store_of().registries[kind.name]
        return _json([self.rendered(kind, d) for d in registry.active.values()])

    async def named_property(self, request: Request) -> Response:
        kind = self.kind(request)
        name = str(request.path_params["name"])
        definition = self.store_of().registries[kind.name].get(name)
        if definition is None:
            raise HubSpotError(404, f"Property {name} does not exist", "OBJECT_NOT_FOUND")
        return _json(self.rendered(kind, definition))

    async def groups(self, request: Request) -> Response:
        kind = self.kind(request)
        registry = self.store_of().registries[kind.name]
        labels = dict(DEFAULT_GROUPS.get(kind.name, []))
        names = list(labels)
        names += [d.group_name for d in registry.active.values() if d.group_name not in names]
        with_properties = request.query_params.get("includeProperties", "").lower() == "true"
        out = []
        for order, name in enumerate(dict.fromkeys(names)):
            group: dict[str, Any] = {
                "name": name,
                "displayName": labels.get(name, name.replace("_", " ").capitalize()),
                "displayOrder": order,
                "hubspotDefined": name in labels,
            }
            if with_properties:
                group["properties"] = [
                    self.rendered(kind, d) for d in registry.active.values() if d.group_name == name
                ]
            out.append(group)
        return _json(out)

    def live_pipelines(self) -> list[Pipeline]:
        pipelines = [p for p in self.store_of().pipelines.values() if not p.archived]
        return sorted(pipelines, key=lambda p: (p.display_order, p.id))

    def rendered_pipelines(self) -> list[dict[str, Any]]:
        live = self.live_pipelines()
        return [v1_pipeline(p, default=i == 0) for i, p in enumerate(live)]

    async def pipelines_v1(self, _request: Request) -> Response:
        return _json({"results": self.rendered_pipelines()})

    async def pipeline_v1(self, request: Request) -> Response:
        wanted = str(request.path_params["pipelineId"])
        for rendered in self.rendered_pipelines():
            if rendered["pipelineId"] == wanted:
                return _json(rendered)
        raise HubSpotError(404, f"pipeline {wanted} does not exist", "OBJECT_NOT_FOUND")

    async def deal_pipelines(self, _request: Request) -> Response:
        return _json(self.rendered_pipelines())

    async def owners_v2(self, _request: Request) -> Response:
        """Owners API v2 (legacy): a bare list with numeric ``ownerId`` and epoch-ms times."""
        store = self.store_of()
        owners = [
            {
                "portalId": PORTAL_ID,
                "ownerId": o.id,
                "type": "PERSON",
                "firstName": o.first_name,
                "lastName": o.last_name,
                "email": o.email,
                "createdAt": o.created,
                "updatedAt": o.updated,
                "remoteList": [],
                "hasContactsAccess": True,
                "activeUserId": o.user_id,
                "userIdIncludingInactive": o.user_id,
                "isActive": True,
            }
            for o in store.live_owners(archived=False)
        ]
        return _json(owners)

    def routes(self) -> list[Route]:
        routes: list[Route] = []
        for version in ("v1", "v2"):  # v1 and v2 answer alike; older clients use v1 for every object
            base = f"/properties/{version}/{{objectType}}"
            routes += [
                *_with_slash(base + "/properties", self.properties),
                Route(base + "/properties/named/{name}", self.named_property, methods=["GET"]),
                *_with_slash(base + "/groups", self.groups),
            ]
        return [
            *routes,
            *_with_slash("/crm-pipelines/v1/pipelines/deals", self.pipelines_v1),
            Route("/crm-pipelines/v1/pipelines/deals/{pipelineId}", self.pipeline_v1, methods=["GET"]),
            *_with_slash("/deals/v1/pipelines", self.deal_pipelines),
            *_with_slash("/owners/v2/owners", self.owners_v2),
        ]


def _with_slash(path: str, endpoint: Any) -> list[Route]:
    """The path with and without a trailing slash (legacy clients send ``.../properties/``)."""
    return [Route(path, endpoint, methods=["GET"]), Route(path + "/", endpoint, methods=["GET"])]


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json;charset=utf-8")
