"""The emulator's in-memory portal: records, indexes, owners, pipelines and associations.

Everything is indexed so the API answers in time independent of portal size where HubSpot does:
records by id (a dict), list paging by id (a sorted id list), emails and unique properties
(hash maps), equality filters (hash indexes built on first use and then maintained), and
timestamps (sorted indexes on ``createdate`` and the last-modified property, so an incremental
search over a million records answers a page without scanning). All mutation happens on the
server's event-loop thread, so no locks are needed.

Seeding reads the scenario's ``hubspot`` section (DESIGN.md "Scenario files"); missing ids are
numbered deterministically after the largest seeded id and missing timestamps default to a fixed
instant, so the same scenario always gives the same portal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sortedcontainers import SortedList

from crm_sandbox.hubspot.errors import (
    HubSpotError,
    PropertyProblem,
    conflict,
    property_values_error,
    validation_error,
)
from crm_sandbox.hubspot.kinds import COMPANIES, CONTACTS, DEALS, KINDS, ObjectKind, iso_ms, parse_ms
from crm_sandbox.hubspot.properties import (
    Option,
    PropertyDef,
    PropertyRegistry,
    default_definitions,
    invalid_option,
    property_doesnt_exist,
    read_only,
)
from crm_sandbox.hubspot.rollups import ROLLUP_INPUTS, ROLLUP_OWNERS, ROLLUP_PROPERTIES, deal_rollups

#: Timestamp of seeded records that give none (2024-01-01T00:00:00Z): deterministic, in the past.
DEFAULT_SEED_MS = 1_704_067_200_000
#: Packed sorted-index keys are ``ms * PACK + id``: one int per entry instead of a tuple.
PACK = 1 << 48
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: Email domains HubSpot never turns into companies.
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com", "msn.com",
        "aol.com", "icloud.com", "me.com", "mac.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de",
        "mail.com", "yandex.com", "hey.com", "zoho.com", "web.de",
    }
)  # fmt: skip


class Record:
    """One CRM record. ``props`` holds only set values; server-managed ones are computed."""

    __slots__ = ("archived_at", "created", "history", "id", "props", "updated")

    def __init__(self, rid: int, props: dict[str, str], created: int, updated: int) -> None:
        self.id = rid
        self.props = props
        self.created = created
        self.updated = updated
        self.archived_at: int | None = None
        #: Per-property value history written through the API, newest last: (value, ms).
        self.history: dict[str, list[tuple[str | None, int]]] | None = None


def _eq_key(value: str) -> str:
    return value.lower()


class Table:
    """The records of one object type and their indexes."""

    def __init__(self, kind: ObjectKind, registry: PropertyRegistry) -> None:
        self.kind = kind
        self.registry = registry
        self.records: dict[int, Record] = {}
        self.live: Any = SortedList()
        self.archived: Any = SortedList()
        self.unique: dict[str, dict[str, int]] = {}
        self.eq: dict[str, dict[str, set[int]]] = {}
        self.ts: dict[str, Any] = {"createdate": SortedList(), kind.lastmod: SortedList()}
        self.rng: dict[str, Any] = {}
        for name in self.unique_properties():
            self.unique[name] = {}

    # -- values ----------------------------------------------------------------------------------
    def unique_properties(self) -> list[str]:
        """Properties usable as ``idProperty``: contacts' email plus custom unique-value ones."""
        names = self.registry.unique_names()
        if self.kind is CONTACTS:
            names = ["email", *names]
        return names

    def is_virtual(self, name: str) -> bool:
        return name in ("hs_object_id", "createdate", self.kind.lastmod)

    def value(self, rec: Record, name: str) -> str | None:
        """A property's value as HubSpot returns it (server-managed ones computed)."""
        if name == "hs_object_id":
            return str(rec.id)
        if name == "createdate":
            return iso_ms(rec.created)
        if name == self.kind.lastmod:
            return iso_ms(rec.updated)
        return rec.props.get(name)

    def order_key(self, rec: Record, name: str) -> Any:
        """The value a sort or range filter compares: numbers and times numerically."""
        if name == "hs_object_id":
            return rec.id
        if name == "createdate":
            return rec.created
        if name == self.kind.lastmod:
            return rec.updated
        raw = rec.props.get(name)
        if raw is None:
            return None
        definition = self.registry.get(name)
        return typed_key(definition, raw)

    # -- lookups ---------------------------------------------------------------------------------
    def get_live(self, rid: int) -> Record | None:
        rec = self.records.get(rid)
        return rec if rec is not None and rec.archived_at is None else None

    def find_unique(self, name: str, value: str) -> Record | None:
        """The live record whose unique property ``name`` has ``value`` (emails case-insensitive)."""
        if name == "hs_object_id":
            return self.get_live(int(value)) if value.isdigit() else None
        index = self.unique.get(name)
        if index is None:
            return None
        key = value.lower() if name == "email" else value
        rid = index.get(key)
        return self.records.get(rid) if rid is not None else None

    def eq_index(self, name: str) -> dict[str, set[int]]:
        """The equality index of a property (lowercased values), built on first use."""
        index = self.eq.get(name)
        if index is None:
            index = {}
            for rid in self.live:
                raw = self.records[rid].props.get(name)
                if raw is not None:
                    index.setdefault(_eq_key(raw), set()).add(rid)
            self.eq[name] = index
        return index

    def range_index(self, name: str) -> Any:
        """A sorted ``(key, id)`` index of an ordered (number/date/datetime) property, built lazily."""
        index = self.rng.get(name)
        if index is None:
            definition = self.registry.get(name)
            entries = []
            for rid in self.live:
                raw = self.records[rid].props.get(name)
                if raw is not None:
                    entries.append((typed_key(definition, raw), rid))
            index = SortedList(entries)
            self.rng[name] = index
        return index

    # -- index maintenance ------------------------------------------------------------------------
    def _index_prop(self, rid: int, name: str, old: str | None, new: str | None) -> None:
        if old == new:
            return
        unique = self.unique.get(name)
        if unique is not None:
            if old is not None and unique.get(old) == rid:
                del unique[old]
            if new is not None:
                unique[new] = rid
        eq = self.eq.get(name)
        if eq is not None:
            if old is not None:
                bucket = eq.get(_eq_key(old))
                if bucket is not None:
                    bucket.discard(rid)
                    if not bucket:
                        del eq[_eq_key(old)]
            if new is not None:
                eq.setdefault(_eq_key(new), set()).add(rid)
        rng = self.rng.get(name)
        if rng is not None:
            definition = self.registry.get(name)
            if old is not None:
                rng.discard((typed_key(definition, old), rid))
            if new is not None:
                rng.add((typed_key(definition, new), rid))

    def _index_all(self, rec: Record, add: bool) -> None:
        for name, raw in rec.props.items():
            if add:
                self._index_prop(rec.id, name, None, raw)
            else:
                self._index_prop(rec.id, name, raw, None)
        created, updated = self.ts["createdate"], self.ts[self.kind.lastmod]
        if add:
            created.add(rec.created * PACK + rec.id)
            updated.add(rec.updated * PACK + rec.id)
        else:
            created.discard(rec.created * PACK + rec.id)
            updated.discard(rec.updated * PACK + rec.id)

    def insert(self, rec: Record) -> None:
        self.records[rec.id] = rec
        self.live.add(rec.id)
        self._index_all(rec, add=True)

    def set_props(self, rec: Record, changes: Mapping[str, str | None]) -> None:
        """Write normalized values into a live record, keeping every index in step."""
        for name, new in changes.items():
            old = rec.props.get(name)
            if old == new:
                continue
            if new is None:
                del rec.props[name]
            else:
                rec.props[name] = new
            self._index_prop(rec.id, name, old, new)

    def set_times(self, rec: Record, created: int | None = None, updated: int | None = None) -> None:
        if created is not None and created != rec.created:
            index = self.ts["createdate"]
            index.discard(rec.created * PACK + rec.id)
            rec.created = created
            index.add(created * PACK + rec.id)
        if updated is not None and updated != rec.updated:
            index = self.ts[self.kind.lastmod]
            index.discard(rec.updated * PACK + rec.id)
            rec.updated = updated
            index.add(updated * PACK + rec.id)

    def archive(self, rec: Record, at: int) -> None:
        self._index_all(rec, add=False)
        self.live.discard(rec.id)
        rec.archived_at = at
        self.archived.add(rec.id)

    def bulk_load(self, records: list[Record]) -> None:
        """Seed many records at once: build sorted indexes in one sort instead of per insert."""
        live_ids: list[int] = []
        archived_ids: list[int] = []
        created: list[int] = []
        updated: list[int] = []
        for rec in records:
            if rec.id in self.records:
                raise ValueError(f"duplicate {self.kind.name} id {rec.id} in scenario")
            self.records[rec.id] = rec
            if rec.archived_at is not None:
                archived_ids.append(rec.id)
                continue
            live_ids.append(rec.id)
            created.append(rec.created * PACK + rec.id)
            updated.append(rec.updated * PACK + rec.id)
            for name, index in self.unique.items():
                raw = rec.props.get(name)
                if raw is not None:
                    if raw in index:
                        other = index[raw]
                        raise ValueError(f"{self.kind.name} {rec.id} and {other} share unique {name}={raw!r}")
                    index[raw] = rec.id
        self.live = SortedList(live_ids)
        self.archived = SortedList(archived_ids)
        self.ts = {"createdate": SortedList(created), self.kind.lastmod: SortedList(updated)}

    def add_unique_property(self, name: str) -> None:
        """Start enforcing uniqueness of a newly created ``hasUniqueValue`` property."""
        self.unique[name] = {}


