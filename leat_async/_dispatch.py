"""The one place that sends: concurrency and rate gates, retries, pauses, deadlines.

Each attempt goes through :func:`~leat_async._transport.exchange` (the only code that uses
aiohttp's client); what it came to becomes data or one of leat-async's errors here. Whether a
request was processed is decided by :func:`~leat_async._wire.processed` alone.

Creates and reverses (non-idempotent requests) run in a task of their own: when their caller is
cancelled after the request may have left, the task finishes in the background and its outcome
is reported (see :mod:`~leat_async._money`) instead of being lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Generic, TypeVar

import attrs
from yarl import URL

from ._clock import ServerClock
from ._errors import (
    LeatAPIError,
    LeatConnectionError,
    LeatError,
    LeatTimeoutError,
    OutcomeUnknownError,
)
from ._events import Event, EventKind, Stats, emit
from ._money import MoneyTasks
from ._pacing import RateState
from ._retry import RetryBudget, RetryPolicy, next_delay
from ._transport import DEFAULT_MAX_ANSWER_BYTES, EnvProxies, Outcome, Timeouts, exchange
from ._wire import Failure, Processed, Request, finished, server_date

if TYPE_CHECKING:
    import aiohttp

__all__ = ["Dispatcher", "Reply", "Timeouts"]

log = logging.getLogger("leat_async")
T = TypeVar("T")

#: Seconds an attempt needs at the least: with less left of the deadline, none is begun (a
#: create sent with no time to answer would only end as an unknown outcome).
MIN_ATTEMPT = 0.05
#: An admission older than this when the request finally goes is taken again (the cap counts
#: sends, not admissions: a blocked loop must not bunch admitted requests together).
STALE_ADMISSION = 0.025
_RESTAMPS = 3  # ... but a slow shared home (Redis far away) is not asked forever


@attrs.define  # made per request: not frozen, whose __init__ costs twice as much
class Reply(Generic[T]):
    value: T
    date_header: str | None = None

    @property
    def server_date(self) -> datetime | None:
        """The answer's ``Date`` (parsed only when asked: most pages never need it)."""
        return server_date(self.date_header)


@attrs.define
class _Call:
    """One call of ``send``: what it sends, and how far it may still go."""

    request: Request
    body: bytes | None
    timeouts: Timeouts
    deadline: float  # on the loop's clock
    policy_deadline: float
    clock: Callable[[], float]  # the loop's
    may_have_left: bool = False  # an attempt is out whose request may reach the server
    sent_at: datetime | None = None  # when the latest attempt was sent
    attempts: int = 0

    def left(self) -> float:
        return self.deadline - self.clock()

    def floor(self) -> float:
        """The least time left worth beginning an attempt with."""
        return min(MIN_ATTEMPT, self.timeouts.total)

    def spare(self) -> float:
        """Seconds left beyond the least an attempt needs (negative: too late to begin one)."""
        return self.left() - self.floor()

    def too_late(self, waiting_for: str, attempts: int) -> LeatTimeoutError:
        more = "nothing was sent" if attempts == 0 else "nothing more was sent"
        return LeatTimeoutError(
            f"gave up: the retry deadline of {self.policy_deadline:g} s passed while waiting "
            f"for {waiting_for}; {more}",
            method=self.request.method,
            path=self.request.path,
            attempts=max(attempts, 1),
        )


