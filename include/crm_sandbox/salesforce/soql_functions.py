"""SOQL's row functions: date functions, ``convertTimezone()``, ``toLabel()`` and ``FORMAT()``.

Per the SOQL and SOSL Reference (developer.salesforce.com, soql_sosl: "Date Functions",
"toLabel()", "FORMAT()", "convertTimezone()"):

* date functions take a date or dateTime field and answer a number (``CALENDAR_YEAR``,
  ``CALENDAR_MONTH``, ``CALENDAR_QUARTER``, ``DAY_IN_MONTH``, ``DAY_IN_WEEK`` with 1 = Sunday,
  ``DAY_IN_YEAR``, ``HOUR_IN_DAY``, ``WEEK_IN_MONTH``, ``WEEK_IN_YEAR``, ``FISCAL_*``) or, for
  ``DAY_ONLY`` (dateTime only), a date. They are usable in WHERE, GROUP BY, HAVING and in the
  SELECT list of aggregate queries. The sandbox org's fiscal year is the default one (starts in
  January), and its users' time zone is UTC, so ``convertTimezone()`` changes nothing;
* ``toLabel(field)`` answers a picklist value's label (a stage's ``MasterLabel``; other picklists
  have labels equal to their values), under the field's name;
* ``FORMAT(field)`` answers the value formatted for the user's locale (en_US): numbers with
  thousands separators, currency with the record's ISO code, dates ``M/D/YYYY``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from crm_sandbox.salesforce.schema import NUMBER_TYPES, Field, datetime_from_stored
from crm_sandbox.salesforce.store import Record, Store

Moment = date | datetime

_DATE_FUNCTIONS: dict[str, Callable[[Moment], Any]] = {
    "CALENDAR_YEAR": lambda d: d.year,
    "CALENDAR_MONTH": lambda d: d.month,
    "CALENDAR_QUARTER": lambda d: (d.month - 1) // 3 + 1,
    "DAY_IN_MONTH": lambda d: d.day,
    "DAY_IN_WEEK": lambda d: d.isoweekday() % 7 + 1,
    "DAY_IN_YEAR": lambda d: d.timetuple().tm_yday,
    "WEEK_IN_MONTH": lambda d: (d.day - 1) // 7 + 1,
    "WEEK_IN_YEAR": lambda d: (d.timetuple().tm_yday - 1) // 7 + 1,
    "FISCAL_YEAR": lambda d: d.year,
    "FISCAL_MONTH": lambda d: d.month,
    "FISCAL_QUARTER": lambda d: (d.month - 1) // 3 + 1,
    "DAY_ONLY": lambda d: (d.date() if isinstance(d, datetime) else d).isoformat(),
    "HOUR_IN_DAY": lambda d: d.hour if isinstance(d, datetime) else 0,
}
#: Functions that need a dateTime field (a date field has no time of day).
DATETIME_ONLY = frozenset({"DAY_ONLY", "HOUR_IN_DAY"})
#: Functions answering a date (compared with date literals) rather than a number.
DATE_VALUED = frozenset({"DAY_ONLY"})


def is_date_function(name: str) -> bool:
    return name in _DATE_FUNCTIONS


def date_function(name: str, field_type: str) -> Callable[[Any], Any]:
    """The function over a stored value (``None`` stays ``None``)."""
    fn = _DATE_FUNCTIONS[name]

    def apply(value: Any) -> Any:
        if value is None:
            return None
        moment: Moment = (
            datetime_from_stored(value) if field_type == "datetime" else date.fromisoformat(str(value)[:10])
        )
        return fn(moment)

    return apply


def label_of(store: Store, f: Field) -> Callable[[Record, Any], Any]:
    """``toLabel()``: the picklist label of a value."""
    if f.picklist_source == "OpportunityStage":
        stages = store.tables["OpportunityStage"].records.values()
        labels = {r["ApiName"]: r.get("MasterLabel") or r["ApiName"] for r in stages}
        return lambda _rec, value: labels.get(value, value)
    return lambda _rec, value: value


def formatter(f: Field) -> Callable[[Record, Any], Any]:
    """``FORMAT()``: the value as the en_US user sees it."""

    def fmt(rec: Record, value: Any) -> Any:
        if value is None:
            return None
        if f.type == "currency":
            return f"{rec.get('CurrencyIsoCode') or 'USD'} {float(value):,.2f}"
        if f.type == "percent":
            return f"{value}%"
        if f.type in NUMBER_TYPES:
            return f"{value:,}"
        if f.type == "date":
            day = date.fromisoformat(str(value)[:10])
            return f"{day.month}/{day.day}/{day.year}"
        if f.type == "datetime":
            moment = datetime_from_stored(value)
            hour = moment.hour % 12 or 12
            half = "AM" if moment.hour < 12 else "PM"
            return f"{moment.month}/{moment.day}/{moment.year}, {hour}:{moment.minute:02d} {half}"
        return value

    return fmt
