"""``client.giftcard_transactions``: arguments -> request -> model, and nothing more."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from .._api.convert import echoed_attributes, transaction_page, transaction_parser
from .._api.models import GiftcardTransaction, Page
from .._api.params import (
    CreatedAt,
    check_amount,
    check_custom_attributes,
    check_id,
    check_page,
    check_sort,
)
from .._api.unknown import OutcomeUnknownError
from .._api.wire import Request, query_pairs
from .._http.recovery import Claims, GroupOutcome, Recovery
from .._paging.listing import Listing, Sort, check_walk
from .._paging.pager import Pager
from .._paging.position import Position
from .._paging.snapshot import range_parameters

if TYPE_CHECKING:
    from .._http.dispatch import Dispatcher

__all__ = ["GiftcardTransactions"]

_PATH = "/giftcard-transactions"
#: Seconds ``recover()`` goes on looking past a lost request's deadline (clock granularity).
RECOVERY_MARGIN = 2.0


class GiftcardTransactions:
    """The four calls of the giftcard-transactions API, and ``recover``.

    ``timeout=``: seconds per attempt for this call, instead of the client's.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        prefetch: int,
        fingerprint: Callable[[str], str],
        correlation_attribute: str | None = None,
    ) -> None:
        self._dispatch = dispatcher
        self._fingerprint = fingerprint
        self._prefetch = prefetch
        self._correlation = correlation_attribute
        self._claims = Claims()
        self._recovery = Recovery(
            claims=self._claims,
            money=dispatcher.money,
            window=self._latest,
            get=self.get,
            clock=dispatcher.server_clock,
        )

    async def get(self, uuid: str, *, timeout: float | None = None) -> GiftcardTransaction:
        uuid = check_id(uuid, "uuid", in_path=True)
        request = Request("GET", f"{_PATH}/{uuid}", operation="get", subject=uuid)
        return (await self._dispatch.send(request, transaction_parser, timeout=timeout)).value

    async def create(
        self,
        *,
        giftcard_uuid: str,
        amount_in_cents: int,
        shop_uuid: str,
        custom_attributes: Mapping[str, str | int | float | bool | None] | None = None,
        timeout: float | None = None,
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
        if self._correlation is not None and self._correlation not in (attributes or {}):
            attributes = {**(attributes or {}), self._correlation: secrets.token_hex(8)}
        if attributes is not None:
            body["custom_attributes"] = attributes
        request = Request("POST", _PATH, body=body, operation="create")
        lost = self._recovery.lost
        return (await self._dispatch.send(request, self._claimed, timeout=timeout, lost=lost)).value

    async def reverse(self, uuid: str, *, timeout: float | None = None) -> GiftcardTransaction:
        """Reverse a transaction; returns the new, reversing transaction. Never sent twice."""
        uuid = check_id(uuid, "uuid", in_path=True)
        request = Request("POST", f"{_PATH}/{uuid}/reverse", operation="reverse", subject=uuid)
        lost = self._recovery.lost
        return (await self._dispatch.send(request, self._claimed, timeout=timeout, lost=lost)).value

    def _claimed(self, body: bytes) -> GiftcardTransaction:
        """A transaction this client made: claimed as its answer is read (in the request's
        own task, so even a create whose caller was cancelled claims what it made)."""
        return self._claims.claim(transaction_parser(body))

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
        check_walk(page=page, prefetch=prefetch, resume=resume, snapshot=snapshot)
        base = query_pairs([("perPage", per_page), *filters, ("sort", check_sort(sort))])
        # a position names the filters; a card's code, by its fingerprint alone
        named = query_pairs([("perPage", per_page), *self._secret(filters), ("sort", sort)])
        legacy = (*base, *range_parameters(created_at))  # what positions of 0.x named

        ranged: list[Any] = [None, ()]  # the last bound and its query: a walk keeps one

        def request(number: int, bound: CreatedAt | None) -> Request:
            if bound is not ranged[0]:
                ranged[:] = bound, tuple(bound.query()) if bound else ()
            query = (*base, ("page", str(number)), *ranged[1])
            return Request("GET", _PATH, query=query, operation="list")

        listing = Listing(
            name="giftcard-transactions",
            parameters=(*named, *range_parameters(created_at)),
            legacy_parameters=legacy if giftcard_hash is not None else None,
            per_page=per_page,
            request=request,
            parse=transaction_page,
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

    def _secret(
        self, filters: Sequence[tuple[str, str | None]]
    ) -> Sequence[tuple[str, str | None]]:
        return [
            (name, self._fingerprint(value) if name == "giftcard_hash" and value else value)
            for name, value in filters
        ]

    async def recover(
        self,
        error: OutcomeUnknownError,
        *,
        wait: bool = True,
        margin: float = RECOVERY_MARGIN,
    ) -> GiftcardTransaction | None:
        """Find what a lost ``create`` or ``reverse`` did.

        Returns the transaction it made, or ``None`` when it made none. It never answers
        ``None`` while the lost request could still land (until ``error.deadline`` plus
        ``margin`` seconds): it searches again and again until then, and returns as soon as it
        finds the transaction. It never gives one transaction to two lost requests, nor one
        that a create or reverse of this client still under way is about to return.

        ``wait=False``: search once and answer at once: the transaction; ``None`` when the
        deadline has passed; otherwise the ``OutcomeUnknownError`` is raised again (still
        unknown), so that a web handler can answer now and let a background job finish.
        Works for an error unpickled in another process or client too.

        Look-alikes (lost requests with the same card, shop and amount, close in time) are
        decided together: one answered with a 2xx has first claim, and where they cannot be
        told apart an :class:`~leat_async.AmbiguousOutcomeError` names the group (resolve it
        with :meth:`recover_group`); it never guesses. Where the server echoes
        ``custom_attributes``, what each request sent there tells them apart exactly.
        """
        found = self._recovery.recover(error, wait=wait, margin=margin)
        if (telemetry := self._dispatch.telemetry) is None:
            return await found
        return await telemetry.around("giftcard_transactions.recover", found)

    async def recover_group(
        self,
        errors: Sequence[OutcomeUnknownError],
        *,
        wait: bool = True,
        margin: float = RECOVERY_MARGIN,
    ) -> GroupOutcome:
        """Resolve look-alike lost requests as a whole (``AmbiguousOutcomeError.requests``).

        Waits until none of them can land any more (``wait=False``: raises the first error
        again if one still can), then says how many landed, which transactions they made
        (claimed for the group), and the requests whose own outcome is certain. The
        requests must share card, shop and amount (else ``ValueError``). Lost requests of
        other processes can be resolved together here too.
        """
        resolved = self._recovery.recover_group(errors, wait=wait, margin=margin)
        if (telemetry := self._dispatch.telemetry) is None:
            return await resolved
        return await telemetry.around("giftcard_transactions.recover_group", resolved)

    async def _latest(
        self, shop: str, window: CreatedAt
    ) -> AsyncIterator[tuple[GiftcardTransaction, Any]]:
        """The window's rows as they are now, the current second included (no snapshot),
        each with the ``custom_attributes`` the server echoed, if it does."""
        number, last = 1, 1
        base = query_pairs([("perPage", 100), ("shop_uuid", shop)])
        while number <= last:
            query = (*base, ("page", str(number)), *window.query())
            request = Request("GET", _PATH, query=query, operation="list")
            page, echoes = (await self._dispatch.send(request, _page_and_echoes)).value
            for tx, echo in zip(page.data, echoes, strict=True):
                yield tx, echo
            number, last = number + 1, page.meta.last_page


def _page_and_echoes(body: bytes) -> tuple[Page[GiftcardTransaction], list[Any]]:
    page = transaction_page(body)
    return page, echoed_attributes(body, len(page.data))
