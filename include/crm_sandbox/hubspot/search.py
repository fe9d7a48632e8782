"""``POST /crm/v3/objects/{type}/search``: HubSpot's filter language, limits and paging, indexed.

Semantics follow HubSpot's search API: filter groups are ORed and the filters inside a group
ANDed (at most 5 groups, 6 filters per group, 18 in all); one sort; ``limit`` up to 200;
``after`` is an offset and no query can page past 10,000 results (HubSpot answers 400, the
failure mode every integration that pages a large result set meets). String equality is
case-insensitive, but ``IN``/``NOT_IN`` values on string properties must be lowercase, as
HubSpot documents. Datetime values may be epoch milliseconds or ISO 8601.

Performance: the common incremental query (a range on the last-modified property, sorted by it)
is answered from a sorted index by position, in O(log n + page) regardless of portal size;
equality filters use hash indexes; only queries no index can serve scan the records.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from crm_sandbox.hubspot.errors import validation_error
from crm_sandbox.hubspot.kinds import parse_ms
from crm_sandbox.hubspot.store import PACK, Record, Table

OPERATORS = {
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN",
    "HAS_PROPERTY", "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
}  # fmt: skip
RANGE_OPERATORS = {"EQ", "LT", "LTE", "GT", "GTE", "BETWEEN"}
MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_LIMIT = 200
#: HubSpot's search never returns results past this position.
MAX_RESULTS = 10_000

Predicate = Callable[[Record], bool]


@dataclass
class Filter:
    prop: str
    op: str
    value: Any = None
    values: list[Any] | None = None
    high: Any = None


@dataclass
class SearchRequest:
    groups: list[list[Filter]]
    sort: tuple[str, bool] | None  # (property, descending)
    query: str | None
    properties: list[str] | None
    limit: int
    after: int


def parse_request(table: Table, body: Any) -> SearchRequest:
    """Validate a ``PublicObjectSearchRequest`` against HubSpot's limits; 400 on any violation."""
    if not isinstance(body, Mapping):
        raise validation_error("Invalid input JSON: the search request must be an object")
    raw_groups = body.get("filterGroups") or []
    if not isinstance(raw_groups, list):
        raise validation_error("filterGroups must be a list")
    if len(raw_groups) > MAX_GROUPS:
        raise validation_error(
            f"Too many filter groups: {len(raw_groups)}. A search request can have at most {MAX_GROUPS} "
            "filterGroups."
        )
    groups: list[list[Filter]] = []
    total = 0
    for raw_group in raw_groups:
        raw_filters = raw_group.get("filters") if isinstance(raw_group, Mapping) else None
        if not isinstance(raw_filters, list) or not raw_filters:
            raise validation_error("Each filter group needs a non-empty list of filters")
        if len(raw_filters) > MAX_FILTERS_PER_GROUP:
            raise validation_error(
                f"Too many filters in a filter group: {len(raw_filters)}. A filter group can have at most "
                f"{MAX_FILTERS_PER_GROUP} filters."
            )
        total += len(raw_filters)
        groups.append([_parse_filter(table, f) for f in raw_filters])
    if total > MAX_FILTERS:
        raise validation_error(
            f"Too many filters: {total}. A search request can have at most {MAX_FILTERS} filters."
        )
    sort = _parse_sorts(table, body.get("sorts") or [])
    limit = body.get("limit")
    limit = 10 if limit is None else limit
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise validation_error(f"Invalid limit {limit!r}: limit must be a positive integer")
    if limit > MAX_LIMIT:
        raise validation_error(
            f"Invalid limit {limit}: the maximum number of results per page is {MAX_LIMIT}."
        )
    after_raw = body.get("after")
    after_text = "0" if after_raw in (None, "") else str(after_raw)
    if not after_text.isdigit():
        raise validation_error(f"Invalid after value {after_raw!r}: after must be an integer offset")
    after = int(after_text)
    if after + limit > MAX_RESULTS:
        raise validation_error(
            f"Paging past the first {MAX_RESULTS} results of a search is not supported "
            f"(after={after}, limit={limit}). Narrow the query, e.g. by a date range, instead."
        )
    query = body.get("query")
    properties = body.get("properties")
    if properties is not None and not isinstance(properties, list):
        raise validation_error("properties must be a list of property names")
    return SearchRequest(
        groups=groups,
        sort=sort,
        query=str(query) if query else None,
        properties=[str(p) for p in properties] if properties else None,
        limit=limit,
        after=after,
    )


