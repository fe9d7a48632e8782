"""Creating OpportunityContactRoles without duplicates, although they have no external id.

A contact role is identified by its (OpportunityId, ContactId) pair. Creating one is a plain
``POST /composite/sobjects``: sending it twice makes two roles. So:

1. the pairs that already exist are queried first and reported as written, with their ids;
2. only the missing pairs are created, 200 per request, ``allOrNone: false``;
3. a create whose outcome is unknown (5xx, timeout, dropped connection) is never re-sent
   blindly: the org is asked again which of its pairs exist, those are reported as written,
   and only the rest is sent again, within the retry budget.

Ids are compared on their first 15 characters (the case-sensitive id; the 18-character form
adds a checksum), since plan rows and query results may use either form.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from crm_sync.load.salesforce_bulk import TRANSIENT_CODES
from crm_sync.load.salesforce_http import (
    AmbiguousWriteError,
    RequestRejectedError,
    SalesforceTransport,
    backoff,
)
from crm_sync.load.writer import BatchFailedError, LoadItem, WriteOutcome

log = logging.getLogger(__name__)

ROLE_OBJECT = "OpportunityContactRole"
BATCH = 200
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
Pair = tuple[str, str]
QueryFn = Callable[[str], list[dict[str, Any]]]


def pair_key(opportunity_id: Any, contact_id: Any) -> Pair | None:
    """The comparable (opportunity, contact) key, or None when an id is missing or malformed."""
    opp, contact = str(opportunity_id or ""), str(contact_id or "")
    if not (_ID_RE.match(opp) and _ID_RE.match(contact)):
        return None
    return opp[:15], contact[:15]


def role_body(item: LoadItem) -> dict[str, Any]:
    return {
        "attributes": {"type": ROLE_OBJECT},
        **{k: v for k, v in item.fields.items() if not k.startswith("_")},
    }


class RoleCreator:
    """Creates missing contact roles through ``transport``; reads through ``query``."""

    def __init__(
        self,
        transport: SalesforceTransport,
        query: QueryFn,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = transport
        self.query = query
        self._sleep = sleep
        self._clock = clock

    def create(self, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        """One outcome per item: existing pairs with their ids, missing pairs created."""
        outcomes: list[WriteOutcome] = []
        by_pair: dict[Pair, list[LoadItem]] = {}
        for item in items:
            key = pair_key(item.fields.get("OpportunityId"), item.fields.get("ContactId"))
            if key is None:
                outcomes.append(
                    WriteOutcome(
                        seq=item.seq,
                        error_code="REQUIRED_FIELD_MISSING",
                        message="a contact role needs a valid OpportunityId and ContactId",
                        retryable=False,
                    )
                )
            else:
                by_pair.setdefault(key, []).append(item)
        pairs = list(by_pair)
        for start in range(0, len(pairs), BATCH):
            batch = pairs[start : start + BATCH]
            found = self.existing(batch)
            missing = [p for p in batch if p not in found]
            results: dict[Pair, str | WriteOutcome] = dict(found)
            if missing:
                results.update(self._create_batch(missing, by_pair))
            for pair in batch:
                outcomes.extend(self._fan_out(by_pair[pair], results.get(pair)))
        return outcomes

    @staticmethod
    def _fan_out(items: Sequence[LoadItem], result: str | WriteOutcome | None) -> list[WriteOutcome]:
        """The pair's result for every item naming that pair (duplicates in a group share it)."""
        out = []
        for item in items:
            if isinstance(result, str):
                out.append(WriteOutcome(seq=item.seq, target_id=result))
            elif result is None:
                out.append(
                    WriteOutcome(seq=item.seq, error_code="NO_RESULT", message="no result for this role")
                )
            else:
                out.append(
                    WriteOutcome(
                        seq=item.seq,
                        error_code=result.error_code,
                        message=result.message,
                        retryable=result.retryable,
                    )
                )
        return out

    def existing(self, pairs: Sequence[Pair]) -> dict[Pair, str]:
        """Ids of the roles that exist for ``pairs`` (lowest id when a pair has several)."""
        if not pairs:
            return {}
        opportunities = sorted({opp for opp, _ in pairs})
        wanted = set(pairs)
        found: dict[Pair, str] = {}
        for start in range(0, len(opportunities), BATCH):
            chunk = opportunities[start : start + BATCH]
            ids = ", ".join(f"'{opp}'" for opp in chunk)
            rows = self.query(
                f"SELECT Id, OpportunityId, ContactId FROM {ROLE_OBJECT} WHERE OpportunityId IN ({ids}) "
                "ORDER BY Id"
            )
            for row in rows:
                key = pair_key(row.get("OpportunityId"), row.get("ContactId"))
                if key in wanted and key not in found:
                    found[key] = str(row["Id"])
        return found

    def _create_batch(
        self, missing: Sequence[Pair], by_pair: Mapping[Pair, Sequence[LoadItem]]
    ) -> dict[Pair, str | WriteOutcome]:
        """Create ``missing`` roles; after an unknown outcome, re-query before sending again."""
        deadline = self._clock() + self.http.settings.retry_budget_seconds
        pending = list(missing)
        results: dict[Pair, str | WriteOutcome] = {}
        attempt = 0
        while pending:
            attempt += 1
            self.http.check_allowance()
            records = [role_body(by_pair[p][0]) for p in pending]
            try:
                response = self.http.request(
                    "POST",
                    "composite/sobjects",
                    body={"allOrNone": False, "records": records},
                    idempotent=False,
                )
            except RequestRejectedError as exc:
                failed = WriteOutcome(seq=-1, error_code=exc.code, message=exc.message, retryable=False)
                results.update(dict.fromkeys(pending, failed))
                return results
            except AmbiguousWriteError as exc:
                wait = exc.retry_after if exc.retry_after is not None else backoff(attempt)
                if self._clock() + wait > deadline:
                    raise BatchFailedError(
                        f"creating {len(pending)} contact roles kept failing ({exc}) for the "
                        f"{self.http.settings.retry_budget_seconds:.0f} s retry budget; roles already "
                        "created are found by the next run, so a re-run finishes the load without duplicates"
                    ) from exc
                log.warning(
                    "contact role create: %s; asking the org which roles exist before re-sending", exc
                )
                self._sleep(wait)
                found = self.existing(pending)
                results.update(found)
                pending = [p for p in pending if p not in found]
                continue
            for pair, result in zip(pending, response.json(), strict=False):
                results[pair] = self._result(result)
            return results
        return results

    @staticmethod
    def _result(result: Mapping[str, Any]) -> str | WriteOutcome:
        if result.get("success"):
            return str(result["id"])
        errors = result.get("errors") or [{}]
        first = errors[0] if isinstance(errors[0], dict) else {}
        code = str(first.get("statusCode") or "UNKNOWN_EXCEPTION")
        message = str(first.get("message") or "")
        return WriteOutcome(seq=-1, error_code=code, message=message, retryable=code in TRANSIENT_CODES)