def typed_key(definition: PropertyDef | None, raw: str) -> Any:
    """Comparable key of a stored value: floats for numbers, epoch ms for dates, else lowercase."""
    if definition is not None:
        if definition.type == "number":
            try:
                return float(raw)
            except ValueError:
                return None
        if definition.type in ("datetime", "date"):
            try:
                return parse_ms(raw)
            except ValueError:
                return None
    return raw.lower()


# -- owners ------------------------------------------------------------------------------------


@dataclass
class Owner:
    id: int
    email: str
    first_name: str
    last_name: str
    user_id: int
    created: int
    updated: int
    archived: bool = False
    teams: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "email": self.email,
            "type": "PERSON",
            "firstName": self.first_name,
            "lastName": self.last_name,
            "userId": self.user_id,
            "userIdIncludingInactive": self.user_id,
            "createdAt": iso_ms(self.created),
            "updatedAt": iso_ms(self.updated),
            "archived": self.archived,
            "teams": self.teams,
        }

    def label(self) -> str:
        return f"{self.first_name} {self.last_name} ({self.email})".strip()


# -- pipelines ---------------------------------------------------------------------------------


@dataclass
class Stage:
    id: str
    label: str
    display_order: int
    metadata: dict[str, str]
    created: int
    updated: int
    archived: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "displayOrder": self.display_order,
            "metadata": dict(self.metadata),
            "id": self.id,
            "createdAt": iso_ms(self.created),
            "updatedAt": iso_ms(self.updated),
            "archived": self.archived,
            "writePermissions": "CRUD_ALL",
        }

    @property
    def is_closed(self) -> bool:
        return self.metadata.get("isClosed", "false").lower() == "true"

    @property
    def probability(self) -> float:
        try:
            return float(self.metadata.get("probability", "0"))
        except ValueError:
            return 0.0


