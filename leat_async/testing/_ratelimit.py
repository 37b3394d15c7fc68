"""Laravel's fixed-window throttle, with an injectable monotonic clock (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["FixedWindow", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the throttle says about one request: ``retry_after`` is set when it is refused."""

    limit: int
    remaining: int
    retry_after: int | None = None

    @property
    def allowed(self) -> bool:
        return self.retry_after is None


class FixedWindow:
    """``limit`` hits per window; a window opens at the first hit after the last one expired.

    A refused request is not counted (Laravel checks ``tooManyAttempts`` before ``hit``).
    """

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1:
            raise ValueError("rate_limit must be >= 1")
        if window <= 0:
            raise ValueError("rate_window must be > 0")
        self.limit = limit
        self.window = window
        self._opened: dict[str, float] = {}
        self._hits: dict[str, int] = {}

    def hit(self, key: str, now: float) -> Verdict:
        opened = self._opened.get(key)
        if opened is None or now >= opened + self.window:
            opened = self._opened[key] = now
            self._hits[key] = 0
        hits = self._hits[key]
        if hits >= self.limit:
            wait = max(1, math.ceil(opened + self.window - now))
            return Verdict(self.limit, 0, wait)
        self._hits[key] = hits + 1
        return Verdict(self.limit, self.limit - hits - 1)
