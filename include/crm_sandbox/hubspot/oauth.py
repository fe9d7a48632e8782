"""HubSpot's OAuth endpoints for public apps, beside private-app tokens.

Per HubSpot's OAuth reference (developers.hubspot.com "OAuth": "Get OAuth tokens", "Refresh an
access token", "Retrieve access token metadata", "Retrieve refresh token metadata", "Delete a
refresh token"), as the hubspot-api-client ``oauth`` APIs call them:

* ``POST /oauth/v1/token`` (form-encoded ``grant_type`` ``authorization_code`` with ``code`` and
  ``redirect_uri``, or ``refresh_token`` with ``refresh_token``; ``client_id``,
  ``client_secret``) answers ``{"token_type": "bearer", "refresh_token", "access_token",
  "expires_in": 1800}``; errors are 400 ``{"status": "BAD_AUTH_CODE" | "BAD_REFRESH_TOKEN" |
  "BAD_CLIENT_ID" | "BAD_CLIENT_SECRET" | "BAD_GRANT_TYPE", "message", "correlationId"}``
  (``BAD_GRANT_TYPE``'s wording is ours);
* ``GET /oauth/v1/access-tokens/{token}``: ``token``, ``user``, ``hub_domain``, ``scopes``,
  ``hub_id``, ``app_id``, ``expires_in``, ``user_id``, ``token_type`` ``access``;
* ``GET /oauth/v1/refresh-tokens/{token}``: ``token``, ``user``, ``hub_domain``, ``scopes``,
  ``hub_id``, ``client_id``, ``user_id``, ``token_type`` ``refresh``; ``DELETE`` revokes it (204).

An authorization code works once. Any code and refresh token is accepted unless the scenario
lists ``"tokens"``; then only listed or issued refresh tokens refresh, and the access tokens this
endpoint issues are accepted by the CRM API alongside the listed ones.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.hubspot.errors import PORTAL_ID

ACCESS_TOKEN_SECONDS = 1800
SCOPES = ["crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.companies.read",
          "crm.objects.companies.write", "crm.objects.deals.read", "crm.objects.deals.write",
          "crm.schemas.contacts.read", "crm.objects.owners.read", "oauth"]  # fmt: skip
USER = "sandbox.user@crm-sandbox.example.com"
USER_ID = 1001
APP_ID = 4242
HUB_DOMAIN = "crm-sandbox.hubspot.com"


def _error(status: str, message: str) -> Response:
    body = {"status": status, "message": message, "correlationId": str(uuid.uuid4())}
    return Response(json.dumps(body), status_code=400, media_type="application/json;charset=utf-8")


@dataclass
class AppTokens:
    """Tokens of OAuth apps: issued access tokens join ``accepted`` (the CRM API's token set)."""

    accepted: set[str] | None  # None: the portal accepts any token
    listed: frozenset[str] = frozenset()
    access: dict[str, str] = field(default_factory=dict)  # access token -> client id
    refresh: dict[str, str] = field(default_factory=dict)  # refresh token -> client id
    used_codes: set[str] = field(default_factory=set)

    @property
    def locked(self) -> bool:
        return self.accepted is not None

    def issue(self, client_id: str, refresh_token: str | None = None) -> dict[str, Any]:
        access = f"CO{secrets.token_urlsafe(32)}"
        refresh = refresh_token or str(uuid.uuid4())
        self.access[access] = client_id
        self.refresh[refresh] = client_id
        if self.accepted is not None:
            self.accepted.add(access)
        return {"token_type": "bearer", "refresh_token": refresh, "access_token": access,
                "expires_in": ACCESS_TOKEN_SECONDS}  # fmt: skip

    def knows_refresh(self, token: str) -> bool:
        return token in self.refresh or token in self.listed or not self.locked

    def knows_access(self, token: str) -> bool:
        return token in self.access or token in self.listed or not self.locked


class OAuthRoutes:
    """``/oauth/v1/token`` and the token metadata endpoints."""

    def __init__(self, tokens: AppTokens) -> None:
        self.tokens = tokens

    async def token(self, request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        client_id = form.get("client_id", "")
        if not client_id:
            return _error("BAD_CLIENT_ID", "missing or unknown client id")
        if not form.get("client_secret"):
            return _error("BAD_CLIENT_SECRET", "missing or invalid client secret")
        grant = form.get("grant_type", "")
        if grant == "authorization_code":
            code = form.get("code", "")
            if not code or code in self.tokens.used_codes:
                return _error("BAD_AUTH_CODE", "missing or unknown auth code")
            if not form.get("redirect_uri"):
                return _error("BAD_REDIRECT_URI", "redirect_uri does not match the app's redirect uri")
            self.tokens.used_codes.add(code)
            return _json(self.tokens.issue(client_id))
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if not refresh or not self.tokens.knows_refresh(refresh):
                return _error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
            return _json(self.tokens.issue(client_id, refresh))
        return _error("BAD_GRANT_TYPE", "grant_type must be authorization_code or refresh_token")

    async def access_token(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        if not self.tokens.knows_access(token):
            return _not_found(token)
        body = {
            "token": token,
            "user": USER,
            "hub_domain": HUB_DOMAIN,
            "scopes": SCOPES,
            "scope_to_scope_group_pks": [],
            "trial_scopes": [],
            "trial_scope_to_scope_group_pks": [],
            "hub_id": PORTAL_ID,
            "app_id": APP_ID,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "user_id": USER_ID,
            "token_type": "access",
        }
        return _json(body)

    async def refresh_token(self, request: Request) -> Response:
        token = str(request.path_params["token"])
        if not self.tokens.knows_refresh(token):
            return _not_found(token)
        if request.method == "DELETE":
            self.tokens.refresh.pop(token, None)
            return Response(status_code=204)
        body = {
            "token": token,
            "user": USER,
            "hub_domain": HUB_DOMAIN,
            "scopes": SCOPES,
            "hub_id": PORTAL_ID,
            "client_id": self.tokens.refresh.get(token, "sandbox-client"),
            "user_id": USER_ID,
            "token_type": "refresh",
        }
        return _json(body)

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/v1/token", self.token, methods=["POST"]),
            Route("/oauth/v1/access-tokens/{token}", self.access_token, methods=["GET"]),
            Route("/oauth/v1/refresh-tokens/{token}", self.refresh_token, methods=["GET", "DELETE"]),
        ]


def is_oauth_path(path: str) -> bool:
    """The OAuth endpoints authenticate with app credentials, not a bearer token."""
    return path.startswith("/oauth/")


def _not_found(token: str) -> Response:
    body = {
        "status": "error",
        "message": f"Token {token[:6]}... not found",
        "correlationId": str(uuid.uuid4()),
        "category": "OBJECT_NOT_FOUND",
    }
    return Response(json.dumps(body), status_code=404, media_type="application/json;charset=utf-8")


def _json(body: Any) -> Response:
    return Response(json.dumps(body), media_type="application/json;charset=utf-8")
