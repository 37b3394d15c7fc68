"""``client.giftcard_transactions``: arguments -> request -> model, and nothing more."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ._convert import structure
from ._dispatch import RECOVERY_MARGIN
from ._errors import OutcomeUnknownError
from ._models import GiftcardTransaction, Page
from ._pagination import Listing, Pager, Sort
from ._params import (
    CreatedAt,
    check_amount,
    check_custom_attributes,
    check_id,
    check_page,
    check_sort,
)
from ._position import Position
from ._snapshot import range_parameters
from ._wire import Request, query_pairs

if TYPE_CHECKING:
    from ._dispatch import Dispatcher

__all__ = ["GiftcardTransactions"]

log = logging.getLogger("leat_async")

_PATH = "/giftcard-transactions"
#: Server and client clocks, and a second-resolution created_at, blur the send time this much.
_CLOCK_SLACK = timedelta(seconds=5)


def _one(doc: Any) -> GiftcardTransaction:
    return structure(doc["data"], GiftcardTransaction)


def _page(doc: Any) -> Page[GiftcardTransaction]:
    return structure(doc, Page[GiftcardTransaction])


class GiftcardTransactions:
    """The four calls of the giftcard-transactions API, and ``recover``."""

    def __init__(self, dispatcher: Dispatcher, *, prefetch: int) -> None:
        self._dispatch = dispatcher
        self._prefetch = prefetch
        # uuids this client has accounted for (made, or recovered for one lost request):
        # recover() never hands out one of them for another lost request
        self._made: OrderedDict[str, str] = OrderedDict()

    async def get(self, uuid: str) -> GiftcardTransaction:
        uuid = check_id(uuid, "uuid", in_path=True)
        request = Request("GET", f"{_PATH}/{uuid}", operation="get", subject=uuid)
        return (await self._dispatch.send(request, _one)).value

    async def create(
        self,
        *,
        giftcard_uuid: str,
        amount_in_cents: int,
        shop_uuid: str,
        custom_attributes: Mapping[str, str | int | float | bool | None] | None = None,
    ) -> GiftcardTransaction:
        """Credit (positive) or debit (negative) a giftcard. Never sent twice.

        A lost answer raises :class:`OutcomeUnknownError`; pass it to :meth:`recover`.
        """
        body: dict[str, Any] = {
            "giftcard_uuid": check_id(giftcard_uuid, "giftcard_uuid"),
            "amount_in_cents": check_amount(amount_in_cents),
            "shop_uuid": check_id(shop_uuid, "shop_uuid"),
        }
        attributes = check_custom_attributes(custom_attributes)
        if attributes is not None:
            body["custom_attributes"] = attributes
        request = Request("POST", _PATH, body=body, operation="create")
        return self._remember((await self._dispatch.send(request, _one)).value)

    async def reverse(self, uuid: str) -> GiftcardTransaction:
        """Reverse a transaction; returns the new, reversing transaction. Never sent twice."""
        uuid = check_id(uuid, "uuid", in_path=True)
        request = Request("POST", f"{_PATH}/{uuid}/reverse", operation="reverse", subject=uuid)
        return self._remember((await self._dispatch.send(request, _one)).value)

    def list(
        self,
        *,
        per_page: int = 100,
        page: int = 1,
        giftcard_hash: str | None = None,
        giftcard_program_uuid: str | None = None,
        shop_uuid: str | None = None,
        created_at: CreatedAt | None = None,
        sort: Sort | None = None,
        prefetch: int | None = None,
        resume: Position | None = None,
        snapshot: datetime | None = None,
    ) -> Pager[GiftcardTransaction]:
        """A pager over the listing; see :class:`~leat_async.Pager`.

        ``prefetch``: pages fetched ahead while walking (default: the client's concurrency).
        ``resume``: a ``pager.position`` of an earlier walk with the same filters; the walk
        goes on after the last row that walk handed out. (``page`` with ``snapshot``, the
        bound of an earlier walk, still resumes at a page boundary.)
        """
        per_page, page = check_page(per_page, page)
        filters = [
            ("giftcard_hash", giftcard_hash),
            ("giftcard_program_uuid", giftcard_program_uuid),
            ("shop_uuid", shop_uuid),
        ]
        for name, value in filters:
            if value is not None:
                check_id(value, name)
        if created_at is not None and not isinstance(created_at, CreatedAt):
            raise TypeError(f"created_at must be a CreatedAt, got {type(created_at).__name__}")
        if snapshot is not None and (snapshot.tzinfo is None or snapshot.utcoffset() is None):
            raise ValueError("snapshot must be a timezone-aware datetime")
        if resume is not None and not isinstance(resume, Position):
            raise TypeError(f"resume must be a Position, got {type(resume).__name__}")
        if resume is not None and (page != 1 or snapshot is not None):
            raise ValueError("resume= gives the page and the snapshot: leave page= and snapshot=")
        base = query_pairs([("perPage", per_page), *filters, ("sort", check_sort(sort))])
        if prefetch is not None and (type(prefetch) is not int or prefetch < 0):
            raise ValueError(f"prefetch must be an int >= 0, got {prefetch!r}")

        def request(number: int, bound: CreatedAt | None) -> Request:
            query = (*base, ("page", str(number)), *(bound.query() if bound else ()))
            return Request("GET", _PATH, query=query, operation="list")

        listing = Listing(
            name="giftcard-transactions",
            parameters=(*base, *range_parameters(created_at)),
            per_page=per_page,
            request=request,
            parse=_page,
            key=attrgetter("id"),
            created_at=attrgetter("created_at"),
            range=created_at,
            descending=sort == "-created_at",
        )
        return Pager(
            listing,
            dispatcher=self._dispatch,
            page=page,
            prefetch=self._prefetch if prefetch is None else prefetch,
            snapshot=snapshot,
            resume=resume,
        )

    async def recover(
        self, error: OutcomeUnknownError, *, margin: float = RECOVERY_MARGIN
    ) -> GiftcardTransaction | None:
        """Find what a lost ``create`` or ``reverse`` did.

        Returns the transaction it made, or ``None`` when it made none. Never answers ``None``
        while the lost request could still land: it first waits out the request's deadline
        (send time plus its timeout) plus ``margin`` seconds.
        """
        if not isinstance(error, OutcomeUnknownError):
            raise TypeError("recover() takes the OutcomeUnknownError of a create or reverse")
        margin = max(0.0, margin)
        card, shop, amount = await self._what_was_asked(error)
        found = await self._search(error, card, shop, amount, margin)
        if found is not None:
            return found
        wait = (error.deadline - datetime.now(UTC)).total_seconds() + margin
        if wait > 0:
            log.info("recover: waiting %.1f s for the lost %s to land", wait, error.operation)
            await asyncio.sleep(wait)
        return await self._search(error, card, shop, amount, margin)

    async def _what_was_asked(self, error: OutcomeUnknownError) -> tuple[str, str, int]:
        if error.operation == "create":
            sent = error.sent
            return sent["giftcard_uuid"], sent["shop_uuid"], sent["amount_in_cents"]
        if error.operation == "reverse":
            original = await self.get(error.sent["uuid"])
            if original.card.uuid is None or original.shop.uuid is None:
                raise ValueError("the reversed transaction's card or shop has no uuid to match on")
            return original.card.uuid, original.shop.uuid, -original.amount_in_cents
        raise ValueError(f"recover() handles create and reverse, not {error.operation!r}")

    async def _search(
        self, error: OutcomeUnknownError, card: str, shop: str, amount: int, margin: float
    ) -> GiftcardTransaction | None:
        key = f"{error.operation} {error.path} {error.sent_at.isoformat()}"
        # wherever the lost request could have landed: from its sending to the end of the wait
        window = CreatedAt(
            gte=(error.sent_at - _CLOCK_SLACK).replace(microsecond=0),
            lte=error.deadline + _CLOCK_SLACK + timedelta(seconds=margin),
        )
        matches = [
            tx
            async for tx in self._latest(shop, window)
            if tx.card.uuid == card
            and tx.amount_in_cents == amount
            and self._made.get(tx.uuid or "", key) == key
        ]
        if not matches:
            return None
        if len(matches) > 1:
            log.warning("recover: %d transactions match the lost request; the first", len(matches))
        return self._remember(matches[0], key)

    async def _latest(self, shop: str, window: CreatedAt) -> AsyncIterator[GiftcardTransaction]:
        """The window's rows as they are now, the current second included (no snapshot)."""
        number, last = 1, 1
        while number <= last:
            page = await self.list(shop_uuid=shop, created_at=window, page=number)
            for tx in page.data:
                yield tx
            number, last = number + 1, page.meta.last_page

    def _remember(self, tx: GiftcardTransaction, key: str = "") -> GiftcardTransaction:
        if tx.uuid is not None:
            self._made[tx.uuid] = key
            while len(self._made) > 10_000:
                self._made.popitem(last=False)
        return tx
