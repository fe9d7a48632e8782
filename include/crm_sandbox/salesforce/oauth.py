"""Salesforce login for the emulator: the OAuth 2.0 token endpoint and the SOAP ``login`` call.

Real clients do not start with a session id: they log in first. simple-salesforce (and through it
Airflow's ``SalesforceHook``) posts to ``/services/oauth2/token`` for the JWT bearer, username-
password and client-credentials flows, and to the SOAP partner API ``/services/Soap/u/NN.0`` for
username + password + security token. Serving both lets those login paths run end to end against
the sandbox, with the token they get back accepted by the REST API.

Shapes follow Salesforce's documentation (developer.salesforce.com "OAuth 2.0 Username-Password
Flow", "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration", "OAuth 2.0 Refresh Token
Flow", "OAuth 2.0 Client Credentials Flow", "OAuth 2.0 Web Server Flow"; help.salesforce.com
"OAuth 2.0 Authorization Errors", remoteaccess_oauth_flow_errors.htm):

* success (200): ``access_token``, ``instance_url``, ``id`` (identity URL
  ``/id/<org id>/<user id>``), ``token_type`` ``Bearer``; the web server flow
  (``authorization_code``, each code once) also a ``refresh_token``; all but the JWT flow also
  send ``issued_at`` (ms since the epoch, as a string) and ``signature`` (Base64 HMAC-SHA256 of
  ``id + issued_at`` keyed by the client secret); all but the password flow send ``scope``;
* errors (400): ``{"error", "error_description"}`` with ``unsupported_grant_type`` /
  ``grant type not supported``, ``invalid_client_id`` / ``client identifier invalid``,
  ``invalid_grant`` / ``authentication failure`` (also ``invalid assertion``, ``expired access/
  refresh token``, ``Audience validation failed`` for the JWT flow), ``inactive_user``;
* SOAP ``loginResponse`` with ``serverUrl`` and ``sessionId``; a bad login is a SOAP fault
  (HTTP 500) with ``sf:exceptionCode`` ``INVALID_LOGIN``.

Credentials: any are accepted (a login names the scenario's first active user when its username is
unknown), unless the scenario lists ``"tokens"``: the org is then locked down, a login must name an
active ``User`` of the scenario by ``Username``, and a refresh token must be one of ``"tokens"``
or one the web server flow issued.
Passwords and JWT signatures are not verified (the sandbox has no connected app certificate);
the JWT's claims are (``iss``, ``sub``, ``aud``, ``exp``). Issued access tokens are accepted by
the REST API of the same emulator, locked down or not, until the server stops.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_sandbox.salesforce.ids import make_id
from crm_sandbox.salesforce.store import Record, Store

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ORG_ID = make_id("00D", 1)
_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
_PARTNER = "urn:partner.soap.sforce.com"
_BAD_LOGIN = "Invalid username, password, security token; or user locked out."


class OAuthError(Exception):
    """A refused token request, answered as ``{"error", "error_description"}`` (400)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description

    def response(self) -> Response:
        body = {"error": self.error, "error_description": self.description}
        return Response(json.dumps(body), status_code=400, media_type="application/json;charset=UTF-8")


