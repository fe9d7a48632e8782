"""SOQL: a lark grammar, a typed AST, and a planner that answers sync queries from indexes.

Supported (what crm-sync and its tests need, with Salesforce's own errors for the rest):

* ``SELECT`` field lists with parent paths (``Account.Name``, ``Owner.Email``,
  ``Opportunity.Account.Name``), parent-to-child subqueries (``(SELECT Id FROM Contacts)``),
  ``COUNT()`` and ``COUNT(field) [alias]``;
* ``WHERE`` with ``= != <> < <= > >= LIKE IN NOT IN`` (also ``IN (SELECT ...)`` semi-joins),
  ``AND``/``OR``/``NOT`` and parentheses; string, number, boolean, ``NULL``, date
  (``2026-01-31``), datetime (``2026-01-31T10:00:00Z``, ``+02:00``) literals and the date literals
  ``TODAY YESTERDAY TOMORROW THIS/LAST/NEXT_WEEK|MONTH|YEAR LAST_90_DAYS NEXT_90_DAYS
  LAST_N_DAYS:n NEXT_N_DAYS:n N_DAYS_AGO:n`` (UTC);
* ``ORDER BY`` several fields, ``ASC``/``DESC``, ``NULLS FIRST``/``LAST``; ``LIMIT``; ``OFFSET``
  (at most 2000, as in Salesforce).
* aggregate queries: ``GROUP BY``, ``HAVING``, ``COUNT``/``COUNT_DISTINCT``/``SUM``/``AVG``/
  ``MIN``/``MAX`` with aliases and ``exprN`` names, date functions in WHERE/GROUP BY/HAVING (see
  :mod:`crm_sandbox.salesforce.soql_aggregate` and :mod:`crm_sandbox.salesforce.soql_functions`);
  ``FIELDS(STANDARD|CUSTOM|ALL)`` (the last two with ``LIMIT`` of at most 200), ``toLabel()``,
  ``FORMAT()``; ``WITH SECURITY_ENFORCED|USER_MODE|SYSTEM_MODE`` accepted (one user sees all).
  Other functions answer ``MALFORMED_QUERY`` naming them.

Semantics follow Salesforce: text comparisons are case-insensitive, ``!=`` and ``NOT IN`` match
nulls, ids compare in their 18-character form whichever form the query uses, literals must have
the field's type (a quoted datetime is an error, as in a real org).

Planning: a conjunct ``Id = / IN``, or an ``=``/``IN`` on a hash-indexed field, gives the
candidate set; otherwise range conjuncts on a sorted-indexed field (``SystemModstamp``,
``LastModifiedDate``, ``CreatedDate``, ``Id``) give an ordered slice; an ``ORDER BY`` that the
index already satisfies (``ORDER BY SystemModstamp, Id``) needs no sort. Only the remaining
conjuncts are evaluated, as compiled closures over the record dicts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from crm_sandbox.salesforce.errors import ApiError
from crm_sandbox.salesforce.ids import MalformedIdError, normalize_id
from crm_sandbox.salesforce.schema import NUMBER_TYPES, TEXT_TYPES, Field, SObjectType, format_datetime
from crm_sandbox.salesforce.store import SORTED_INDEX_FIELDS, Record, Store, Table

GRAMMAR = r"""
start: select_stmt

select_stmt: SELECT select_list FROM NAME where_clause? with_clause? group_clause? having_clause? \
             order_clause? limit_clause? offset_clause?

select_list: select_item ("," select_item)*
?select_item: field_path
            | aliased_field
            | count_call
            | func_call
            | "(" child_query ")"
aliased_field: field_path NAME
count_call: COUNT "(" field_path? ")" NAME?
func_call: FUNC "(" func_arg ("," func_arg)* ")" NAME?
?func_arg: field_path | func_call
?operand: field_path | func_call | count_call
with_clause: WITH NAME
group_clause: GROUP_BY operand ("," operand)*
having_clause: HAVING or_expr
child_query: SELECT field_list FROM NAME where_clause? order_clause? limit_clause?
field_list: field_path ("," field_path)*

field_path: NAME ("." NAME)*

where_clause: WHERE or_expr
?or_expr: and_expr (OR and_expr)*
?and_expr: not_expr (AND not_expr)*
?not_expr: NOT not_expr -> negation
         | atom
?atom: "(" or_expr ")"
     | condition
condition: operand COMP_OP value                 -> compare
         | operand LIKE value                    -> like
         | operand IN "(" value_list ")"         -> in_list
         | operand NOT IN "(" value_list ")"     -> not_in_list
         | operand IN "(" semi_join ")"          -> in_query
         | operand NOT IN "(" semi_join ")"      -> not_in_query
semi_join: SELECT field_path FROM NAME where_clause?
value_list: value ("," value)*
value: STRING | DATETIME | DATE | SIGNED_NUMBER | TRUE | FALSE | NULL | DATE_N_LITERAL | DATE_LITERAL

order_clause: ORDER_BY order_item ("," order_item)*
order_item: operand DIRECTION? nulls?
nulls: NULLS NULLS_POS
limit_clause: LIMIT INT
offset_clause: OFFSET INT

SELECT.3: /select\b/i
FROM.3: /from\b/i
WHERE.3: /where\b/i
AND.3: /and\b/i
OR.3: /or\b/i
NOT.3: /not\b/i
IN.3: /in\b/i
LIKE.3: /like\b/i
ORDER_BY.3: /order\s+by\b/i
DIRECTION.3: /(asc|desc)\b/i
NULLS.3: /nulls\b/i
NULLS_POS.3: /(first|last)\b/i
LIMIT.3: /limit\b/i
OFFSET.3: /offset\b/i
TRUE.3: /true\b/i
FALSE.3: /false\b/i
NULL.3: /null\b/i
COUNT.3: /count(?=\s*\()/i
GROUP_BY.3: /group\s+by\b/i
HAVING.3: /having\b/i
WITH.3: /with\b/i
FUNC.2: /[A-Za-z_][A-Za-z0-9_]*(?=\s*\()/
DATE_N_LITERAL.4: /(last_n_days|next_n_days|n_days_ago|(last|next)_n_(weeks|months)):\d+/i
DATE_LITERAL.3: /(today|yesterday|tomorrow|(last|this|next)_(week|month|year)|(last|next)_90_days)\b/i
DATETIME.5: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})/
DATE.4: /\d{4}-\d{2}-\d{2}(?![\dT])/
COMP_OP: "!=" | "<>" | "<=" | ">=" | "=" | "<" | ">"
STRING: /'(?:[^'\\]|\\.)*'/
NAME: /[A-Za-z_][A-Za-z0-9_]*/

