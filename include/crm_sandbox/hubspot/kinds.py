"""The CRM object types the emulator serves, and HubSpot's timestamp formats.

HubSpot names an object type several ways in paths (``contacts``, ``contact``, ``0-1``); its
last-modified property is ``lastmodifieddate`` on contacts but ``hs_lastmodifieddate`` on
companies and deals, a difference incremental syncs must get right. Timestamps are ISO 8601 with
milliseconds and ``Z``; inputs may also be epoch milliseconds or a bare date.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta


@dataclass(frozen=True)
class ObjectKind:
    """One CRM object type and the facts about it that differ between types."""

    name: str  # path name: "contacts"
    type_id: str  # HubSpot object type id: "0-1"
    upper: str  # as in messages: "CONTACT"
    lastmod: str  # last-modified property name
    default_properties: tuple[str, ...]  # returned when a read names no properties
    query_properties: tuple[str, ...]  # searched by a search request's free-text ``query``


CONTACTS = ObjectKind(
    name="contacts",
    type_id="0-1",
    upper="CONTACT",
    lastmod="lastmodifieddate",
    default_properties=("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    query_properties=(
        "firstname",
        "lastname",
        "email",
        "phone",
        "mobilephone",
        "company",
        "hs_additional_emails",
    ),
)
COMPANIES = ObjectKind(
    name="companies",
    type_id="0-2",
    upper="COMPANY",
    lastmod="hs_lastmodifieddate",
    default_properties=("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    query_properties=("name", "domain", "website", "phone"),
)
DEALS = ObjectKind(
    name="deals",
    type_id="0-3",
    upper="DEAL",
    lastmod="hs_lastmodifieddate",
    default_properties=(
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    query_properties=("dealname", "pipeline", "dealstage", "description", "dealtype"),
)

KINDS: dict[str, ObjectKind] = {k.name: k for k in (CONTACTS, COMPANIES, DEALS)}

_ALIASES: dict[str, str] = {}
for _kind in KINDS.values():
    _ALIASES[_kind.name] = _kind.name
    _ALIASES[_kind.name.rstrip("s")] = _kind.name
    _ALIASES[_kind.type_id] = _kind.name
_ALIASES["company"] = "companies"


def resolve_kind(raw: str) -> ObjectKind | None:
    """The object type a path segment names (``contacts``, ``contact``, ``0-1``), if served."""
    name = _ALIASES.get(raw.lower())
    return KINDS[name] if name else None


# -- timestamps ----------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def now_ms(clock: float) -> int:
    """Epoch milliseconds of a ``time.time()``-style clock reading."""
    return int(clock * 1000)


def iso_ms(ms: int) -> str:
    """HubSpot's timestamp format: ``2024-05-01T12:00:00.123Z``."""
    secs, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"


def iso_date(ms: int) -> str:
    """HubSpot's format of ``date`` properties: ``2024-05-01``."""
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))


def parse_ms(value: object) -> int:
    """Epoch milliseconds from epoch millis (int or digits), an ISO date-time, or a bare date.

    Naive date-times are UTC, as HubSpot reads them. Raises ``ValueError`` for anything else.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if not isinstance(value, str):
        raise ValueError(f"not a timestamp: {value!r}")
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if len(text) == 10:
        day = date.fromisoformat(text)
        return (datetime(day.year, day.month, day.day, tzinfo=UTC) - _EPOCH) // _ONE_MS
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // _ONE_MS
