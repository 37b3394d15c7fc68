"""The one place that sends: concurrency and rate gates, retries, pauses.

This is the only module that uses aiohttp's client. aiohttp's exceptions are translated here,
once, into a :class:`~leat_async._retry.Failure` and then into leat-async's errors.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

import aiohttp
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
from ._pacing import RateState
from ._retry import Failure, RetryBudget, RetryPolicy, next_delay
from ._wire import Answer, Request, classify, server_date

__all__ = ["Dispatcher", "Event", "Reply", "Stats"]

log = logging.getLogger("leat_async")
T = TypeVar("T")

#: Added to a lost request's deadline before ``recover`` may conclude it never landed.
RECOVERY_MARGIN = 5.0


@attrs.define
class Stats:
    """Counters a user can read from ``client.stats``."""

    requests: int = 0
    retries: int = 0
    pauses: int = 0
    rate_limited: int = 0
    outcome_unknown: int = 0


@attrs.frozen
class Event:
    """Passed to ``LeatClient(on_event=...)`` on every retry and pause."""

    kind: str  # "retry" or "pause"
    method: str
    path: str
    attempt: int
    delay: float
    cause: str


@attrs.frozen
class Reply(Generic[T]):
    value: T
    date_header: str | None = None

    @property
    def server_date(self) -> datetime | None:
        """The answer's ``Date`` (parsed only when asked: most pages never need it)."""
        return server_date(self.date_header)


@attrs.frozen
class _Attempt:
    """What one attempt came to: an answer, or a failure before any answer."""

    answer: Answer | None = None
    failure: Failure | None = None
    cause: str = ""
    date_header: str | None = None
    sent_at: datetime | None = None


