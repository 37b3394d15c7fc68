"""The retry policy and its pure decisions.

A read (GET) is retried on connection errors, timeouts and the transient statuses, with capped
exponential backoff and full jitter, within a number of attempts, an overall deadline and a retry
budget. A create or reverse is resent only when the server provably did not process it (see
``outcomes.processed``) and asked to be tried again: a 429, a 503 maintenance answer
with ``Retry-After``, or a connection that could not be opened.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs

from .._api.answers import pause_asked
from .outcomes import Failure, Processed, processed

__all__ = ["Failure", "RetryBudget", "RetryPolicy", "next_delay"]


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How hard the client tries. Pass one as ``LeatClient(retry=RetryPolicy(...))``.

    - ``max_attempts``: tries of one read, the first included (``1`` disables retries).
    - ``backoff_base`` / ``backoff_cap``: the n-th retry waits a random time in
      ``[0, min(cap, base * 2**(n-1))]`` (full jitter), or the server's ``Retry-After``.
    - ``deadline``: seconds a call may spend in all: waits for a free slot, for the rate limit
      and for pauses included, and each attempt's timeout is cut to the time left.
    - ``max_pause``: the longest 429 or maintenance wait the client sits out; a longer one raises
      ``RateLimitedError`` / ``ServiceUnavailableError`` at once.
    - ``retry_statuses``: the statuses that make a read try again.
    - ``budget_ratio`` / ``budget_min``: retries may add at most this share of the client's
      requests (plus ``budget_min`` in reserve), so a dead server is not hammered.
    """

    max_attempts: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    backoff_base: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    backoff_cap: float = attrs.field(default=8.0, validator=attrs.validators.ge(0))
    deadline: float = attrs.field(default=120.0, validator=attrs.validators.gt(0))
    max_pause: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
    retry_statuses: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
    budget_ratio: float = attrs.field(default=0.2, validator=attrs.validators.ge(0))
    budget_min: float = attrs.field(default=10.0, validator=attrs.validators.ge(0))

    def backoff(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """Full jitter: a uniform wait up to the capped exponential step (``retry`` from 1)."""
        step: float = min(self.backoff_cap, self.backoff_base * 2.0 ** max(0, retry - 1))
        return rand() * step

    def may_retry(
        self,
        *,
        idempotent: bool,
        failure: Failure,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> bool:
        """Whether this kind of failure may be tried again at all (attempts aside).

        Money (``idempotent=False``) only when the request was provably not processed.
        """
        verdict = processed(failure=failure, status=status, retry_after=retry_after)
        if not idempotent and verdict is not Processed.NO:
            return False
        if failure is Failure.CONNECT or pause_asked(status, retry_after) is not None:
            return True  # nothing was sent, or the server asked to be tried again later
        if not idempotent:
            return False
        return failure is not Failure.STATUS or status in self.retry_statuses


def next_delay(
    policy: RetryPolicy,
    *,
    retry: int,
    left: float,
    rand: Callable[[], float] = random.random,
) -> float | None:
    """Seconds to wait before retry number ``retry``, or ``None`` when the deadline forbids it
    (``left``: seconds left of the call's deadline)."""
    delay = policy.backoff(retry, rand)
    return delay if delay <= left else None


@attrs.define
class RetryBudget:
    """Token bucket of retries: each first attempt deposits ``ratio``; each retry spends one."""

    ratio: float
    capacity: float
    tokens: float = attrs.field(default=attrs.Factory(lambda self: self.capacity, takes_self=True))

    def on_request(self) -> None:
        self.tokens = min(self.capacity, self.tokens + self.ratio)

    def try_spend(self) -> bool:
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
