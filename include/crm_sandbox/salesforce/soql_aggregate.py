"""Aggregate SOQL: ``GROUP BY``, ``HAVING``, aggregate functions and date functions.

Per the SOQL and SOSL Reference (developer.salesforce.com, soql_sosl: "Aggregate Functions",
"GROUP BY", "HAVING", "Using Aliases with GROUP BY", "Date Functions"):

* ``COUNT(field)``, ``COUNT_DISTINCT(field)``, ``SUM``, ``AVG`` (number fields), ``MIN``, ``MAX``
  ignore nulls; without ``GROUP BY`` they answer one row (``COUNT`` 0, the others null, over no
  rows); with it one row per group (nulls form a group; text groups ignore case);
* rows are ``{"attributes": {"type": "AggregateResult"}, ...}``: a grouped field under its alias
  or field name (``Account.Name`` -> ``Name``), every other expression under its alias or
  ``expr0``, ``expr1``… numbered over the unaliased expressions in SELECT order;
* every selected non-aggregate expression must be grouped (``Field must be grouped or
  aggregated: Name``); ``HAVING`` and ``ORDER BY`` take aggregates and grouped expressions;
  ``LIMIT``/``OFFSET`` apply to the rows;
* date functions (see :mod:`crm_sandbox.salesforce.soql_functions`) group, filter in WHERE and
  HAVING, and select in aggregate queries.

Unsupported constructs (``ROLLUP``, ``CUBE``, ``GROUPING``, ``convertCurrency``, ``DISTANCE``,
…) answer ``MALFORMED_QUERY`` naming them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crm_sandbox.salesforce.schema import NUMBER_TYPES, TEXT_TYPES, Field, SObjectType
from crm_sandbox.salesforce.soql import (
    AliasedField,
    BoolOp,
    ChildQuery,
    Condition,
    CountItem,
    FieldPath,
    FuncCall,
    Literal,
    Pos,
    Query,
    compare_predicate,
    date_literal_range,
    soql_error,
)
from crm_sandbox.salesforce.soql_functions import DATE_VALUED, DATETIME_ONLY, date_function, is_date_function
from crm_sandbox.salesforce.store import Record

if TYPE_CHECKING:
    from crm_sandbox.salesforce.soql import Compiler

AGGREGATES = frozenset({"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"})
Row = dict[str, Any]


@dataclass
class Expr:
    """A grouped expression (field or date function) or an aggregate, keyed canonically."""

    key: str
    field: Field
    per_record: Callable[[Record], Any]
    func: str | None = None  # aggregate function, None for a grouped expression
    value_type: str = ""  # what the expression answers: the field's type, "number" or "date"


@dataclass
class AggregatePlan:
    """How one aggregate query turns matching records into rows."""

    groups: list[Expr]
    aggregates: dict[str, Expr]
    outputs: list[tuple[str, str]]  # (row key, expression key)
    having: Callable[[Row], bool] | None
    order: list[tuple[str, bool, bool, bool]] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None

    def run(self, records: Mapping[str, Record], ids: Sequence[str]) -> list[dict[str, Any]]:
        buckets: dict[tuple[Any, ...], list[Record]] = {}
        if not self.groups:
            buckets[()] = [records[i] for i in ids]
        for rid in ids if self.groups else ():
            rec = records[rid]
            group = tuple(_group_key(g.per_record(rec)) for g in self.groups)
            buckets.setdefault(group, []).append(rec)
        rows: list[Row] = []
        for members in buckets.values():
            values: Row = {g.key: g.per_record(members[0]) for g in self.groups}
            for key, agg in self.aggregates.items():
                values[key] = _aggregate(agg, members)
            if self.having is None or self.having(values):
                rows.append(values)
        rows = _sorted(rows, self.order)
        if self.offset:
            rows = rows[self.offset :]
        if self.limit is not None:
            rows = rows[: self.limit]
        return [
            {"attributes": {"type": "AggregateResult"}, **{name: row[key] for name, key in self.outputs}}
            for row in rows
        ]


def _group_key(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _aggregate(agg: Expr, members: Sequence[Record]) -> Any:
    values = [v for v in (agg.per_record(r) for r in members) if v is not None]
    if agg.func == "COUNT":
        return len(values)
    if agg.func == "COUNT_DISTINCT":
        return len({_group_key(v) for v in values})
    if not values:
        return None
    if agg.func == "SUM":
        return sum(values)
    if agg.func == "AVG":
        return sum(values) / len(values)
    if agg.func == "MIN":
        return min(values, key=_group_key)
    return max(values, key=_group_key)


def _sorted(rows: list[Row], order: Sequence[tuple[str, bool, bool, bool]]) -> list[Row]:
    for key, desc, nulls_first, is_text in reversed(order):
        none_rank = 0 if nulls_first != desc else 1

        def sort_key(row: Row, key: str = key, is_text: bool = is_text, nr: int = none_rank) -> Any:
            value = row[key]
            if value is None:
                return (nr, 0)
            return (1 - nr, value.casefold() if is_text and isinstance(value, str) else value)

        rows.sort(key=sort_key, reverse=desc)
    return rows


def is_aggregate_query(query: Query) -> bool:
    """GROUP BY, HAVING, an aggregate function, or ``COUNT(field)`` make a query aggregate."""
    return (
        bool(query.group)
        or query.having is not None
        or any(
            (isinstance(item, FuncCall) and item.name in AGGREGATES)
            or (isinstance(item, CountItem) and item.path is not None)
            for item in query.select
        )
    )


class AggregateCompiler:
    """Builds an :class:`AggregatePlan` from a parsed query, with Salesforce's errors."""

    def __init__(self, compiler: Compiler, obj: SObjectType, query: Query) -> None:
        self.c = compiler
        self.obj = obj
        self.query = query
        self.aggregates: dict[str, Expr] = {}

    def error(self, pos: Pos | None, message: str, code: str = "MALFORMED_QUERY") -> Exception:
        return soql_error(code, self.c.text, pos, message)

    # -- expressions -----------------------------------------------------------------------------
    def grouped(self, node: Any) -> Expr:
        """A field or date function, as grouped or compared per record."""
        if isinstance(node, FieldPath):
            resolved = self.c.resolve(self.obj, node)
            key = ".".join(resolved.canonical)
            return Expr(key, resolved.field, resolved.getter, value_type=resolved.field.type)
        if isinstance(node, FuncCall) and is_date_function(node.name):
            return self.date_expr(node)
        raise self.unsupported(node)

    def date_expr(self, node: FuncCall) -> Expr:
        arg = node.args[0] if len(node.args) == 1 else None
        if isinstance(arg, FuncCall) and arg.name == "CONVERTTIMEZONE" and len(arg.args) == 1:
            arg = arg.args[0]  # the sandbox's users are on UTC
        if not isinstance(arg, FieldPath):
            raise self.error(node.pos, f"{node.name} takes one date or dateTime field")
        resolved = self.c.resolve(self.obj, arg)
        kind = resolved.field.type
        if kind not in ("date", "datetime") or (node.name in DATETIME_ONLY and kind != "datetime"):
            wanted = "dateTime" if node.name in DATETIME_ONLY else "date or dateTime"
            raise self.error(node.pos, f"{node.name} requires a {wanted} field: {resolved.field.name}")
        fn = date_function(node.name, kind)
        get = resolved.getter
        key = f"{node.name}({'.'.join(resolved.canonical)})"
        value_type = "date" if node.name in DATE_VALUED else "number"
        return Expr(key, resolved.field, lambda rec: fn(get(rec)), value_type=value_type)

    def aggregate(self, node: Any) -> Expr:
        """An aggregate function of a field (registered so every row computes it)."""
        if isinstance(node, CountItem):
            if node.path is None:
                raise self.error(None, "COUNT() can only be used alone in the SELECT list")
            name, args, pos = "COUNT", (node.path,), node.path.pos
        else:
            name, args, pos = node.name, node.args, node.pos
        if len(args) != 1 or not isinstance(args[0], FieldPath | FuncCall):
            raise self.error(pos, f"{name} takes one field")
        inner = self.grouped(args[0])
        if name in ("SUM", "AVG") and inner.value_type not in NUMBER_TYPES and inner.value_type != "number":
            raise self.error(pos, f"field {inner.field.name} does not support aggregate operator {name}")
        if inner.field.type == "textarea":
            raise self.error(pos, f"field {inner.field.name} does not support aggregate operator {name}")
        key = f"{name}({inner.key})"
        value_type = "number" if name in ("COUNT", "COUNT_DISTINCT", "SUM", "AVG") else inner.value_type
        expr = Expr(key, inner.field, inner.per_record, func=name, value_type=value_type)
        self.aggregates.setdefault(key, expr)
        return expr

    def expression(self, node: Any, groups: Mapping[str, Expr], what: str) -> Expr:
        """An aggregate, or an expression that must be grouped."""
        if (isinstance(node, FuncCall) and node.name in AGGREGATES) or isinstance(node, CountItem):
            return self.aggregate(node)
        expr = self.grouped(node)
        if expr.key not in groups:
            text = node.text if isinstance(node, FieldPath | FuncCall) else str(node)
            raise self.error(getattr(node, "pos", None), f"{what} must be grouped or aggregated: {text}")
        return expr

    def unsupported(self, node: Any) -> Exception:
        if isinstance(node, FuncCall):
            return self.error(node.pos, f"{node.name} is not supported in this part of the query")
        if isinstance(node, ChildQuery):
            return self.error(node.pos, "Nested queries are not supported in aggregate queries")
        return self.error(None, f"unexpected expression: {node}")

    # -- whole query -----------------------------------------------------------------------------
    def compile(self) -> AggregatePlan:
        groups: dict[str, Expr] = {}
        for node in self.query.group:
            expr = self.grouped(node)
            if expr.field.type in ("textarea", "address"):
                raise self.error(
                    getattr(node, "pos", None),
                    f"field '{expr.field.name}' can not be grouped in a query call",
                    "INVALID_FIELD",
                )
            groups.setdefault(expr.key, expr)
        outputs: list[tuple[str, str]] = []
        unnamed = 0
        for item in self.query.select:
            alias: str | None = None
            node = item
            if isinstance(item, AliasedField):
                node, alias = item.path, item.alias
            elif isinstance(item, FuncCall | CountItem):
                alias = item.alias
            expr = self.expression(node, groups, "Field")
            if alias is None and isinstance(node, FieldPath):
                alias = expr.field.name
            if alias is None:
                alias = f"expr{unnamed}"
                unnamed += 1
            outputs.append((alias, expr.key))
        if self.query.having is not None and not self.query.group:
            raise self.error(None, "HAVING can only be used with GROUP BY")
        having = self.predicate(self.query.having, groups) if self.query.having is not None else None
        order = []
        for item in self.query.order:
            expr = self.expression(item.path, groups, "Ordered field")
            is_text = expr.value_type in TEXT_TYPES
            order.append((expr.key, item.desc, item.nulls_first, is_text))
        return AggregatePlan(
            list(groups.values()),
            self.aggregates,
            outputs,
            having,
            order,
            self.query.limit,
            self.query.offset,
        )

    # -- HAVING ----------------------------------------------------------------------------------
    def predicate(self, node: Any, groups: Mapping[str, Expr]) -> Callable[[Row], bool]:
        if isinstance(node, BoolOp):
            parts = [self.predicate(item, groups) for item in node.items]
            if node.op == "and":
                return lambda row: all(p(row) for p in parts)
            if node.op == "or":
                return lambda row: any(p(row) for p in parts)
            return lambda row: not parts[0](row)
        assert isinstance(node, Condition)
        expr = self.expression(node.path, groups, "Field")
        key = expr.key

        def get(row: Row) -> Any:
            return row[key]

        return expression_condition(self.c, expr, node, get)


