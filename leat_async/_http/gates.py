"""What an attempt passes before it is sent: a concurrency slot, then the rate state's admission.

The slot is held for the whole attempt; the admission is stamped at the moment of sending, and
the rate state learns what came of the send afterwards (pacing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from .call import Call
from .observe import Stats
from .outcomes import Failure, Outcome
from .pacing import RateState

__all__ = ["Gates"]

log = logging.getLogger("leat_async")

#: An admission older than this when the request finally goes is taken again (the cap counts
#: sends, not admissions: a blocked loop must not bunch admitted requests together).
STALE_ADMISSION: Final = 0.025
_RESTAMPS: Final = 3  # ... but a slow shared home (Redis far away) is not asked forever


class Gates:
    """The client's concurrency slots and its rate state, for every attempt of every call."""

    def __init__(
        self,
        *,
        max_concurrency: int,
        rate_limit: int | None,
        rate_state: RateState,
        stats: Stats,
        admitted: Callable[[Call, int], None],
    ) -> None:
        self._slots = asyncio.Semaphore(max_concurrency)
        self._free = max_concurrency  # slots no attempt holds (waiting ones hold none)
        self._rate_limit = rate_limit
        self._state = rate_state
        self._stats = stats
        self._admitted = admitted  # told once per attempt, when it is first admitted
        self._inflight = 0

    @property
    def free_slots(self) -> int:
        """Concurrency slots that no attempt holds or waits for (what a walk may prefetch
        into). A slot just handed to a waiting call is not free, though that call has not
        run yet."""
        return 0 if self._slots.locked() else self._free

    async def pause(self, seconds: float) -> None:
        """The whole client waits what the server asked (the rate state learns from it)."""
        await self._state.pause(seconds)

    async def through(
        self, call: Call, attempt: int, send: Callable[[Call, int], Awaitable[Outcome]]
    ) -> Outcome:
        """``send(call, attempt)`` once it has a slot and is admitted (unless the deadline
        passes first)."""
        if self._slots.locked():  # a free slot is taken at once: no timer for that
            try:
                async with asyncio.timeout(call.time_to_spare()):
                    await self._slots.acquire()
            except TimeoutError:
                raise call.too_late("a free slot (max_concurrency)", attempt - 1) from None
        else:
            await self._slots.acquire()
        self._free -= 1
        try:
            if call.time_to_spare() < 0:
                raise call.too_late("a free slot (max_concurrency)", attempt - 1)
            admitted = await self._admit(call, attempt)
            if call.time_to_spare() < 0:  # the admission took the time: send nothing late
                await self._state.unsend(admitted)
                raise call.too_late("the rate limit", attempt - 1)
            self._inflight += 1
            try:
                outcome = await send(call, attempt)
            finally:
                self._inflight -= 1
            await self._tell_rate_state(outcome, admitted)
            return outcome
        finally:
            self._free += 1
            self._slots.release()

    async def _admit(self, call: Call, attempt: int) -> float:
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
                if wait > call.time_to_spare():
                    raise call.too_late("the rate limit", attempt - 1)
                call.rate_wait += wait
                await asyncio.sleep(wait)
                continue
            if restamps == 0:
                self._admitted(call, attempt)
            if loop.time() - asked <= STALE_ADMISSION or restamps >= _RESTAMPS:
                return at
            restamps += 1
            await self._state.unsend(at)

    async def _tell_rate_state(self, outcome: Outcome, admitted: float) -> None:
        """Tell the rate state what came of a send. Whatever it does with that, the request's
        own outcome is never lost to it (a custom state that raises is logged)."""
        try:
            if outcome.failure is Failure.CONNECT:
                await self._state.unsend(admitted)
            elif outcome.answer is not None:
                if outcome.answer.status == 429:
                    self._stats.rate_limited += 1
                await self._state.on_answer(
                    outcome.answer.rate, sent_at=admitted, others=self._inflight
                )
        except Exception:
            log.exception("the rate state failed to take an answer; pacing goes on without it")
