"""Finding what a lost create or reverse did: ``recover()`` and the claims behind it.

A lost request is matched by what it asked for: the same giftcard, shop and amount, created
between its sending and its deadline. Two rules keep one transaction from being handed to two
callers:

- every transaction this client accounts for is *claimed*: one its create or reverse made (the
  claim is taken in the request's own task, as its answer is read) or one ``recover()`` gave to a
  lost request. A claimed transaction is never given to another lost request;
- before it decides, ``recover()`` waits for this client's creates and reverses that could have
  made the same transaction and are still under way; a search and the claim that follows it are
  one step with no other task in between.

What it cannot know: another process (or client) charging the same card the same amount in the
same shop within the same window. Its transaction looks exactly like the lost one.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ._clock import LAG, ServerClock
from ._errors import OutcomeUnknownError
from ._models import GiftcardTransaction
from ._money import MoneyTasks
from ._params import CreatedAt

__all__ = ["Claims", "Recovery"]

log = logging.getLogger("leat_async")

#: Server and client clocks, and a second-resolution created_at, blur the send time this much.
CLOCK_SLACK: Final = timedelta(seconds=5)
#: Seconds between searches while a lost request may still land: doubling up to the cap.
FIRST_POLL: Final = 0.5
MAX_POLL: Final = 8.0
MADE: Final = "made"  # the claim of a transaction a create or reverse of this client returned

Key = tuple[str, str, int]  # giftcard uuid, shop uuid, amount
ListWindow = Callable[[str, CreatedAt], AsyncIterator[GiftcardTransaction]]
GetOne = Callable[[str], Awaitable[GiftcardTransaction]]


class Claims:
    """Transactions this client has accounted for, by uuid (the most recent ``limit``)."""

    def __init__(self, limit: int = 10_000) -> None:
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def claim(self, tx: GiftcardTransaction, owner: str = MADE) -> GiftcardTransaction:
        if tx.uuid is not None:
            self._owners[tx.uuid] = owner
            self._owners.move_to_end(tx.uuid)
            while len(self._owners) > self._limit:
                self._owners.popitem(last=False)
        return tx

    def owner(self, uuid: str) -> str | None:
        return self._owners.get(uuid)


class _Busy:
    """A create or reverse that could have made the same transaction is still under way."""


_BUSY: Final = _Busy()


class Recovery:
    def __init__(
        self,
        *,
        claims: Claims,
        money: MoneyTasks,
        window: ListWindow,
        get: GetOne,
        clock: ServerClock,
    ) -> None:
        self._clock = clock
        self._claims = claims
        self._money = money
        self._window = window
        self._get = get

    async def recover(
        self, error: OutcomeUnknownError, *, wait: bool, margin: float
    ) -> GiftcardTransaction | None:
        if not isinstance(error, OutcomeUnknownError):
            raise TypeError("recover() takes the OutcomeUnknownError of a create or reverse")
        margin = max(0.0, margin)
        key = await self._what_was_asked(error)
        loop = asyncio.get_running_loop()
        # the deadline is wall-clock time; it is turned once into the loop's monotonic clock
        end = loop.time() + (error.deadline - datetime.now(UTC)).total_seconds() + margin
        delay = FIRST_POLL
        while True:
            final = loop.time() >= end  # a search begun after the end sees all that can land
            found = await self._find(error, key, margin, wait=wait)
            if isinstance(found, GiftcardTransaction):
                return found
            if found is None and final:
                if error.status is not None and 200 <= error.status < 300:
                    # the server said it did it: "none was made" would be a lie
                    log.warning(
                        "recover: a %s answered %d is not found", error.operation, error.status
                    )
                    raise error
                return None
            if not wait:
                raise error  # still unknown: it may land later, or a look-alike is under way
            if found is None:
                log.info("recover: the lost %s has not landed yet; looking again", error.operation)
                await asyncio.sleep(min(delay, max(0.0, end - loop.time())))
                delay = min(delay * 2, MAX_POLL)

    async def _what_was_asked(self, error: OutcomeUnknownError) -> Key:
        if error.operation == "create":
            sent = error.sent
            return sent["giftcard_uuid"], sent["shop_uuid"], sent["amount_in_cents"]
        if error.operation == "reverse":
            original = await self._get(error.sent["uuid"])
            if original.card.uuid is None or original.shop.uuid is None:
                raise ValueError("the reversed transaction's card or shop has no uuid to match on")
            return original.card.uuid, original.shop.uuid, -original.amount_in_cents
        raise ValueError(f"recover() handles create and reverse, not {error.operation!r}")

    async def _find(
        self, error: OutcomeUnknownError, key: Key, margin: float, *, wait: bool
    ) -> GiftcardTransaction | _Busy | None:
        """One decision: the lost request's transaction, ``None``, or ``_BUSY`` (not waiting)."""
        window = self._where(error, margin)
        widened = False
        while True:
            busy = self._look_alikes(key)
            if busy:
                if not wait:
                    return _BUSY
                log.info(
                    "recover: waiting for %d create(s) or reverse(s) under way that could have "
                    "made the same transaction",
                    len(busy),
                )
                await asyncio.wait(busy)  # never cancels them
                continue
            rows = [tx async for tx in self._window(key[1], window)]
            if self._look_alikes(key):
                continue  # one started while we searched: its answer decides first
            found = self._claim(rows, key, _owner(error))
            wider = self._where(error, margin)
            if found is None and not widened and _reaches_further(wider, window):
                # the search's own answer told the server's clock, and it lies elsewhere
                window, widened = wider, True
                continue
            return found

    def _where(self, error: OutcomeUnknownError, margin: float) -> CreatedAt:
        """Where the lost request can have landed, in the server's ``created_at``.

        Its send time and deadline are this machine's clock; the server's may differ. Once an
        answer's ``Date`` has told the server's clock, the window moves with the difference
        (the estimate runs up to a second or two behind the server: that much more on top).
        """
        server_now = self._clock.now()
        skew = (server_now - datetime.now(UTC)).total_seconds() if server_now is not None else 0
        earlier = timedelta(seconds=min(0.0, skew))
        later = timedelta(seconds=max(0.0, skew + LAG) + margin)
        return CreatedAt(
            gte=(error.sent_at + earlier - CLOCK_SLACK).replace(microsecond=0),
            lte=error.deadline + later + CLOCK_SLACK,
        )

    def _look_alikes(self, key: Key) -> list[asyncio.Task[Any]]:
        """Creates with the same card, shop and amount, and reverses, still under way."""
        tasks = []
        for request, task in self._money.running():
            body = request.body or {}
            if request.operation == "reverse" or (
                request.operation == "create"
                and (body.get("giftcard_uuid"), body.get("shop_uuid"), body.get("amount_in_cents"))
                == key
            ):
                tasks.append(task)
        return tasks

    def _claim(
        self, rows: list[GiftcardTransaction], key: Key, owner: str
    ) -> GiftcardTransaction | None:
        card, _, amount = key
        free: list[GiftcardTransaction] = []
        for tx in rows:
            if tx.uuid is None or tx.card.uuid != card or tx.amount_in_cents != amount:
                continue
            held = self._claims.owner(tx.uuid)
            if held == owner:
                return tx  # recovered before: the same answer again
            if held is None:
                free.append(tx)
        if not free:
            return None
        if len(free) > 1:
            log.warning("recover: %d unclaimed transactions match the lost request", len(free))
        return self._claims.claim(free[0], owner)


def _reaches_further(wider: CreatedAt, window: CreatedAt) -> bool:
    """The new window covers a whole second or more that the old one did not."""
    second = timedelta(seconds=1)
    low, high, was_low, was_high = wider.gte, wider.lte, window.gte, window.lte
    if low is None or high is None or was_low is None or was_high is None:
        return False
    return low <= was_low - second or high >= was_high + second


def _owner(error: OutcomeUnknownError) -> str:
    """Who claims for a lost request: the same error (even unpickled elsewhere) is one owner,
    and two identical requests lost at the same instant are two."""
    return f"lost {error.ticket}"
