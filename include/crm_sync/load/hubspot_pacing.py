"""Client-side pacing of HubSpot writes: stay under the rolling 10-second window, and use all of it.

HubSpot counts every request of a private-app token in a rolling window (``X-HubSpot-RateLimit-Max``
requests per ``X-HubSpot-RateLimit-Interval-Milliseconds``: 100 or 190 per 10 s depending on the
portal's tier) and answers 429 beyond it. A long load that only reacts to 429s spends its time
backing off; one that sends a request every ``interval / max`` seconds wastes the latency of each
call. :class:`WindowPacer` instead admits a request whenever the window has room, counting what
the server can possibly have seen: requests in flight, and finished requests by their completion
time (the server received them no later than that). So the window is never overrun, and over a
long load the writer sends within one request of the limit.

The limit is learnt from the response headers, so the same code paces a 100- and a 190-request
portal; until the first response it assumes ``initial_max``. Parallel callers (one per batch
thread) share one pacer; :meth:`pause_until` holds everyone back after a 429.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

#: What a private app is allowed on the lowest tier (requests per 10 s), until headers say more.
DEFAULT_MAX = 100
DEFAULT_INTERVAL = 10.0


class WindowPacer:
    """Thread-safe admission into HubSpot's rolling request window (see module docstring)."""

    def __init__(
        self,
        *,
        initial_max: int = DEFAULT_MAX,
        interval: float = DEFAULT_INTERVAL,
        max_parallel: int = 4,
        margin: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """``clock``/``sleep`` let tests move time instead of waiting: with ``sleep`` given, timed
        waits call it (outside the lock) instead of waiting on the condition."""
        self.max_calls = initial_max
        self.interval = interval
        self.max_parallel = max(1, max_parallel)
        #: Requests left unused in every window, for the occasional call made outside this pacer.
        self.margin = max(0, margin)
        self.clock = clock
        self.sleep = sleep
        self._cond = threading.Condition()
        self._done: deque[float] = deque()
        self._in_flight = 0
        self._paused_until = 0.0
        self.waited_seconds = 0.0
        #: Requests of the current window sent by others on the same token (from ``Remaining``).
        self.foreign = 0

    @property
    def limit(self) -> int:
        """Requests this pacer lets into one window: the portal's, less the margin and what
        others using the same token (another load task, an extraction) were last seen to use."""
        return max(1, self.max_calls - self.margin - self.foreign)

    def acquire(self) -> None:
        """Block until one more request fits in the window (and in the parallelism limit)."""
        with self._cond:
            started = self.clock()
            while True:
                now = self.clock()
                wait = self._wait_needed(now)
                if wait is None:
                    self._in_flight += 1
                    self.waited_seconds += now - started
                    return
                if wait > 0 and self.sleep is not None:
                    self._cond.release()
                    try:
                        self.sleep(wait)
                    finally:
                        self._cond.acquire()
                else:
                    self._cond.wait(timeout=wait if wait > 0 else None)

    def _wait_needed(self, now: float) -> float | None:
        """``None`` when a request may start now, else seconds to wait (0: until notified)."""
        if now < self._paused_until:
            return self._paused_until - now
        self._prune(now)
        done = self._done
        if self._in_flight >= self.max_parallel:
            return 0.0
        if self._in_flight + len(done) < self.limit:
            return None
        if done:
            return max(done[0] + self.interval - now, 0.001)
        return 0.0  # the window is full of requests in flight: wait for one to finish

    def _prune(self, now: float) -> None:
        done = self._done
        while done and done[0] <= now - self.interval:
            done.popleft()

    def release(self, headers: Mapping[str, str] | None, *, refused: bool = False) -> None:
        """Record a finished request and learn the window from its rate-limit headers.

        ``refused``: the answer was a 429, whose wait the caller decides (``Retry-After``)."""
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            now = self.clock()
            self._done.append(now)
            self._prune(now)
            if headers:
                self._learn(headers, refused)
            self._cond.notify_all()

    def _learn(self, headers: Mapping[str, str], refused: bool) -> None:
        maximum = _header(headers, "X-HubSpot-RateLimit-Max")
        interval = _header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        if maximum is not None and maximum > 0:
            self.max_calls = maximum
        if interval is not None and interval > 0:
            self.interval = interval / 1000.0
        remaining = _header(headers, "X-HubSpot-RateLimit-Remaining")
        if remaining is None or refused:
            return
        # The portal counted max - remaining requests in its window; ours are at most the ones
        # finished in our window plus those in flight, so the rest were sent by someone else.
        used = self.max_calls - remaining
        self.foreign = max(0, used - len(self._done) - self._in_flight)
        if remaining == 0:
            # The window is spent by others too: hold back a tenth of it.
            self._paused_until = max(self._paused_until, self.clock() + self.interval / 10)

    def pause_until(self, deadline: float) -> None:
        """Hold every caller back until ``deadline`` (a 429 said the window is spent)."""
        with self._cond:
            self._paused_until = max(self._paused_until, deadline)
            self._cond.notify_all()


def _header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        raw = headers.get(name.lower())
    if raw is None:
        return None
    text = str(raw).strip()
    return int(text) if text.isdigit() else None
