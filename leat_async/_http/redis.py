"""A shared home for the rate state: Redis, so many processes and machines keep one API budget.

Every decision of :class:`~leat_async._http.pacing.LocalRateState` (the client-side cap, the pause
after a 429, the budget the server reports) is made by an atomic Lua script on Redis's own clock
(``TIME``), so workers with skewed clocks agree. Keys, for ``ns = sha256(token "\\n" base_url)``::

    {prefix}:{ns}:log      sorted set: every send of the last minute, scored by its time (µs)
    {prefix}:{ns}:flight   sorted set: the sends still waiting for their answer
    {prefix}:{ns}:pause    the end of the shared pause after a 429 (µs)
    {prefix}:{ns}:budget   hash: what the server's X-RateLimit headers and 429s told
    {prefix}:{ns}:probe    the worker whose lone probe is out (the budget is unknown or spent)

When Redis fails, ``on_error="fallback"`` paces in-process (one warning) and tries Redis again
every ``retry_interval`` seconds; ``on_error="raise"`` refuses to send with
:class:`RateStateUnavailableError`. Answers that arrive while Redis is down are never turned into
errors: the request was made, only what it taught the pacing is lost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .._api.answers import RateInfo
from .._api.closing import AsyncClosing
from .._api.errors import LeatConnectionError
from .pacing import LocalRateState
from .redis_lua import ADMIT, ANSWER, PAUSE, UNSEND, render

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["RateStateUnavailableError", "RedisRateState"]

log = logging.getLogger("leat_async")
T = TypeVar("T")


class RateStateUnavailableError(LeatConnectionError):
    """The shared rate state (Redis) could not be reached and ``on_error="raise"``.

    Raised before anything is sent, so the call may be retried as it is.
    """


class RedisRateState(AsyncClosing):
    """A :class:`~leat_async.RateState` kept in Redis: one budget for every worker.

    ::

        state = RedisRateState("redis://127.0.0.1:6379/0")
        async with LeatClient(token, rate_limit=20, rate_state=state) as client:
            ...

    Every client with the same token, base URL and Redis shares the cap (``rate_limit``: never
    more than that many sends in any ``1 + margin`` seconds on Redis's clock; the margin absorbs
    the jitter between admission and arrival), the pause after a 429 and the server's budget.
    ``redis`` is a URL or a ``redis.asyncio.Redis`` (borrowed: never closed). Each Redis call is
    bounded by ``timeout`` seconds. One instance per client; the client closes it on exit.
    """

    def __init__(
        self,
        redis: str | redis.asyncio.Redis,
        /,
        *,
        on_error: Literal["fallback", "raise"] = "fallback",
        timeout: float = 0.5,
        retry_interval: float = 2.0,
        margin: float = 0.05,
        key_prefix: str = "leat",
    ) -> None:
        if on_error not in ("fallback", "raise"):
            raise ValueError('on_error must be "fallback" or "raise"')
        if not (timeout > 0 and retry_interval > 0 and 0 <= margin < 1):
            raise ValueError("timeout and retry_interval must be > 0, margin in [0, 1)")
        try:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
            from redis.exceptions import RedisError
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "RedisRateState needs redis-py: pip install 'leat-async[redis]'"
            ) from None
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
        self._owned = isinstance(redis, str)
        self._redis: Any = redis
        if isinstance(redis, str):  # one quick retry (a pooled connection gone stale), no waits
            self._redis = aioredis.Redis.from_url(
                redis,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1),
            )
        self.on_error = on_error
        self.timeout = timeout
        self.retry_interval = retry_interval
        self._period = 1.0 + margin
        self._prefix = key_prefix
        self._namespace: str | None = None
        self._keys: list[str] = []
        self._owner = secrets.token_hex(8)
        self._seq = itertools.count()
        scripts = {"admit": ADMIT, "answer": ANSWER, "unsend": UNSEND, "pause": PAUSE}
        self._scripts = {k: self._redis.register_script(render(v)) for k, v in scripts.items()}
        self._down = False
        self._retry_at = 0.0
        self._offset = time.time() - time.monotonic()  # local clock -> Redis clock, refined
        self._rate_limit: int | None = None
        self._recent: deque[tuple[float, bool]] = deque()  # own sends: (time, counted in Redis)
        self._local = LocalRateState(clock=self._local_now)
        self._admitting = asyncio.Lock()
        self._admissions = 0
        self._telling = 0  # answers (and unsends) on their way to Redis

    @property
    def namespace(self) -> str | None:
        """The hash of token and base URL this state was bound to (``None`` until bound)."""
        return self._namespace

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable (pacing is then in-process)."""
        return self._down

    def bind(self, namespace: str) -> None:
        """Called by the client with ``sha256(token + "\\n" + base_url)`` in hex."""
        if self._namespace is not None and self._namespace != namespace:
            raise ValueError("a RedisRateState serves one token and base URL: use one per client")
        self._namespace = namespace
        base = f"{self._prefix}:{{{namespace}}}"  # a hash tag: one cluster slot
        self._keys = [f"{base}:{k}" for k in ("log", "budget", "pause", "probe", "flight")]

    # -- the RateState protocol -------------------------------------------------------------

    async def admit(self, *, rate_limit: int | None, inflight: int) -> tuple[float, float]:
        self._rate_limit = rate_limit
        seen = self._admissions
        # One admission at a time per worker. ``inflight`` was counted when this call began: the
        # sends admitted since, and those whose answer is still being told, are added, so that a
        # lone probe is really alone.
        async with self._admitting:
            if self._may_try():
                inflight += self._admissions - seen + self._telling
                return await self._admit_shared(rate_limit, inflight)
        return self._admit_local(rate_limit, inflight)

    async def _admit_shared(self, rate_limit: int | None, inflight: int) -> tuple[float, float]:
        paused = self._local.pause_left()  # this worker's own 429s are mirrored here
        if paused > 0:
            return paused, self._local_now()
        period = round(self._period * 1e6)
        args = [rate_limit or 0, inflight, self._owner, next(self._seq), period]
        # Redis learns what this worker sent while it was away; only an admission carries that,
        # so only an admission ends the outage
        unshared = [round(at * 1e6) for at, shared in self._recent if not shared]
        started = time.monotonic()
        try:
            wait, now_us = await self._run("admit", args + unshared)
        except self._errors as exc:
            self._failed(exc, refuse=True)
            return self._admit_local(rate_limit, inflight)
        now = int(now_us) / 1e6
        self._offset = now - (started + time.monotonic()) / 2
        self._recent = deque((at, True) for at, _ in self._recent)
        self._recovered()
        return self._admitted(float(wait), now, shared=True)

    def _admit_local(self, rate_limit: int | None, inflight: int) -> tuple[float, float]:
        now = self._local_now()
        sent = [at for at, _ in self._recent if at > now - self._period]
        if rate_limit is not None and len(sent) >= rate_limit:  # the cap with its margin, here too
            return sent[len(sent) - rate_limit] + self._period - now, now
        wait, now = self._local.admit_sync(rate_limit=rate_limit, inflight=inflight)
        return self._admitted(wait, now, shared=False)

    async def unsend(self, at: float) -> None:
        for entry in self._recent:
            if entry[0] == at:
                self._recent.remove(entry)
                break
        if not await self._try("unsend", [round(at * 1e6), self._owner]):
            await self._local.unsend(at)

    async def on_answer(self, info: RateInfo, *, sent_at: float, others: int) -> None:
        limit = "" if info.limit is None else info.limit
        remaining = "" if info.remaining is None else info.remaining
        refused = "" if info.retry_after is None else "1"
        args = [round(sent_at * 1e6), others, limit, remaining, self._owner, refused]
        if not await self._try("answer", args):
            await self._local.on_answer(info, sent_at=sent_at, others=others)

    async def pause(self, seconds: float) -> None:
        # kept here too, so an outage that starts now cannot cut the pause short
        await self._local.pause(seconds)
        await self._try("pause", [repr(float(seconds))])

    # -- lifecycle ---------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the Redis connections this state opened (a borrowed client is left open)."""
        if self._owned:
            await self._redis.aclose()

    def __repr__(self) -> str:
        mode = "degraded" if self._down else "shared"
        return f"<RedisRateState {mode} namespace={self.namespace!r} on_error={self.on_error!r}>"

    # -- Redis calls and failures ------------------------------------------------------------

    def _local_now(self) -> float:
        return time.monotonic() + self._offset

    def _key_list(self) -> list[str]:
        if self._namespace is None:
            raise RuntimeError("RedisRateState is not bound: pass it to LeatClient(rate_state=)")
        return self._keys

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        async with asyncio.timeout(self.timeout):
            return await fn()

    async def _run(self, name: str, args: list[Any], keys: list[str] | None = None) -> Any:
        keys = self._key_list() if keys is None else keys
        return await self._call(lambda: self._scripts[name](keys=keys, args=args))

    def _admitted(self, wait: float, now: float, *, shared: bool) -> tuple[float, float]:
        """Remember this worker's last second of sends: the cap holds across a switch."""
        if wait <= 0:
            self._admissions += 1
            self._recent.append((now, shared))
        while self._recent and self._recent[0][0] <= now - self._period:
            self._recent.popleft()
        return wait, now

    def _may_try(self) -> bool:
        """Redis is up, or down long enough to try it again (one caller per interval)."""
        if not self._down or self.on_error == "raise":
            return True
        now = time.monotonic()
        if now < self._retry_at:
            return False
        self._retry_at = now + self.retry_interval
        return True

    async def _try(self, name: str, args: list[Any]) -> bool:
        """Tell Redis what became of a send; False when the local state must hear it instead."""
        if not self._may_try():
            return False
        self._telling += 1
        try:
            await self._run(name, args)
        except self._errors as exc:
            self._failed(exc, refuse=False)
            return False
        finally:
            self._telling -= 1
        self._reached()
        return True

    def _reached(self) -> None:
        """Redis answered a call: during an outage, let the next admission try it at once.

        Only an admission ends the outage, since only it tells Redis the sends made meanwhile.
        """
        if self._down:
            self._retry_at = 0.0

    def _failed(self, exc: BaseException, *, refuse: bool) -> None:
        """Note an outage (one warning); with ``on_error="raise"``, refuse to send."""
        cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if not self._down:
            self._down = True
            self._retry_at = time.monotonic() + self.retry_interval
            then = "refusing to send" if self.on_error == "raise" else "pacing in-process"
            log.warning("Redis rate state unavailable (%s); %s until it returns", cause, then)
        if refuse and self.on_error == "raise":
            raise RateStateUnavailableError(f"Redis rate state unavailable ({cause})") from exc

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.info("Redis rate state is back: the budget is shared again")