def _known(table: Table, name: str) -> bool:
    return table.is_virtual(name) or table.registry.get(name) is not None


def _parse_filter(table: Table, raw: Any) -> Filter:
    if not isinstance(raw, Mapping):
        raise validation_error("Each filter must be an object")
    prop, op = raw.get("propertyName"), raw.get("operator")
    if not prop or not op:
        raise validation_error("Each filter needs a propertyName and an operator")
    op = str(op)
    if op not in OPERATORS:
        raise validation_error(f"Unknown filter operator {op}; valid operators are {sorted(OPERATORS)}")
    if not _known(table, str(prop)):
        raise validation_error(f"Cannot filter on property {prop}: it does not exist on {table.kind.name}")
    flt = Filter(str(prop), op, raw.get("value"), raw.get("values"), raw.get("highValue"))
    if op in ("IN", "NOT_IN"):
        if not isinstance(flt.values, list) or not flt.values:
            raise validation_error(f"The {op} operator needs a non-empty 'values' list")
    elif op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        pass
    elif flt.value is None:
        raise validation_error(f"The {op} operator needs a 'value'")
    if op == "BETWEEN" and flt.high is None:
        raise validation_error("The BETWEEN operator needs a 'value' and a 'highValue'")
    return flt


def _parse_sorts(table: Table, raw: Any) -> tuple[str, bool] | None:
    if not isinstance(raw, list):
        raise validation_error("sorts must be a list")
    if not raw:
        return None
    if len(raw) > 1:
        raise validation_error("A search request can only have one sort.")
    item = raw[0]
    if isinstance(item, str):
        descending = item.startswith("-")
        name = item.lstrip("-")
    elif isinstance(item, Mapping) and item.get("propertyName"):
        name = str(item["propertyName"])
        descending = str(item.get("direction", "ASCENDING")).upper() == "DESCENDING"
    else:
        raise validation_error("Each sort is a property name or {propertyName, direction}")
    if not _known(table, name):
        raise validation_error(f"Cannot sort on property {name}: it does not exist on {table.kind.name}")
    return name, descending


# -- typed comparison ----------------------------------------------------------------------------


def _kind_of(table: Table, name: str) -> str:
    if name == "hs_object_id":
        return "id"
    if table.is_virtual(name):
        return "ms"
    definition = table.registry.get(name)
    if definition is None:
        return "string"
    if definition.type == "number":
        return "number"
    if definition.type in ("date", "datetime"):
        return "ms"
    return definition.type


def _typed(table: Table, name: str, raw: Any) -> Any:
    """A filter value in the key space of :meth:`Table.order_key`; 400 if it does not parse."""
    kind = _kind_of(table, name)
    try:
        if kind == "id":
            return int(str(raw))
        if kind == "number":
            return float(str(raw))
        if kind == "ms":
            return parse_ms(raw)
    except (ValueError, OverflowError):
        raise validation_error(f"Invalid value {raw!r} for property {name}") from None
    return str(raw).lower()


_TOKEN_SPLIT = re.compile(r"[^0-9a-z]+")


def _tokens(value: str) -> set[str]:
    tokens = set(_TOKEN_SPLIT.split(value)) | set(value.split())
    for word in value.split():
        tokens.update(word.split("@"))
    tokens.discard("")
    return tokens


def _contains_token(value: str, pattern: str) -> bool:
    if "*" in pattern:
        return fnmatchcase(value, pattern) or any(fnmatchcase(t, pattern) for t in _tokens(value))
    return value == pattern or pattern in _tokens(value)