%import common.SIGNED_NUMBER
%import common.INT
%import common.WS
%ignore WS
"""


# -- AST ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pos:
    line: int
    column: int


@dataclass(frozen=True)
class FieldPath:
    parts: tuple[str, ...]
    pos: Pos

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Literal:
    """A literal as written: ``kind`` is string/number/datetime/date/boolean/null/date_literal."""

    kind: str
    value: Any
    text: str
    pos: Pos


@dataclass(frozen=True)
class CountItem:
    path: FieldPath | None
    alias: str | None


@dataclass(frozen=True)
class FuncCall:
    """A function in SELECT, WHERE, GROUP BY, HAVING or ORDER BY: ``SUM(Amount) total``,
    ``CALENDAR_YEAR(CloseDate)``, ``toLabel(Status)``, ``FIELDS(ALL)``; ``name`` upper-cased."""

    name: str
    args: tuple[Any, ...]
    alias: str | None
    pos: Pos

    @property
    def text(self) -> str:
        inner = ", ".join(a.text if isinstance(a, FieldPath | FuncCall) else "" for a in self.args)
        return f"{self.name}({inner})"


@dataclass(frozen=True)
class AliasedField:
    """A field with an alias (``Name n``): allowed in aggregate queries only."""

    path: FieldPath
    alias: str


@dataclass(frozen=True)
class OrderItem:
    path: Any  # FieldPath, or FuncCall/CountItem in aggregate queries
    desc: bool
    nulls_first: bool


@dataclass(frozen=True)
class ChildQuery:
    fields: tuple[FieldPath, ...]
    relationship: str
    pos: Pos
    where: Any
    order: tuple[OrderItem, ...]
    limit: int | None


@dataclass(frozen=True)
class SemiJoin:
    path: FieldPath
    sobject: str
    pos: Pos
    where: Any


@dataclass(frozen=True)
class Condition:
    """``op`` is one of = != < <= > >= like in not_in in_query not_in_query.

    ``path`` is a FieldPath, or a FuncCall (date function; aggregate in HAVING) or CountItem.
    """

    path: Any
    op: str
    value: Any


@dataclass(frozen=True)
class BoolOp:
    op: str  # and / or / not
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Query:
    select: tuple[Any, ...]
    sobject: str
    sobject_pos: Pos
    where: Any
    order: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None
    group: tuple[Any, ...] = ()
    having: Any = None
    security: str | None = None


def _pos(token: Token) -> Pos:
    return Pos(int(token.line or 1), int(token.column or 1))


def _unescape(body: str) -> str:
    out = []
    i = 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "'": "'", '"': '"', "\\": "\\"}
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(escapes.get(nxt, "\\" + nxt))  # \% and \_ stay escaped for LIKE
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


_WITH_MODES = frozenset({"SECURITY_ENFORCED", "USER_MODE", "SYSTEM_MODE"})
_EMPTY_SELECT = re.compile(r"^\s*select\s+from\s+([A-Za-z_]\w*)", re.IGNORECASE)
_RESERVED = frozenset({"FROM", "WHERE", "SELECT", "GROUP", "ORDER", "LIMIT", "OFFSET", "HAVING", "WITH"})


class UnexpectedTokenError(Exception):
    """A token the grammar accepts but SOQL does not (raised while building the AST)."""

    def __init__(self, text: str, pos: Pos) -> None:
        super().__init__(text)
        self.text = text
        self.pos = pos


@v_args(inline=True)
class _ToAst(Transformer[Token, Query]):
    def start(self, query: Query) -> Query:
        return query

    def select_stmt(self, _select: Token, items: list[Any], _from: Token, name: Token, *rest: Any) -> Query:
        where, order, limit, offset = _clauses(rest)
        found = dict(r for r in rest if isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], str))
        return Query(
            tuple(items), str(name), _pos(name), where, order, limit, offset,
            found.get("group", ()), found.get("having"), found.get("with"),
        )  # fmt: skip

    def select_list(self, *items: Any) -> list[Any]:
        return list(items)

    def field_list(self, *items: FieldPath) -> tuple[FieldPath, ...]:
        return tuple(items)

    def field_path(self, *names: Token) -> FieldPath:
        return FieldPath(tuple(str(n) for n in names), _pos(names[0]))

    def aliased_field(self, path: FieldPath, alias: Token) -> AliasedField:
        if path.text.upper() in _RESERVED:  # ``SELECT FROM Account``: not a field and its alias
            raise UnexpectedTokenError(str(alias), _pos(alias))
        return AliasedField(path, str(alias))

    def func_call(self, name: Token, *rest: Any) -> FuncCall:
        args = tuple(r for r in rest if isinstance(r, FieldPath | FuncCall))
        alias = next((str(r) for r in rest if isinstance(r, Token)), None)
        return FuncCall(str(name).upper(), args, alias, _pos(name))

    def with_clause(self, _with: Token, name: Token) -> tuple[str, str]:
        return ("with", str(name))

    def group_clause(self, _group: Token, *items: Any) -> tuple[str, tuple[Any, ...]]:
        return ("group", tuple(items))

    def having_clause(self, _having: Token, expr: Any) -> tuple[str, Any]:
        return ("having", expr)

    def count_call(self, _count: Token, *rest: Any) -> CountItem:
        path = next((r for r in rest if isinstance(r, FieldPath)), None)
        alias = next((str(r) for r in rest if isinstance(r, Token)), None)
        return CountItem(path, alias)

    def child_query(
        self, _select: Token, fields: tuple[FieldPath, ...], _from: Token, name: Token, *rest: Any
    ) -> ChildQuery:
        where, order, limit, _offset = _clauses(rest)
        return ChildQuery(fields, str(name), _pos(name), where, order, limit)

    def semi_join(self, _select: Token, path: FieldPath, _from: Token, name: Token, *rest: Any) -> SemiJoin:
        where, _order, _limit, _offset = _clauses(rest)
        return SemiJoin(path, str(name), _pos(name), where)

    def where_clause(self, _where: Token, expr: Any) -> tuple[str, Any]:
        return ("where", expr)

    def or_expr(self, *items: Any) -> BoolOp:
        return BoolOp("or", tuple(i for i in items if not isinstance(i, Token)))

    def and_expr(self, *items: Any) -> BoolOp:
        return BoolOp("and", tuple(i for i in items if not isinstance(i, Token)))

    def negation(self, _not: Token, item: Any) -> BoolOp:
        return BoolOp("not", (item,))

    def compare(self, path: FieldPath, op: Token, value: Literal) -> Condition:
        text = str(op)
        return Condition(path, "!=" if text == "<>" else text, value)

    def like(self, path: FieldPath, _like: Token, value: Literal) -> Condition:
        return Condition(path, "like", value)

    def in_list(self, path: FieldPath, _in: Token, values: list[Literal]) -> Condition:
        return Condition(path, "in", tuple(values))

    def not_in_list(self, path: FieldPath, _not: Token, _in: Token, values: list[Literal]) -> Condition:
        return Condition(path, "not_in", tuple(values))

    def in_query(self, path: FieldPath, _in: Token, query: SemiJoin) -> Condition:
        return Condition(path, "in_query", query)

    def not_in_query(self, path: FieldPath, _not: Token, _in: Token, query: SemiJoin) -> Condition:
        return Condition(path, "not_in_query", query)

    def value_list(self, *values: Literal) -> list[Literal]:
        return list(values)

    def value(self, token: Token) -> Literal:
        kind = token.type
        text = str(token)
        pos = _pos(token)
        if kind == "STRING":
            return Literal("string", _unescape(text[1:-1]), text, pos)
        if kind == "SIGNED_NUMBER":
            number = float(text) if any(c in text for c in ".eE") else int(text)
            return Literal("number", number, text, pos)
        if kind == "DATETIME":
            return Literal("datetime", datetime.fromisoformat(text), text, pos)
        if kind == "DATE":
            return Literal("date", date.fromisoformat(text), text, pos)
        if kind in ("TRUE", "FALSE"):
            return Literal("boolean", kind == "TRUE", text, pos)
        if kind == "NULL":
            return Literal("null", None, text, pos)
        return Literal("date_literal", text.upper(), text, pos)

    def order_clause(self, _order: Token, *items: OrderItem) -> tuple[str, tuple[OrderItem, ...]]:
        return ("order", tuple(items))

    def order_item(self, path: FieldPath, *rest: Any) -> OrderItem:
        desc = any(isinstance(r, Token) and str(r).lower() == "desc" for r in rest)
        nulls = next((r for r in rest if isinstance(r, bool)), None)
        return OrderItem(path, desc, (not desc) if nulls is None else nulls)

    def nulls(self, _nulls: Token, where: Token) -> bool:
        return str(where).lower() == "first"

    def limit_clause(self, _limit: Token, n: Token) -> tuple[str, int]:
        return ("limit", int(n))

    def offset_clause(self, _offset: Token, n: Token) -> tuple[str, int]:
        return ("offset", int(n))


def _clauses(rest: Iterable[Any]) -> tuple[Any, tuple[OrderItem, ...], int | None, int | None]:
    found = dict(r for r in rest if isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], str))
    return found.get("where"), found.get("order", ()), found.get("limit"), found.get("offset")


@functools.cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", maybe_placeholders=False, propagate_positions=False)


def soql_error(code: str, query: str, pos: Pos | None, message: str, status: int = 400) -> ApiError:
    """An error in Salesforce's query-error shape: the query, a caret, row/column, the message."""
    if pos is None:
        return ApiError.of(status, code, message)
    lines = query.split("\n")
    line = lines[pos.line - 1] if 0 < pos.line <= len(lines) else query
    caret = " " * (pos.column - 1) + "^"
    return ApiError.of(
        status, code, f"\n{line}\n{caret}\nERROR at Row:{pos.line}:Column:{pos.column}\n{message}"
    )