@dataclass
class Pipeline:
    id: str
    label: str
    display_order: int
    stages: dict[str, Stage]
    created: int
    updated: int
    archived: bool = False

    def live_stages(self) -> list[Stage]:
        return sorted(
            (s for s in self.stages.values() if not s.archived), key=lambda s: (s.display_order, s.id)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "displayOrder": self.display_order,
            "id": self.id,
            "stages": [s.to_json() for s in self.live_stages()],
            "createdAt": iso_ms(self.created),
            "updatedAt": iso_ms(self.updated),
            "archived": self.archived,
        }


#: HubSpot's default sales pipeline (id ``default``), present unless a scenario defines its own.
DEFAULT_STAGES: list[tuple[str, str, str, str]] = [
    ("appointmentscheduled", "Appointment Scheduled", "false", "0.2"),
    ("qualifiedtobuy", "Qualified To Buy", "false", "0.4"),
    ("presentationscheduled", "Presentation Scheduled", "false", "0.6"),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "false", "0.8"),
    ("contractsent", "Contract Sent", "false", "0.9"),
    ("closedwon", "Closed Won", "true", "1.0"),
    ("closedlost", "Closed Lost", "true", "0.0"),
]


def stage_metadata(raw: Mapping[str, Any] | None, *, required: bool) -> dict[str, str]:
    """Deal stage metadata as HubSpot stores it: string ``isClosed`` and ``probability`` (0..1)."""
    raw = raw or {}
    if required and "probability" not in raw:
        raise validation_error("Deal stages require a metadata.probability between 0.0 and 1.0.")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, bool):
            out[str(key)] = "true" if value else "false"
        else:
            out[str(key)] = str(value)
    if "probability" in out:
        try:
            probability = float(out["probability"])
        except ValueError:
            raise validation_error(f"Invalid probability {out['probability']}: must be a number.") from None
        if not 0.0 <= probability <= 1.0:
            raise validation_error(f"Invalid probability {out['probability']}: must be between 0.0 and 1.0.")
        out["probability"] = str(probability)
    if "isClosed" in out:
        out["isClosed"] = out["isClosed"].lower()
        if out["isClosed"] not in ("true", "false"):
            raise validation_error("metadata.isClosed must be true or false.")
    elif required:
        out["isClosed"] = "false"
    return out


# -- associations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssocType:
    type_id: int
    from_type: str
    to_type: str
    label: str | None
    v3_name: str
    reverse: int


_ASSOC_ROWS = [
    (279, "contacts", "companies", None, "contact_to_company_unlabeled", 280),
    (1, "contacts", "companies", "Primary", "contact_to_company", 2),
    (280, "companies", "contacts", None, "company_to_contact_unlabeled", 279),
    (2, "companies", "contacts", "Primary", "company_to_contact", 1),
    (3, "deals", "contacts", None, "deal_to_contact", 4),
    (4, "contacts", "deals", None, "contact_to_deal", 3),
    (341, "deals", "companies", None, "deal_to_company_unlabeled", 342),
    (5, "deals", "companies", "Primary", "deal_to_company", 6),
    (342, "companies", "deals", None, "company_to_deal_unlabeled", 341),
    (6, "companies", "deals", "Primary", "company_to_deal", 5),
]
#: HubSpot-defined association types between contacts, companies and deals.
ASSOC_TYPES: dict[int, AssocType] = {row[0]: AssocType(*row) for row in _ASSOC_ROWS}
#: The default ("unlabeled") type of each ordered pair.
DEFAULT_TYPE: dict[tuple[str, str], int] = {
    (t.from_type, t.to_type): t.type_id for t in ASSOC_TYPES.values() if t.label is None
}
#: Primary types, seen from the side that may have only one primary (contact/deal -> company).
_PRIMARY_CHILD = {1, 5}


