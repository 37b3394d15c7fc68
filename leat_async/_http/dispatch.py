"""The one place that sends: the attempt loop of every request, its retries, pauses and deadline.

Each attempt passes the :class:`~leat_async._http.gates.Gates` (a slot, then the rate state's
admission) and goes out through :func:`~leat_async._http.transport.exchange`, the only code that
uses aiohttp's client; what it came to is judged by ``outcomes`` (the one rule of whether a
request was processed) and told by ``observe``.

Creates and reverses (non-idempotent requests) run in a task of their own: when their caller is
cancelled after the request may have left, the task finishes in the background and its outcome
is reported (see ``money``) instead of being lost.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from yarl import URL

from .._api.unknown import OutcomeUnknownError
from .._api.wire import Request
from .call import Call
from .clock import ServerClock
from .gates import Gates
from .money import MoneyTasks
from .observe import Event, Observer, Stats
from .outcomes import (
    Failure,
    Outcome,
    Processed,
    Received,
    final_error,
    unknown_outcome,
    unreadable,
)
from .pacing import RateState
from .retry import RetryBudget, RetryPolicy, next_delay
from .telemetry import Telemetry, WalkTrace
from .transport import DEFAULT_MAX_ANSWER_BYTES, EnvProxies, Timeouts, exchange

if TYPE_CHECKING:
    import aiohttp

    from .signin import SignIn

__all__ = ["Dispatcher", "Timeouts"]

T = TypeVar("T")
_JSON: Mapping[str, str] = {"Content-Type": "application/json"}


class Dispatcher:
    """Sends the client's requests: one attempt loop, shared gates, counters and events."""

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
        signin: SignIn | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self._session = session
        self._signin = signin  # None: the token is in ``headers``
        self._max_bytes = max_answer_bytes
        self._proxies = proxies
        self._base = base_url
        self._headers = headers
        self._headed: aiohttp.ClientSession | None = None  # the session _extra was worked out for
        self._extra: Mapping[str, str] = headers
        self._policy = retry
        self._timeouts = timeouts
        self._horizon = landing_horizon
        self._budget = RetryBudget(ratio=retry.budget_ratio, capacity=retry.budget_min)
        #: traces and metrics (``None``: opentelemetry is not installed)
        self.telemetry = telemetry
        self._observe = Observer(on_event, telemetry)
        self.stats: Stats = Stats()
        self._gates = Gates(
            max_concurrency=max_concurrency,
            rate_limit=rate_limit,
            rate_state=rate_state,
            stats=self.stats,
            admitted=lambda call, attempt: self._observe.event("request", call.request, attempt),
        )
        self.money: MoneyTasks = MoneyTasks(self.stats, on_event)
        #: learnt from every answer's Date: the walks' snapshots
        self.server_clock: ServerClock = ServerClock()

    @property
    def free_slots(self) -> int:
        """Concurrency slots that no attempt holds or waits for (what a walk may prefetch
        into)."""
        return self._gates.free_slots

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
        walk: WalkTrace | None = None,
    ) -> Received[T]:
        """Send ``request`` under every gate; retry as the policy allows; parse the answer.

        ``parse``: a 2xx answer's body to the value (an exception from it means the answer is
        not what the API documents). ``timeout``: seconds per attempt for this call. ``lost``:
        told of a create or reverse whose outcome is unknown, in the request's own task (even
        when its caller was cancelled). ``walk``: the walk a page's request belongs to (its
        attempts are the walk's span's children). Arguments that cannot be sent raise
        ``ValueError`` before anything is counted or sent.
        """
        body = request.encoded_body()
        clock = asyncio.get_running_loop().time
        call = Call(
            request,
            body,
            self.timeouts(timeout),
            deadline=clock() + self._policy.deadline,
            policy_deadline=self._policy.deadline,
            clock=clock,
        )
        if self.telemetry is not None:  # the trace's place is the caller's, whoever sends
            call.trace = self.telemetry.call(request, walk)
        if request.idempotent:
            return await self._run(call, parse)
        work = self._run(call, parse) if lost is None else self._run_telling(call, parse, lost)

        def cut_short(cause: str) -> OutcomeUnknownError:
            outcome = Outcome(failure=Failure.DISCONNECTED, cause=cause, sent_at=call.sent_at)
            error = self._unknown(call, outcome, max(1, call.attempts))(cause)
            if lost is not None:
                lost(error)
            return error

        return await self.money.run(request, work, lambda: call.may_have_left, cut_short)

    async def _run_telling(
        self, call: Call, parse: Callable[[bytes], T], lost: Callable[[OutcomeUnknownError], None]
    ) -> Received[T]:
        try:
            return await self._run(call, parse)
        except OutcomeUnknownError as error:
            lost(error)
            raise

    async def _run(self, call: Call, parse: Callable[[bytes], T]) -> Received[T]:
        if call.trace is None or self.telemetry is None:
            return await self._attempts(call, parse)
        return await self.telemetry.traced(call.trace, call.request, self._attempts(call, parse))

    async def _attempts(self, call: Call, parse: Callable[[bytes], T]) -> Received[T]:
        request = call.request
        self._budget.on_request()
        attempt = 0
        renewed = False  # a signed-in client resends once after a 401, with a new token
        while True:
            attempt += 1
            if self._signin is not None:  # before the gates: a sign-in holds no slot
                call.authorization = await self._signin.authorization()
            outcome = await self._gates.through(call, attempt, self._exchange)
            answer = outcome.answer
            if (
                answer is not None
                and answer.status == 401
                and self._signin is not None
                and call.authorization is not None
                and not renewed
            ):
                # refused before processing (see outcomes.processed): safe even for a create
                renewed = True
                self._signin.refused(call.authorization)
                self.stats.retries += 1
                self._observe.retrying(request, attempt, outcome, 0.0)
                continue
            if answer is not None and answer.error is None:
                try:
                    return Received(parse(answer.body), outcome.date_header)
                except Exception as exc:  # whatever the answer held: ours to explain
                    unknown = self._unknown(call, outcome, attempt)
                    raise unreadable(
                        request, answer, exc, attempts=attempt, unknown=unknown
                    ) from None
            pause = answer.pause if answer is not None else None
            delay = self._next_wait(call, outcome, pause, attempt)
            if delay is None:
                unknown = self._unknown(call, outcome, attempt)
                raise final_error(request, outcome, attempts=attempt, unknown=unknown)
            if pause is not None:
                # the whole client waits exactly what the server asked (the state learns the
                # server's window from it); this request adds its own jitter on top
                await self._gates.pause(pause)
                self.stats.pauses += 1
                self._observe.event("pause", request, attempt, delay=pause, cause=outcome.short())
            self.stats.retries += 1
            self._observe.retrying(request, attempt, outcome, delay)
            await asyncio.sleep(delay)

    def _next_wait(
        self, call: Call, outcome: Outcome, pause: float | None, attempt: int
    ) -> float | None:
        """Seconds to wait before the next attempt (after a pause: its jitter), or ``None``:
        no next attempt."""
        policy, answer = self._policy, outcome.answer
        if attempt >= policy.max_attempts:
            return None
        if answer is not None and answer.oversized:
            return None  # it would be as large again
        if not policy.may_retry(
            idempotent=call.request.idempotent,
            failure=outcome.failure or Failure.STATUS,
            status=answer.status if answer is not None else None,
            retry_after=answer.rate.retry_after if answer is not None else None,
        ):
            return None
        if pause is not None:
            if pause > policy.max_pause or pause > call.time_to_spare():
                return None  # a longer wait is the caller's decision
            return random.uniform(0, min(0.25, pause / 10))
        if not self._budget.try_spend():
            return None
        # the next attempt needs its least time too: else its real error is lost
        return next_delay(policy, retry=attempt, left=call.time_to_spare())

    def _unknown(
        self, call: Call, outcome: Outcome, attempts: int
    ) -> Callable[[str], OutcomeUnknownError]:
        """What makes (and counts) the unknown outcome of ``call``, should it end in one."""

        def unknown(cause: str) -> OutcomeUnknownError:
            self.stats.outcome_unknown += 1
            landing = max(call.timeouts.total, self._horizon)
            return unknown_outcome(
                call.request, outcome, attempts=attempts, cause=cause, landing=landing
            )

        return unknown

    async def _exchange(self, call: Call, attempt: int) -> Outcome:
        request = call.request
        session = self._session()
        headers = self._own_headers(session)
        if call.body is not None:
            headers = {**headers, **_JSON}
        if call.authorization is not None:
            headers = {**headers, "Authorization": call.authorization}
        self.stats.requests += 1
        started = time.perf_counter()
        call.may_have_left = True
        if not request.idempotent:  # what a money request cut short reports
            call.sent_at, call.attempts = datetime.now(UTC), attempt
        url = request.url(self._base)
        sent = self._observe.sending(call, attempt, url)
        try:
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
        except BaseException as error:  # cancelled: the span still ends
            self._observe.abandoned(sent, error)
            raise
        if outcome.processed is Processed.NO:
            call.may_have_left = False  # refused or never sent: nothing is pending
        if outcome.date_header is not None:
            self.server_clock.observe(outcome.date_header)
        self._observe.answered(request, attempt, outcome, time.perf_counter() - started, sent)
        return outcome

    def _own_headers(self, session: aiohttp.ClientSession) -> Mapping[str, str]:
        """Our headers that ``session`` does not already send by itself (the client's own
        session has them all; a borrowed one usually none)."""
        if session is not self._headed:
            defaults = session.headers
            carried = all(defaults.get(name) == value for name, value in self._headers.items())
            self._headed, self._extra = session, {} if carried else self._headers
        return self._extra
