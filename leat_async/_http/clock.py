"""What the client knows of the server's clock: a safe lower bound, learnt from ``Date`` headers.

A walk's snapshot must be a whole second that the server has already left behind, or rows of
that second could still arrive and shift the pages. The first walk of a client reads it from
its first answer's ``Date`` (and may re-read that page within it); once any answer has been
seen, a walk can bound its very first request instead, and costs exactly the pages it fetches.

``Date`` has one-second resolution and says when the server stamped the answer, which was
before it arrived here. So at a later local moment ``m`` the server's clock reads at least
``date + (m - arrived)``: a lower bound, never a guess that could run ahead of the server.
Each answer gives one such bound; the highest recent one is kept. Bounds older than
``max_age`` are dropped, and local time is counted at ``1 - drift`` of its rate, so that a
local clock running slightly fast cannot carry an old bound past the server's real time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from .._api.answers import server_date

__all__ = ["LAG", "ServerClock"]

#: Seconds the estimate may run behind the server's clock in the normal course: ``Date`` has
#: whole seconds, and an answer takes a moment to arrive. Anything further means the estimate
#: went stale (a machine that slept, a server clock that jumped).
LAG = 2.0

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ServerClock:
    """A lower bound of the server's clock, from the ``Date`` of the answers seen so far.

    ``monotonic``: the local clock (seconds; injectable for tests). ``max_age``: seconds an
    answer's ``Date`` is trusted. ``drift``: the largest relative rate difference assumed
    between the two clocks.
    """

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        max_age: float = 300.0,
        drift: float = 1e-3,
    ) -> None:
        self._monotonic = monotonic
        self._max_age = max_age
        self._rate = 1.0 - drift
        self._header: str | None = None  # the last header seen: the same text adds nothing
        # (server epoch seconds minus scaled local seconds: a lower bound, local time it came)
        self._best: tuple[float, float] | None = None  # the highest bound still fresh
        self._latest: tuple[float, float] | None = None  # the newest, in case the best expires

    def observe(self, date_header: str | None) -> None:
        """Learn from one answer's ``Date`` header (``None`` or unusable text teach nothing).

        Cheap when the header repeats (every answer within one server second): one compare.
        """
        if date_header is None or date_header == self._header:
            return
        self._header = date_header
        when = server_date(date_header)
        if when is None:
            return
        local = self._monotonic()
        bound = ((when - _EPOCH).total_seconds() - local * self._rate, local)
        self._latest = bound
        best = self._best
        if best is None or bound[0] >= best[0] or self._stale(best, local):
            self._best = bound

    def now(self) -> datetime | None:
        """A moment the server's clock has certainly reached; ``None`` while unknown."""
        local = self._monotonic()
        best = self._best
        if best is None or self._stale(best, local):
            best = self._best = self._latest
            if best is None or self._stale(best, local):
                return None
        return _EPOCH + timedelta(seconds=best[0] + local * self._rate)

    def snapshot(self) -> datetime | None:
        """The latest whole second the server has certainly left behind: rows created before
        it can no longer arrive (back-dated rows aside). ``None`` while the clock is unknown.
        """
        now = self.now()
        return None if now is None else now.replace(microsecond=0)

    def _stale(self, bound: tuple[float, float], local: float) -> bool:
        return local - bound[1] > self._max_age
