"""Bulk API 2.0 ingest upserts: many rows in a few jobs instead of thousands of collection calls.

One job per ``bulk_job_rows`` rows (and per Lead assignment-rule choice, which Bulk API 2.0 sets
per job with ``assignmentRuleId``), following Salesforce's job life cycle: create the job
(``POST jobs/ingest`` with ``operation: upsert`` and ``externalIdFieldName``), upload the CSV
(``PUT .../batches``), close it (``PATCH state: UploadComplete``), poll until ``JobComplete`` or
``Failed``, then read ``successfulResults`` and ``failedResults``; a row in neither was not
processed (a failed or aborted job) and is reported with the job's ``errorMessage``. See
https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/walkthrough_upload_data.htm

Upserts are idempotent, so a job whose upload or close failed in an unknown state is aborted
(best effort) and sent again as a new job; creating a job is retried like an idempotent request
because a duplicate job that never receives data does nothing.

CSV as Bulk API 2.0 reads it: an empty cell leaves a field unchanged, so a null is written as
``#N/A``; booleans are ``true``/``false``.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from crm_sync.load.salesforce_http import (
    AmbiguousWriteError,
    RequestRejectedError,
    SalesforceTransport,
    backoff,
    json_default,
)
from crm_sync.load.writer import BatchFailedError, WriteOutcome

log = logging.getLogger(__name__)

NULL = "#N/A"
FINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})
#: Per-record codes worth retrying on a later run; the rest need someone to fix the data.
TRANSIENT_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "UNKNOWN_EXCEPTION", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"}
)


@dataclass(frozen=True)
class BulkRow:
    """One row to upsert: the item's seq and its body (external id included)."""

    seq: int
    body: Mapping[str, Any]


