"""The lost requests a client remembers: what each asked for, where it can have landed, and
which of them look alike (the groups that :mod:`._recovery` decides together).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, TypeVar

import attrs

from .._api.models import GiftcardTransaction
from .._api.params import CreatedAt
from .._api.unknown import OutcomeUnknownError
from .clock import LAG, ServerClock
from .lookalike import Lost

__all__ = [
    "CLOCK_SLACK",
    "GetOne",
    "Key",
    "ListWindow",
    "LostRequests",
    "Searches",
    "Span",
    "last_landing",
]

log = logging.getLogger("leat_async")

#: Server and client clocks, and a second-resolution created_at, blur the send time this much.
CLOCK_SLACK: Final = timedelta(seconds=5)
#: Lost requests remembered (the most recent ones).
REMEMBERED: Final = 10_000
#: Seconds a search of a shop's rows serves other recoveries that need no fresher one.
SHARED: Final = 0.5

Key = tuple[str, str, int]  # giftcard uuid, shop uuid, amount
Span = tuple[datetime, datetime]  # where a lost request's transaction can be (both included)
GetOne = Callable[[str], Awaitable[GiftcardTransaction]]
Row = tuple[GiftcardTransaction, Any]  # a row and the custom_attributes the server echoed
#: The shop's rows in a window, each with the ``custom_attributes`` the server echoed (if any).
ListWindow = Callable[[str, CreatedAt], AsyncIterator[Row]]
S = TypeVar("S")  # what a decided request was settled with


class LostRequests(Generic[S]):
    """The most recent lost requests of a client, by ticket, and how each was settled."""

    def __init__(self, *, get: GetOne, clock: ServerClock, limit: int = REMEMBERED) -> None:
        self._get = get
        self._clock = clock
        self._limit = limit
        self._lost: OrderedDict[str, OutcomeUnknownError] = OrderedDict()
        self._keys: dict[str, Key] = {}
        #: decided lost requests and what they were settled with
        self.settled: dict[str, S] = {}

    def __contains__(self, error: OutcomeUnknownError) -> bool:
        return error.ticket in self._lost

    def remember(self, error: OutcomeUnknownError) -> None:
        self._lost[error.ticket] = error
        self._lost.move_to_end(error.ticket)
        while len(self._lost) > self._limit:
            ticket, _ = self._lost.popitem(last=False)
            self._keys.pop(ticket, None)
            self.settled.pop(ticket, None)

    async def key(self, error: OutcomeUnknownError) -> Key:
        """What ``error`` asked for: card, shop and amount (a reverse's, from its original)."""
        key = self._keys.get(error.ticket)
        if key is None:
            key = self._keys[error.ticket] = await self._what_was_asked(error)
        return key

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

    async def group(
        self,
        error: OutcomeUnknownError,
        key: Key,
        margin: float,
        also: Sequence[OutcomeUnknownError] = (),
    ) -> list[OutcomeUnknownError]:
        """``error`` and the undecided lost requests that look like it (and ``also``): the same
        card, shop and amount, in windows that overlap one after another; ``error`` first."""
        others = []
        for ticket, member in list(self._lost.items()):
            if ticket == error.ticket or ticket in self.settled:
                continue
            if await self._key_or_none(member) == key:
                others.append(member)
        others += [m for m in also if m.ticket != error.ticket and m not in others]
        group, spans = [error], [self.where(error, margin)]
        grown = True
        while grown:  # the windows that overlap the group's, until none more do
            grown = False
            for member in list(others):
                where = self.where(member, margin)
                if any(_overlap(where, span) for span in spans):
                    group.append(member)
                    spans.append(where)
                    others.remove(member)
                    grown = True
        return group

    async def _key_or_none(self, member: OutcomeUnknownError) -> Key | None:
        try:
            return await self.key(member)
        except Exception as exc:  # a reverse whose original cannot be read: not comparable
            log.info("recover: a lost %s is left out of the comparison: %s", member.operation, exc)
            return None

    def as_lost(self, error: OutcomeUnknownError, margin: float) -> Lost:
        """``error`` as the look-alike decision sees it."""
        low, high = self.where(error, margin)
        status = error.status
        attributes = error.sent.get("custom_attributes") if error.operation == "create" else None
        return Lost(
            error.ticket,
            landed=status is not None and 200 <= status < 300,
            low=low,
            high=high,
            attributes=attributes if isinstance(attributes, Mapping) else None,
        )

    def span(self, group: Sequence[OutcomeUnknownError], margin: float) -> Span:
        """Where any of ``group`` can have landed."""
        spans = [self.where(member, margin) for member in group]
        return min(low for low, _ in spans), max(high for _, high in spans)

    def where(self, error: OutcomeUnknownError, margin: float) -> Span:
        """Where the lost request can have landed, in the server's ``created_at``.

        Its send time and deadline are this machine's clock; the server's may differ. Once an
        answer's ``Date`` has told the server's clock, the window moves with the difference
        (the estimate runs up to a second or two behind the server: that much more on top).
        """
        server_now = self._clock.now()
        skew = (server_now - datetime.now(UTC)).total_seconds() if server_now is not None else 0
        earlier = timedelta(seconds=min(0.0, skew))
        later = timedelta(seconds=max(0.0, skew + LAG) + margin)
        low = (error.sent_at + earlier - CLOCK_SLACK).replace(microsecond=0)
        return low, last_landing(error) + later + CLOCK_SLACK


def last_landing(error: OutcomeUnknownError) -> datetime:
    """The latest moment (this machine's clock) at which ``error``'s request may land: when
    the server said it was done with it, else its deadline."""
    finished = error.finished_at
    return finished if finished is not None and finished < error.deadline else error.deadline


def _overlap(a: Span, b: Span) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _between(span: Span) -> CreatedAt:
    """The search of ``span``: both ends included."""
    return CreatedAt(gte=span[0], lte=span[1])


@attrs.define
class _Search:
    shop: str
    span: Span
    started: datetime
    rows: asyncio.Future[list[Row]]


class Searches:
    """Searches of a shop's rows, shared: recoveries of look-alikes (which all look in the same
    place, and look again and again until they can decide) make one search, not one each."""

    def __init__(self, window: ListWindow) -> None:
        self._window = window
        self._recent: list[_Search] = []

    async def rows(self, shop: str, span: Span, *, not_before: datetime | None) -> list[Row]:
        """The shop's rows in ``span`` from a search begun at ``not_before`` or later (one
        begun before it may miss what landed since), and at most ``SHARED`` seconds ago."""
        now = datetime.now(UTC)
        self._recent = [s for s in self._recent if (now - s.started).total_seconds() < SHARED]
        for search in self._recent:
            if (
                search.shop == shop
                and search.span[0] <= span[0]
                and span[1] <= search.span[1]
                and (not_before is None or search.started >= not_before)
            ):
                rows = await asyncio.shield(search.rows)
                return [row for row in rows if span[0] <= row[0].created_at <= span[1]]
        task = asyncio.ensure_future(self._collect(shop, span))
        self._recent.append(_Search(shop, span, now, task))
        return await asyncio.shield(task)

    async def _collect(self, shop: str, span: Span) -> list[Row]:
        return [row async for row in self._window(shop, _between(span))]