class Associations:
    """Undirected edges between records, each stored from both sides with the reverse type ids."""

    def __init__(self) -> None:
        self.adj: dict[tuple[str, str], dict[int, dict[int, set[int]]]] = {pair: {} for pair in DEFAULT_TYPE}

    def types_between(self, from_type: str, from_id: int, to_type: str, to_id: int) -> set[int]:
        return self.adj.get((from_type, to_type), {}).get(from_id, {}).get(to_id, set())

    def targets(self, from_type: str, from_id: int, to_type: str) -> dict[int, set[int]]:
        return self.adj.get((from_type, to_type), {}).get(from_id, {})

    def add(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_ids: Iterable[int]
    ) -> list[tuple[str, int]]:
        """Add labels (plus the unlabeled type) to an edge; returns the records whose edges changed."""
        types = {*type_ids, DEFAULT_TYPE[(from_type, to_type)]}
        touched: set[tuple[str, int]] = set()
        for type_id in types:
            spec = ASSOC_TYPES[type_id]
            if type_id in _PRIMARY_CHILD:
                touched.update(self._drop_other_primary(from_type, from_id, to_type, to_id, type_id))
            elif spec.reverse in _PRIMARY_CHILD:
                touched.update(self._drop_other_primary(to_type, to_id, from_type, from_id, spec.reverse))
        forward = self.adj[(from_type, to_type)].setdefault(from_id, {}).setdefault(to_id, set())
        backward = self.adj[(to_type, from_type)].setdefault(to_id, {}).setdefault(from_id, set())
        if not types <= forward:
            forward |= types
            backward |= {ASSOC_TYPES[t].reverse for t in types}
            touched.update({(from_type, from_id), (to_type, to_id)})
        return sorted(touched)

    def _drop_other_primary(
        self, child_type: str, child_id: int, parent_type: str, parent_id: int, primary: int
    ) -> list[tuple[str, int]]:
        """A contact or deal has one primary company: a new primary replaces the old one."""
        touched: list[tuple[str, int]] = []
        for other, types in list(self.targets(child_type, child_id, parent_type).items()):
            if other != parent_id and primary in types:
                types.discard(primary)
                self.adj[(parent_type, child_type)][other][child_id].discard(ASSOC_TYPES[primary].reverse)
                touched.extend([(child_type, child_id), (parent_type, other)])
        return touched

    def remove(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_ids: Iterable[int] | None = None
    ) -> list[tuple[str, int]]:
        """Remove labels from an edge (all of them, or the edge once its unlabeled type goes)."""
        forward_map = self.adj[(from_type, to_type)].get(from_id)
        if not forward_map or to_id not in forward_map:
            return []
        forward = forward_map[to_id]
        drop = set(forward) if type_ids is None else set(type_ids) & forward
        if not drop:
            return []
        if DEFAULT_TYPE[(from_type, to_type)] in drop:
            drop = set(forward)
        forward -= drop
        backward_map = self.adj[(to_type, from_type)][to_id]
        backward_map[from_id] -= {ASSOC_TYPES[t].reverse for t in drop}
        if not forward:
            del forward_map[to_id]
            del backward_map[from_id]
            if not forward_map:
                del self.adj[(from_type, to_type)][from_id]
            if not backward_map:
                del self.adj[(to_type, from_type)][to_id]
        return [(from_type, from_id), (to_type, to_id)]

    def remove_record(self, object_type: str, rid: int) -> list[tuple[str, int]]:
        """Drop every edge of an archived record; returns the other records that lost one."""
        touched: list[tuple[str, int]] = []
        for (from_type, to_type), by_id in self.adj.items():
            if from_type != object_type or rid not in by_id:
                continue
            for other in by_id.pop(rid):
                reverse = self.adj[(to_type, from_type)]
                targets = reverse.get(other)
                if targets is not None:
                    targets.pop(rid, None)
                    if not targets:
                        del reverse[other]
                touched.append((to_type, other))
        return touched


# -- the portal ----------------------------------------------------------------------------------