def csv_value(value: Any) -> str:
    """A value as a Bulk API 2.0 CSV cell (see module docstring for nulls)."""
    if value is None or value == "":
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return str(json_default(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render_csv(rows: Sequence[BulkRow]) -> tuple[list[str], bytes]:
    """The job's columns (every field any row sets, in first-seen order) and its CSV bytes."""
    columns: dict[str, None] = {}
    for row in rows:
        for key in row.body:
            columns.setdefault(key, None)
    header = list(columns)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        body = row.body
        writer.writerow([csv_value(body[c]) if c in body else "" for c in header])
    return header, buffer.getvalue().encode()


def parse_bulk_error(text: str) -> tuple[str, str]:
    """``sf__Error`` (``CODE:message:fields --``) as ``(code, message)``."""
    code, _, rest = text.partition(":")
    message = rest.strip().removesuffix("--").strip().rstrip(":")
    return (code.strip() or "UNKNOWN_EXCEPTION"), message


def failure(seq: int, code: str, message: str) -> WriteOutcome:
    return WriteOutcome(seq=seq, error_code=code, message=message, retryable=code in TRANSIENT_CODES)


class BulkUpserter:
    """Runs Bulk API 2.0 upsert jobs through a :class:`SalesforceTransport`."""

    def __init__(
        self,
        transport: SalesforceTransport,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = transport
        self.settings = transport.settings
        self.jobs = 0
        self._sleep = sleep
        self._clock = clock

    def upsert(
        self, sobject: str, external_id: str, rows: Sequence[BulkRow], assignment_rule_id: str | None
    ) -> list[WriteOutcome]:
        """Upsert ``rows`` in jobs of ``bulk_job_rows``; one outcome per row."""
        outcomes: list[WriteOutcome] = []
        size = max(1, self.settings.bulk_job_rows)
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            self.http.check_allowance()
            outcomes.extend(self._job_with_retries(sobject, external_id, chunk, assignment_rule_id))
        return outcomes

    def _job_with_retries(
        self, sobject: str, external_id: str, rows: Sequence[BulkRow], rule: str | None
    ) -> list[WriteOutcome]:
        deadline = self._clock() + self.settings.retry_budget_seconds
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._run_job(sobject, external_id, rows, rule)
            except AmbiguousWriteError as exc:
                if self._clock() > deadline:
                    raise BatchFailedError(
                        f"Bulk API 2.0 upsert of {len(rows)} {sobject} rows kept failing ({exc}) for the "
                        f"{self.settings.retry_budget_seconds:.0f} s retry budget; re-run the task to finish"
                    ) from exc
                log.warning("Bulk upsert of %s: %s; sending the rows again as a new job", sobject, exc)
                self._sleep(exc.retry_after if exc.retry_after is not None else backoff(attempt))

    def _run_job(
        self, sobject: str, external_id: str, rows: Sequence[BulkRow], rule: str | None
    ) -> list[WriteOutcome]:
        header, data = render_csv(rows)
        spec: dict[str, Any] = {
            "object": sobject,
            "operation": "upsert",
            "externalIdFieldName": external_id,
            "contentType": "CSV",
            "lineEnding": "LF",
        }
        if rule:
            spec["assignmentRuleId"] = rule
        job = self.http.request("POST", "jobs/ingest", body=spec, idempotent=True).json()
        job_id = str(job["id"])
        self.jobs += 1
        try:
            self.http.request(
                "PUT",
                f"jobs/ingest/{job_id}/batches",
                data=data,
                headers={"Content-Type": "text/csv"},
                idempotent=False,
            )
            self._close(job_id)
        except AmbiguousWriteError:
            self._abort(job_id)
            raise
        info = self._wait(job_id)
        return self._outcomes(job_id, info, header, external_id, rows)

    def _close(self, job_id: str) -> None:
        try:
            self.http.request(
                "PATCH", f"jobs/ingest/{job_id}", body={"state": "UploadComplete"}, idempotent=True
            )
        except RequestRejectedError as exc:
            # a retried close whose first try went through: the job is already closed
            if exc.code != "INVALIDJOBSTATE":
                raise

    def _abort(self, job_id: str) -> None:
        try:
            self.http.request("PATCH", f"jobs/ingest/{job_id}", body={"state": "Aborted"}, idempotent=True)
        except (RequestRejectedError, AmbiguousWriteError, BatchFailedError) as exc:
            log.warning("could not abort Bulk API job %s (%s); it holds no data of ours", job_id, exc)

    def _wait(self, job_id: str) -> dict[str, Any]:
        """Poll the job until it is final: immediately, then backing off to ``bulk_poll_seconds``."""
        deadline = self._clock() + self.settings.bulk_timeout_seconds
        pause = 0.25
        while True:
            info: dict[str, Any] = self.http.request("GET", f"jobs/ingest/{job_id}", idempotent=True).json()
            if info.get("state") in FINAL_STATES:
                return info
            if self._clock() + pause > deadline:
                raise BatchFailedError(
                    f"Bulk API 2.0 job {job_id} is still {info.get('state')} after "
                    f"{self.settings.bulk_timeout_seconds:.0f} s (extra.bulk_timeout_seconds); its upserts "
                    "are idempotent, so a re-run finishes the load"
                )
            self._sleep(pause)
            pause = min(self.settings.bulk_poll_seconds, pause * 2)

    def _results(self, job_id: str, kind: str) -> Iterable[dict[str, str]]:
        text = self.http.request("GET", f"jobs/ingest/{job_id}/{kind}", idempotent=True).text
        return csv.DictReader(io.StringIO(text, newline=""))

    def _outcomes(
        self,
        job_id: str,
        info: Mapping[str, Any],
        header: Sequence[str],
        external_id: str,
        rows: Sequence[BulkRow],
    ) -> list[WriteOutcome]:
        """Map the job's result files back to the rows by external id value."""
        column = next(c for c in header if c.lower() == external_id.lower())
        pending: dict[str, deque[int]] = defaultdict(deque)
        for row in rows:
            pending[csv_value(row.body.get(column))].append(row.seq)
        outcomes: list[WriteOutcome] = []

        def take(value: str | None) -> int | None:
            queue = pending.get(value or "")
            return queue.popleft() if queue else None

        for result in self._results(job_id, "successfulResults"):
            seq = take(result.get(column))
            if seq is not None:
                outcomes.append(WriteOutcome(seq=seq, target_id=result.get("sf__Id") or None))
        for result in self._results(job_id, "failedResults"):
            seq = take(result.get(column))
            if seq is not None:
                code, message = parse_bulk_error(result.get("sf__Error") or "")
                outcomes.append(failure(seq, code, message))
        left = [seq for queue in pending.values() for seq in queue]
        if left:
            reason = str(info.get("errorMessage") or f"not processed by Bulk API job {job_id}")
            state = str(info.get("state"))
            code = "BULK_JOB_FAILED" if state == "Failed" else "UNPROCESSED"
            outcomes.extend(
                WriteOutcome(
                    seq=seq,
                    error_code=code,
                    message=f"{reason} (job {job_id}, {state})",
                    retryable=state != "Failed",
                )
                for seq in left
            )
        return outcomes