class Dispatcher:
    def __init__(
        self,
        *,
        session: Callable[[], aiohttp.ClientSession],
        base_url: URL,
        headers: dict[str, str],
        max_concurrency: int,
        rate_limit: int | None,
        rate_state: RateState,
        retry: RetryPolicy,
        timeouts: Timeouts,
        landing_horizon: float,
        on_event: Callable[[Event], None] | None = None,
        proxies: EnvProxies | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        self._session = session
        self._max_bytes = max_answer_bytes
        self._proxies = proxies
        self._base = base_url
        self._headers = headers
        self._headed: aiohttp.ClientSession | None = None  # the session _extra was worked out for
        self._extra: Mapping[str, str] = headers
        self._slots = asyncio.Semaphore(max_concurrency)
        self._free = max_concurrency  # slots no attempt holds (waiting ones hold none)
        self._rate_limit = rate_limit
        self._state = rate_state
        self._policy = retry
        self._timeouts = timeouts
        self._horizon = landing_horizon
        self._on_event = on_event
        self._budget = RetryBudget(ratio=retry.budget_ratio, capacity=retry.budget_min)
        self._inflight = 0
        self.stats: Stats = Stats()
        self.money: MoneyTasks = MoneyTasks(self.stats, on_event)
        #: learnt from every answer's Date: the walks' snapshots
        self.server_clock: ServerClock = ServerClock()

    @property
    def free_slots(self) -> int:
        """Concurrency slots that no attempt holds or waits for (what a walk may prefetch
        into). A slot just handed to a waiting call is not free, though that call has not
        run yet."""
        return 0 if self._slots.locked() else self._free

    def timeouts(self, timeout: float | None) -> Timeouts:
        """The client's attempt timeouts, or a call's own (``ValueError`` if bad)."""
        return self._timeouts if timeout is None else Timeouts.of(timeout)

    async def send(
        self,
        request: Request,
        parse: Callable[[bytes], T],
        *,
        timeout: float | None = None,
        lost: Callable[[OutcomeUnknownError], None] | None = None,
    ) -> Reply[T]:
        """Send ``request`` under every gate; retry as the policy allows; parse the answer.

        ``parse``: a 2xx answer's body to the value (an exception from it means the answer is
        not what the API documents). ``timeout``: seconds per attempt for this call. ``lost``:
        told of a create or reverse whose outcome is unknown, in the request's own task (even
        when its caller was cancelled). Arguments that cannot be sent raise ``ValueError``
        before anything is counted or sent.
        """
        body = request.encoded_body()
        clock = asyncio.get_running_loop().time
        call = _Call(
            request,
            body,
            self.timeouts(timeout),
            deadline=clock() + self._policy.deadline,
            policy_deadline=self._policy.deadline,
            clock=clock,
        )
        if request.idempotent:
            return await self._run(call, parse)
        work = self._run(call, parse) if lost is None else self._run_telling(call, parse, lost)

        def unknown(cause: str) -> OutcomeUnknownError:
            outcome = Outcome(failure=Failure.DISCONNECTED, cause=cause, sent_at=call.sent_at)
            error = self._unknown(call, outcome, max(1, call.attempts), cause)
            if lost is not None:
                lost(error)
            return error

        return await self.money.run(request, work, lambda: call.may_have_left, unknown)

    async def _run_telling(
        self, call: _Call, parse: Callable[[bytes], T], lost: Callable[[OutcomeUnknownError], None]
    ) -> Reply[T]:
        try:
            return await self._run(call, parse)
        except OutcomeUnknownError as error:
            lost(error)
            raise

    async def _run(self, call: _Call, parse: Callable[[bytes], T]) -> Reply[T]:
        request, policy = call.request, self._policy
        self._budget.on_request()
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(call, attempt)
            answer = outcome.answer
            if answer is not None and answer.error is None:
                return self._parsed(call, outcome, parse, attempt)
            pause = answer.pause if answer is not None else None
            if not self._may_retry(request, outcome, pause, attempt):
                raise self._final_error(call, outcome, attempt)
            if pause is not None:
                if pause > call.spare():
                    raise self._final_error(call, outcome, attempt)
                # the whole client waits exactly what the server asked (the state learns the
                # server's window from it); this request adds its own jitter on top
                await self._state.pause(pause)
                self.stats.pauses += 1
                self._event("pause", request, attempt, delay=pause, cause=outcome.short())
                delay = random.uniform(0, min(0.25, pause / 10))
            else:
                # the next attempt needs its least time too: else its real error is lost
                backoff = next_delay(policy, retry=attempt, left=call.spare())
                if backoff is None:
                    raise self._final_error(call, outcome, attempt)
                delay = backoff
            self.stats.retries += 1
            self._event("retry", request, attempt, delay=delay, cause=outcome.short())
            log.info(
                "retry %s %s: %s after attempt %d, waiting %.2f s",
                request.method,
                request.path,
                outcome.short(),
                attempt,
                delay,
            )
            await asyncio.sleep(delay)

    def _may_retry(
        self, request: Request, outcome: Outcome, pause: float | None, attempt: int
    ) -> bool:
        policy = self._policy
        if attempt >= policy.max_attempts:
            return False
        if outcome.answer is not None and outcome.answer.oversized:
            return False  # it would be as large again
        status = outcome.answer.status if outcome.answer is not None else None
        if not policy.may_retry(
            idempotent=request.idempotent,
            failure=outcome.failure or Failure.STATUS,
            status=status,
            retry_after=outcome.answer.rate.retry_after if outcome.answer is not None else None,
        ):
            return False
        if pause is not None:
            return pause <= policy.max_pause  # a longer wait is the caller's decision
        return self._budget.try_spend()

    # -- one attempt -----------------------------------------------------------------------

    async def _attempt(self, call: _Call, attempt: int) -> Outcome:
        if self._slots.locked():  # a free slot is taken at once: no timer for that
            try:
                async with asyncio.timeout(call.spare()):
                    await self._slots.acquire()
            except TimeoutError:
                raise call.too_late("a free slot (max_concurrency)", attempt - 1) from None
        else:
            await self._slots.acquire()
        self._free -= 1
        try:
            if call.spare() < 0:
                raise call.too_late("a free slot (max_concurrency)", attempt - 1)
            admitted = await self._admit(call, attempt)
            if call.spare() < 0:  # the admission took the time: send nothing late
                await self._state.unsend(admitted)
                raise call.too_late("the rate limit", attempt - 1)
            self._inflight += 1
            try:
                outcome = await self._exchange(call, attempt)
            finally:
                self._inflight -= 1
            await self._paced(outcome, admitted)
            return outcome
        finally:
            self._free += 1
            self._slots.release()

    async def _paced(self, outcome: Outcome, admitted: float) -> None:
        """Tell the rate state what came of a send. Whatever it does with that, the request's
        own outcome is never lost to it (a custom state that raises is logged)."""
        try:
            if outcome.failure is Failure.CONNECT:
                await self._state.unsend(admitted)
            elif outcome.answer is not None:
                if outcome.answer.status == 429:
                    self.stats.rate_limited += 1
                await self._state.on_answer(
                    outcome.answer.rate, sent_at=admitted, others=self._inflight
                )
        except Exception:
            log.exception("the rate state failed to take an answer; pacing goes on without it")

    async def _admit(self, call: _Call, attempt: int) -> float:
        """Wait until the rate state lets this attempt go; return its stamp (the state's clock).

        The stamp must be the moment of sending: an admission that waited on the loop (a
        blocked loop, a slow hook, a far-away Redis) is given back and taken again.
        """
        loop = asyncio.get_running_loop()
        restamps = 0
        while True:
            asked = loop.time()
            wait, at = await self._state.admit(rate_limit=self._rate_limit, inflight=self._inflight)
            if wait > 0:
                if wait > call.spare():
                    raise call.too_late("the rate limit", attempt - 1)
                await asyncio.sleep(wait)
                continue
            if restamps == 0:
                self._event("request", call.request, attempt)
            if loop.time() - asked <= STALE_ADMISSION or restamps >= _RESTAMPS:
                return at
            restamps += 1
            await self._state.unsend(at)

    async def _exchange(self, call: _Call, attempt: int) -> Outcome:
        request = call.request
        session = self._session()
        headers = self._own_headers(session)
        if call.body is not None:
            headers = {**headers, **_JSON}
        self.stats.requests += 1
        started = time.perf_counter()
        call.may_have_left = True
        if not request.idempotent:  # what a money request cut short reports
            call.sent_at, call.attempts = datetime.now(UTC), attempt
        url = request.url(self._base)
        outcome = await exchange(
            session,
            request,
            url=url,
            body=call.body,
            headers=headers,
            timeout=call.timeouts.within(call.left()),
            proxy=self._proxies.for_url(url) if self._proxies is not None else None,
            max_bytes=self._max_bytes,
        )
        if outcome.processed is Processed.NO:
            call.may_have_left = False  # refused or never sent: nothing is pending
        if outcome.date_header is not None:
            self.server_clock.observe(outcome.date_header)
        self._answered(request, attempt, outcome, time.perf_counter() - started)
        return outcome

    def _own_headers(self, session: aiohttp.ClientSession) -> Mapping[str, str]:
        """Our headers that ``session`` does not already send by itself (the client's own
        session has them all; a borrowed one usually none)."""
        if session is not self._headed:
            defaults = session.headers
            carried = all(defaults.get(name) == value for name, value in self._headers.items())
            self._headed, self._extra = session, {} if carried else self._headers
        return self._extra

    def _answered(self, request: Request, attempt: int, outcome: Outcome, elapsed: float) -> None:
        """One DEBUG line and one ``response`` event per attempt (never the token)."""
        status = outcome.answer.status if outcome.answer is not None else None
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s %s attempt %d: %s in %.3f s",
                request.method,
                request.path,
                attempt,
                outcome.short(),
                elapsed,
            )
        if self._on_event is not None:
            emit(
                self._on_event,
                Event(
                    "response",
                    request.method,
                    request.path,
                    attempt,
                    cause=outcome.short(),
                    status=status,
                    elapsed=elapsed,
                ),
            )

    def _event(
        self,
        kind: EventKind,
        request: Request,
        attempt: int,
        *,
        delay: float = 0.0,
        cause: str = "",
    ) -> None:
        if self._on_event is not None:
            emit(self._on_event, Event(kind, request.method, request.path, attempt, delay, cause))

    # -- results and errors ----------------------------------------------------------------

    def _parsed(
        self, call: _Call, outcome: Outcome, parse: Callable[[bytes], T], attempts: int
    ) -> Reply[T]:
        answer = outcome.answer
        assert answer is not None
        try:
            value = parse(answer.body)
        except Exception as exc:  # whatever the answer held: ours to explain, never to leak
            cause = f"HTTP {answer.status} answer is not what the API documents: {exc}"
            if not call.request.idempotent:
                raise self._unknown(call, outcome, attempts, cause) from None
            raise LeatAPIError(
                cause,
                status=answer.status,
                headers=answer.headers,
                method=call.request.method,
                path=call.request.path,
                attempts=attempts,
            ) from None
        return Reply(value, outcome.date_header)

    def _final_error(self, call: _Call, outcome: Outcome, attempts: int) -> LeatError:
        request = call.request
        known = request.idempotent or outcome.processed is Processed.NO
        if outcome.answer is not None and outcome.answer.error is not None and known:
            error = outcome.answer.error
            error.attempts = attempts
            return error
        if outcome.answer is None and known:
            cls = LeatTimeoutError if outcome.failure is Failure.TIMEOUT else LeatConnectionError
            unsent = "; nothing was sent" if outcome.failure is Failure.CONNECT else ""
            return cls(
                f"{outcome.cause}{unsent}",
                method=request.method,
                path=request.path,
                attempts=attempts,
            )
        return self._unknown(call, outcome, attempts, outcome.describe())

    def _unknown(
        self, call: _Call, outcome: Outcome, attempts: int, cause: str
    ) -> OutcomeUnknownError:
        self.stats.outcome_unknown += 1
        request = call.request
        now = datetime.now(UTC)
        sent_at = outcome.sent_at or now
        # the server may finish it long after we stopped waiting (PHP runs on after a
        # disconnect; proxies allow about a minute), and never sooner than we saw it fail
        landing = max(call.timeouts.total, self._horizon)
        deadline = max(sent_at + timedelta(seconds=landing), now)
        answer = outcome.answer
        status = answer.status if answer is not None else None
        done = answer is not None and finished(answer.status, leat_body=answer.leat_body)
        return OutcomeUnknownError(
            cause,
            operation=request.operation,
            method=request.method,
            path=request.path,
            sent=request.sent(),
            sent_at=sent_at,
            deadline=deadline,
            status=status,
            attempts=attempts,
            finished_at=now if done else None,
        )


_JSON: Mapping[str, str] = {"Content-Type": "application/json"}
