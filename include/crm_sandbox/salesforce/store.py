"""The emulated org's records: plain dicts in memory, indexed for sync-shaped access, plus DML.

Why plain dicts: a scenario can hold a million Opportunities, and per-record objects would make
loading take minutes. Each record is one ``dict`` keyed by canonical field names holding values
in REST output form (see :mod:`crm_sandbox.salesforce.schema`).

Indexes:

* ``records``: ``Id -> record`` per object (every lookup by id is O(1)).
* Hash indexes, built at load for ``Email``, ``Username``, ``Website`` (case-insensitive) and the
  external id ``HubSpot_Id__c``, plus a normalised-domain index of ``Website``; hash indexes on
  other fields (e.g. ``AccountId``) are built on first use and maintained afterwards.
* Sorted indexes in ``(value, Id)`` order on ``SystemModstamp`` (built at load) and
  ``LastModifiedDate``, ``CreatedDate`` and ``Id`` (built on first use). Incremental syncs
  (SYNC-1) page through ``WHERE SystemModstamp > X ORDER BY SystemModstamp, Id``; the query
  engine answers that with a bisect and a slice instead of a scan and a sort.

DML (insert/update/upsert/delete) validates like a real org and raises
:class:`~crm_sandbox.salesforce.errors.RecordError` with Salesforce's status codes. The seeded
scenario is trusted instead (no validation), so a scenario can model a dirty org, e.g. two
records sharing an external id, which makes an upsert answer 300.

Lead assignment (OWN-2, OWN-3 exercise it): a scenario may seed ``AssignmentRule`` records::

    {"salesforce": {"AssignmentRule": [
        {"Name": "Round robin", "SobjectType": "Lead", "Active": true,
         "AssignToEmail": "queue.owner@example.com"}   # or "AssignToId": "005..."
    ]}}

``AssignToId``/``AssignToEmail`` are emulator-only (real rules have criteria entries; here a rule
sends every lead to one user) and are not visible through the API. Assignment runs on Lead
create and update through REST unless the request says ``Sforce-Auto-Assign: FALSE`` (the REST
default is TRUE, as documented by Salesforce), or with the rule whose id the header names; Bulk
API 2.0 runs it only for a job created with ``assignmentRuleId``. When assignment runs and a rule
applies, the lead's owner is the rule's user, overriding ``OwnerId`` in the request; otherwise
the request's ``OwnerId`` or the current user owns the lead.

The *current user* (default owner, ``CreatedById``/``LastModifiedById`` of API writes) is the
first active User of the scenario; a scenario without one gets a generated "Integration User".
"""

from __future__ import annotations

import bisect
import gc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from crm_sandbox.salesforce.errors import RecordError
from crm_sandbox.salesforce.ids import MalformedIdError, make_id, normalize_id
from crm_sandbox.salesforce.schema import (
    DEFAULT_STAGES,
    HUBSPOT_ID_OBJECTS,
    Field,
    SObjectType,
    address_value,
    build_schema,
    coerce_value,
    now_stored,
    parse_date_text,
    parse_datetime_text,
)
from crm_sandbox.scenario import SALESFORCE_OBJECTS

Record = dict[str, Any]

#: Load order, so references of later objects can default against earlier ones: the objects a
#: scenario may seed, which the scenario module lists in this order.
LOAD_ORDER = SALESFORCE_OBJECTS
#: Objects whose ``Name`` is computed from ``FirstName`` and ``LastName`` on every load and write.
COMPUTED_NAME_OBJECTS = frozenset({"User", "Contact", "Lead"})
SORTED_INDEX_FIELDS = frozenset({"SystemModstamp", "LastModifiedDate", "CreatedDate", "Id"})
#: Hash indexes built at load: field -> key kind ("ci" case-insensitive, like SOQL ``=`` and
#: Salesforce's default for unique external ids; "exact" for ids and other non-text values).
EAGER_HASH_FIELDS = {"Email": "ci", "Username": "ci", "Website": "ci", "HubSpot_Id__c": "ci"}
#: Emulator-only AssignmentRule fields, kept out of the record.
_RULE_TARGET_KEYS = ("AssignToId", "AssignToEmail")
#: Cascade deletes, as a real org does: parent object -> [(child object, reference field)].
CASCADES: dict[str, list[tuple[str, str]]] = {
    "Account": [("Contact", "AccountId"), ("Opportunity", "AccountId")],
    "Contact": [("OpportunityContactRole", "ContactId")],
    "Opportunity": [("OpportunityContactRole", "OpportunityId")],
}


def normalize_domain(website: str) -> str:
    """``https://WWW.Acme.com:443/about`` -> ``acme.com``: scheme, ``www.``, port, path, case."""
    text = website.strip().lower()
    if "//" not in text:
        text = "//" + text
    host = urlsplit(text).hostname or ""
    return host[4:] if host.startswith("www.") else host


#: A hash index: key -> the one id holding it, or a set when several do. Most keys (emails,
#: external ids) are unique, and a million one-element sets would cost hundreds of megabytes.
HashIndex = dict[Any, "str | set[str]"]


def index_add(index: HashIndex, key: Any, rid: str) -> None:
    held = index.get(key)
    if held is None:
        index[key] = rid
    elif isinstance(held, str):
        if held != rid:
            index[key] = {held, rid}
    else:
        held.add(rid)


