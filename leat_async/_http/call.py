"""One call of the dispatcher: what it sends, and how much of its deadline is left."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Final

import attrs

from .._api.errors import LeatTimeoutError
from .._api.wire import Request
from .transport import Timeouts

if TYPE_CHECKING:
    from .telemetry import CallTrace

__all__ = ["MIN_ATTEMPT", "Call"]

#: Seconds an attempt needs at the least: with less left of the deadline, none is begun (a
#: create sent with no time to answer would only end as an unknown outcome).
MIN_ATTEMPT: Final = 0.05


@attrs.define
class Call:
    """One call of ``Dispatcher.send``: what it sends, and how far it may still go."""

    request: Request
    body: bytes | None
    timeouts: Timeouts
    deadline: float  # on the loop's clock
    policy_deadline: float
    clock: Callable[[], float]  # the loop's
    may_have_left: bool = False  # an attempt is out whose request may reach the server
    sent_at: datetime | None = None  # when the latest attempt was sent (money only)
    attempts: int = 0  # attempts sent so far (money only)
    authorization: str | None = None  # the signed-in header of the latest attempt, if any
    trace: CallTrace | None = None  # where its attempts go in the trace (None: no telemetry)
    rate_wait: float = 0.0  # seconds waited for the rate limit since the latest attempt

    def left(self) -> float:
        return self.deadline - self.clock()

    def least_attempt(self) -> float:
        """The least time left worth beginning an attempt with."""
        return min(MIN_ATTEMPT, self.timeouts.total)

    def time_to_spare(self) -> float:
        """Seconds left beyond the least an attempt needs (negative: too late to begin one)."""
        return self.left() - self.least_attempt()

    def too_late(self, waiting_for: str, attempts: int) -> LeatTimeoutError:
        more = "nothing was sent" if attempts == 0 else "nothing more was sent"
        return LeatTimeoutError(
            f"gave up: the retry deadline of {self.policy_deadline:g} s passed while waiting "
            f"for {waiting_for}; {more}",
            method=self.request.method,
            path=self.request.path,
            attempts=max(attempts, 1),
        )
