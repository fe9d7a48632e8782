"""HubSpot's error bodies, so the real client raises its real ``ApiException`` with real content.

HubSpot answers errors with ``{"status": "error", "message", "correlationId", "category", ...}``
(optionally ``subCategory``, ``context`` and ``errors``); rate limits use a different body with
``errorType``/``policyName``; batch endpoints list per-input errors as "standard errors"
(``status``, ``category``, ``message``, ``context``) inside a 207 response. Code that parses
HubSpot errors (e.g. the existing id in "Contact already exists. Existing ID: N") therefore sees
exactly what it will see in production.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

#: HubSpot's message for a missing or unknown bearer token.
AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)

#: The portal id printed inside property validation messages.
PORTAL_ID = 62515


def correlation_id() -> str:
    """A fresh correlation id, as HubSpot puts in every error body."""
    return str(uuid.uuid4())


class HubSpotError(Exception):
    """An API error: raising it anywhere in a handler answers with HubSpot's error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        category: str,
        *,
        sub_category: str | None = None,
        context: dict[str, list[str]] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.sub_category = sub_category
        self.context = context
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The response body, keys in HubSpot's order."""
        out: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id(),
        }
        if self.context:
            out["context"] = self.context
        if self.errors:
            out["errors"] = self.errors
        out["category"] = self.category
        if self.sub_category:
            out["subCategory"] = self.sub_category
        return out

    def standard_error(self, context: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """The same error as one entry of a batch response's ``errors`` list."""
        out: dict[str, Any] = {"status": "error", "category": self.category, "message": self.message}
        if self.sub_category:
            out["subCategory"] = self.sub_category
        merged = {**(self.context or {}), **(context or {})}
        out["context"] = merged
        if self.errors:
            out["errors"] = self.errors
        return out


def validation_error(message: str, **kwargs: Any) -> HubSpotError:
    """A 400 ``VALIDATION_ERROR``, HubSpot's answer to a malformed request."""
    return HubSpotError(400, message, "VALIDATION_ERROR", **kwargs)


def not_found(message: str = "resource not found") -> HubSpotError:
    """A 404, HubSpot's answer to an unknown record, property, pipeline or owner."""
    return HubSpotError(404, message, "OBJECT_NOT_FOUND")


def conflict(message: str) -> HubSpotError:
    """A 409 ``CONFLICT`` (e.g. a contact with that email already exists)."""
    return HubSpotError(409, message, "CONFLICT")


class PropertyProblem(Exception):  # noqa: N818 - a problem, collected and reported, not raised alone
    """One invalid property value, as listed inside "Property values were not valid: [...]"."""

    def __init__(self, name: str, code: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.code = code
        self.message = message

    def as_result(self) -> dict[str, Any]:
        return {
            "isValid": False,
            "message": self.message,
            "error": self.code,
            "name": self.name,
            "localizedErrorMessage": self.message,
            "portalId": PORTAL_ID,
        }

    def as_detail(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code, "context": {"propertyName": [self.name]}}


def property_values_error(problems: list[PropertyProblem]) -> HubSpotError:
    """HubSpot's 400 for invalid property values: a JSON list embedded in the message, plus details.

    The message embeds the list as compact JSON exactly like HubSpot does, so callers that parse
    the failing property names out of it (a common pattern) work unchanged.
    """
    listed = json.dumps([p.as_result() for p in problems], separators=(",", ":"))
    return validation_error(
        f"Property values were not valid: {listed}",
        errors=[p.as_detail() for p in problems],
    )


def rate_limit_body(policy: str) -> dict[str, Any]:
    """The body of a 429: a different shape from other errors (``errorType``, ``policyName``)."""
    messages = {
        "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
        "SECONDLY": "You have reached your secondly limit.",
        "DAILY": "You have reached your daily limit.",
    }
    return {
        "status": "error",
        "message": messages[policy],
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": policy,
    }


_FAULT_BODIES: dict[int, tuple[str, str]] = {
    400: ("Invalid input JSON on line 1, column 1", "VALIDATION_ERROR"),
    401: (AUTH_MESSAGE, "INVALID_AUTHENTICATION"),
    403: (
        "This app hasn't been granted all required scopes to make this call. Read more about "
        "required scopes here: https://developers.hubspot.com/scopes.",
        "MISSING_SCOPES",
    ),
    404: ("resource not found", "OBJECT_NOT_FOUND"),
}


def make_error_shape(requests_per_10s: int) -> Any:
    """The ``error_shape`` given to :class:`crm_sandbox.control.SandboxControl`.

    An injected 429 looks exactly like a real ten-secondly rate limit (body and headers); 5xx
    faults carry HubSpot's ``internal error`` body; 4xx faults the usual category.
    """

    def error_shape(status: int, retry_after: float | None) -> tuple[Any, dict[str, str]]:
        del retry_after  # the control adds Retry-After itself when asked
        if status == 429:
            headers = {
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": str(requests_per_10s),
                "X-HubSpot-RateLimit-Remaining": "0",
            }
            return rate_limit_body("TEN_SECONDLY_ROLLING"), headers
        if status >= 500:
            message = "internal error" if status == 500 else "Service Unavailable"
            return {"status": "error", "message": message, "correlationId": correlation_id()}, {}
        message, category = _FAULT_BODIES.get(status, ("error", "VALIDATION_ERROR"))
        return HubSpotError(status, message, category).body(), {}

    return error_shape
