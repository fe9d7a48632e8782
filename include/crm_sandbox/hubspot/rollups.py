"""The deal rollups HubSpot calculates on contacts and companies from their associated deals.

HubSpot's knowledge base ("How are the properties used for revenue reporting calculated?",
https://knowledge.hubspot.com/articles/kcs_article/reports/how-are-the-calculated-properties-used-for-revenue-reporting-calculated):

- *Associated Deals* (``num_associated_deals``): the number of deals the record is associated with;
- *First Deal Created Date* (``first_deal_created_date``): when the first of those deals was created;
- *Recent Deal Close Date* (``recent_deal_close_date``): the close date of the most recent
  closed-won deal;
- *Recent Deal Amount* (``recent_deal_amount``): the amount of that most recent closed-won deal;
- *Total Revenue* (``total_revenue``): the sum of the amounts of all closed-won deals.

They are calculated, so HubSpot rejects writes to them as read-only (``READ_ONLY_VALUE``), and a
sync can only predict them. A record with no deals has none of them set.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Protocol

from crm_sandbox.hubspot.kinds import iso_ms, parse_ms

ROLLUP_PROPERTIES = (
    "num_associated_deals",
    "first_deal_created_date",
    "recent_deal_close_date",
    "recent_deal_amount",
    "total_revenue",
)
#: Deal properties whose change can change a rollup of the deal's contacts and companies.
ROLLUP_INPUTS = frozenset({"amount", "closedate", "dealstage", "pipeline", "hs_is_closed_won"})
#: The object types that carry the rollups.
ROLLUP_OWNERS = ("contacts", "companies")


class DealLike(Protocol):
    id: int
    created: int
    props: dict[str, str]


def _amount(deal: DealLike) -> Decimal | None:
    raw = deal.props.get("amount")
    if raw is None:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        return None


def _number(value: Decimal) -> str:
    """A number as HubSpot returns it: no exponent, no trailing zeros (``350.5``, ``100``)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def _close_ms(deal: DealLike) -> int:
    raw = deal.props.get("closedate")
    try:
        return parse_ms(raw) if raw else -1
    except ValueError:
        return -1


def deal_rollups(deals: Iterable[DealLike]) -> dict[str, str | None]:
    """The five rollups of a record from its live associated deals (see module docstring)."""
    live = list(deals)
    if not live:
        return dict.fromkeys(ROLLUP_PROPERTIES)
    won = [d for d in live if d.props.get("hs_is_closed_won") == "true"]
    out: dict[str, str | None] = {
        "num_associated_deals": str(len(live)),
        "first_deal_created_date": iso_ms(min(d.created for d in live)),
        "recent_deal_close_date": None,
        "recent_deal_amount": None,
        "total_revenue": None,
    }
    if won:
        recent = max(won, key=lambda d: (_close_ms(d), d.id))
        out["recent_deal_close_date"] = recent.props.get("closedate")
        amount = _amount(recent)
        out["recent_deal_amount"] = _number(amount) if amount is not None else None
        amounts = [a for a in (_amount(d) for d in won) if a is not None]
        out["total_revenue"] = _number(sum(amounts, Decimal(0)))
    return out