def _attempt_seconds(timeout: aiohttp.ClientTimeout) -> float:
    if timeout.total is not None:
        return timeout.total
    parts = [t for t in (timeout.connect, timeout.sock_connect, timeout.sock_read) if t]
    return sum(parts) if parts else 300.0


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
        timeout: aiohttp.ClientTimeout,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self._session = session
        self._base = base_url
        self._headers = headers
        self._slots = asyncio.Semaphore(max_concurrency)
        self._rate_limit = rate_limit
        self._state = rate_state
        self._policy = retry
        self._timeout = timeout
        self._on_event = on_event
        self._budget = RetryBudget(ratio=retry.budget_ratio, capacity=retry.budget_min)
        self._inflight = 0
        self.stats = Stats()
        self.server_clock = ServerClock()  # learnt from every answer's Date: walks' snapshots

    @property
    def attempt_seconds(self) -> float:
        return _attempt_seconds(self._timeout)

    async def send(self, request: Request, parse: Callable[[Any], T]) -> Reply[T]:
        """Send ``request`` under every gate; retry as the policy allows; parse the data."""
        policy = self._policy
        started = time.monotonic()
        self._budget.on_request()
        attempt = 0
        while True:
            attempt += 1
            result = await self._attempt(request)
            answer = result.answer
            if answer is not None and answer.error is None:
                return self._parsed(request, result, parse, attempt)
            retry_after = _pause_for(answer)
            if not self._may_retry(request, result, retry_after, attempt):
                raise self._final_error(request, result, attempt)
            elapsed = time.monotonic() - started
            if retry_after is not None:
                if elapsed + retry_after > policy.deadline:
                    raise self._final_error(request, result, attempt)
                # the whole client waits exactly what the server asked (the state learns the
                # server's window from it); this request adds its own jitter on top
                await self._pause(request, result, attempt, retry_after)
                delay = random.uniform(0, min(0.25, retry_after / 10))
            else:
                backoff = next_delay(policy, retry=attempt, retry_after=None, elapsed=elapsed)
                if backoff is None:
                    raise self._final_error(request, result, attempt)
                delay = backoff
            self.stats.retries += 1
            self._emit("retry", request, attempt, delay, self._cause(result))
            await asyncio.sleep(delay)

    def _may_retry(
        self, request: Request, result: _Attempt, retry_after: float | None, attempt: int
    ) -> bool:
        policy = self._policy
        if attempt >= policy.max_attempts:
            return False
        status = result.answer.status if result.answer is not None else None
        if not policy.may_retry(
            idempotent=request.idempotent,
            failure=result.failure or Failure.STATUS,
            status=status,
            retry_after=retry_after,
        ):
            return False
        if retry_after is not None:
            return retry_after <= policy.max_pause  # a longer wait is the caller's decision
        return self._budget.try_spend()

    async def _pause(self, request: Request, result: _Attempt, attempt: int, delay: float) -> None:
        """A 429 or maintenance answer holds back every request of this client, not just one."""
        await self._state.pause(delay)
        self.stats.pauses += 1
        self._emit("pause", request, attempt, delay, self._cause(result))

    def _emit(self, kind: str, request: Request, attempt: int, delay: float, cause: str) -> None:
        log.info(
            "%s %s %s: %s after attempt %d, waiting %.2f s",
            kind,
            request.method,
            request.path,
            cause,
            attempt,
            delay,
        )
        if self._on_event is not None:
            self._on_event(Event(kind, request.method, request.path, attempt, delay, cause))

    @staticmethod
    def _cause(result: _Attempt) -> str:
        if result.answer is not None:
            return f"HTTP {result.answer.status}"
        return result.cause

    async def _admit(self) -> float:
        """Wait until the rate state lets one more request go; return the admission time."""
        while True:
            wait, now = await self._state.admit(
                rate_limit=self._rate_limit, inflight=self._inflight
            )
            if wait <= 0:
                return now
            await asyncio.sleep(wait)

    async def _attempt(self, request: Request) -> _Attempt:
        async with self._slots:
            admitted = await self._admit()
            self._inflight += 1
            self.stats.requests += 1
            try:
                result = await self._exchange(request)
            finally:
                self._inflight -= 1
            if result.failure is Failure.CONNECT:
                await self._state.unsend(admitted)
            elif result.answer is not None:
                if result.answer.status == 429:
                    self.stats.rate_limited += 1
                await self._state.on_answer(
                    result.answer.rate, sent_at=admitted, others=self._inflight
                )
            return result

    async def _exchange(self, request: Request) -> _Attempt:
        url = request.url(self._base)
        body = request.encoded_body()
        headers = self._headers if body is None else {**self._headers, **_JSON}
        sent_at = datetime.now(UTC)
        try:
            async with self._session().request(
                request.method,
                url,
                data=body,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                raw = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except aiohttp.ClientConnectorError as exc:  # DNS, refused: nothing was sent
            return _Attempt(failure=Failure.CONNECT, cause=_describe(exc), sent_at=sent_at)
        except aiohttp.ConnectionTimeoutError as exc:  # no connection within the connect timeout
            return _Attempt(failure=Failure.CONNECT, cause=_describe(exc), sent_at=sent_at)
        except TimeoutError as exc:
            return _Attempt(failure=Failure.TIMEOUT, cause=_describe(exc), sent_at=sent_at)
        except (aiohttp.ClientError, OSError) as exc:
            return _Attempt(failure=Failure.DISCONNECTED, cause=_describe(exc), sent_at=sent_at)
        answer = classify(status, resp_headers, raw, request=request, now=datetime.now(UTC))
        date_header = resp_headers.get("Date")
        self.server_clock.observe(date_header)
        return _Attempt(answer=answer, date_header=date_header, sent_at=sent_at)

    def _parsed(
        self, request: Request, result: _Attempt, parse: Callable[[Any], T], attempts: int
    ) -> Reply[T]:
        assert result.answer is not None
        try:
            value = parse(result.answer.data)
        except ValueError as exc:
            if not request.idempotent:
                raise self._unknown(request, result, attempts, f"unusable answer: {exc}") from None
            raise LeatAPIError(
                f"HTTP {result.answer.status} answer is not what the API documents: {exc}",
                status=result.answer.status,
                method=request.method,
                path=request.path,
                attempts=attempts,
            ) from None
        return Reply(value, result.date_header)

    def _final_error(self, request: Request, result: _Attempt, attempts: int) -> LeatError:
        answer = result.answer
        if answer is not None and answer.error is not None:
            if request.idempotent or answer.refused:
                error = answer.error
                error.attempts = attempts
                return error
            return self._unknown(request, result, attempts, self._cause(result))
        if result.failure is Failure.CONNECT or request.idempotent:
            cls = LeatTimeoutError if result.failure is Failure.TIMEOUT else LeatConnectionError
            return cls(
                f"{result.cause}", method=request.method, path=request.path, attempts=attempts
            )
        return self._unknown(request, result, attempts, result.cause)

    def _unknown(
        self, request: Request, result: _Attempt, attempts: int, cause: str
    ) -> OutcomeUnknownError:
        self.stats.outcome_unknown += 1
        now = datetime.now(UTC)
        sent_at = result.sent_at or now
        # it may land until its timeout runs out, and never sooner than the failure we saw
        deadline = max(sent_at + timedelta(seconds=self.attempt_seconds), now)
        status = result.answer.status if result.answer is not None else None
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
        )


_JSON = {"Content-Type": "application/json"}


def _pause_for(answer: Answer | None) -> float | None:
    """The wait a 429 or a maintenance 503 asks of the whole client (a 429 always asks one)."""
    if answer is None or answer.status not in (429, 503):
        return None
    if answer.status == 429 and answer.rate.retry_after is None:
        return 1.0
    return answer.rate.retry_after


def _describe(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