@dataclass
class Logins:
    """Who may log in to one emulated org, and the access tokens it has issued."""

    store: Store
    locked: bool
    refresh_tokens: frozenset[str] = frozenset()
    issued: dict[str, str] = field(default_factory=dict)  # access token -> user id
    refreshable: set[str] = field(default_factory=set)  # refresh tokens issued by the web server flow
    used_codes: set[str] = field(default_factory=set)

    def accepts(self, token: str) -> bool:
        return token in self.issued

    # -- users -------------------------------------------------------------------------------
    def user(self, username: str | None) -> Record:
        """The User a login names; unknown names fall back to the session user unless locked."""
        wanted = (username or "").strip().casefold()
        for rec in self.store.tables["User"].records.values():
            if str(rec.get("Username") or "").casefold() == wanted and wanted:
                if not rec.get("IsActive"):
                    raise OAuthError("inactive_user", "user is inactive")
                return rec
        if self.locked or not wanted:
            raise OAuthError("invalid_grant", "authentication failure")
        return self.store.tables["User"].records[self.store.current_user_id]

    def issue(self, user: Record) -> str:
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        self.issued[token] = str(user["Id"])
        return token

    # -- grants ------------------------------------------------------------------------------
    def grant(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> tuple[Record, str, str]:
        """The user a token request logs in, its client secret and the flow's name."""
        grant_type = form.get("grant_type", "")
        client_id = form.get("client_id") or (basic[0] if basic else "")
        secret = form.get("client_secret") or (basic[1] if basic else "")
        if grant_type == JWT_BEARER:
            return self._jwt(form.get("assertion", "")), secret, "jwt"
        if grant_type not in ("password", "refresh_token", "client_credentials", "authorization_code"):
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        if not client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if grant_type == "password":
            if not form.get("password"):
                raise OAuthError("invalid_grant", "authentication failure")
            return self.user(form.get("username")), secret, grant_type
        if grant_type == "authorization_code":  # the web server flow; a code works once
            code = form.get("code", "")
            if not code or code in self.used_codes:
                raise OAuthError("invalid_grant", "invalid authorization code")
            if not form.get("redirect_uri"):
                raise OAuthError("redirect_uri_mismatch", "redirect_uri must match configuration")
            self.used_codes.add(code)
            return self.session_user(), secret, grant_type
        if grant_type == "refresh_token":
            token = form.get("refresh_token", "")
            known = token in self.refresh_tokens or token in self.refreshable
            if not token or (self.locked and not known):
                raise OAuthError("invalid_grant", "expired access/refresh token")
            return self.session_user(), secret, grant_type
        if not secret:  # client credentials: the connected app's run-as user
            raise OAuthError("invalid_client", "invalid client credentials")
        return self.session_user(), secret, grant_type

    def session_user(self) -> Record:
        """The user a refresh token or a client-credentials app runs as: the session user."""
        return self.store.tables["User"].records[self.store.current_user_id]

    def _jwt(self, assertion: str) -> Record:
        claims = _jwt_claims(assertion)
        if not claims.get("iss"):
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if str(claims.get("aud", "")).rstrip("/") not in _AUDIENCES:
            raise OAuthError("invalid_grant", "Audience validation failed")
        try:
            expires = float(claims.get("exp", 0))
        except (TypeError, ValueError):
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if expires < time.time():
            raise OAuthError("invalid_grant", "expired authorization code")
        return self.user(str(claims.get("sub") or ""))


def _jwt_claims(assertion: str) -> dict[str, Any]:
    """The claims of a compact JWS (the signature is not verified: no certificate is known)."""
    parts = assertion.split(".")
    if len(parts) != 3:
        raise OAuthError("invalid_grant", "invalid assertion")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, binascii.Error):
        raise OAuthError("invalid_grant", "invalid assertion") from None
    if not isinstance(claims, dict):
        raise OAuthError("invalid_grant", "invalid assertion")
    return claims


def _basic_auth(request: Request) -> tuple[str, str] | None:
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, secret = base64.b64decode(value.strip()).decode().partition(":")
    except (ValueError, binascii.Error):
        return None
    return user, secret