#: SOQL a real org accepts and the sandbox does not: a query failing to parse that uses one of
#: them is told which (rather than only the token the parser stopped at).
_UNSUPPORTED = re.compile(
    r"\b(TYPEOF|USING\s+SCOPE|FOR\s+(?:VIEW|REFERENCE|UPDATE)|UPDATE\s+(?:TRACKING|VIEWSTAT)|"
    r"WITH\s+DATA\s+CATEGORY|GEOLOCATION|DISTANCE|INCLUDES|EXCLUDES)\b",
    re.IGNORECASE,
)


def _unsupported_construct(query: str) -> ApiError | None:
    """MALFORMED_QUERY naming an unsupported construct of ``query`` (outside string literals)."""
    code = re.sub(r"'(?:[^'\\]|\\.)*'", lambda m: " " * len(m.group(0)), query)
    found = _UNSUPPORTED.search(code)
    if found is None:
        return None
    line = query.count("\n", 0, found.start()) + 1
    column = found.start() - (query.rfind("\n", 0, found.start()) + 1) + 1
    name = " ".join(found.group(1).upper().split())
    return soql_error(
        "MALFORMED_QUERY", query, Pos(line, column), f"{name} is not supported by the crm-sync sandbox"
    )


@functools.lru_cache(maxsize=512)
def parse(query: str) -> Query:
    """Parse SOQL text into the AST, raising MALFORMED_QUERY like Salesforce."""
    try:
        return _parse(query)
    except ApiError:
        named = _unsupported_construct(query)
        if named is not None:
            raise named from None
        raise


def _parse(query: str) -> Query:
    empty = _EMPTY_SELECT.match(query)
    if empty:  # "FROM" read as a field would take the object name for an alias
        line = query.count("\n", 0, empty.start(1)) + 1
        column = empty.start(1) - (query.rfind("\n", 0, empty.start(1)) + 1) + 1
        raise soql_error("MALFORMED_QUERY", query, Pos(line, column), f"unexpected token: '{empty.group(1)}'")
    try:
        tree = _parser().parse(query)
        result = _ToAst().transform(tree)
    except UnexpectedEOF:
        raise soql_error("MALFORMED_QUERY", query, None, "unexpected token: <EOF>") from None
    except UnexpectedToken as exc:
        token = exc.token
        text = "<EOF>" if token.type == "$END" else str(token)
        where = Pos(int(exc.line or 1), int(exc.column or 1))
        raise soql_error("MALFORMED_QUERY", query, where, f"unexpected token: '{text}'") from None
    except UnexpectedCharacters as exc:
        offset = int(exc.pos_in_stream or 0)
        char = query[offset] if offset < len(query) else "<EOF>"
        where = Pos(int(exc.line or 1), int(exc.column or 1))
        raise soql_error("MALFORMED_QUERY", query, where, f"unexpected token: '{char}'") from None
    except UnexpectedInput:
        raise soql_error("MALFORMED_QUERY", query, None, "unexpected token") from None
    except VisitError as exc:
        if isinstance(exc.orig_exc, UnexpectedTokenError):
            problem = exc.orig_exc
            raise soql_error(
                "MALFORMED_QUERY", query, problem.pos, f"unexpected token: '{problem.text}'"
            ) from None
        raise soql_error("MALFORMED_QUERY", query, None, f"invalid literal: {exc.orig_exc}") from None
    if not isinstance(result, Query):  # pragma: no cover - grammar guarantees it
        raise soql_error("MALFORMED_QUERY", query, None, "unexpected query shape")
    return result