def expression_condition(
    compiler: Compiler, expr: Expr, cond: Condition, get: Callable[[Any], Any]
) -> Callable[[Any], bool]:
    """``expr <op> literal`` (``=``, ``!=``, ``<``…, ``IN``, ``NOT IN``) over ``get``."""
    text = expr.value_type in TEXT_TYPES
    pos = getattr(cond.path, "pos", None)
    if cond.op in ("in", "not_in"):
        values = {_literal(compiler, expr, lit) for lit in cond.value}

        def g(r: Any) -> Any:
            v = get(r)
            return v.casefold() if text and isinstance(v, str) else v

        if cond.op == "not_in":
            return lambda r: g(r) not in values
        return lambda r: g(r) in values
    if cond.op not in ("=", "!=", "<", "<=", ">", ">="):
        raise soql_error("MALFORMED_QUERY", compiler.text, pos, f"{cond.op.upper()} is not supported here")
    return compare_predicate(get, cond.op, _literal(compiler, expr, cond.value), text)


def _literal(compiler: Compiler, expr: Expr, lit: Literal) -> Any:
    if lit.kind == "null":
        return None
    if expr.value_type == "number":
        if lit.kind != "number":
            raise soql_error(
                "INVALID_FIELD", compiler.text, lit.pos,
                f"value of filter criterion for '{expr.key}' must be a number, not quoted",
            )  # fmt: skip
        return lit.value
    if expr.value_type == "date" and expr.field.type == "datetime":
        if lit.kind == "date":
            return lit.value.isoformat()
        if lit.kind == "date_literal":
            start, end = date_literal_range(lit.value)
            return (start.isoformat(), end.isoformat())
        raise soql_error("INVALID_FIELD", compiler.text, lit.pos, f"{expr.key} compares with a date")
    return compiler.literal(expr.field, lit)


def date_condition(compiler: Compiler, obj: SObjectType, cond: Condition) -> Callable[[Record], bool]:
    """A WHERE condition on a date function: ``CALENDAR_YEAR(CloseDate) = 2026``."""
    node = cond.path
    if not isinstance(node, FuncCall) or not is_date_function(node.name):
        name = node.name if isinstance(node, FuncCall) else "COUNT"
        raise soql_error(
            "MALFORMED_QUERY", compiler.text, getattr(node, "pos", None),
            f"{name} is not supported in WHERE; aggregate conditions belong in HAVING",
        )  # fmt: skip
    builder = AggregateCompiler(compiler, obj, Query((), obj.name, node.pos, None, (), None, None))
    expr = builder.date_expr(node)
    return expression_condition(compiler, expr, cond, expr.per_record)