class LoginRoutes:
    """The token endpoint, the identity URL and the SOAP login of one emulated org."""

    def __init__(self, logins: Logins) -> None:
        self.logins = logins

    async def token(self, request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        try:
            user, secret, flow = self.logins.grant(form, _basic_auth(request))
        except OAuthError as exc:
            return exc.response()
        base = f"{request.url.scheme}://{request.url.netloc}"
        identity = f"{base}/id/{ORG_ID}/{user['Id']}"
        body: dict[str, Any] = {"access_token": self.logins.issue(user)}
        if flow == "authorization_code":
            refresh = f"5Aep8{secrets.token_urlsafe(40)}"
            self.logins.refreshable.add(refresh)
            body["refresh_token"] = refresh
        if flow in ("jwt", "refresh_token", "client_credentials", "authorization_code"):
            body["scope"] = "api refresh_token" if flow == "authorization_code" else "api"
        body.update({"instance_url": base, "id": identity, "token_type": "Bearer"})
        if flow != "jwt":
            issued_at = str(int(time.time() * 1000))
            digest = hmac.new(secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
            body.update({"issued_at": issued_at, "signature": base64.b64encode(digest).decode()})
        return Response(json.dumps(body), media_type="application/json;charset=UTF-8")

    async def revoke(self, request: Request) -> Response:
        """``POST /services/oauth2/revoke``: the token stops working; unknown tokens are 400."""
        raw = (await request.body()).decode("utf-8", "replace")
        token = (parse_qs(raw).get("token") or [request.query_params.get("token", "")])[0]
        if self.logins.issued.pop(token, None) is None:
            return OAuthError("unsupported_token_type", "this token type is not supported").response()
        return Response(status_code=200)

    async def identity(self, request: Request) -> Response:
        """The identity URL a token response's ``id`` names (GET with the access token)."""
        token = (request.headers.get("authorization") or "").partition(" ")[2].strip()
        user_id = self.logins.issued.get(token)
        if user_id is None or user_id != request.path_params["user_id"]:
            return Response("Bad_OAuth_Token", status_code=403, media_type="text/plain")
        user = self.logins.store.tables["User"].records[user_id]
        base = f"{request.url.scheme}://{request.url.netloc}"
        body = {
            "id": f"{base}/id/{ORG_ID}/{user_id}",
            "user_id": user_id,
            "organization_id": ORG_ID,
            "username": user.get("Username"),
            "email": user.get("Email"),
            "display_name": " ".join(str(p) for p in (user.get("FirstName"), user.get("LastName")) if p),
            "active": bool(user.get("IsActive")),
            "urls": {"rest": f"{base}/services/data/v{{version}}/"},
        }
        return Response(json.dumps(body), media_type="application/json;charset=UTF-8")

    async def soap_login(self, request: Request) -> Response:
        """The partner API ``login`` call (simple-salesforce's username/password/token path)."""
        version = str(request.path_params["version"])
        try:
            root = ET.fromstring(await request.body())  # noqa: S314 - local emulator, client-built XML
        except ET.ParseError:
            return _soap_fault("INVALID_LOGIN", _BAD_LOGIN)
        username = root.findtext(f".//{{{_PARTNER}}}username")
        password = root.findtext(f".//{{{_PARTNER}}}password")
        try:
            if not password:
                raise OAuthError("invalid_grant", "authentication failure")
            user = self.logins.user(username)
        except OAuthError:
            return _soap_fault("INVALID_LOGIN", _BAD_LOGIN)
        base = f"{request.url.scheme}://{request.url.netloc}"
        session = self.logins.issue(user)
        email, name = str(user.get("Email") or ""), str(user.get("Username") or "")
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" '
            f'xmlns="{_PARTNER}"><soapenv:Body><loginResponse><result>'
            f"<metadataServerUrl>{base}/services/Soap/m/{version}/{ORG_ID}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired><sandbox>true</sandbox>"
            f"<serverUrl>{base}/services/Soap/u/{version}/{ORG_ID}</serverUrl>"
            f"<sessionId>{session}</sessionId><userId>{user['Id']}</userId>"
            f"<userInfo><organizationId>{ORG_ID}</organizationId><userEmail>{escape(email)}"
            f"</userEmail><userId>{user['Id']}</userId><userName>{escape(name)}</userName>"
            "</userInfo></result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(body, media_type="text/xml; charset=utf-8")

    def routes(self) -> list[Route]:
        return [
            Route("/services/oauth2/token", self.token, methods=["POST"]),
            Route("/services/oauth2/revoke", self.revoke, methods=["POST"]),
            Route("/id/{org_id}/{user_id}", self.identity, methods=["GET"]),
            Route("/services/Soap/u/{version}", self.soap_login, methods=["POST"]),
        ]


def _soap_fault(code: str, message: str) -> Response:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{_SOAP_ENV}" '
        'xmlns:sf="urn:fault.partner.soap.sforce.com" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
        f"<faultcode>sf:{code}</faultcode><faultstring>{code}: {message}</faultstring><detail>"
        f'<sf:LoginFault xsi:type="sf:LoginFault"><sf:exceptionCode>{code}</sf:exceptionCode>'
        f"<sf:exceptionMessage>{message}</sf:exceptionMessage></sf:LoginFault></detail>"
        "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
    return Response(body, status_code=500, media_type="text/xml; charset=utf-8")