def compile_filter(table: Table, flt: Filter) -> Predicate:
    """A predicate over records implementing one filter with HubSpot's semantics."""
    name, op = flt.prop, flt.op
    kind = _kind_of(table, name)
    ordered = kind in ("id", "ms", "number")

    if op == "HAS_PROPERTY":
        return lambda rec: table.value(rec, name) is not None
    if op == "NOT_HAS_PROPERTY":
        return lambda rec: table.value(rec, name) is None
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = str(flt.value).lower()
        negate = op == "NOT_CONTAINS_TOKEN"

        def token_pred(rec: Record) -> bool:
            raw = table.value(rec, name)
            hit = raw is not None and _contains_token(raw.lower(), pattern)
            return hit != negate

        return token_pred
    if op in ("IN", "NOT_IN"):
        wanted: set[Any]
        if ordered:
            wanted = {_typed(table, name, v) for v in flt.values or []}
        elif kind == "string":
            wanted = {str(v) for v in flt.values or []}  # HubSpot: string IN values must be lowercase
        else:
            wanted = {str(v).lower() for v in flt.values or []}
        negate = op == "NOT_IN"

        def in_pred(rec: Record) -> bool:
            key = _record_key(table, rec, name, ordered)
            return (key is not None and key in wanted) != negate

        return in_pred
    target = _typed(table, name, flt.value) if ordered else str(flt.value).lower()
    if op == "EQ":
        return lambda rec: _record_key(table, rec, name, ordered) == target
    if op == "NEQ":
        return lambda rec: _record_key(table, rec, name, ordered) != target
    if op == "BETWEEN":
        high = _typed(table, name, flt.high) if ordered else str(flt.high).lower()

        def between(rec: Record) -> bool:
            key = _record_key(table, rec, name, ordered)
            return key is not None and target <= key <= high

        return between
    compare: Callable[[Any, Any], bool] = {
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
    }[op]

    def compare_pred(rec: Record) -> bool:
        key = _record_key(table, rec, name, ordered)
        return key is not None and compare(key, target)

    return compare_pred


def _record_key(table: Table, rec: Record, name: str, ordered: bool) -> Any:
    if ordered:
        return table.order_key(rec, name)
    raw = table.value(rec, name)
    return raw.lower() if raw is not None else None


def _query_predicate(table: Table, query: str) -> Predicate:
    needle = query.lower()
    names = table.kind.query_properties

    def pred(rec: Record) -> bool:
        for name in names:
            raw = rec.props.get(name)
            if raw is not None and needle in raw.lower():
                return True
        return needle == str(rec.id)

    return pred


# -- ordered sources ---------------------------------------------------------------------------


Bound = tuple[Any, bool]  # (value, inclusive)


class _Ordered:
    """A sorted index readable by position: ids, packed timestamps, or ``(key, id)`` tuples."""

    def __init__(self, items: Any, mode: str, always_present: bool) -> None:
        self.items = items
        self.mode = mode  # "id" | "packed" | "tuple"
        self.always_present = always_present

    def positions(self, lower: Bound | None, upper: Bound | None) -> tuple[int, int]:
        items = self.items
        if self.mode == "tuple":
            lo = 0
            if lower is not None:
                value, inclusive = lower
                lo = (
                    items.bisect_left((value, -1)) if inclusive else items.bisect_right((value, float("inf")))
                )
            hi = len(items)
            if upper is not None:
                value, inclusive = upper
                hi = (
                    items.bisect_right((value, float("inf"))) if inclusive else items.bisect_left((value, -1))
                )
            return lo, max(lo, hi)
        scale = PACK if self.mode == "packed" else 1
        lo = 0
        if lower is not None:
            value, inclusive = lower
            start = _int_ceil(value) if inclusive else _int_floor(value) + 1
            lo = items.bisect_left(start * scale)
        hi = len(items)
        if upper is not None:
            value, inclusive = upper
            end = _int_floor(value) + 1 if inclusive else _int_ceil(value)
            hi = items.bisect_left(end * scale)
        return lo, max(lo, hi)

    def ids(self, start: int, stop: int, reverse: bool) -> Iterable[int]:
        return list(self.iter_ids(start, stop, reverse))

    def iter_ids(self, start: int, stop: int, reverse: bool) -> Iterator[int]:
        """The ids at positions ``[start, stop)``, lazily (a caller may stop after one page)."""
        chunk = self.items.islice(start, stop, reverse=reverse)
        if self.mode == "id":
            return iter(chunk)
        if self.mode == "packed":
            return (v % PACK for v in chunk)
        return (item[1] for item in chunk)


