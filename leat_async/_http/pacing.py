"""Rate state: the client-side cap, the server's reported budget, and the pause after a 429.

All of it is plain state driven by an injected clock (seconds, monotonic), so every decision is
tested without sleeping. The dispatcher asks :meth:`LocalRateState.admit` before each send and
tells it what came back; :class:`RateState` is the seam where a shared home (Redis) plugs in.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import attrs

from .._api.answers import RateInfo

__all__ = ["LOG_KEEP", "LocalRateState", "RateState", "SendLog", "ServerBudget", "SlidingWindow"]

#: Sent a little after a computed window end, so the server's window has surely rolled over.
RESET_MARGIN = 0.03
#: A 429 this soon after a whole second of the server's window does not teach its length.
AMBIGUOUS = 0.1
#: How often a blocked sender looks again while a lone probe is out (first answer, window end).
PROBE_POLL = 0.02


@attrs.define
class SlidingWindow:
    """Never more than ``limit`` sends in any ``period`` seconds (a log of recent send times).

    Unlike a token bucket this also holds right after idle: a full burst followed by a full
    refill can never put ``2 * limit`` sends into one window.
    """

    limit: int = attrs.field(validator=attrs.validators.ge(1))
    period: float = 1.0
    _sent: deque[float] = attrs.field(factory=deque, init=False)

    def wait(self, now: float) -> float:
        """Seconds until one more send fits (0 when it fits now)."""
        while self._sent and self._sent[0] <= now - self.period:
            self._sent.popleft()
        if len(self._sent) < self.limit:
            return 0.0
        return self._sent[0] + self.period - now

    def record(self, now: float) -> None:
        self._sent.append(now)

    def forget(self, at: float) -> None:
        """Give back a slot taken at ``at`` by a send that never happened."""
        with contextlib.suppress(ValueError):
            self._sent.remove(at)


#: Seconds a send is remembered, to count it against answers (as in Redis).
LOG_KEEP = 60.0


class SendLog:
    """This state's recent sends, and those still waiting for their answer (times, ascending)."""

    def __init__(self) -> None:
        self._log: deque[float] = deque()
        self._flight: list[float] = []

    def add(self, at: float) -> None:
        self._log.append(at)
        self._flight.append(at)

    def forget(self, at: float) -> bool:
        """A send that never happened; ``True`` when it was here."""
        self._land(at)
        try:
            self._log.remove(at)
        except ValueError:
            return False
        return True

    def _land(self, at: float) -> None:
        """The send at ``at`` is no longer in flight."""
        try:  # noqa: SIM105 - runs per answer: a plain try costs less than contextlib.suppress
            self._flight.remove(at)
        except ValueError:
            pass

    def settle(self, now: float, inflight: int) -> None:
        """Before an admission (as the Lua script does): forget sends older than ``LOG_KEEP``,
        and, beyond the ``inflight`` requests the client still waits for, sends whose answer
        never came (a timeout, a dropped connection, a cancelled read): they are done."""
        log = self._log
        while log and log[0] < now - LOG_KEEP:
            log.popleft()
        if len(self._flight) > inflight:
            del self._flight[: len(self._flight) - inflight]

    def answered(self, sent_at: float, now: float) -> int:
        """The send at ``sent_at`` was answered: how many sends its count cannot include
        (every one made after it, and every earlier one still in flight)."""
        self._land(sent_at)
        log = self._log
        while log and log[0] < now - LOG_KEEP:
            log.popleft()
        while self._flight and self._flight[0] < now - LOG_KEEP:
            self._flight.pop(0)
        later = 0
        for at in reversed(log):
            if at <= sent_at:
                break
            later += 1
        return later + bisect.bisect_left(self._flight, sent_at)


def _learn_window(bound: float) -> float:
    """Laravel windows last whole seconds; ``bound`` is an upper estimate within one second."""
    whole = math.floor(bound + 0.05)
    return float(whole) if whole >= 1 else bound


