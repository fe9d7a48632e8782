"""Salesforce's error shapes, so the real client raises its real exceptions.

The REST API answers errors as a JSON list ``[{"message", "errorCode", "fields"?}]`` and
simple-salesforce maps the status to an exception class (300 ``SalesforceMoreThanOneRecord``,
400 ``SalesforceMalformedRequest``, 401 ``SalesforceExpiredSession``, 403
``SalesforceRefusedRequest``, 404 ``SalesforceResourceNotFound``, others
``SalesforceGeneralError``). Per-record results of composite and Bulk API calls use a different
shape (``statusCode`` instead of ``errorCode``); :class:`RecordError` carries both renderings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RecordError(Exception):
    """One validation or DML error on one record.

    ``status`` is the HTTP status the single-record REST endpoints answer with; batch endpoints
    (composite collections, Bulk API) report the error per record instead.
    """

    code: str
    message: str
    fields: list[str] = field(default_factory=list)
    status: int = 400

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def rest_body(self, *, with_fields: bool = True) -> list[dict[str, Any]]:
        """The REST API body: ``[{"message", "errorCode", "fields"}]``."""
        body: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if with_fields:
            body["fields"] = list(self.fields)
        return [body]

    def collection_item(self) -> dict[str, Any]:
        """One entry of ``errors`` in a composite/sobjects result."""
        return {"statusCode": self.code, "message": self.message, "fields": list(self.fields)}

    def bulk_text(self) -> str:
        """The ``sf__Error`` column of a Bulk API 2.0 failed-results CSV."""
        return f"{self.code}:{self.message}:{','.join(self.fields)} --"


class ApiError(Exception):
    """A whole request fails: status plus the JSON body Salesforce would send."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = headers or {}

    @classmethod
    def of(cls, status: int, code: str, message: str, fields: list[str] | None = None) -> ApiError:
        entry: dict[str, Any] = {"message": message, "errorCode": code}
        if fields is not None:
            entry["fields"] = fields
        return cls(status, [entry])

    @classmethod
    def from_record(cls, error: RecordError) -> ApiError:
        return cls(error.status, error.rest_body())


def not_found(message: str = "The requested resource does not exist") -> ApiError:
    return ApiError.of(404, "NOT_FOUND", message)


def invalid_session() -> ApiError:
    return ApiError.of(401, "INVALID_SESSION_ID", "Session expired or invalid")


def request_limit_exceeded() -> ApiError:
    return ApiError.of(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


#: ``errorCode`` and message Salesforce sends for the statuses the fault injector can force.
_INJECTED: dict[int, tuple[str, str]] = {
    400: ("MALFORMED_REQUEST", "The request could not be understood (injected fault)"),
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
    404: ("NOT_FOUND", "The requested resource does not exist"),
    429: ("REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."),
    500: (
        "UNKNOWN_EXCEPTION",
        "An unexpected error occurred. Please include this ErrorId if you contact support: "
        "1234567890-12345 (-1234567890)",
    ),
    502: ("SERVER_UNAVAILABLE", "Bad Gateway"),
    503: ("SERVER_UNAVAILABLE", "Service Unavailable"),
    504: ("REQUEST_RUNNING_TOO_LONG", "Your request was running for too long, and has been stopped."),
}


def injected_error_shape(status: int, retry_after: float | None) -> tuple[Any, dict[str, str]]:
    """Render an injected fault as Salesforce would (``SandboxControl`` ``error_shape``)."""
    del retry_after  # the control plane adds Retry-After itself
    code, message = _INJECTED.get(status, ("UNKNOWN_EXCEPTION", "Injected fault"))
    return [{"message": message, "errorCode": code}], {}