def index_discard(index: HashIndex, key: Any, rid: str) -> None:
    held = index.get(key)
    if held is None:
        return
    if isinstance(held, str):
        if held == rid:
            del index[key]
        return
    held.discard(rid)
    if len(held) == 1:
        index[key] = next(iter(held))
    elif not held:
        del index[key]


def index_get(index: HashIndex, key: Any) -> set[str]:
    held = index.get(key)
    if held is None:
        return set()
    return {held} if isinstance(held, str) else set(held)


def hash_key(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "ci" and isinstance(value, str):
        return value.casefold()
    return value


class SortedIndex:
    """Ids in ``(value, Id)`` order, as two parallel lists, with cheap appends and batched deletes.

    ``values[i]``/``ids[i]`` hold the i-th key; a range is two bisects on ``values`` and one C-level
    slice of ``ids``, so a page over a million keys costs milliseconds. Writes mostly append (a new
    ``SystemModstamp`` is "now", the largest value): added keys wait in ``pending`` and removed keys
    in ``stale`` until the next read merges them, a key removed and added back (a value that went
    A->B->A) simply cancels out. Several writes in the same second (timestamps have second
    precision) only re-sort the short tail of keys sharing the newest value.
    """

    __slots__ = ("ids", "one_by_one", "pending", "stale", "stale_count", "values")

    def __init__(self, pairs: Iterable[tuple[Any, str]] = (), one_by_one: int = 256) -> None:
        ordered = sorted(pairs)
        self.values: list[Any] = [v for v, _ in ordered]
        self.ids: list[str] = [i for _, i in ordered]
        self.pending: list[tuple[Any, str]] = []
        self.stale: dict[str, set[Any]] = {}
        self.stale_count = 0
        #: Up to this many stale keys are deleted one by one; more are filtered out in one pass.
        self.one_by_one = one_by_one

    @classmethod
    def build(cls, records: Mapping[str, Record], name: str) -> SortedIndex:
        """Index ``records`` on field ``name``: sort ids, then stable-sort them by value.

        Two string sorts are several times faster than sorting ``(value, Id)`` tuples.
        """
        index = cls()
        ids = sorted(records)
        ids.sort(key=lambda rid: records[rid][name])
        index.ids = ids
        # the values in id order are the sorted values: sorting them sequentially beats random access
        index.values = sorted(rec[name] for rec in records.values())
        return index

    def add(self, key: tuple[Any, str]) -> None:
        value, rid = key
        stale = self.stale.get(rid)
        if stale is not None and value in stale:
            stale.discard(value)
            self.stale_count -= 1
            if not stale:
                del self.stale[rid]
        else:
            self.pending.append(key)

    def remove(self, key: tuple[Any, str]) -> None:
        value, rid = key
        self.stale.setdefault(rid, set()).add(value)
        self.stale_count += 1

    def _position(self, value: Any, rid: str) -> int:
        """Index of the first key >= ``(value, rid)``."""
        lo = bisect.bisect_left(self.values, value)
        hi = bisect.bisect_right(self.values, value, lo)
        return bisect.bisect_left(self.ids, rid, lo, hi)

    def settle(self) -> None:
        """Apply pending adds and stale deletes."""
        if self.stale_count:
            self._drop_stale()
        if self.pending:
            pending = sorted(self.pending)
            self.pending = []
            values, ids = self.values, self.ids
            if not values or pending[0] >= (values[-1], ids[-1]):
                values.extend(v for v, _ in pending)
                ids.extend(i for _, i in pending)
            else:
                start = self._position(*pending[0])
                tail = sorted([*zip(values[start:], ids[start:], strict=True), *pending])
                del values[start:]
                del ids[start:]
                values.extend(v for v, _ in tail)
                ids.extend(i for _, i in tail)

    def _drop_stale(self) -> None:
        stale = self.stale
        # a stale key may still sit in pending (added and removed between two reads)
        pending = [(v, i) for v, i in self.pending if not (i in stale and v in stale[i])]
        if self.stale_count <= self.one_by_one:
            for rid, values in stale.items():
                for value in values:
                    at = self._position(value, rid)
                    if at < len(self.ids) and self.ids[at] == rid and self.values[at] == value:
                        del self.values[at]
                        del self.ids[at]
        else:
            keep = [
                n
                for n, (v, i) in enumerate(zip(self.values, self.ids, strict=True))
                if not (i in stale and v in stale[i])
            ]
            self.values = [self.values[n] for n in keep]
            self.ids = [self.ids[n] for n in keep]
        self.pending = pending
        self.stale = {}
        self.stale_count = 0

    def _bounds(self, low: Any, low_inclusive: bool, high: Any, high_inclusive: bool) -> tuple[int, int]:
        self.settle()
        values = self.values
        start, end = 0, len(values)
        if low is not None:
            start = bisect.bisect_left(values, low) if low_inclusive else bisect.bisect_right(values, low)
        if high is not None:
            end = bisect.bisect_right(values, high) if high_inclusive else bisect.bisect_left(values, high)
        return start, max(start, end)

    def count(
        self, low: Any = None, low_inclusive: bool = True, high: Any = None, high_inclusive: bool = True
    ) -> int:
        """Number of keys with ``low <(=) value <(=) high``."""
        start, end = self._bounds(low, low_inclusive, high, high_inclusive)
        return end - start

    def range(
        self,
        low: Any = None,
        low_inclusive: bool = True,
        high: Any = None,
        high_inclusive: bool = True,
    ) -> list[str]:
        """Ids with ``low <(=) value <(=) high`` in ``(value, Id)`` order; ``None`` bounds are open."""
        start, end = self._bounds(low, low_inclusive, high, high_inclusive)
        return self.ids[start:end]


@dataclass
class WriteContext:
    """Who writes and how: the request's user, assignment header, and clock."""

    user_id: str
    #: ``None`` = no assignment; ``"default"`` = the active rule; else a rule id
    assignment: str | None = "default"
    now: str = ""

    def stamp(self) -> str:
        if not self.now:
            self.now = now_stored()
        return self.now


class Table:
    """The records of one SObject and their indexes."""

    def __init__(self, obj: SObjectType) -> None:
        self.obj = obj
        self.records: dict[str, Record] = {}
        self.hash_indexes: dict[str, HashIndex] = {}
        self.hash_kinds: dict[str, str] = {}
        self.sorted_indexes: dict[str, SortedIndex] = {}
        self.deleted: set[str] = set()
        self.counter = 0
        self.domains: HashIndex | None = {} if "Website" in obj.fields else None
        for name, kind in EAGER_HASH_FIELDS.items():
            if name in obj.fields:
                self.hash_indexes[name] = {}
                self.hash_kinds[name] = kind

    # -- indexes ---------------------------------------------------------------------------------
    def hash_index(self, name: str) -> HashIndex:
        """The hash index on ``name``, built on first use (text keys case-insensitive)."""
        index = self.hash_indexes.get(name)
        if index is None:
            f = self.obj.fields[name]
            kind = "ci" if f.is_text else "exact"
            index = self.build_hash_index(name, kind)
            self.hash_indexes[name] = index
            self.hash_kinds[name] = kind
        return index

    def build_hash_index(self, name: str, kind: str) -> HashIndex:
        index: HashIndex = {}
        fold = kind == "ci"
        for rid, rec in self.records.items():
            value = rec.get(name)
            if value is None:
                continue
            if fold and isinstance(value, str):
                value = value.casefold()
            held = index.get(value)
            if held is None:
                index[value] = rid
            else:
                index_add(index, value, rid)
        return index

    def sorted_index(self, name: str) -> SortedIndex:
        """The sorted index on ``name``, built on first use (``SystemModstamp``: at load)."""
        index = self.sorted_indexes.get(name)
        if index is None:
            index = SortedIndex.build(self.records, name)
            self.sorted_indexes[name] = index
        return index

    def lookup(self, name: str, value: Any) -> set[str]:
        """Ids whose ``name`` equals ``value`` (case-insensitively for text), deleted included."""
        index = self.hash_index(name)
        return index_get(index, hash_key(self.hash_kinds[name], value))

    def _index_add(self, rid: str, rec: Record) -> None:
        for name, index in self.hash_indexes.items():
            key = hash_key(self.hash_kinds[name], rec.get(name))
            if key is not None:
                index_add(index, key, rid)
        for name, sindex in self.sorted_indexes.items():
            sindex.add((rec[name], rid))
        if self.domains is not None and rec.get("Website"):
            index_add(self.domains, normalize_domain(rec["Website"]), rid)

    def _index_change(self, rid: str, name: str, old: Any, new: Any) -> None:
        index = self.hash_indexes.get(name)
        if index is not None:
            kind = self.hash_kinds[name]
            old_key, new_key = hash_key(kind, old), hash_key(kind, new)
            if old_key != new_key:
                if old_key is not None:
                    index_discard(index, old_key, rid)
                if new_key is not None:
                    index_add(index, new_key, rid)
        sindex = self.sorted_indexes.get(name)
        if sindex is not None and old != new:
            sindex.remove((old, rid))
            sindex.add((new, rid))
        if name == "Website" and self.domains is not None:
            if old:
                index_discard(self.domains, normalize_domain(old), rid)
            if new:
                index_add(self.domains, normalize_domain(new), rid)

    def next_id(self, taken: set[str] | None = None) -> str:
        while True:
            self.counter += 1
            rid = make_id(self.obj.key_prefix, self.counter)
            if rid not in self.records and (taken is None or rid not in taken):
                return rid


class Store:
    """All tables of the emulated org, seeded from a scenario and restorable to it."""

    def __init__(
        self, scenario: Mapping[str, Any], hubspot_id_objects: Iterable[str] = HUBSPOT_ID_OBJECTS
    ) -> None:
        self._seed = scenario
        self.hubspot_id_objects = tuple(hubspot_id_objects)
        self.schema: dict[str, SObjectType] = {}
        self.tables: dict[str, Table] = {}
        self.by_prefix: dict[str, Table] = {}
        self.current_user_id = ""
        self.rule_targets: dict[str, str] = {}
        #: Undo log of the open all-or-none transaction: (object, id, record before or None).
        self.journal: list[tuple[str, str, Record | None]] | None = None
        #: Journal lengths where nested transactions began (a composite request holding
        #: allOrNone collections): rollback undoes back to the innermost one.
        self.savepoints: list[int] = []
        self.load()

    # -- loading ---------------------------------------------------------------------------------
    def load(self) -> None:
        """(Re)build every table from the seeded scenario; used at start and by sandbox reset.

        The cyclic garbage collector is paused meanwhile: creating a million record dicts would
        otherwise trigger collections that traverse every record built so far (2-3x slower).
        """
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._load()
        finally:
            if enabled:
                gc.enable()

    def _load(self) -> None:
        seed = self._seed.get("salesforce") or {}
        if not isinstance(seed, Mapping):
            raise ValueError("scenario['salesforce'] must map SObject names to record lists")
        record_types = seed.get("RecordType") or []
        self.schema = build_schema(
            {str(rt.get("SobjectType", "")) for rt in record_types}, self.hubspot_id_objects
        )
        unknown = set(seed) - set(self.schema)
        if unknown:
            raise ValueError(f"scenario has unknown Salesforce objects: {sorted(unknown)}")
        self.tables = {name: Table(obj) for name, obj in self.schema.items()}
        self.by_prefix = {t.obj.key_prefix: t for t in self.tables.values()}
        self.rule_targets = {}
        now = now_stored()
        users = list(seed.get("User") or [])
        self._load_table("User", users, now, owner="")
        active = [r for r in self.tables["User"].records.values() if r.get("IsActive")]
        if not active:
            integration = {
                "FirstName": "Integration",
                "LastName": "User",
                "Username": "integration.user@crm-sandbox.example.com",
                "Email": "integration.user@crm-sandbox.example.com",
                "Alias": "integ",
                "IsActive": True,
            }
            self._load_table("User", [integration], now, owner="")
            active = [r for r in self.tables["User"].records.values() if r.get("IsActive")]
        self.current_user_id = active[0]["Id"]
        for rec in self.tables["User"].records.values():
            rec["CreatedById"] = rec["CreatedById"] or self.current_user_id
            rec["LastModifiedById"] = rec["LastModifiedById"] or self.current_user_id
        stages = seed.get("OpportunityStage") or list(DEFAULT_STAGES)
        for name in LOAD_ORDER[1:]:
            rows = stages if name == "OpportunityStage" else (seed.get(name) or [])
            self._load_table(name, rows, now, owner=self.current_user_id)

    def _load_table(self, name: str, rows: Iterable[Mapping[str, Any]], now: str, owner: str) -> None:
        table = self.tables[name]
        obj = table.obj
        rows = list(rows)
        converters = _load_converters(obj)
        template: Record = {f.name: f.default for f in obj.fields.values()}
        if "OwnerId" in template:
            template["OwnerId"] = owner or None
        template["CreatedById"] = owner or None
        template["LastModifiedById"] = owner or None
        explicit: set[str] = set()
        for row in rows:
            raw_id = row.get("Id")
            if raw_id:
                rid = normalize_id(str(raw_id))
                if rid[:3] != obj.key_prefix:
                    raise ValueError(f"scenario {name} Id {raw_id} lacks the key prefix {obj.key_prefix}")
                if rid in explicit:
                    raise ValueError(f"scenario {name} Id {raw_id} appears twice")
                explicit.add(rid)
        computed_name = name in COMPUTED_NAME_OBJECTS
        addresses = [f.name for f in obj.fields.values() if f.type == "address"]
        records = table.records
        for row in rows:
            rec = template.copy()
            for key, value in row.items():
                conv = converters.get(key)
                if conv is None:
                    if key in _RULE_TARGET_KEYS and name == "AssignmentRule":
                        continue
                    if key == "attributes":
                        continue
                    raise ValueError(f"scenario {name} record has unknown field {key!r}")
                field_name, fn = conv
                rec[field_name] = fn(value) if (fn is not None and value is not None) else value
            rid = rec["Id"] or table.next_id(explicit)
            rec["Id"] = rid
            created = rec["CreatedDate"] or now
            rec["CreatedDate"] = created
            modified = rec["LastModifiedDate"] or created
            rec["LastModifiedDate"] = modified
            rec["SystemModstamp"] = rec["SystemModstamp"] or modified
            if computed_name:
                rec["Name"] = _full_name(rec)
            for compound in addresses:
                rec[compound] = address_value(rec, compound)
            if rec["IsDeleted"]:
                table.deleted.add(rid)
            records[rid] = rec
            if name == "AssignmentRule":
                self._load_rule_target(rid, row)
        if "RecordTypeId" in obj.fields:
            default_type = self._default_record_type(name)
            for rec in records.values():
                if rec["RecordTypeId"] is None:
                    rec["RecordTypeId"] = default_type
        if name == "Opportunity":
            stages = {r["ApiName"]: r for r in self.tables["OpportunityStage"].records.values()}
            for rec in records.values():
                stage = stages.get(rec["StageName"])
                if stage is not None:
                    rec["IsClosed"] = bool(stage["IsClosed"])
                    rec["IsWon"] = bool(stage["IsWon"])
                    if rec["Probability"] is None:
                        rec["Probability"] = stage["DefaultProbability"]
                    if rec["ForecastCategoryName"] is None:
                        rec["ForecastCategoryName"] = stage["ForecastCategoryName"]
        for index_name in list(table.hash_indexes):
            table.hash_indexes[index_name] = table.build_hash_index(index_name, table.hash_kinds[index_name])
        if table.domains is not None:
            for rid, rec in records.items():
                if rec.get("Website"):
                    index_add(table.domains, normalize_domain(rec["Website"]), rid)
        # the incremental-sync cursor: built now so the first sync query is as fast as the next
        table.sorted_indexes["SystemModstamp"] = SortedIndex.build(records, "SystemModstamp")

    def _load_rule_target(self, rule_id: str, row: Mapping[str, Any]) -> None:
        target = row.get("AssignToId")
        if target:
            self.rule_targets[rule_id] = normalize_id(str(target))
            return
        email = row.get("AssignToEmail")
        if email:
            users = self.tables["User"].lookup("Email", email)
            if not users:
                raise ValueError(f"AssignmentRule AssignToEmail {email!r} matches no User")
            self.rule_targets[rule_id] = sorted(users)[0]

    # -- reads -----------------------------------------------------------------------------------
    def table(self, name: str) -> Table:
        return self.tables[name]

    def get(self, record_id: str | None) -> Record | None:
        """The record with this (already normalised) id, of any object, deleted or not."""
        if not record_id:
            return None
        table = self.by_prefix.get(record_id[:3])
        return table.records.get(record_id) if table else None

    def object_name(self, name: str) -> str | None:
        """Canonical SObject name for a case-insensitive name, or None."""
        lower = name.lower()
        for canonical in self.schema:
            if canonical.lower() == lower:
                return canonical
        return None

    def find_by_domain(self, domain: str) -> list[Record]:
        """Accounts whose Website normalises to ``domain`` (O(1); used by ACC-6 style checks)."""
        table = self.tables["Account"]
        ids = index_get(table.domains or {}, normalize_domain(domain))
        return [table.records[i] for i in sorted(ids)]

    def picklist_values(self, f: Field) -> list[str]:
        if f.picklist_source == "OpportunityStage":
            stages = [
                r
                for r in self.tables["OpportunityStage"].records.values()
                if r["IsActive"] and not r["IsDeleted"]
            ]
            stages.sort(key=lambda r: (r.get("SortOrder") or 0, r["ApiName"]))
            return [r["ApiName"] for r in stages]
        return list(f.picklist)

    def default_value(self, f: Field) -> Any:
        if f.name == "StageName" or f.picklist_source:
            return None
        return f.default

    def stage(self, api_name: str | None) -> Record | None:
        if api_name is None:
            return None
        for rec in self.tables["OpportunityStage"].records.values():
            if rec["ApiName"] == api_name and not rec["IsDeleted"]:
                return rec
        return None

    def _default_record_type(self, sobject: str) -> str | None:
        for rec in self.tables["RecordType"].records.values():
            if rec["SobjectType"] == sobject and rec["IsActive"]:
                return str(rec["Id"])
        return None

    # -- DML -------------------------------------------------------------------------------------
    def resolve_write(
        self, obj: SObjectType, data: Mapping[str, Any], *, creating: bool, from_csv: bool = False
    ) -> dict[str, Any]:
        """Map a request body to canonical fields with stored values, or raise RecordError.

        Handles the nested external-id reference form ``{"Account": {"HubSpot_Id__c": "42"}}``
        (and ``Account.HubSpot_Id__c`` columns in Bulk CSV) by resolving the parent's id.
        """
        values: dict[str, Any] = {}
        for key, raw in data.items():
            if key == "attributes":
                continue
            if from_csv and "." in key:
                rel, _, ext = key.partition(".")
                ref_field = obj.relationships.get(rel.lower())
                if ref_field is None:
                    raise RecordError(
                        "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", [key]
                    )
                if raw in (None, ""):
                    continue
                values[ref_field.name] = self._resolve_foreign_key(ref_field, {ext: raw})
                continue
            f = obj.field(key)
            if f is None:
                ref_field = obj.relationships.get(key.lower())
                if ref_field is not None and isinstance(raw, Mapping):
                    values[ref_field.name] = self._resolve_foreign_key(ref_field, raw)
                    continue
                raise RecordError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", [key]
                )
            if (creating and not f.createable) or (not creating and not f.updateable):
                if f.name == "Id":
                    continue
                raise RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security settings of this "
                    "field and verify that it is read/write for your profile or permission set.",
                    [f.name],
                )
            if from_csv and raw == "":
                continue
            value = None if from_csv and raw == "#N/A" else raw
            values[f.name] = coerce_value(f, value, from_csv=from_csv)
        return values

    def _resolve_foreign_key(self, ref_field: Field, spec: Mapping[str, Any]) -> str:
        target = self.schema[ref_field.reference_to or ""]
        if len(spec) != 1:
            raise RecordError(
                "INVALID_FIELD", f"Foreign key reference to {target.name} must name one field", []
            )
        (ext_name, ext_value), *_ = spec.items()
        if ext_name == "attributes":
            raise RecordError("INVALID_FIELD", "Foreign key reference needs an external id field", [])
        ext = target.field(ext_name)
        if ext is None or not (ext.external_id or ext.name == "Id"):
            raise RecordError(
                "INVALID_FIELD", f"Field {ext_name} is not an external id field on {target.name}", [ext_name]
            )
        ids = self._match_external(target.name, ext, ext_value)
        if not ids:
            raise RecordError(
                "INVALID_FIELD",
                f"Foreign key external ID: {ext_value} not found for field {ext.name} "
                f"in entity {target.name}",
                [],
            )
        if len(ids) > 1:
            raise RecordError(
                "INVALID_FIELD",
                f"Foreign key external ID: {ext_value} matches more than one record for field {ext.name} "
                f"in entity {target.name}",
                [],
            )
        return ids[0]

    def _match_external(self, obj_name: str, ext: Field, value: Any) -> list[str]:
        table = self.tables[obj_name]
        if ext.name == "Id":
            try:
                rid = normalize_id(str(value))
            except MalformedIdError:
                return []
            rec = table.records.get(rid)
            return [rid] if rec is not None and not rec["IsDeleted"] else []
        ids = table.lookup(ext.name, str(value))
        return sorted(i for i in ids if not table.records[i]["IsDeleted"])

    def find_external(self, obj_name: str, ext_name: str, value: str) -> tuple[Field, list[str]]:
        """Records (not deleted) whose external id ``ext_name`` equals ``value``."""
        obj = self.schema[obj_name]
        ext = obj.field(ext_name)
        if ext is None or not (ext.external_id or ext.name == "Id"):
            raise RecordError(
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {ext_name}",
                [],
                404,
            )
        return ext, self._match_external(obj_name, ext, value)

    def insert(
        self, obj_name: str, data: Mapping[str, Any], ctx: WriteContext, *, from_csv: bool = False
    ) -> str:
        """Create one record; returns its id."""
        obj = self.schema[obj_name]
        if not obj.createable:
            raise RecordError(
                "INVALID_TYPE_FOR_OPERATION", f"entity type cannot be inserted: {obj.label}", []
            )
        values = self.resolve_write(obj, data, creating=True, from_csv=from_csv)
        table = self.tables[obj_name]
        rec: Record = {f.name: self.default_value(f) for f in obj.fields.values()}
        rec.update(values)
        if "OwnerId" in rec and rec["OwnerId"] is None:
            rec["OwnerId"] = ctx.user_id
        if "RecordTypeId" in rec and rec["RecordTypeId"] is None:
            rec["RecordTypeId"] = self._default_record_type(obj_name)
        self._derive_and_validate(obj, rec, None, values, ctx)
        rid = table.next_id()
        stamp = ctx.stamp()
        rec.update(
            Id=rid,
            IsDeleted=False,
            CreatedDate=stamp,
            LastModifiedDate=stamp,
            SystemModstamp=stamp,
            CreatedById=ctx.user_id,
            LastModifiedById=ctx.user_id,
        )
        table.records[rid] = rec
        table._index_add(rid, rec)
        if self.journal is not None:
            self.journal.append((obj_name, rid, None))
        if obj_name == "OpportunityContactRole" and rec["IsPrimary"]:
            self._single_primary(rec, ctx)
        return rid

    def update(
        self,
        obj_name: str,
        record_id: str,
        data: Mapping[str, Any],
        ctx: WriteContext,
        *,
        from_csv: bool = False,
    ) -> None:
        """Update one record by id (every update bumps ``LastModifiedDate``/``SystemModstamp``)."""
        obj = self.schema[obj_name]
        if not obj.updateable:
            raise RecordError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be updated: {obj.label}", [])
        table = self.tables[obj_name]
        current = self.existing(obj_name, record_id)
        if obj_name == "Lead" and current["IsConverted"]:
            raise RecordError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead", [])
        values = self.resolve_write(obj, data, creating=False, from_csv=from_csv)
        rec = dict(current)
        rec.update(values)
        self._derive_and_validate(obj, rec, current, values, ctx)
        stamp = ctx.stamp()
        rec.update(LastModifiedDate=stamp, SystemModstamp=stamp, LastModifiedById=ctx.user_id)
        self._apply(table, current, rec)
        if obj_name == "OpportunityContactRole" and values.get("IsPrimary") is True:
            self._single_primary(current, ctx)

    def _single_primary(self, role: Record, ctx: WriteContext) -> None:
        """An opportunity has at most one primary contact role: a new primary demotes the others."""
        table = self.tables["OpportunityContactRole"]
        for rid in table.lookup("OpportunityId", role["OpportunityId"]):
            other = table.records[rid]
            if rid != role["Id"] and other["IsPrimary"] and not other["IsDeleted"]:
                stamp = ctx.stamp()
                demoted = dict(other)
                demoted.update(IsPrimary=False, LastModifiedDate=stamp, SystemModstamp=stamp)
                self._apply(table, other, demoted)

    def _apply(self, table: Table, current: Record, new: Record) -> None:
        rid = current["Id"]
        if self.journal is not None:
            self.journal.append((table.obj.name, rid, dict(current)))
        for name, value in new.items():
            old = current.get(name)
            if old != value:
                table._index_change(rid, name, old, value)
        current.update(new)

    def upsert(
        self, obj_name: str, ext_name: str, ext_value: str, data: Mapping[str, Any], ctx: WriteContext,
        *, from_csv: bool = False,
    ) -> tuple[str, bool]:  # fmt: skip
        """Upsert by external id; returns ``(id, created)``. Several matches raise a 300 error."""
        ext, ids = self.find_external(obj_name, ext_name, ext_value)
        if len(ids) > 1:
            raise RecordError(
                "MULTIPLE_RECORDS_FOUND",
                f"More than one record found for external id field {ext.name} with value {ext_value}",
                [ext.name],
                300,
            )
        body = dict(data)
        for key in list(body):
            if key.lower() == ext.name.lower():
                given = body.pop(key)
                if given not in (None, "") and str(given) != str(ext_value):
                    raise RecordError(
                        "INVALID_FIELD",
                        f"The value of {ext.name} in the body must match the value in the URL",
                        [ext.name],
                    )
        if ids:
            self.update(obj_name, ids[0], body, ctx, from_csv=from_csv)
            return ids[0], False
        if ext.name == "Id":
            if ext_value:
                raise RecordError(
                    "NOT_FOUND", f"Provided external ID field does not exist: {ext_value}", [], 404
                )
            return self.insert(obj_name, body, ctx, from_csv=from_csv), True
        body[ext.name] = ext_value
        return self.insert(obj_name, body, ctx, from_csv=from_csv), True

    def existing(self, obj_name: str, record_id: str) -> Record:
        """The live record with this id, or RecordError NOT_FOUND / ENTITY_IS_DELETED."""
        table = self.tables[obj_name]
        try:
            rid = normalize_id(record_id)
        except MalformedIdError:
            raise RecordError(
                "MALFORMED_ID", f"{obj_name} ID: id value of incorrect type: {record_id}", ["Id"]
            ) from None
        if rid[:3] != table.obj.key_prefix:
            raise RecordError(
                "MALFORMED_ID", f"{obj_name} ID: id value of incorrect type: {record_id}", ["Id"]
            )
        rec = table.records.get(rid)
        if rec is None:
            raise RecordError("NOT_FOUND", "The requested resource does not exist", [], 404)
        if rec["IsDeleted"]:
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [], 404)
        return rec

    def delete(self, obj_name: str, record_id: str, ctx: WriteContext) -> None:
        """Soft-delete (recycle bin): ``IsDeleted`` true, still visible to ``queryAll``; cascades."""
        obj = self.schema[obj_name]
        if not obj.deletable:
            raise RecordError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be deleted: {obj.label}", [])
        rec = self.existing(obj_name, record_id)
        self._soft_delete(obj_name, rec, ctx)

    def _soft_delete(self, obj_name: str, rec: Record, ctx: WriteContext) -> None:
        table = self.tables[obj_name]
        stamp = ctx.stamp()
        new = dict(rec)
        new.update(IsDeleted=True, SystemModstamp=stamp, LastModifiedDate=stamp, LastModifiedById=ctx.user_id)
        self._apply(table, rec, new)
        table.deleted.add(rec["Id"])
        for child_name, ref in CASCADES.get(obj_name, []):
            child = self.tables[child_name]
            for cid in list(child.lookup(ref, rec["Id"])):
                crec = child.records[cid]
                if not crec["IsDeleted"]:
                    self._soft_delete(child_name, crec, ctx)

    # -- all-or-none transactions -----------------------------------------------------------------
    def begin(self) -> None:
        """Start journaling writes so :meth:`rollback` can undo them (``allOrNone`` requests).

        Transactions nest: an all-or-none composite request may hold all-or-none collections.
        """
        if self.journal is None:
            self.journal = []
        self.savepoints.append(len(self.journal))

    def commit(self) -> None:
        """End the innermost transaction, keeping its writes (undoable by an outer rollback)."""
        if self.savepoints:
            self.savepoints.pop()
        if not self.savepoints:
            self.journal = None

    def rollback(self) -> None:
        """Undo every write since the innermost :meth:`begin`, newest first."""
        mark = self.savepoints.pop() if self.savepoints else 0
        full = self.journal or []
        journal = full[mark:]
        del full[mark:]
        if not self.savepoints:
            self.journal = None
        for obj_name, rid, before in reversed(journal):
            table = self.tables[obj_name]
            current = table.records.get(rid)
            if current is None:
                continue
            if before is None:
                self._unindex(table, rid, current)
                del table.records[rid]
                table.deleted.discard(rid)
                continue
            self._apply(table, current, before)
            if before["IsDeleted"]:
                table.deleted.add(rid)
            else:
                table.deleted.discard(rid)

    def _unindex(self, table: Table, rid: str, rec: Record) -> None:
        for name in list(table.hash_indexes):
            table._index_change(rid, name, rec.get(name), None)
        for name, sindex in table.sorted_indexes.items():
            sindex.remove((rec[name], rid))

    # -- rules -----------------------------------------------------------------------------------
    def _derive_and_validate(
        self,
        obj: SObjectType,
        rec: Record,
        current: Record | None,
        values: Mapping[str, Any],
        ctx: WriteContext,
    ) -> None:
        """What every write does to the merged record ``rec`` before it is stored, in the same
        order for an insert (``current`` is None) and an update: Lead assignment, the fields an
        Opportunity derives from its stage (only when the stage is new or changes), the computed
        ``Name``, then validation of the result.
        """
        if obj.name == "Lead":
            self._assign_lead(rec, ctx, creating=current is None)
        if obj.name == "Opportunity":
            stage_changed = current is None or (
                "StageName" in values and values["StageName"] != current["StageName"]
            )
            self._derive_opportunity(
                rec, values, stage_changed=stage_changed, probability_given="Probability" in values
            )
        if obj.name in COMPUTED_NAME_OBJECTS:
            rec["Name"] = _full_name(rec)
        for f in obj.fields.values():
            if f.type == "address":
                rec[f.name] = address_value(rec, f.name)
        self._validate(obj, rec, current, values)

    def _assign_lead(self, rec: Record, ctx: WriteContext, *, creating: bool) -> None:
        """Run the Lead assignment rule the request asks for (see module docstring)."""
        if ctx.assignment is None:
            return
        rules = self.tables["AssignmentRule"].records
        rule: Record | None = None
        if ctx.assignment == "default":
            for candidate in rules.values():
                if candidate["Active"] and candidate["SobjectType"] == "Lead" and not candidate["IsDeleted"]:
                    rule = candidate
                    break
        else:
            rule = rules.get(ctx.assignment)
        if rule is None:
            return
        target = self.rule_targets.get(rule["Id"])
        if target:
            rec["OwnerId"] = target
        del creating

    def _derive_opportunity(
        self, rec: Record, values: Mapping[str, Any], *, stage_changed: bool, probability_given: bool
    ) -> None:
        """IsClosed/IsWon always follow the stage; Probability and forecast category default to it."""
        stage = self.stage(rec.get("StageName"))
        if stage is None:
            return
        rec["IsClosed"] = bool(stage["IsClosed"])
        rec["IsWon"] = bool(stage["IsWon"])
        if stage_changed and not probability_given:
            rec["Probability"] = stage["DefaultProbability"]
        if stage_changed and "ForecastCategoryName" not in values:
            rec["ForecastCategoryName"] = stage["ForecastCategoryName"]

    def _validate(
        self, obj: SObjectType, rec: Record, current: Record | None, values: Mapping[str, Any]
    ) -> None:
        missing = [
            f.name
            for f in obj.fields.values()
            if f.required and rec.get(f.name) in (None, "") and (current is None or f.name in values)
        ]
        if missing:
            raise RecordError(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )
        checked = obj.fields.values() if current is None else [obj.fields[n] for n in values]
        for f in checked:
            value = rec.get(f.name)
            if value is None:
                continue
            if f.type == "picklist" and f.restricted:
                allowed = self.picklist_values(f)
                if value not in allowed:
                    raise RecordError(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{f.label}: bad value for restricted picklist field: {value}",
                        [f.name],
                    )
            elif f.type == "reference" and f.createable:
                self._validate_reference(obj, f, value)
            if f.unique:
                self._validate_unique(obj, f, value, rec.get("Id"))
        if "OwnerId" in obj.fields and (
            current is None or "OwnerId" in values or rec["OwnerId"] != current["OwnerId"]
        ):
            owner = self.tables["User"].records.get(rec["OwnerId"])
            if owner is not None and not owner["IsActive"]:
                raise RecordError(
                    "INACTIVE_OWNER_OR_USER",
                    f"operation performed with inactive user [{rec['OwnerId']}] "
                    f"as owner of {obj.name.lower()}",
                    [],
                )

    def _validate_reference(self, obj: SObjectType, f: Field, value: str) -> None:
        target = self.tables[f.reference_to or ""]
        if value[:3] != target.obj.key_prefix:
            raise RecordError(
                "FIELD_INTEGRITY_EXCEPTION", f"{f.label}: id value of incorrect type: {value}", [f.name]
            )
        parent = target.records.get(value)
        if parent is None:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f.name])
        if parent["IsDeleted"]:
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [f.name])
        if f.name == "RecordTypeId" and (parent["SobjectType"] != obj.name or not parent["IsActive"]):
            raise RecordError(
                "INVALID_CROSS_REFERENCE_KEY",
                f"Record Type ID: this ID value isn't valid for the user: {value}",
                [f.name],
            )

    def _validate_unique(self, obj: SObjectType, f: Field, value: Any, own_id: str | None) -> None:
        table = self.tables[obj.name]
        others = [i for i in table.lookup(f.name, value) if i != own_id and not table.records[i]["IsDeleted"]]
        if others:
            raise RecordError(
                "DUPLICATE_VALUE",
                f"duplicate value found: {f.name} duplicates value on record with id: {sorted(others)[0]}",
                [f.name],
            )


def _full_name(rec: Record) -> str:
    first = rec.get("FirstName")
    last = rec.get("LastName") or ""
    return f"{first} {last}" if first else last


def _id_or_none(value: Any) -> str | None:
    return normalize_id(str(value)) if value else None


def _load_datetime(value: Any) -> str:
    return parse_datetime_text(str(value), trusted=True)


def _load_date(value: Any) -> str:
    return parse_date_text(str(value))


def _load_converters(obj: SObjectType) -> dict[str, tuple[str, Callable[[Any], Any] | None]]:
    """Per input key: canonical field name and a (fast) converter to the stored form."""
    out: dict[str, tuple[str, Callable[[Any], Any] | None]] = {}
    for f in obj.fields.values():
        fn: Callable[[Any], Any] | None = None
        if f.type == "datetime":
            fn = _load_datetime
        elif f.type == "date":
            fn = _load_date
        elif f.type in ("id", "reference"):
            fn = _id_or_none
        elif f.type in ("double", "currency", "percent"):
            fn = float
        elif f.type == "int":
            fn = int
        out[f.name] = (f.name, fn)
        out.setdefault(f.name.lower(), (f.name, fn))
    return out