@attrs.define
class ServerBudget:
    """What the server's ``X-RateLimit-*`` headers and 429s tell about its window.

    ``tokens`` estimates the requests left in the current window: the last reported remaining,
    less the requests sent since. When they are spent the client waits for the window's end if it
    knows it; otherwise it lets a single probe through, whose 429 (``Retry-After``) tells it.
    Until the first answer arrives, one request at a time goes: its headers tell the budget
    before a burst could overrun it.
    """

    limit: int | None = None
    tokens: float | None = None
    window: float | None = None  # learned length of the server's window
    window_start: float | None = None
    reset_at: float | None = None
    _last_remaining: int | None = None
    _answered: bool = False

    def wait(self, now: float, inflight: int) -> float:
        if self.reset_at is not None and now >= self.reset_at:
            self.reset_at = None
            self.tokens = float(self.limit) if self.limit is not None else None
            self._last_remaining = None
        if not self._answered:
            return 0.0 if inflight == 0 else PROBE_POLL
        if self.tokens is None or self.tokens >= 1:
            return 0.0
        if self.reset_at is not None:
            return self.reset_at - now
        return 0.0 if inflight == 0 else PROBE_POLL

    def on_send(self) -> None:
        if self.tokens is not None:
            self.tokens -= 1

    def on_answer(self, info: RateInfo, *, sent_at: float, now: float, others: int) -> None:
        """``others``: the requests this answer's count cannot include (sent after it, or
        still in flight). The same rule runs in Redis (``_redis_lua.ANSWER``).

        A remaining count that rose is a fresh window only if it could be one; otherwise it is
        older news than the last answer (answers cross on the way back) and may only lower
        the estimate, never raise it.
        """
        self._answered = True
        if info.limit is not None and info.limit > 0:
            self.limit = info.limit
        remaining = info.remaining
        if remaining is None or self.limit is None:
            return
        last = self._last_remaining
        rose = last is not None and remaining > last
        in_known_window = self.reset_at is not None and now < self.reset_at
        if (last is None or rose) and remaining >= self.limit - 1 - others and not in_known_window:
            # the first answers of a fresh window: it opened when this request reached the server
            self.window_start = (sent_at + now) / 2
            if self.window is not None:
                self.reset_at = self.window_start + self.window + RESET_MARGIN
            rose = False
        if rose:
            known = self.tokens if self.tokens is not None else math.inf
            self.tokens = min(known, float(remaining - others))
        else:
            self._last_remaining = remaining
            self.tokens = float(remaining - others)

    def on_refused(self, wait: float, now: float) -> None:
        """A 429 asking for ``wait`` seconds: the window ends then; learn its length.

        Laravel rounds ``Retry-After`` up to whole seconds, so a 429 that lands just after the
        1st, 2nd, ... second of the window tells nothing: our clock runs a few ms ahead of the
        server's view of the window, which may not have rolled over yet. Such a 429 is not
        learned from. Otherwise the latest lesson wins.
        """
        self.tokens = 0.0
        self._last_remaining = 0
        self.reset_at = now + wait + RESET_MARGIN
        if self.window_start is None or now <= self.window_start:
            return
        elapsed = now - self.window_start
        if wait == int(wait) and elapsed >= 1.0 and elapsed % 1.0 < AMBIGUOUS:
            return
        self.window = _learn_window(elapsed + wait)


@runtime_checkable
class RateState(Protocol):
    """Where a client keeps its pacing. In-process by default; shareable (Redis) by design.

    ``admit`` returns ``(wait, now)``: with ``wait == 0`` one send is admitted and counted at
    ``now``; otherwise nothing changed and the caller asks again after ``wait`` seconds. Times are
    the state's own clock. ``unsend(at)`` gives back the send admitted at ``at`` (it never left,
    or its admission went stale before it could). ``on_answer`` hands over what an answer's
    headers said (a :class:`~leat_async.RateInfo`), with the send's stamp and the client's other
    requests in flight; ``pause(seconds)`` holds every request after a 429 or maintenance 503.
    ``bind`` is called once by the client with a hash of its token and base URL, before any
    other call: a shared state keys its data by it. ``aclose`` is called when the client closes.
    """

    def bind(self, namespace: str) -> None: ...

    async def aclose(self) -> None: ...

    async def admit(self, *, rate_limit: int | None, inflight: int) -> tuple[float, float]: ...

    async def unsend(self, at: float) -> None: ...

    async def on_answer(self, info: RateInfo, *, sent_at: float, others: int) -> None: ...

    async def pause(self, seconds: float) -> None: ...


@attrs.define
class LocalRateState:
    """The in-process :class:`RateState`; its sync twins (``*_sync``) are for unit tests."""

    clock: Callable[[], float] = time.monotonic
    budget: ServerBudget = attrs.field(factory=ServerBudget)
    #: the cap holds over ``1 + margin`` seconds, so jitter on the way cannot squeeze one
    #: second's worth of sends into less than a second at the server
    margin: float = attrs.field(default=0.05, validator=attrs.validators.ge(0))
    _window: SlidingWindow | None = attrs.field(default=None, init=False)
    _paused_until: float = attrs.field(default=0.0, init=False)
    _sends: SendLog = attrs.field(factory=lambda: SendLog(), init=False)

    def admit_sync(self, *, rate_limit: int | None, inflight: int) -> tuple[float, float]:
        now = self.clock()
        self._sends.settle(now, inflight)
        wait = max(self._paused_until - now, self.budget.wait(now, inflight))
        if rate_limit is not None:
            if self._window is None or self._window.limit != rate_limit:
                self._window = SlidingWindow(rate_limit, period=1.0 + self.margin)
            wait = max(wait, self._window.wait(now))
        if wait > 0:
            return wait, now
        if self._window is not None and rate_limit is not None:
            self._window.record(now)
        self._sends.add(now)
        self.budget.on_send()
        return 0.0, now

    def pause_sync(self, seconds: float) -> None:
        now = self.clock()
        self._paused_until = max(self._paused_until, now + seconds)
        self.budget.on_refused(seconds, now)

    def bind(self, namespace: str) -> None:
        """Nothing to do: this state lives in one process."""

    async def aclose(self) -> None:
        """Nothing to release."""

    async def admit(self, *, rate_limit: int | None, inflight: int) -> tuple[float, float]:
        return self.admit_sync(rate_limit=rate_limit, inflight=inflight)

    async def unsend(self, at: float) -> None:
        if self._window is not None:
            self._window.forget(at)
        if self._sends.forget(at) and self.budget.tokens is not None:
            self.budget.tokens += 1

    async def on_answer(self, info: RateInfo, *, sent_at: float, others: int) -> None:
        now = self.clock()
        others = max(others, self._sends.answered(sent_at, now))
        self.budget.on_answer(info, sent_at=sent_at, now=now, others=others)

    async def pause(self, seconds: float) -> None:
        self.pause_sync(seconds)

    def pause_left(self) -> float:
        """Seconds left of this state's pause (0 when none)."""
        return max(0.0, self._paused_until - self.clock())