def _int_floor(value: Any) -> int:
    return int(value // 1)


def _int_ceil(value: Any) -> int:
    return -int(-value // 1)


def _ordered_source(table: Table, name: str) -> _Ordered | None:
    if name == "hs_object_id":
        return _Ordered(table.live, "id", True)
    if name in table.ts:
        return _Ordered(table.ts[name], "packed", True)
    definition = table.registry.get(name)
    if definition is not None and definition.ordered:
        return _Ordered(table.range_index(name), "tuple", False)
    return None


def _bounds(
    table: Table, filters: list[Filter], name: str
) -> tuple[Bound | None, Bound | None, list[Filter]]:
    """Fold a group's range filters on ``name`` into bounds; the rest stay residual filters."""
    lower: Bound | None = None
    upper: Bound | None = None
    residual: list[Filter] = []
    for flt in filters:
        if flt.prop != name or flt.op not in RANGE_OPERATORS:
            residual.append(flt)
            continue
        value = _typed(table, name, flt.value)
        if flt.op in ("GT", "GTE", "EQ", "BETWEEN"):
            candidate = (value, flt.op != "GT")
            if lower is None or candidate[0] > lower[0] or (candidate[0] == lower[0] and not candidate[1]):
                lower = candidate
        if flt.op in ("LT", "LTE", "EQ", "BETWEEN"):
            top = _typed(table, name, flt.high) if flt.op == "BETWEEN" else value
            candidate = (top, flt.op != "LT")
            if upper is None or candidate[0] < upper[0] or (candidate[0] == upper[0] and not candidate[1]):
                upper = candidate
    return lower, upper, residual


# -- execution ---------------------------------------------------------------------------------


def execute(table: Table, req: SearchRequest) -> tuple[list[Record], int]:
    """The page of matching live records and the total number of matches."""
    groups = req.groups
    sort_name, descending = req.sort if req.sort else ("hs_object_id", False)
    if len(groups) <= 1 and req.query is None:
        found = _single_group(
            table, groups[0] if groups else [], sort_name, descending, after=req.after, limit=req.limit
        )
        if found is not None:
            return found
    query_pred = _query_predicate(table, req.query) if req.query else None
    matched: set[int] = set()
    if not groups:
        groups = [[]]
    for group in groups:
        preds = [compile_filter(table, f) for f in group]
        if query_pred is not None:
            preds.append(query_pred)
        records = table.records
        for rid in _candidates(table, group):
            rec = records.get(rid)
            if rec is not None and rec.archived_at is None and all(p(rec) for p in preds):
                matched.add(rid)
    ordered = _sort_ids(table, matched, sort_name, descending)
    page = ordered[req.after : req.after + req.limit]
    return [table.records[rid] for rid in page], len(matched)


def _single_group(
    table: Table, group: list[Filter], sort_name: str, descending: bool, *, after: int, limit: int
) -> tuple[list[Record], int] | None:
    """Serve one filter group from the sort property's sorted index, if it has one."""
    source = _ordered_source(table, sort_name)
    if source is None:
        return None
    lower, upper, residual = _bounds(table, group, sort_name)
    if not source.always_present and lower is None and upper is None:
        return None  # records without a value must still appear (last): use the general path
    lo, hi = source.positions(lower, upper)
    records = table.records
    if not residual:
        total = hi - lo
        if descending:
            stop = hi - after
            ids = source.ids(max(lo, stop - limit), max(lo, stop), reverse=True)
        else:
            start = lo + after
            ids = source.ids(start, min(hi, start + limit), reverse=False)
        return [records[rid] for rid in ids], total
    excluded = _excluded_ids(residual)
    if excluded is not None:
        kept = [f for f in group if f not in residual]
        return _page_excluding(
            table, source, (lo, hi), kept, excluded, descending=descending, after=after, limit=limit
        )
    narrower = _selective(table, residual)
    if narrower is not None and narrower[1] < hi - lo:
        return None  # a hash index narrows it down better: general path
    preds = [compile_filter(table, f) for f in residual]
    page: list[Record] = []
    total = 0
    for rid in source.ids(lo, hi, reverse=descending):
        rec = records[rid]
        if all(p(rec) for p in preds):
            if after <= total < after + limit:
                page.append(rec)
            total += 1
    return page, total


def _excluded_ids(residual: list[Filter]) -> set[int] | None:
    """Ids a group leaves out by ``hs_object_id`` ``NOT_IN``/``NEQ``, when that is all its residual
    filters do (an incremental keyset query excluding the records read at its lower bound)."""
    out: set[int] = set()
    for flt in residual:
        if flt.prop != "hs_object_id" or flt.op not in ("NOT_IN", "NEQ"):
            return None
        for value in (flt.values or []) if flt.op == "NOT_IN" else [flt.value]:
            try:
                out.add(int(str(value)))
            except ValueError:
                continue  # not an id: excludes nothing
    return out


def _page_excluding(
    table: Table,
    source: _Ordered,
    span: tuple[int, int],
    bounds: list[Filter],
    excluded: set[int],
    *,
    descending: bool,
    after: int,
    limit: int,
) -> tuple[list[Record], int]:
    """A page of the index span minus a few excluded ids, in O(page + excluded), not O(span)."""
    lo, hi = span
    records = table.records
    preds = [compile_filter(table, f) for f in bounds]
    inside = sum(
        1
        for rid in excluded
        if (rec := records.get(rid)) is not None and rec.archived_at is None and all(p(rec) for p in preds)
    )
    page: list[Record] = []
    skipped = 0
    for rid in source.iter_ids(lo, hi, reverse=descending):
        if rid in excluded:
            continue
        if skipped < after:
            skipped += 1
            continue
        page.append(records[rid])
        if len(page) >= limit:
            break
    return page, hi - lo - inside


def _selective(table: Table, group: list[Filter]) -> tuple[list[int], int] | None:
    """The smallest candidate id set an equality index gives for a group, with its size."""
    best: tuple[list[int], int] | None = None
    for flt in group:
        ids: list[int] | None = None
        if flt.prop == "hs_object_id" and flt.op in ("EQ", "IN"):
            raw_values = [flt.value] if flt.op == "EQ" else list(flt.values or [])
            ids = [int(str(v)) for v in raw_values if str(v).isdigit()]
        elif flt.op in ("EQ", "IN") and _kind_of(table, flt.prop) not in ("id", "ms", "number"):
            if table.is_virtual(flt.prop):
                continue
            if flt.op == "EQ":
                keys = [str(flt.value).lower()]
            elif _kind_of(table, flt.prop) == "string":
                keys = [str(v) for v in flt.values or []]
            else:
                keys = [str(v).lower() for v in flt.values or []]
            if table.kind.name == "contacts" and flt.prop == "email":
                found = [table.unique["email"].get(k) for k in keys]
                ids = [rid for rid in found if rid is not None]
            else:
                index = table.eq_index(flt.prop)
                ids = [rid for k in keys for rid in index.get(k, ())]
        if ids is not None and (best is None or len(ids) < best[1]):
            best = (ids, len(ids))
    return best


def _candidates(table: Table, group: list[Filter]) -> Iterable[int]:
    """The ids a group can possibly match: from the narrowest index, else every live record."""
    best = _selective(table, group)
    ranged: tuple[_Ordered, int, int] | None = None
    for flt in group:
        if flt.op not in RANGE_OPERATORS:
            continue
        source = _ordered_source(table, flt.prop)
        if source is None:
            continue
        lower, upper, _ = _bounds(table, group, flt.prop)
        lo, hi = source.positions(lower, upper)
        if ranged is None or hi - lo < ranged[2] - ranged[1]:
            ranged = (source, lo, hi)
    if ranged is not None and (best is None or ranged[2] - ranged[1] < best[1]):
        source, lo, hi = ranged
        return source.ids(lo, hi, reverse=False)
    if best is not None:
        return best[0]
    return list(table.live)


def _sort_ids(table: Table, ids: set[int], name: str, descending: bool) -> list[int]:
    if name == "hs_object_id":
        return sorted(ids, reverse=descending)
    records = table.records
    present: list[tuple[Any, int]] = []
    missing: list[int] = []
    for rid in ids:
        key = table.order_key(records[rid], name)
        if key is None:
            missing.append(rid)
        else:
            present.append((key, rid))
    present.sort(reverse=descending)
    missing.sort()
    return [rid for _, rid in present] + missing
