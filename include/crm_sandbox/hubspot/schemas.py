"""CRM metadata a connector reads before its data: custom object schemas, property groups and
association labels, in the shapes of HubSpot's CRM API reference (developers.hubspot.com):

* ``GET /crm/v3/schemas`` (also ``/crm-object-schemas/v3/schemas``): the portal's custom object
  schemas, ``{"results": []}`` here (the sandbox has none); ``GET /crm/v3/schemas/{objectType}``
  answers 404 for anything else;
* ``GET /crm/v3/properties/{objectType}/groups`` (``{"results": [PropertyGroup]}`` with ``name``,
  ``label``, ``displayOrder``, ``archived``), ``GET .../groups/{groupName}``, ``POST`` to create
  (409 ``Conflict`` for an existing name), ``PATCH`` and ``DELETE`` (204) for custom groups. The
  groups are HubSpot's defaults of the object plus every ``groupName`` its properties use;
* ``GET /crm/v4/associations/{from}/{to}/labels``: ``{"results": [{"category", "typeId",
  "label"}]}`` for the HubSpot-defined types between the pair (``label`` null for the unlabeled
  type, ``"Primary"`` for the primary company).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.hubspot.errors import HubSpotError, not_found, validation_error
from crm_sandbox.hubspot.kinds import ObjectKind, resolve_kind
from crm_sandbox.hubspot.store import ASSOC_TYPES, Store

#: HubSpot's default property groups per object (name, label), in display order.
DEFAULT_GROUPS: dict[str, list[tuple[str, str]]] = {
    "contacts": [
        ("contactinformation", "Contact information"),
        ("emailinformation", "Email information"),
        ("conversioninformation", "Conversion information"),
        ("contact_activity", "Contact activity"),
        ("salesforceinformation", "Salesforce information"),
    ],
    "companies": [
        ("companyinformation", "Company information"),
        ("company_activity", "Company activity"),
        ("salesforceinformation", "Salesforce information"),
    ],
    "deals": [
        ("dealinformation", "Deal information"),
        ("deal_activity", "Deal activity"),
        ("salesforceinformation", "Salesforce information"),
    ],
}


@dataclass
class Group:
    name: str
    label: str
    display_order: int
    archived: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "displayOrder": self.display_order,
            "archived": self.archived,
        }


@dataclass
class PortalGroups:
    """Custom groups and edits made through the API, for one seeded store (dropped on reset)."""

    store: Store
    custom: dict[str, dict[str, Group]] = field(default_factory=dict)
    removed: dict[str, set[str]] = field(default_factory=dict)

    def groups(self, kind: ObjectKind) -> dict[str, Group]:
        out: dict[str, Group] = {}
        for order, (name, label) in enumerate(DEFAULT_GROUPS.get(kind.name, [])):
            out[name] = Group(name, label, order)
        for definition in self.store.registries[kind.name].active.values():
            name = definition.group_name
            out.setdefault(name, Group(name, name.replace("_", " ").capitalize(), -1))
        out.update(self.custom.get(kind.name, {}))
        for name in self.removed.get(kind.name, set()):
            out.pop(name, None)
        return out


class MetadataRoutes:
    """Schemas, property groups and association labels; state follows the portal's store."""

    def __init__(self, store_of: Any) -> None:
        self.store_of = store_of  # () -> the portal's current Store (replaced on reset)
        self._groups: PortalGroups | None = None

    def portal_groups(self) -> PortalGroups:
        store: Store = self.store_of()
        if self._groups is None or self._groups.store is not store:
            self._groups = PortalGroups(store)
        return self._groups

    # -- schemas -----------------------------------------------------------------------------
    async def schemas(self, _request: Request) -> Response:
        return _json({"results": []})

    async def schema(self, request: Request) -> Response:
        raise (
            not_found()
            if resolve_kind(request.path_params["objectType"])
            else HubSpotError(
                400,
                f"Unable to infer object type from: {request.path_params['objectType']}",
                "VALIDATION_ERROR",
            )
        )

    # -- property groups ---------------------------------------------------------------------
    async def list_groups(self, request: Request) -> Response:
        kind = _kind(request)
        groups = self.portal_groups().groups(kind).values()
        return _json({"results": [g.to_json() for g in groups]})

    async def get_group(self, request: Request) -> Response:
        kind = _kind(request)
        group = self.portal_groups().groups(kind).get(request.path_params["groupName"])
        if group is None:
            raise _no_group(request.path_params["groupName"])
        return _json(group.to_json())

    async def create_group(self, request: Request) -> Response:
        kind = _kind(request)
        body = await _body(request)
        name, label = body.get("name"), body.get("label")
        if not name or not label:
            raise validation_error("Property group name and label are required")
        state = self.portal_groups()
        if str(name) in state.groups(kind):
            raise HubSpotError(409, f"A property group named {name} already exists.", "CONFLICT")
        group = Group(str(name), str(label), int(body.get("displayOrder", -1)))
        state.custom.setdefault(kind.name, {})[group.name] = group
        state.removed.get(kind.name, set()).discard(group.name)
        return _json(group.to_json(), 201)

    async def update_group(self, request: Request) -> Response:
        kind = _kind(request)
        state = self.portal_groups()
        group = state.groups(kind).get(request.path_params["groupName"])
        if group is None:
            raise _no_group(request.path_params["groupName"])
        body = await _body(request)
        updated = Group(group.name, str(body.get("label", group.label)),
                        int(body.get("displayOrder", group.display_order)))  # fmt: skip
        state.custom.setdefault(kind.name, {})[group.name] = updated
        return _json(updated.to_json())

    async def delete_group(self, request: Request) -> Response:
        kind = _kind(request)
        name = request.path_params["groupName"]
        state = self.portal_groups()
        if name not in state.groups(kind):
            raise _no_group(name)
        if any(d.group_name == name for d in state.store.registries[kind.name].active.values()):
            raise validation_error(f"Property group {name} still has properties and can't be deleted")
        state.custom.get(kind.name, {}).pop(name, None)
        state.removed.setdefault(kind.name, set()).add(name)
        return Response(status_code=204)

    # -- association labels ------------------------------------------------------------------
    async def association_labels(self, request: Request) -> Response:
        from_kind = _kind(request, "fromObjectType")
        to_kind = _kind(request, "toObjectType")
        results = [
            {"category": "HUBSPOT_DEFINED", "typeId": t.type_id, "label": t.label}
            for t in ASSOC_TYPES.values()
            if (t.from_type, t.to_type) == (from_kind.name, to_kind.name)
        ]
        return _json({"results": results})

    def routes(self) -> list[Route]:
        groups = "/crm/v3/properties/{objectType}/groups"
        return [
            Route("/crm/v3/schemas", self.schemas, methods=["GET"]),
            Route("/crm/v3/schemas/{objectType}", self.schema, methods=["GET"]),
            # the same API under the path hubspot-api-client uses
            Route("/crm-object-schemas/v3/schemas", self.schemas, methods=["GET"]),
            Route("/crm-object-schemas/v3/schemas/{objectType}", self.schema, methods=["GET"]),
            Route(groups, self.list_groups, methods=["GET"]),
            Route(groups, self.create_group, methods=["POST"]),
            Route(groups + "/{groupName}", self.get_group, methods=["GET"]),
            Route(groups + "/{groupName}", self.update_group, methods=["PATCH"]),
            Route(groups + "/{groupName}", self.delete_group, methods=["DELETE"]),
            Route(
                "/crm/v4/associations/{fromObjectType}/{toObjectType}/labels",
                self.association_labels,
                methods=["GET"],
            ),
        ]


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json;charset=utf-8")


async def _body(request: Request) -> Mapping[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise validation_error("Invalid input JSON") from None
    if not isinstance(body, Mapping):
        raise validation_error("Invalid input JSON: expected an object")
    return body


def _kind(request: Request, key: str = "objectType") -> ObjectKind:
    raw = str(request.path_params[key])
    kind = resolve_kind(raw)
    if kind is None:
        raise validation_error(f"Unable to infer object type from: {raw}")
    return kind


def _no_group(name: str) -> HubSpotError:
    return HubSpotError(404, f"Unable to find property group with name {name}", "OBJECT_NOT_FOUND")