# -- date literals ------------------------------------------------------------------------------


def _week_start(day: date) -> date:
    return day - timedelta(days=(day.weekday() + 1) % 7)  # weeks start on Sunday (en_US)


def _month_start(day: date, delta: int = 0) -> date:
    month = day.month - 1 + delta
    return date(day.year + month // 12, month % 12 + 1, 1)


def date_literal_range(name: str, today: date | None = None) -> tuple[date, date]:
    """The ``[start, end)`` dates a SOQL date literal stands for, in UTC."""
    today = today or datetime.now(UTC).date()
    day = timedelta(days=1)
    upper = name.upper()
    if ":" in upper:
        kind, _, raw = upper.partition(":")
        n = int(raw)
        ranges = {
            "LAST_N_DAYS": (today - n * day, today + day),
            "NEXT_N_DAYS": (today + day, today + (n + 1) * day),
            "N_DAYS_AGO": (today - n * day, today - (n - 1) * day),
            "LAST_N_WEEKS": (_week_start(today) - 7 * n * day, _week_start(today)),
            "NEXT_N_WEEKS": (_week_start(today) + 7 * day, _week_start(today) + 7 * (n + 1) * day),
            "LAST_N_MONTHS": (_month_start(today, -n), _month_start(today)),
            "NEXT_N_MONTHS": (_month_start(today, 1), _month_start(today, n + 1)),
        }
        return ranges[kind]
    week = _week_start(today)
    fixed = {
        "TODAY": (today, today + day),
        "YESTERDAY": (today - day, today),
        "TOMORROW": (today + day, today + 2 * day),
        "THIS_WEEK": (week, week + 7 * day),
        "LAST_WEEK": (week - 7 * day, week),
        "NEXT_WEEK": (week + 7 * day, week + 14 * day),
        "THIS_MONTH": (_month_start(today), _month_start(today, 1)),
        "LAST_MONTH": (_month_start(today, -1), _month_start(today)),
        "NEXT_MONTH": (_month_start(today, 1), _month_start(today, 2)),
        "THIS_YEAR": (date(today.year, 1, 1), date(today.year + 1, 1, 1)),
        "LAST_YEAR": (date(today.year - 1, 1, 1), date(today.year, 1, 1)),
        "NEXT_YEAR": (date(today.year + 1, 1, 1), date(today.year + 2, 1, 1)),
        "LAST_90_DAYS": (today - 90 * day, today + day),
        "NEXT_90_DAYS": (today + day, today + 91 * day),
    }
    return fixed[upper]


# -- compilation --------------------------------------------------------------------------------

Getter = Callable[[Record], Any]
Predicate = Callable[[Record], bool]


@dataclass
class Resolved:
    """A field path resolved against the schema: the hops and the final field."""

    path: FieldPath
    hops: list[tuple[Field, SObjectType]]  # (reference field, target object) per relationship
    field: Field
    getter: Getter

    @property
    def canonical(self) -> tuple[str, ...]:
        return (*(f.relationship_name or f.name for f, _ in self.hops), self.field.name)


@dataclass
class Column:
    """One SELECT item as rendered into each record."""

    kind: str  # field | child | func (toLabel, FORMAT: the field's value transformed)
    resolved: Resolved | None = None
    child: CompiledChild | None = None
    transform: Callable[[Record, Any], Any] | None = None


@dataclass
class CompiledChild:
    name: str
    obj: SObjectType
    ref_field: str
    columns: list[Resolved]
    predicate: Predicate | None
    order: list[tuple[Getter, bool, bool, bool]]
    limit: int | None


@dataclass
class Plan:
    """How candidates are produced; see :meth:`Compiler.plan`."""

    kind: str  # ids | range | scan
    ids: set[str] | None = None
    index_field: str | None = None
    low: Any = None
    low_inclusive: bool = True
    high: Any = None
    high_inclusive: bool = True
    ordered_by_index: bool = False
    descending: bool = False


@dataclass
class CompiledQuery:
    text: str
    obj: SObjectType
    columns: list[Column]
    predicate: Predicate | None
    plan: Plan
    order: list[tuple[Getter, bool, bool, bool]]  # getter, desc, nulls_first, is_text
    limit: int | None
    offset: int | None
    count: CountItem | None = None
    include_deleted: bool = False
    plain_paths: list[Resolved] = field(default_factory=list)
    aggregate: Any = None  # an AggregatePlan (crm_sandbox.salesforce.soql_aggregate)


@dataclass
class QueryResult:
    """What a query found: ordered ids to render page by page, or a ready aggregate row."""

    compiled: CompiledQuery
    ids: Sequence[str]
    total_size: int
    aggregate: list[dict[str, Any]] | None = None


class Compiler:
    """Resolves a parsed query against the schema and store and compiles it to closures."""

    def __init__(self, store: Store, text: str, *, include_deleted: bool) -> None:
        self.store = store
        self.text = text
        self.include_deleted = include_deleted

    # -- resolution -----------------------------------------------------------------------------
    def object(self, name: str, pos: Pos) -> SObjectType:
        canonical = self.store.object_name(name)
        if canonical is None:
            raise soql_error(
                "INVALID_TYPE",
                self.text,
                pos,
                f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be "
                "sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
                "call for the appropriate names.",
            )
        return self.store.schema[canonical]

    def resolve(self, obj: SObjectType, path: FieldPath) -> Resolved:
        hops: list[tuple[Field, SObjectType]] = []
        current = obj
        for rel in path.parts[:-1]:
            ref = current.relationships.get(rel.lower())
            if ref is None or ref.reference_to is None:
                raise soql_error(
                    "INVALID_FIELD",
                    self.text,
                    path.pos,
                    f"Didn't understand relationship '{rel}' in field path. If you are attempting to use a "
                    "custom relationship, be sure to append the '__r' after the custom relationship name. "
                    "Please reference your WSDL or the describe call for the appropriate names.",
                )
            target = self.store.schema[ref.reference_to]
            hops.append((ref, target))
            current = target
        final = current.field(path.parts[-1])
        if final is None:
            entity = current.name
            raise soql_error(
                "INVALID_FIELD",
                self.text,
                path.pos,
                f"No such column '{path.parts[-1]}' on entity '{entity}'. If you are attempting to use a "
                "custom field, be sure to append the '__c' after the custom field name. Please reference "
                "your WSDL or the describe call for the appropriate names.",
            )
        return Resolved(path, hops, final, self._getter(hops, final.name))

    def _getter(self, hops: list[tuple[Field, SObjectType]], name: str) -> Getter:
        if not hops:

            def direct(rec: Record) -> Any:
                return rec.get(name)

            return direct
        chain = [(ref.name, self.store.tables[target.name].records) for ref, target in hops]

        def through(rec: Record) -> Any:
            current: Record | None = rec
            for ref_name, records in chain:
                ref_id = current.get(ref_name) if current is not None else None
                if ref_id is None:
                    return None
                current = records.get(ref_id)
            return current.get(name) if current is not None else None

        return through

    # -- literals -------------------------------------------------------------------------------
    def literal(self, f: Field, lit: Literal) -> Any:
        """The stored-form value of ``lit`` for comparisons with ``f`` (None for NULL)."""
        if lit.kind == "null":
            return None
        kind = f.type
        mismatch = False
        if kind in ("id", "reference"):
            if lit.kind != "string":
                mismatch = True
            else:
                try:
                    return normalize_id(lit.value)
                except MalformedIdError:
                    raise soql_error(
                        "INVALID_QUERY_FILTER_OPERATOR", self.text, lit.pos, f"invalid ID field: {lit.value}"
                    ) from None
        elif kind in TEXT_TYPES:
            if lit.kind != "string":
                mismatch = True
            else:
                return str(lit.value).casefold()
        elif kind == "boolean":
            if lit.kind != "boolean":
                mismatch = True
            else:
                return lit.value
        elif kind in NUMBER_TYPES:
            if lit.kind != "number":
                mismatch = True
            else:
                return lit.value
        elif kind == "datetime":
            if lit.kind == "datetime":
                return format_datetime(lit.value)
            if lit.kind == "date_literal":
                start, end = date_literal_range(lit.value)
                return (_day_start(start), _day_start(end))
            mismatch = True
        elif kind == "date":
            if lit.kind == "date":
                return lit.value.isoformat()
            if lit.kind == "date_literal":
                start, end = date_literal_range(lit.value)
                return (start.isoformat(), end.isoformat())
            mismatch = True
        if mismatch:
            type_name = {"datetime": "dateTime", "reference": "id"}.get(kind, kind)
            raise soql_error(
                "INVALID_FIELD",
                self.text,
                lit.pos,
                f"value of filter criterion for field '{f.name}' must be of type {type_name} and should not "
                "be enclosed in quotes",
            )
        return lit.value

    # -- predicates -----------------------------------------------------------------------------
    def predicate(self, obj: SObjectType, node: Any) -> Predicate:
        if isinstance(node, BoolOp):
            parts = [self.predicate(obj, item) for item in node.items]
            if node.op == "and":
                return lambda rec: all(p(rec) for p in parts)
            if node.op == "or":
                return lambda rec: any(p(rec) for p in parts)
            inner = parts[0]
            return lambda rec: not inner(rec)
        return self.condition(obj, node)

    def condition(self, obj: SObjectType, cond: Condition) -> Predicate:
        if not isinstance(cond.path, FieldPath):
            from crm_sandbox.salesforce.soql_aggregate import date_condition

            if cond.op in ("in_query", "not_in_query", "like"):
                raise soql_error("MALFORMED_QUERY", self.text, None, f"{cond.op.upper()} needs a field")
            return date_condition(self, obj, cond)
        resolved = self.resolve(obj, cond.path)
        f = resolved.field
        get = resolved.getter
        if f.type == "address" or (f.type == "textarea" and f.length > 255):  # describe: not filterable
            raise soql_error(
                "INVALID_FIELD",
                self.text,
                cond.path.pos,
                f"field '{f.name}' can not be filtered in a query call",
            )
        text = f.type in TEXT_TYPES
        op = cond.op
        if op in ("in", "not_in"):
            values = {self.literal(f, lit) for lit in cond.value}
            if any(isinstance(v, tuple) for v in values):
                raise soql_error(
                    "MALFORMED_QUERY", self.text, cond.path.pos, "date literals are not allowed in IN"
                )
            g = _casefolding(get) if text else get
            if op == "not_in":
                return lambda rec: g(rec) not in values
            return lambda rec: g(rec) in values
        if op in ("in_query", "not_in_query"):
            if f.type not in ("id", "reference"):
                raise soql_error(
                    "INVALID_FIELD", self.text, cond.path.pos, f"Invalid field for semi-join: {f.name}"
                )
            ids = self.semi_join(cond.value)
            if op == "not_in_query":
                return lambda rec: get(rec) not in ids
            return lambda rec: get(rec) in ids
        if op == "like":
            if not text:
                raise soql_error(
                    "INVALID_FIELD", self.text, cond.path.pos, f"invalid operator on field '{f.name}': LIKE"
                )
            lit = cond.value
            if lit.kind != "string":
                raise soql_error("INVALID_FIELD", self.text, lit.pos, "LIKE needs a quoted string")
            regex = like_regex(str(lit.value))
            return lambda rec: (v := get(rec)) is not None and regex.fullmatch(v) is not None
        value = self.literal(f, cond.value)
        return compare_predicate(get, op, value, text)

    def semi_join(self, sub: SemiJoin) -> set[str]:
        sub_obj = self.object(sub.sobject, sub.pos)
        resolved = self.resolve(sub_obj, sub.path)
        if resolved.field.type not in ("id", "reference"):
            raise soql_error("INVALID_FIELD", self.text, sub.path.pos, "semi-join must select an id field")
        predicate = self.predicate(sub_obj, sub.where) if sub.where is not None else None
        get = resolved.getter
        out: set[str] = set()
        for rec in self.store.tables[sub_obj.name].records.values():
            if rec["IsDeleted"] and not self.include_deleted:
                continue
            if predicate is None or predicate(rec):
                value = get(rec)
                if value is not None:
                    out.add(value)
        return out

    # -- order ----------------------------------------------------------------------------------
    def order(self, obj: SObjectType, items: Sequence[OrderItem]) -> list[tuple[Getter, bool, bool, bool]]:
        out = []
        for item in items:
            if not isinstance(item.path, FieldPath):
                raise soql_error(
                    "MALFORMED_QUERY", self.text, getattr(item.path, "pos", None),
                    "Ordering by a function needs an aggregate query (GROUP BY)",
                )  # fmt: skip
            resolved = self.resolve(obj, item.path)
            if resolved.field.type in ("textarea", "address"):
                raise soql_error(
                    "INVALID_FIELD", self.text, item.path.pos,
                    f"field '{resolved.field.name}' can not be sorted in a query call",
                )  # fmt: skip
            out.append((resolved.getter, item.desc, item.nulls_first, resolved.field.type in TEXT_TYPES))
        return out

    # -- whole query ----------------------------------------------------------------------------
    def compile(self, query: Query) -> CompiledQuery:
        from crm_sandbox.salesforce.soql_aggregate import AggregateCompiler, is_aggregate_query

        obj = self.object(query.sobject, query.sobject_pos)
        if query.security is not None and query.security.upper() not in _WITH_MODES:
            raise soql_error("MALFORMED_QUERY", self.text, None, f"WITH {query.security} is not supported")
        select = self.expand_fields(obj, query)
        if is_aggregate_query(query):
            if query.offset is not None and query.offset > 2000:
                raise soql_error(
                    "NUMBER_OUTSIDE_VALID_RANGE", self.text, None, "Maximum SOQL offset allowed is 2000"
                )
            plan, predicate = self.filter(obj, query, [])
            aggregate = AggregateCompiler(self, obj, query).compile()
            return CompiledQuery(
                self.text, obj, [], predicate, plan, [], None, None, None, self.include_deleted,
                aggregate=aggregate,
            )  # fmt: skip
        columns: list[Column] = []
        count: CountItem | None = None
        plain: list[Resolved] = []
        for item in select:
            if isinstance(item, FieldPath):
                resolved = self.resolve(obj, item)
                columns.append(Column("field", resolved=resolved))
                plain.append(resolved)
            elif isinstance(item, FuncCall | AliasedField):
                columns.append(self.function_column(obj, item))
            elif isinstance(item, CountItem):
                if count is not None or len(select) > 1:
                    raise soql_error(
                        "MALFORMED_QUERY", self.text, query.sobject_pos,
                        "COUNT() can only be used alone in the SELECT list",
                    )  # fmt: skip
                if item.path is not None:
                    self.resolve(obj, item.path)
                count = item
            elif isinstance(item, ChildQuery):
                columns.append(Column("child", child=self.child(obj, item)))
        if query.offset is not None and query.offset > 2000:
            raise soql_error(
                "NUMBER_OUTSIDE_VALID_RANGE", self.text, None, "Maximum SOQL offset allowed is 2000"
            )
        order_items = list(query.order)
        plan, predicate = self.filter(obj, query, order_items)
        order = [] if plan.ordered_by_index else self.order(obj, order_items)
        if plan.ordered_by_index:
            self.order(obj, order_items)  # validation only
        return CompiledQuery(
            self.text, obj, columns, predicate, plan, order, query.limit, query.offset, count,
            self.include_deleted, plain,
        )  # fmt: skip

    def expand_fields(self, obj: SObjectType, query: Query) -> list[Any]:
        """The SELECT list with ``FIELDS(STANDARD|CUSTOM|ALL)`` spelled out.

        FIELDS(CUSTOM) and FIELDS(ALL) need ``LIMIT`` of at most 200 (SOQL reference, "FIELDS()").
        """
        out: list[Any] = []
        for item in query.select:
            if not (isinstance(item, FuncCall) and item.name == "FIELDS"):
                out.append(item)
                continue
            arg = (
                item.args[0].text.upper()
                if len(item.args) == 1 and isinstance(item.args[0], FieldPath)
                else ""
            )
            if arg not in ("STANDARD", "CUSTOM", "ALL"):
                raise soql_error(
                    "MALFORMED_QUERY", self.text, item.pos, "FIELDS takes STANDARD, CUSTOM or ALL"
                )
            if arg != "STANDARD" and (query.limit is None or query.limit > 200):
                raise soql_error(
                    "MALFORMED_QUERY", self.text, item.pos,
                    "The SOQL FIELDS function must have a LIMIT of at most 200",
                )  # fmt: skip
            for f in obj.fields.values():
                custom = f.custom or f.name.endswith("__c")
                if arg == "ALL" or custom == (arg == "CUSTOM"):
                    out.append(FieldPath((f.name,), item.pos))
        return out

    def function_column(self, obj: SObjectType, item: FuncCall | AliasedField) -> Column:
        """``toLabel(field)`` and ``FORMAT(field)``; other functions need an aggregate query."""
        from crm_sandbox.salesforce.soql_functions import formatter, label_of

        if isinstance(item, AliasedField):
            raise soql_error(
                "MALFORMED_QUERY", self.text, item.path.pos,
                f"Aliases are only allowed in aggregate queries: {item.path.text} {item.alias}",
            )  # fmt: skip
        if (
            item.name not in ("TOLABEL", "FORMAT")
            or len(item.args) != 1
            or not isinstance(item.args[0], FieldPath)
        ):
            raise soql_error(
                "MALFORMED_QUERY", self.text, item.pos,
                f"{item.name} is not supported in the SELECT list of a query without GROUP BY",
            )  # fmt: skip
        resolved = self.resolve(obj, item.args[0])
        if item.name == "TOLABEL":
            if (
                resolved.field.type not in ("picklist", "multipicklist")
                and resolved.field.name != "RecordTypeId"
            ):
                raise soql_error(
                    "INVALID_FIELD", self.text, item.pos,
                    f"toLabel() can only be used on picklist fields: {resolved.field.name}",
                )  # fmt: skip
            return Column("func", resolved=resolved, transform=label_of(self.store, resolved.field))
        return Column("func", resolved=resolved, transform=formatter(resolved.field))

    def filter(
        self, obj: SObjectType, query: Query, order_items: list[OrderItem]
    ) -> tuple[Plan, Predicate | None]:
        """The candidate plan and residual predicate of the WHERE clause."""
        conjuncts: list[Any] = []
        if query.where is not None:
            where = query.where
            conjuncts = list(where.items) if isinstance(where, BoolOp) and where.op == "and" else [where]
        plan, consumed = self.plan(obj, conjuncts, order_items)
        remaining = [c for i, c in enumerate(conjuncts) if i not in consumed]
        predicates = [self.predicate(obj, c) for c in remaining]
        # compile consumed conjuncts too, so they are still validated
        for i in consumed:
            self.predicate(obj, conjuncts[i])
        predicate: Predicate | None
        if not predicates:
            predicate = None
        elif len(predicates) == 1:
            predicate = predicates[0]
        else:
            predicate = lambda rec: all(p(rec) for p in predicates)  # noqa: E731
        return plan, predicate

    def child(self, parent: SObjectType, item: ChildQuery) -> CompiledChild:
        rel = parent.child_relationship(item.relationship)
        if rel is None:
            raise soql_error(
                "INVALID_TYPE",
                self.text,
                item.pos,
                f"Didn't understand relationship '{item.relationship}' in FROM part of query call. If you "
                "are attempting to use a custom relationship, be sure to append the '__r' after the custom "
                "relationship name. Please reference your WSDL or the describe call for the appropriate "
                "names.",
            )
        child_obj = self.store.schema[rel.child]
        columns = [self.resolve(child_obj, p) for p in item.fields]
        predicate = self.predicate(child_obj, item.where) if item.where is not None else None
        return CompiledChild(
            rel.name, child_obj, rel.field, columns, predicate, self.order(child_obj, item.order), item.limit
        )

    def plan(self, obj: SObjectType, conjuncts: list[Any], order: list[OrderItem]) -> tuple[Plan, set[int]]:
        """Choose candidates: an id/hash lookup, else an index range, else a scan."""
        table = self.store.tables[obj.name]
        best: tuple[int, set[str]] | None = None
        ranges: dict[str, list[tuple[int, str, Any]]] = {}
        for i, cond in enumerate(conjuncts):
            if (
                not isinstance(cond, Condition)
                or not isinstance(cond.path, FieldPath)
                or len(cond.path.parts) != 1
            ):
                continue
            f = obj.field(cond.path.parts[0])
            if f is None:
                continue
            ids = self._lookup_ids(table, f, cond)
            if ids is not None and (best is None or len(ids) < len(best[1])):
                best = (i, ids)
            if (
                f.name in SORTED_INDEX_FIELDS
                and cond.op in ("=", "<", "<=", ">", ">=")
                and isinstance(cond.value, Literal)
                and cond.value.kind != "null"
            ):
                value = self.literal(f, cond.value)
                ranges.setdefault(f.name, []).append((i, cond.op, value))
        order_field = self._index_order(obj, order)
        range_plan: tuple[Plan, set[int]] | None = None
        if ranges:
            name = order_field[0] if order_field and order_field[0] in ranges else next(iter(ranges))
            plan = Plan("range", index_field=name)
            for _, op, value in ranges[name]:
                _narrow(plan, op, value)
            if order_field and order_field[0] == name:
                plan.ordered_by_index = True
                plan.descending = order_field[1]
            elif not order:
                plan.ordered_by_index = True
            range_plan = plan, {i for i, _, _ in ranges[name]}
        if best is not None:
            # a hash lookup usually wins; a narrow range wins over a large candidate set
            if range_plan is not None and len(best[1]) > 1000:
                plan = range_plan[0]
                size = table.sorted_index(plan.index_field or "Id").count(
                    plan.low, plan.low_inclusive, plan.high, plan.high_inclusive
                )
                if size < len(best[1]):
                    return range_plan
            return Plan("ids", ids=best[1]), {best[0]}
        if range_plan is not None:
            return range_plan
        if order_field:
            return Plan(
                "range", index_field=order_field[0], ordered_by_index=True, descending=order_field[1]
            ), set()
        return Plan("scan"), set()

    def _lookup_ids(self, table: Table, f: Field, cond: Condition) -> set[str] | None:
        if cond.op not in ("=", "in") or not (
            f.name == "Id" or f.name in table.hash_indexes or f.type == "reference"
        ):
            return None
        lits = [cond.value] if cond.op == "=" else list(cond.value)
        if any(not isinstance(lit, Literal) or lit.kind == "null" for lit in lits):
            return None
        values = [self.literal(f, lit) for lit in lits]
        if f.name == "Id":
            return {v for v in values if v in table.records}
        out: set[str] = set()
        for v in values:
            out |= table.lookup(f.name, v)
        return out

    def _index_order(self, obj: SObjectType, order: list[OrderItem]) -> tuple[str, bool] | None:
        """``(field, desc)`` when the ORDER BY equals an index's (value, Id) order."""
        if not order or len(order) > 2:
            return None
        first = order[0]
        if not all(isinstance(item.path, FieldPath) for item in order) or len(first.path.parts) != 1:
            return None
        f = obj.field(first.path.parts[0])
        if f is None or f.name not in SORTED_INDEX_FIELDS:
            return None
        if len(order) == 2:
            second = order[1]
            g = obj.field(second.path.parts[0]) if len(second.path.parts) == 1 else None
            if g is None or g.name != "Id" or second.desc != first.desc or f.name == "Id":
                return None
        return f.name, first.desc


def _day_start(day: date) -> str:
    return f"{day.isoformat()}T00:00:00.000+0000"


def _narrow(plan: Plan, op: str, value: Any) -> None:
    """Intersect the plan's range with ``field <op> value`` (value may be a date-literal range)."""
    if isinstance(value, tuple):
        start, end = value
        if op == "=":
            _tighten_low(plan, start, True)
            _tighten_high(plan, end, False)
        elif op == ">":
            _tighten_low(plan, end, True)
        elif op == ">=":
            _tighten_low(plan, start, True)
        elif op == "<":
            _tighten_high(plan, start, False)
        else:
            _tighten_high(plan, end, False)
    elif op == "=":
        _tighten_low(plan, value, True)
        _tighten_high(plan, value, True)
    elif op in (">", ">="):
        _tighten_low(plan, value, op == ">=")
    else:
        _tighten_high(plan, value, op == "<=")


def _tighten_low(plan: Plan, value: Any, inclusive: bool) -> None:
    if plan.low is None or value > plan.low or (value == plan.low and not inclusive):
        plan.low, plan.low_inclusive = value, inclusive


def _tighten_high(plan: Plan, value: Any, inclusive: bool) -> None:
    if plan.high is None or value < plan.high or (value == plan.high and not inclusive):
        plan.high, plan.high_inclusive = value, inclusive


def like_regex(pattern: str) -> re.Pattern[str]:
    """SOQL LIKE (``%``, ``_``, backslash escapes) as a case-insensitive regex."""
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _casefolding(get: Getter) -> Getter:
    def folded(rec: Record) -> Any:
        v = get(rec)
        return v.casefold() if v is not None else None

    return folded


def compare_predicate(get: Getter, op: str, value: Any, text: bool) -> Predicate:
    """A closure for ``field <op> value``; ``value`` may be a ``(start, end)`` date-literal range."""
    if isinstance(value, tuple):
        start, end = value
        if op == "=":
            return lambda rec: (v := get(rec)) is not None and start <= v < end
        if op == "!=":
            return lambda rec: (v := get(rec)) is None or not (start <= v < end)
        if op == "<":
            return lambda rec: (v := get(rec)) is not None and v < start
        if op == "<=":
            return lambda rec: (v := get(rec)) is not None and v < end
        if op == ">":
            return lambda rec: (v := get(rec)) is not None and v >= end
        return lambda rec: (v := get(rec)) is not None and v >= start
    if value is None:
        if op == "=":
            return lambda rec: get(rec) is None
        if op == "!=":
            return lambda rec: get(rec) is not None
        return lambda _rec: False
    if text:
        get = _casefolding(get)
    if op == "=":
        return lambda rec: get(rec) == value
    if op == "!=":
        return lambda rec: get(rec) != value
    if op == "<":
        return lambda rec: (v := get(rec)) is not None and v < value
    if op == "<=":
        return lambda rec: (v := get(rec)) is not None and v <= value
    if op == ">":
        return lambda rec: (v := get(rec)) is not None and v > value
    return lambda rec: (v := get(rec)) is not None and v >= value


# -- execution ----------------------------------------------------------------------------------


def compile_query(store: Store, text: str, *, include_deleted: bool = False) -> CompiledQuery:
    return Compiler(store, text, include_deleted=include_deleted).compile(parse(text))


def execute(store: Store, text: str, *, include_deleted: bool = False) -> QueryResult:
    """Run a query: the matching ids in result order, or the aggregate row for COUNT."""
    compiled = compile_query(store, text, include_deleted=include_deleted)
    table = store.tables[compiled.obj.name]
    ids = candidate_ids(table, compiled)
    if compiled.aggregate is not None:
        rows = compiled.aggregate.run(table.records, ids)
        return QueryResult(compiled, [], len(rows), aggregate=rows)
    if compiled.order:
        ids = sort_ids(table, ids, compiled.order)
    if compiled.offset:
        ids = ids[compiled.offset :]
    if compiled.limit is not None:
        ids = ids[: compiled.limit]
    if compiled.count is not None:
        if compiled.count.path is None:
            return QueryResult(compiled, [], len(ids), aggregate=[])
        get = (
            Compiler(store, text, include_deleted=include_deleted)
            .resolve(compiled.obj, compiled.count.path)
            .getter
        )
        records = table.records
        n = sum(1 for i in ids if get(records[i]) is not None)
        row = {"attributes": {"type": "AggregateResult"}, compiled.count.alias or "expr0": n}
        return QueryResult(compiled, [], 1, aggregate=[row])
    return QueryResult(compiled, ids, len(ids))


def candidate_ids(table: Table, compiled: CompiledQuery) -> list[str]:
    """Ids passing the plan, the deleted filter and the residual predicate, in plan order."""
    plan = compiled.plan
    records = table.records
    skip_deleted = not compiled.include_deleted and bool(table.deleted)
    predicate = compiled.predicate
    ids: list[str]
    if plan.kind == "ids":
        ids = [i for i in (plan.ids or ()) if i in records]
        if not compiled.order:
            ids.sort()
    elif plan.kind == "range":
        index = table.sorted_index(plan.index_field or "Id")
        ids = index.range(plan.low, plan.low_inclusive, plan.high, plan.high_inclusive)
        if plan.descending:
            ids.reverse()
    else:
        ids = list(records)
    if skip_deleted:
        deleted = table.deleted
        ids = [i for i in ids if i not in deleted]
    if predicate is not None:
        ids = [i for i in ids if predicate(records[i])]
    return ids


def sort_ids(table: Table, ids: list[str], order: list[tuple[Getter, bool, bool, bool]]) -> list[str]:
    records = table.records
    rows = list(ids)
    for get, desc, nulls_first, is_text in reversed(order):
        none_rank = 0 if nulls_first != desc else 1
        other = 1 - none_rank

        def key(
            rid: str, get: Getter = get, is_text: bool = is_text, nr: int = none_rank, ot: int = other
        ) -> Any:
            v = get(records[rid])
            if v is None:
                return (nr, 0)
            return (ot, v.casefold() if is_text else v)

        rows.sort(key=key, reverse=desc)
    return rows


def render_record(store: Store, compiled: CompiledQuery, rec: Record, version: str) -> dict[str, Any]:
    """One record of a query page: ``attributes`` then the selected fields, nested for parents."""
    obj = compiled.obj
    out: dict[str, Any] = {
        "attributes": {"type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{rec['Id']}"}
    }
    for column in compiled.columns:
        if column.kind == "field" and column.resolved is not None:
            _place(store, out, rec, column.resolved, version)
        elif column.kind == "func" and column.resolved is not None and column.transform is not None:
            _place(store, out, rec, column.resolved, version, transform=column.transform)
        elif column.child is not None:
            out[column.child.name] = render_children(
                store, column.child, rec, version, compiled.include_deleted
            )
    return out


def _place(
    store: Store,
    out: dict[str, Any],
    rec: Record,
    resolved: Resolved,
    version: str,
    *,
    transform: Callable[[Record, Any], Any] | None = None,
) -> None:
    if not resolved.hops:
        value = rec.get(resolved.field.name)
        out[resolved.field.name] = transform(rec, value) if transform else value
        return
    target: dict[str, Any] = out
    current: Record | None = rec
    for ref, obj in resolved.hops:
        rel = ref.relationship_name or ref.name
        parent_id = current.get(ref.name) if current is not None else None
        parent = store.tables[obj.name].records.get(parent_id) if parent_id else None
        if parent is None:
            if rel not in target:
                target[rel] = None
            return
        slot = target.get(rel)
        if not isinstance(slot, dict):
            slot = {
                "attributes": {
                    "type": obj.name,
                    "url": f"/services/data/v{version}/sobjects/{obj.name}/{parent_id}",
                }
            }
            target[rel] = slot
        target = slot
        current = parent
    value = current.get(resolved.field.name) if current is not None else None
    target[resolved.field.name] = transform(current, value) if transform and current is not None else value


def render_children(
    store: Store, child: CompiledChild, parent: Record, version: str, include_deleted: bool
) -> dict[str, Any] | None:
    table = store.tables[child.obj.name]
    ids = [
        i
        for i in table.lookup(child.ref_field, parent["Id"])
        if (include_deleted or not table.records[i]["IsDeleted"])
        and (child.predicate is None or child.predicate(table.records[i]))
    ]
    ids.sort()
    if child.order:
        ids = sort_ids(table, ids, child.order)
    if child.limit is not None:
        ids = ids[: child.limit]
    if not ids:
        return None
    records = []
    for i in ids:
        rec = table.records[i]
        row: dict[str, Any] = {
            "attributes": {
                "type": child.obj.name,
                "url": f"/services/data/v{version}/sobjects/{child.obj.name}/{i}",
            }
        }
        for resolved in child.columns:
            _place(store, row, rec, resolved, version)
        records.append(row)
    return {"totalSize": len(records), "done": True, "records": records}


def column_names(compiled: CompiledQuery) -> list[str]:
    """Bulk API CSV header: canonical dotted paths of the plain SELECT fields."""
    return [".".join(r.canonical) for r in compiled.plain_paths]
