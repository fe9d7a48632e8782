"""HubSpot's per-token rate limits: a 10-second rolling window, search per second, and daily.

A private-app token gets ``requests_per_10s`` calls in any rolling ten seconds (190 on
Professional/Enterprise portals), search endpoints ``search_per_second`` calls per second, and a
daily quota. Over a limit HubSpot answers 429 with ``policyName`` ``TEN_SECONDLY_ROLLING``,
``SECONDLY`` or ``DAILY``. Every other response carries ``X-HubSpot-RateLimit-*`` headers so
clients can pace themselves; search responses carry none, as HubSpot's do not.

The clock is injectable so tests can move time instead of sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class _TokenState:
    window: deque[float] = field(default_factory=deque)
    search_window: deque[float] = field(default_factory=deque)
    day: int = -1
    day_count: int = 0


@dataclass(frozen=True)
class Decision:
    """Whether a request may proceed, the policy that refused it, and headers to send."""

    allowed: bool
    policy: str | None
    headers: dict[str, str]


class RateLimiter:
    """Rolling-window counters per bearer token."""

    def __init__(
        self,
        *,
        requests_per_10s: int,
        search_per_second: int,
        daily_limit: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.requests_per_10s = requests_per_10s
        self.search_per_second = search_per_second
        self.daily_limit = daily_limit
        self.clock = clock
        self._tokens: dict[str, _TokenState] = {}

    def reset(self) -> None:
        self._tokens.clear()

    def check(self, token: str, *, search: bool) -> Decision:
        """Count one request of ``token``; refused requests are not counted against the window."""
        now = self.clock()
        state = self._tokens.setdefault(token, _TokenState())
        day = int(now // 86_400)
        if day != state.day:
            state.day, state.day_count = day, 0
        window = state.window
        while window and window[0] <= now - 10.0:
            window.popleft()
        if state.day_count >= self.daily_limit:
            return Decision(False, "DAILY", self._headers(state))
        if len(window) >= self.requests_per_10s:
            return Decision(False, "TEN_SECONDLY_ROLLING", self._headers(state))
        if search:
            search_window = state.search_window
            while search_window and search_window[0] <= now - 1.0:
                search_window.popleft()
            if len(search_window) >= self.search_per_second:
                return Decision(False, "SECONDLY", {})
            search_window.append(now)
        window.append(now)
        state.day_count += 1
        return Decision(True, None, {} if search else self._headers(state))

    def _headers(self, state: _TokenState) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.daily_limit - state.day_count)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.requests_per_10s),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.requests_per_10s - len(state.window))),
        }
