"""Record lifecycle beyond archive: merging two records and the GDPR delete of a contact.

Per HubSpot's CRM API reference (developers.hubspot.com, "Contacts"/"Companies"/"Deals": Merge;
"Contacts": GDPR delete) and the knowledge base ("Merge records", "Permanently delete a contact"):

* ``POST /crm/v3/objects/{objectType}/merge`` ``{"primaryObjectId", "objectIdToMerge"}`` merges
  the second record into the first and answers the primary as ``SimplePublicObject`` (200). The
  primary keeps its values; a property it has no value for takes the merged record's; a merged
  contact's email joins the primary's ``hs_additional_emails``; the merged record's associations
  move to the primary; the merged record is gone (not in the archived list either). Merging a
  record with itself is a 400 ``VALIDATION_ERROR``; an unknown id 404.
* ``POST /crm/v3/objects/contacts/gdpr-delete`` ``{"objectId", "idProperty"?}`` permanently deletes
  the contact (204); with ``idProperty`` ``email`` an unknown address is accepted too (HubSpot
  blocklists it; the sandbox does not model the blocklist) and an unknown record id is 404.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.hubspot.errors import not_found, validation_error
from crm_sandbox.hubspot.kinds import KINDS, resolve_kind
from crm_sandbox.hubspot.store import Record, Store, Table


def forget(store: Store, table: Table, rec: Record) -> None:
    """Delete a record for good: archived (edges dropped, rollups refreshed), then removed."""
    if rec.archived_at is None:
        store.archive(table, rec)
    table.archived.discard(rec.id)
    table.records.pop(rec.id, None)


class LifecycleRoutes:
    """Merge and GDPR delete, over the portal's current store."""

    def __init__(self, store_of: Callable[[], Store], render: Callable[[Store, Table, Record], Any]) -> None:
        self.store_of = store_of
        self.render = render

    async def merge(self, request: Request) -> Response:
        store = self.store_of()
        raw = str(request.path_params["objectType"])
        kind = resolve_kind(raw)
        if kind is None:
            raise validation_error(f"Unable to infer object type from: {raw}")
        table = store.tables[kind.name]
        body = await _body(request)
        primary_id, merged_id = str(body.get("primaryObjectId", "")), str(body.get("objectIdToMerge", ""))
        if not primary_id or not merged_id:
            raise validation_error("primaryObjectId and objectIdToMerge are required")
        if primary_id == merged_id:
            raise validation_error(f"Cannot merge {kind.upper.lower()} {primary_id} with itself")
        primary, merged = _live(table, primary_id), _live(table, merged_id)
        store.apply(table, primary, self.merged_values(table, primary, merged), None)
        for to_type in KINDS:
            for to_id, type_ids in dict(store.assoc.targets(kind.name, merged.id, to_type)).items():
                if (to_type, to_id) != (kind.name, primary.id):
                    store.associate(kind.name, primary.id, to_type, to_id, sorted(type_ids))
        forget(store, table, merged)
        return _json(self.render(store, table, primary))

    @staticmethod
    def merged_values(table: Table, primary: Record, merged: Record) -> dict[str, str | None]:
        """Values the primary takes: the merged record's, where the primary has none."""
        out: dict[str, str | None] = {}
        for name, value in merged.props.items():
            definition = table.registry.get(name)
            if definition is None or definition.read_only_value or definition.calculated:
                continue
            if name in primary.props or (definition.has_unique_value and name != "email"):
                continue
            if name == "email" and table.kind.name == "contacts":
                continue
            out[name] = value
        email = merged.props.get("email")
        if table.kind.name == "contacts" and email and email != primary.props.get("email"):
            known = [e for e in (primary.props.get("hs_additional_emails") or "").split(";") if e]
            out["hs_additional_emails"] = ";".join([*known, email])
        return out

    async def gdpr_delete(self, request: Request) -> Response:
        store = self.store_of()
        table = store.tables["contacts"]
        body = await _body(request)
        ident = str(body.get("objectId", ""))
        id_property = str(body.get("idProperty") or "hs_object_id")
        if not ident:
            raise validation_error("objectId is required")
        if id_property == "hs_object_id":
            rec = table.get_live(int(ident)) if ident.isdigit() else None
        elif id_property == "email":
            rec = table.find_unique("email", ident)
            if rec is None:
                return Response(status_code=204)  # blocklisted by HubSpot
        else:
            raise validation_error(f"idProperty must be email or hs_object_id, not {id_property}")
        if rec is None:
            raise not_found()
        forget(store, table, rec)
        return Response(status_code=204)

    def routes(self) -> list[Route]:
        return [
            Route("/crm/v3/objects/contacts/gdpr-delete", self.gdpr_delete, methods=["POST"]),
            Route("/crm/v3/objects/{objectType}/merge", self.merge, methods=["POST"]),
        ]


def _live(table: Table, ident: str) -> Record:
    rec = table.get_live(int(ident)) if ident.isdigit() else None
    if rec is None:
        raise not_found()
    return rec


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