class Store:
    """One seeded portal. Rebuilt from the scenario on ``POST /__sandbox/reset``."""

    def __init__(
        self, scenario: Mapping[str, Any], clock: Callable[[], float], *, auto_create_companies: bool = False
    ) -> None:
        self.clock = clock
        self.auto_create_companies = auto_create_companies
        hubspot = scenario.get("hubspot") or {}
        if not isinstance(hubspot, Mapping):
            raise ValueError("scenario['hubspot'] must be an object")
        self.registries: dict[str, PropertyRegistry] = {
            name: PropertyRegistry(name, default_definitions(name)) for name in KINDS
        }
        for object_type, defs in (hubspot.get("properties") or {}).items():
            registry = self.registries.get(object_type)
            if registry is None:
                raise ValueError(f"scenario hubspot.properties: unknown object type {object_type!r}")
            for raw in defs:
                try:
                    registry.create(raw, iso_ms(DEFAULT_SEED_MS))
                except HubSpotError as exc:
                    raise ValueError(f"scenario hubspot.properties.{object_type}: {exc.message}") from None
        self.tables: dict[str, Table] = {
            name: Table(kind, self.registries[name]) for name, kind in KINDS.items()
        }
        self.assoc = Associations()
        self._next_id = 1000
        self._reserve_ids(hubspot)
        self.owners: dict[int, Owner] = {}
        self._seed_owners(hubspot.get("owners") or [])
        self.pipelines: dict[str, Pipeline] = {}
        self._seed_pipelines((hubspot.get("pipelines") or {}).get("deals"))
        for name in ("companies", "contacts", "deals"):
            self._seed_records(self.tables[name], hubspot.get(name) or [])
        self._seed_associations(hubspot.get("associations") or [])
        self._seed_rollups()

    # -- ids and time -----------------------------------------------------------------------------
    def now(self) -> int:
        return int(self.clock() * 1000)

    def new_id(self) -> int:
        """Next numeric id: sequential across all object types, so runs are reproducible."""
        self._next_id += 1
        return self._next_id

    def _reserve_ids(self, hubspot: Mapping[str, Any]) -> None:
        highest = self._next_id
        for name in ("companies", "contacts", "deals", "owners"):
            for raw in hubspot.get(name) or []:
                rid = raw.get("id")
                if rid is not None and str(rid).isdigit():
                    highest = max(highest, int(rid))
        for pipeline in (hubspot.get("pipelines") or {}).get("deals") or []:
            for item in [pipeline, *(pipeline.get("stages") or [])]:
                if str(item.get("id", "")).isdigit():
                    highest = max(highest, int(item["id"]))
        self._next_id = highest

    def _seed_id(self, raw: Mapping[str, Any], what: str) -> int:
        rid = raw.get("id")
        if rid is None:
            return self.new_id()
        text = str(rid)
        if not text.isdigit():
            raise ValueError(f"scenario {what} id {rid!r} is not numeric (HubSpot ids are numbers)")
        return int(text)

    # -- seeding ----------------------------------------------------------------------------------
    def _seed_owners(self, owners: Iterable[Mapping[str, Any]]) -> None:
        for raw in owners:
            oid = self._seed_id(raw, "owner")
            created = parse_ms(raw.get("createdAt", DEFAULT_SEED_MS))
            self.owners[oid] = Owner(
                id=oid,
                email=str(raw.get("email") or ""),
                first_name=str(raw.get("firstName") or ""),
                last_name=str(raw.get("lastName") or ""),
                user_id=int(raw.get("userId") or oid + 7_000_000),
                created=created,
                updated=parse_ms(raw.get("updatedAt", created)),
                archived=bool(raw.get("archived", False)),
                teams=list(raw.get("teams") or []),
            )

    def _seed_pipelines(self, pipelines: Iterable[Mapping[str, Any]] | None) -> None:
        at = DEFAULT_SEED_MS
        if pipelines is None:
            stages = {
                sid: Stage(sid, label, i, {"isClosed": closed, "probability": prob}, at, at)
                for i, (sid, label, closed, prob) in enumerate(DEFAULT_STAGES)
            }
            self.pipelines["default"] = Pipeline("default", "Sales Pipeline", 0, stages, at, at)
            return
        for index, raw in enumerate(pipelines):
            pid = str(raw.get("id") or self.new_id())
            created = parse_ms(raw.get("createdAt", at))
            stages = {}
            for s_index, s_raw in enumerate(raw.get("stages") or []):
                sid = str(s_raw.get("id") or self.new_id())
                meta = stage_metadata(s_raw.get("metadata"), required=True)
                stages[sid] = Stage(
                    sid, str(s_raw["label"]), int(s_raw.get("displayOrder", s_index)), meta, created, created
                )
            pipeline = Pipeline(
                pid, str(raw["label"]), int(raw.get("displayOrder", index)), stages, created,
                parse_ms(raw.get("updatedAt", created)), bool(raw.get("archived", False)),
            )  # fmt: skip
            if any(p.label == pipeline.label for p in self.pipelines.values()):
                raise ValueError(f"scenario pipelines: duplicate label {pipeline.label!r}")
            self.pipelines[pid] = pipeline

    def _seed_records(self, table: Table, raws: Iterable[Mapping[str, Any]]) -> None:
        registry = table.registry.active
        kind = table.kind
        records: list[Record] = []
        stage_index = self._stage_index() if kind is DEALS else {}
        for raw in raws:
            rid = self._seed_id(raw, kind.name)
            props: dict[str, str] = {}
            created_prop = updated_prop = None
            for name, value in (raw.get("properties") or {}).items():
                if name == "hs_object_id":
                    continue
                if name == "createdate":
                    created_prop = value
                    continue
                if name == kind.lastmod:
                    updated_prop = value
                    continue
                definition = registry.get(name)
                if definition is None:
                    raise ValueError(f"scenario {kind.name} {rid}: property {name!r} does not exist")
                if definition.type == "string" and isinstance(value, str):
                    if value:
                        props[name] = value
                    continue
                try:
                    normalized = definition.normalize(value)
                except PropertyProblem as exc:
                    raise ValueError(f"scenario {kind.name} {rid}: {exc.message}") from None
                if normalized is not None:
                    props[name] = normalized
            created_raw = raw.get("createdAt", created_prop)
            updated_raw = raw.get("updatedAt", updated_prop)
            created = parse_ms(created_raw) if created_raw is not None else None
            updated = parse_ms(updated_raw) if updated_raw is not None else None
            created = (
                created if created is not None else (updated if updated is not None else DEFAULT_SEED_MS)
            )
            updated = updated if updated is not None else created
            if kind is CONTACTS:
                self._derive_contact(props)
            elif kind is DEALS:
                self._derive_deal(props, stage_index, rid)
            owner = props.get("hubspot_owner_id")
            if owner is not None and (not owner.isdigit() or int(owner) not in self.owners):
                raise ValueError(f"scenario {kind.name} {rid}: hubspot_owner_id {owner} is not an owner")
            rec = Record(rid, props, created, updated)
            if raw.get("archived"):
                rec.archived_at = parse_ms(raw.get("archivedAt", updated))
            records.append(rec)
        table.bulk_load(records)

    def _seed_associations(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            (from_type, from_id), (to_type, to_id) = row["from"], row["to"]
            from_type, to_type = str(from_type), str(to_type)
            type_id = int(row.get("typeId") or DEFAULT_TYPE.get((from_type, to_type), 0))
            spec = ASSOC_TYPES.get(type_id)
            if spec is None or (spec.from_type, spec.to_type) != (from_type, to_type):
                raise ValueError(
                    f"scenario association {row}: type {type_id} does not join {from_type}->{to_type}"
                )
            for object_type, rid in ((from_type, from_id), (to_type, to_id)):
                if self.tables[object_type].get_live(int(rid)) is None:
                    raise ValueError(f"scenario association {row}: {object_type} {rid} does not exist")
            self.assoc.add(from_type, int(from_id), to_type, int(to_id), [type_id])
            if type_id == 1:
                self.tables["contacts"].records[int(from_id)].props["associatedcompanyid"] = str(to_id)
            elif type_id == 2:
                self.tables["contacts"].records[int(to_id)].props["associatedcompanyid"] = str(from_id)

    # -- derived values ---------------------------------------------------------------------------
    @staticmethod
    def _derive_contact(props: dict[str, str]) -> None:
        email = props.get("email")
        if email is not None:
            email = email.lower()
            props["email"] = email
            props["hs_email_domain"] = email.rsplit("@", 1)[-1]
        else:
            props.pop("hs_email_domain", None)

    def _stage_index(self) -> dict[str, tuple[Pipeline, Stage]]:
        return {sid: (p, s) for p in self.pipelines.values() for sid, s in p.stages.items()}

    def _derive_deal(
        self, props: dict[str, str], stage_index: Mapping[str, tuple[Pipeline, Stage]], rid: int
    ) -> None:
        stage_id = props.get("dealstage")
        if stage_id is None:
            for name in ("hs_is_closed", "hs_is_closed_won", "hs_deal_stage_probability"):
                props.pop(name, None)
            return
        found = stage_index.get(stage_id)
        pipeline_id = props.get("pipeline")
        if found is None or (pipeline_id is not None and found[0].id != pipeline_id):
            pipeline = self.pipelines.get(pipeline_id or "")
            stage = pipeline.stages.get(stage_id) if pipeline else None
            if pipeline is None or stage is None:
                raise ValueError(f"scenario deal {rid}: stage {stage_id} is not in pipeline {pipeline_id}")
            found = (pipeline, stage)
        pipeline, stage = found
        props["pipeline"] = pipeline.id
        self._apply_stage(props, stage)

    @staticmethod
    def _apply_stage(props: dict[str, str], stage: Stage) -> None:
        props["hs_is_closed"] = "true" if stage.is_closed else "false"
        props["hs_is_closed_won"] = "true" if stage.is_closed and stage.probability >= 1.0 else "false"
        props["hs_deal_stage_probability"] = str(stage.probability)

    # -- validated writes -------------------------------------------------------------------------
    def prepare(
        self, table: Table, raw_props: Any, existing: Record | None
    ) -> tuple[dict[str, str | None], int | None]:
        """Validate and normalize written properties exactly as HubSpot does.

        Returns the property changes (``None`` clears a value) and a new create date if
        ``createdate`` was written. Raises the 400 ``VALIDATION_ERROR`` listing every invalid
        value, or a 409 for a duplicate email or unique value.
        """
        if raw_props is None:
            raw_props = {}
        if not isinstance(raw_props, Mapping):
            raise validation_error("properties must be an object of property names to values")
        registry = table.registry
        problems: list[PropertyProblem] = []
        changes: dict[str, str | None] = {}
        created: int | None = None
        for name, raw in raw_props.items():
            definition = registry.get(str(name))
            if definition is None:
                problems.append(property_doesnt_exist(str(name)))
                continue
            if definition.read_only_value or name == table.kind.lastmod:
                problems.append(read_only(name))
                continue
            try:
                value = definition.normalize(raw)
            except PropertyProblem as exc:
                problems.append(exc)
                continue
            if name == "createdate":
                if value is not None:
                    created = parse_ms(value)
                continue
            if value is not None and name == "hubspot_owner_id":
                owner = self.owners.get(int(value)) if value.isdigit() else None
                if owner is None or owner.archived:
                    live = [o for o in self.owners.values() if not o.archived][:20]
                    problems.append(invalid_option(name, value, [Option(o.label(), str(o.id)) for o in live]))
                    continue
            if value is not None and table.kind is CONTACTS and name == "email":
                value = value.strip().lower()
                if not _EMAIL.match(value):
                    problems.append(
                        PropertyProblem(name, "INVALID_EMAIL", f"Email address {value} is invalid")
                    )
                    continue
            changes[name] = value
        if table.kind is DEALS:
            problems.extend(self._check_deal_stage(changes, existing))
        if problems:
            raise property_values_error(problems)
        for name in table.unique_properties():
            value = changes.get(name)
            if value is None:
                continue
            holder = table.find_unique(name, value)
            if holder is not None and (existing is None or holder.id != existing.id):
                raise self.duplicate(table, name, value, holder.id)
        return changes, created

    @staticmethod
    def duplicate(table: Table, name: str, value: str, holder: int) -> HubSpotError:
        """HubSpot's 409 for a value another record already holds (emails, unique properties)."""
        if table.kind is CONTACTS and name == "email":
            return conflict(f"Contact already exists. Existing ID: {holder}")
        label = table.kind.upper.capitalize()
        return conflict(f"{label} with {name} {value} already exists. Existing ID: {holder}")

    def _check_deal_stage(
        self, changes: dict[str, str | None], existing: Record | None
    ) -> list[PropertyProblem]:
        """A deal's stage must belong to its pipeline (the ``default`` one when none is given)."""
        if "pipeline" not in changes and "dealstage" not in changes:
            return []
        current = existing.props if existing else {}
        pipeline_id = changes.get("pipeline", current.get("pipeline"))
        stage_id = changes.get("dealstage", current.get("dealstage"))
        problems: list[PropertyProblem] = []
        if pipeline_id is None and stage_id is not None:
            pipeline_id = "default" if "default" in self.pipelines else None
            if pipeline_id is None:
                owner = next((p for p in self.pipelines.values() if stage_id in p.stages), None)
                pipeline_id = owner.id if owner else None
            if pipeline_id is not None:
                changes["pipeline"] = pipeline_id
        pipeline = self.pipelines.get(pipeline_id or "")
        if pipeline_id is not None and (pipeline is None or pipeline.archived):
            live = [p for p in self.pipelines.values() if not p.archived]
            problems.append(invalid_option("pipeline", pipeline_id, [Option(p.label, p.id) for p in live]))
            return problems
        if pipeline is not None:
            stage = pipeline.stages.get(stage_id or "")
            if stage is None or stage.archived:
                options = [Option(s.label, s.id) for s in pipeline.live_stages()]
                problems.append(invalid_option("dealstage", stage_id or "", options))
        return problems

    def apply(
        self, table: Table, rec: Record, changes: Mapping[str, str | None], created: int | None
    ) -> bool:
        """Write validated changes; bumps the last-modified time only if something changed."""
        now = self.now()
        effective = {k: v for k, v in changes.items() if rec.props.get(k) != v}
        if table.kind is CONTACTS and "email" in effective:
            email = effective["email"]
            effective["hs_email_domain"] = email.rsplit("@", 1)[-1] if email else None
        if table.kind is DEALS and ("dealstage" in effective or "pipeline" in effective):
            stage_id = effective.get("dealstage", rec.props.get("dealstage"))
            derived: dict[str, str] = {}
            pipeline = self.pipelines.get(changes.get("pipeline") or rec.props.get("pipeline") or "")
            stage = pipeline.stages.get(stage_id) if pipeline and stage_id else None
            if stage is not None:
                self._apply_stage(derived, stage)
                effective.update(derived)
            else:
                effective.update(
                    dict.fromkeys(("hs_is_closed", "hs_is_closed_won", "hs_deal_stage_probability"))
                )
        effective = {k: v for k, v in effective.items() if rec.props.get(k) != v}
        changed_created = created is not None and created != rec.created
        if not effective and not changed_created:
            return False
        table.set_props(rec, effective)
        if effective:
            history = rec.history if rec.history is not None else {}
            for name, value in effective.items():
                history.setdefault(name, []).append((value, now))
            rec.history = history
        table.set_times(rec, created=created, updated=max(now, rec.updated))
        if table.kind is DEALS and (changed_created or not ROLLUP_INPUTS.isdisjoint(effective)):
            self._refresh_deal_partners(rec.id, now)
        return True

    def create(
        self, table: Table, changes: Mapping[str, str | None], created: int | None, rid: int | None = None
    ) -> Record:
        now = self.now()
        rec = Record(
            rid if rid is not None else self.new_id(), {}, created if created is not None else now, now
        )
        table.insert(rec)
        self.apply(table, rec, changes, None)
        table.set_times(rec, updated=now)
        return rec

    def auto_company(self, contact: Record) -> None:
        """HubSpot's "create and associate companies with contacts" setting (off unless enabled).

        A contact with a business email domain and no company is associated (as primary) with
        the company of that domain, which is created first if none exists, with
        ``hs_object_source`` ``AUTOMATIC_COMPANY_CREATION`` (the ACC-4 case).
        """
        if not self.auto_create_companies or contact.archived_at is not None:
            return
        domain = contact.props.get("hs_email_domain")
        if not domain or domain in FREE_MAIL_DOMAINS:
            return
        if self.assoc.targets("contacts", contact.id, "companies"):
            return
        companies = self.tables["companies"]
        same_domain = companies.eq_index("domain").get(domain.lower())
        if same_domain:
            company_id = min(same_domain)
        else:
            changes: dict[str, str | None] = {
                "domain": domain,
                "name": domain,
                "hs_object_source": "AUTOMATIC_COMPANY_CREATION",
            }
            company_id = self.create(companies, changes, None).id
        self.associate("contacts", contact.id, "companies", company_id, [1])

    def archive(self, table: Table, rec: Record) -> None:
        now = self.now()
        touched = self.assoc.remove_record(table.kind.name, rec.id)
        for other_type, other_id in touched:
            self._touch(other_type, other_id, now)
            if table.kind is COMPANIES and other_type == "contacts":
                self._sync_primary_company(other_id)
        table.archive(rec, now)
        if table.kind is DEALS:
            for other_type, other_id in touched:
                self._refresh_rollups(other_type, other_id, now)

    # -- associations -----------------------------------------------------------------------------
    def associate(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_ids: Iterable[int]
    ) -> None:
        """Create (or add labels to) an edge and bump both records' last-modified time.

        HubSpot recomputes association-derived properties (counts, the primary company) when
        edges change, which moves the records' last-modified dates; the emulator does the same
        so incremental syncs see association changes.
        """
        touched = self.assoc.add(from_type, from_id, to_type, to_id, type_ids)
        self._after_assoc_change(touched, deals="deals" in (from_type, to_type))

    def dissociate(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_ids: Iterable[int] | None = None
    ) -> None:
        touched = self.assoc.remove(from_type, from_id, to_type, to_id, type_ids)
        self._after_assoc_change(touched, deals="deals" in (from_type, to_type))

    def _after_assoc_change(self, touched: Iterable[tuple[str, int]], *, deals: bool = False) -> None:
        now = self.now()
        for object_type, rid in touched:
            self._touch(object_type, rid, now)
            if object_type == "contacts":
                self._sync_primary_company(rid)
            if deals:
                self._refresh_rollups(object_type, rid, now)

    # -- deal rollups (crm_sandbox.hubspot.rollups) -------------------------------------------------
    def _refresh_rollups(self, object_type: str, rid: int, now: int | None) -> None:
        """Recompute a contact's or company's deal rollups; a change moves its last-modified time
        (``now``; ``None`` while seeding)."""
        if object_type not in ROLLUP_OWNERS:
            return
        table = self.tables[object_type]
        rec = table.get_live(rid)
        if rec is None:
            return
        deals = self.tables["deals"]
        linked = (deals.get_live(d) for d in self.assoc.targets(object_type, rid, "deals"))
        values = deal_rollups(d for d in linked if d is not None)
        changes = {k: v for k, v in values.items() if rec.props.get(k) != v}
        if changes:
            table.set_props(rec, changes)
            if now is not None:
                table.set_times(rec, updated=max(now, rec.updated))

    def _refresh_deal_partners(self, deal_id: int, now: int | None) -> None:
        for owner in ROLLUP_OWNERS:
            for rid in list(self.assoc.targets("deals", deal_id, owner)):
                self._refresh_rollups(owner, rid, now)

    def _seed_rollups(self) -> None:
        """Rollups of seeded records come from their seeded deals, as in a real portal: a seeded
        value without deals behind it is dropped, like any other calculated property."""
        for owner in ROLLUP_OWNERS:
            table = self.tables[owner]
            todo = set(self.assoc.adj[(owner, "deals")])
            todo.update(
                rid for rid in table.live if not table.records[rid].props.keys().isdisjoint(ROLLUP_PROPERTIES)
            )
            for rid in sorted(todo):
                self._refresh_rollups(owner, rid, None)

    def _touch(self, object_type: str, rid: int, now: int) -> None:
        table = self.tables[object_type]
        rec = table.get_live(rid)
        if rec is not None:
            table.set_times(rec, updated=max(now, rec.updated))

    def _sync_primary_company(self, contact_id: int) -> None:
        """Keep the contact's read-only ``associatedcompanyid`` equal to its primary company."""
        table = self.tables["contacts"]
        rec = table.get_live(contact_id)
        if rec is None:
            return
        primary = next(
            (
                cid
                for cid, types in self.assoc.targets("contacts", contact_id, "companies").items()
                if 1 in types
            ),
            None,
        )
        table.set_props(rec, {"associatedcompanyid": str(primary) if primary is not None else None})

    # -- iteration helpers ------------------------------------------------------------------------
    def live_owners(self, archived: bool) -> Iterator[Owner]:
        for oid in sorted(self.owners):
            owner = self.owners[oid]
            if owner.archived == archived:
                yield owner

    def stage_options(self) -> list[Option]:
        return [
            Option(f"{s.label} ({p.label})", s.id, s.display_order)
            for p in self.pipelines.values()
            if not p.archived
            for s in p.live_stages()
        ]

    def dynamic_options(self, object_type: str, name: str) -> list[Option] | None:
        """Options of owner/pipeline/stage properties, read from the portal's current data."""
        if name == "hubspot_owner_id":
            return [Option(o.label(), str(o.id), i) for i, o in enumerate(self.live_owners(False))]
        if object_type == "deals" and name == "pipeline":
            live = [p for p in self.pipelines.values() if not p.archived]
            return [Option(p.label, p.id, p.display_order) for p in live]
        if object_type == "deals" and name == "dealstage":
            return self.stage_options()
        return None

    def refresh_deal_stage(self, pipeline: Pipeline, stage: Stage) -> None:
        """Recompute ``hs_is_closed``/``hs_is_closed_won`` of deals in a stage whose metadata changed."""
        table = self.tables["deals"]
        for rid in list(table.eq_index("dealstage").get(stage.id.lower(), ())):
            rec = table.records[rid]
            if rec.props.get("pipeline") == pipeline.id:
                derived: dict[str, str] = {}
                self._apply_stage(derived, stage)
                table.set_props(rec, dict(derived))
                self._refresh_deal_partners(rid, self.now())


def all_kinds() -> tuple[ObjectKind, ...]:
    return (CONTACTS, COMPANIES, DEALS)
