"""Sandbox-only control plane shared by both emulators: request stats, injected faults, reset.

These endpoints live under ``/__sandbox/`` so they never collide with a real API path. They exist
so tests and benchmarks can count API calls (e.g. "a resumed backfill did not redo finished
chunks") and inject the failures a real CRM produces (429 storms, 5xx, slow responses, one bad
record in a batch) without patching the clients.

The control is a pure ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``: it adds
no per-request task and keeps emulator throughput high at millions of records.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Builds the API's own error for an injected status: ``(status, retry_after) -> (body, headers)``.
ErrorShape = Callable[[int, float | None], tuple[Any, dict[str, str]]]

CONTROL_PREFIX = "/__sandbox/"


@dataclass
class FaultRule:
    """One injected fault; it applies to the next ``count`` requests that match it."""

    path: re.Pattern[str]
    method: str | None = None
    status: int | None = None
    retry_after: float | None = None
    delay: float | None = None
    record_error: str | None = None
    count: int = 1

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FaultRule:
        """Parse one rule of ``POST /__sandbox/faults``; unknown keys are an error, not ignored."""
        allowed = {"method", "path", "status", "retry_after", "delay", "record_error", "count"}
        unknown = set(raw) - allowed
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        status = raw.get("status")
        if status is not None and int(status) not in (400, 401, 403, 404, 429, 500, 502, 503, 504):
            raise ValueError(f"unsupported fault status {status}")
        return cls(
            path=re.compile(str(raw.get("path", ".*"))),
            method=str(raw["method"]).upper() if raw.get("method") else None,
            status=int(status) if status is not None else None,
            retry_after=float(raw["retry_after"]) if raw.get("retry_after") is not None else None,
            delay=float(raw["delay"]) if raw.get("delay") is not None else None,
            record_error=str(raw["record_error"]) if raw.get("record_error") else None,
            count=int(raw.get("count", 1)),
        )

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and (self.method in (None, method)) and bool(self.path.search(path))


def record_error(scope_or_request: Any) -> str | None:
    """The error code an injected ``record_error`` fault asks this request to give one record.

    Batch endpoints call this and fail exactly one record of the batch with that code, so tests
    see a real partial failure (HubSpot 207, Salesforce per-record results).
    """
    scope = getattr(scope_or_request, "scope", scope_or_request)
    state = scope.get("state") or {}
    value = state.get("record_error")
    return str(value) if value else None


class SandboxControl:
    """Counts requests, applies faults and exposes ``/__sandbox/{stats,faults,reset}``.

    Wrap an emulator's ASGI app with :meth:`wrap`. ``error_shape`` renders an injected status in
    the emulated API's own error format, so the real client raises its real exception.
    ``on_reset`` restores the emulator's store to its seeded scenario.
    """

    def __init__(self, *, error_shape: ErrorShape, on_reset: Callable[[], None]) -> None:
        self._error_shape = error_shape
        self._on_reset = on_reset
        self._lock = threading.Lock()
        self._faults: list[FaultRule] = []
        self._by_route: Counter[tuple[str, str]] = Counter()
        self._by_status: Counter[int] = Counter()
        self._faults_applied = 0

    # -- state -------------------------------------------------------------------------------
    def add_faults(self, rules: list[dict[str, Any]]) -> int:
        parsed = [FaultRule.from_json(r) for r in rules]
        with self._lock:
            self._faults.extend(parsed)
            return len(self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Restore the seeded store and forget faults and stats."""
        with self._lock:
            self._faults.clear()
            self._by_route.clear()
            self._by_status.clear()
            self._faults_applied = 0
        self._on_reset()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            rows = [{"method": m, "path": p, "count": c} for (m, p), c in sorted(self._by_route.items())]
            by_method: Counter[str] = Counter()
            for (m, _), c in self._by_route.items():
                by_method[m] += c
            return {
                "total": sum(self._by_route.values()),
                "by_method": dict(by_method),
                "by_status": {str(k): v for k, v in sorted(self._by_status.items())},
                "faults_applied": self._faults_applied,
                "faults_pending": sum(f.count for f in self._faults),
                "requests": rows,
            }

    def _take_fault(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._faults:
                if rule.matches(method, path):
                    rule.count -= 1
                    self._faults_applied += 1
                    if rule.count <= 0:
                        self._faults.remove(rule)
                    return rule
        return None

    # -- ASGI --------------------------------------------------------------------------------
    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            path: str = scope["path"]
            method: str = scope["method"]
            if path.startswith(CONTROL_PREFIX):
                await self._control(scope, receive, send)
                return
            status_seen = 500

            async def counting_send(message: Message) -> None:
                nonlocal status_seen
                if message["type"] == "http.response.start":
                    status_seen = int(message["status"])
                await send(message)

            try:
                fault = self._take_fault(method, path)
                if fault is not None:
                    if fault.delay:
                        await asyncio.sleep(fault.delay)
                    if fault.status is not None:
                        body, headers = self._error_shape(fault.status, fault.retry_after)
                        if fault.retry_after is not None:
                            headers = {"Retry-After": _fmt_seconds(fault.retry_after), **headers}
                        await _send_json(counting_send, fault.status, body, headers)
                        return
                    if fault.record_error:
                        scope.setdefault("state", {})["record_error"] = fault.record_error
                await app(scope, receive, counting_send)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None) or path
                with self._lock:
                    self._by_route[(method, template)] += 1
                    self._by_status[status_seen] += 1

        return middleware

    async def _control(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        name = path[len(CONTROL_PREFIX) :].strip("/")
        try:
            if name == "stats" and method == "GET":
                await _send_json(send, 200, self.stats())
            elif name == "faults" and method == "POST":
                payload = json.loads(await _read_body(receive) or b"[]")
                if isinstance(payload, dict):
                    payload = [payload]
                pending = self.add_faults(payload)
                await _send_json(send, 200, {"pending_rules": pending})
            elif name == "faults" and method == "DELETE":
                self.clear_faults()
                await _send_json(send, 200, {"pending_rules": 0})
            elif name == "reset" and method == "POST":
                self.reset()
                await _send_json(send, 200, {"reset": True})
            else:
                await _send_json(send, 404, {"error": f"no sandbox control {method} {path}"})
        except (ValueError, TypeError, re.error) as exc:
            await _send_json(send, 400, {"error": str(exc)})


def _fmt_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": data})
