"""The pager: first page, pages, items; a bounded prefetch window; snapshots; de-duplication.

A walk is a snapshot: it sees the rows created before the whole second in which it started (the
server's ``Date``), because ``created_at`` is stored to the second and rows of that same second
could still arrive and shift the pages. A caller's upper bound that is already in the past is
kept as it is; one in the future is cut at the snapshot.
Prefetched pages may complete in any order; they are yielded strictly in page order, and at most
``prefetch`` pages are fetched ahead, so memory stays flat however long the listing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from datetime import UTC, datetime
from typing import Any

import attrs

from ._dispatch import Reply
from ._models import GiftcardTransaction, Page, PageMeta
from ._params import CreatedAt

__all__ = ["Pager", "Position"]

log = logging.getLogger("leat_async")

FetchPage = Callable[[int, CreatedAt | None], Awaitable[Reply[Page]]]


@attrs.frozen
class Position:
    """Where a walk stands: the next page it will yield, and the snapshot bound it uses.

    Save it to resume later with ``list(..., page=position.page, snapshot=position.snapshot)``.
    """

    page: int
    snapshot: datetime | None


def _whole_second(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(microsecond=0)


def _holds_nothing(created_at: CreatedAt | None, snapshot: datetime | None) -> bool:
    """The caller's lower bound is at or after the snapshot: nothing can be in the walk."""
    lower = created_at.lower if created_at is not None else None
    return snapshot is not None and lower is not None and lower >= snapshot


def _bounded(created_at: CreatedAt | None, snapshot: datetime | None) -> CreatedAt | None:
    """The caller's range, cut at the snapshot unless the caller's own upper bound is earlier."""
    if snapshot is None:
        return created_at
    given = created_at or CreatedAt()
    if (given.lt is not None and given.lt <= snapshot) or (
        given.lte is not None and given.lte < snapshot
    ):
        return given
    return CreatedAt(gt=given.gt, gte=given.gte, lt=snapshot)


class Pager:
    """What ``client.giftcard_transactions.list(...)`` returns.

    - ``await pager``: the first page alone (one request, filters as given);
    - ``async for tx in pager``: every transaction of every page, in order;
    - ``async for page in pager.pages()``: the pages;
    - ``pager.position``: where the current walk stands, to checkpoint and resume.
    """

    def __init__(
        self,
        fetch: FetchPage,
        *,
        created_at: CreatedAt | None,
        page: int,
        per_page: int,
        prefetch: int,
        descending: bool = False,
        snapshot: datetime | None = None,
    ) -> None:
        self._fetch = fetch
        self._created_at = created_at
        self._start = page
        self._per_page = per_page
        self._descending = descending
        self._prefetch = max(0, prefetch)
        self._snapshot = snapshot
        self._position = Position(page, snapshot)
        self.total_drift = 0  # pages whose meta.total differed from the first page's

    @property
    def position(self) -> Position:
        return self._position

    def __await__(self) -> Generator[Any, None, Page]:
        return self._first_page().__await__()

    async def _first_page(self) -> Page:
        if _holds_nothing(self._created_at, self._snapshot):
            return self._empty()
        reply = await self._fetch(self._start, _bounded(self._created_at, self._snapshot))
        return reply.value

    def _empty(self) -> Page:
        meta = PageMeta(
            page=self._start,
            limit=self._per_page,
            viewing_from=None,
            viewing_to=None,
            last_page=1,
            total=0,
        )
        return Page(data=[], meta=meta)

    def pages(self) -> AsyncIterator[Page]:
        return _Walk(self)

    def __aiter__(self) -> AsyncIterator[GiftcardTransaction]:
        return _Items(_Walk(self))

    async def _open(self) -> tuple[Page, CreatedAt | None]:
        """Fetch the walk's first page and fix its snapshot bound.

        The snapshot is taken even when the caller gave an upper bound: one in the future
        gives no stability; one in the past is kept as it is (see ``_bounded``).
        """
        if _holds_nothing(self._created_at, self._snapshot):
            return self._empty(), None
        if self._snapshot is not None:
            bound = _bounded(self._created_at, self._snapshot)
            return (await self._fetch(self._start, bound)).value, bound
        reply = await self._fetch(self._start, self._created_at)
        snapshot = _whole_second(reply.server_date or datetime.now(UTC))
        self._snapshot = snapshot
        if _holds_nothing(self._created_at, snapshot):
            return self._empty(), None
        bound = _bounded(self._created_at, snapshot)
        page = reply.value
        if bound != self._created_at and self._may_differ(page, snapshot):
            page = (await self._fetch(self._start, bound)).value
        return page, bound

    def _may_differ(self, page: Page, snapshot: datetime) -> bool:
        """Could this unbounded first page differ from the same page within the snapshot?

        The server ran its query a moment before it stamped ``Date``: rows made in between,
        and rows of the snapshot's own second, sort first in a descending walk and fall on
        this page when it is the last one; in any other case they come after it. An empty
        listing is taken as it is (one request): a row that slipped into those milliseconds
        arrived after the walk began.
        """
        if any(tx.created_at >= snapshot for tx in page.data):
            return True
        return bool(page.data) and (self._descending or page.meta.last_page <= self._start)


class _Walk:
    """One walk over the pages. Breaking out or dropping it cancels its prefetches at once."""

    def __init__(self, pager: Pager) -> None:
        self._pager = pager
        self._bound: CreatedAt | None = None
        self._next = pager._start  # the next page number to schedule
        self._last_page: int | None = None
        self._total: int | None = None
        self._tasks: deque[tuple[int, asyncio.Task[Reply[Page]]]] = deque()
        self._seen: deque[set[int]] = deque(maxlen=2)
        self._done = False
        self._opened = False

    def __aiter__(self) -> _Walk:
        return self

    async def __anext__(self) -> Page:
        if self._done:
            raise StopAsyncIteration
        try:
            page = await self._next_page()
        except BaseException:
            if self._tasks:  # asking again refetches the failed page: nothing is skipped
                self._next = self._tasks[0][0]
            self._cancel()
            raise
        if page is None:
            self._done = True
            self._cancel()
            raise StopAsyncIteration
        return page

    async def aclose(self) -> None:
        self._done = True
        tasks = [task for _, task in self._tasks]
        self._cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __del__(self) -> None:
        self._cancel()

    def _cancel(self) -> None:
        while self._tasks:
            _, task = self._tasks.popleft()
            if task.done():
                if not task.cancelled():
                    task.exception()  # a prefetch that failed after the walk ended: not an error
            else:
                task.cancel()

    async def _next_page(self) -> Page | None:
        pager = self._pager
        if not self._opened:
            page, self._bound = await pager._open()
            self._opened = True
            number = pager._start
            self._next = number + 1
        else:
            self._schedule()
            if not self._tasks:
                return None
            number, task = self._tasks[0]
            if task.done():
                await asyncio.sleep(0)  # a prefetched page is ready: still let others run
            page = (await task).value
            self._tasks.popleft()
        if not page.data:
            return None
        self._observe(page)
        self._schedule()
        pager._position = Position(number + 1, pager._snapshot)
        return self._unseen(page)

    def _observe(self, page: Page) -> None:
        meta = page.meta
        if self._total is None:
            self._total = meta.total
        elif meta.total != self._total:
            self._pager.total_drift += 1
            log.warning(
                "listing changed during the walk: total %d -> %d on page %d",
                self._total,
                meta.total,
                meta.page,
            )
            self._total = meta.total
        self._last_page = meta.last_page

    def _schedule(self) -> None:
        """Keep the awaited page and ``prefetch`` more requested, never past the last page.

        A page's request goes out as soon as a concurrency slot frees, so even at
        ``max_concurrency=1`` the next request overlaps the parsing of the current page.
        """
        if self._last_page is None:
            return
        window = self._pager._prefetch + 1
        while len(self._tasks) < window and self._next <= self._last_page:
            number = self._next
            self._next += 1
            task = asyncio.ensure_future(self._pager._fetch(number, self._bound))
            self._tasks.append((number, task))

    def _unseen(self, page: Page) -> Page:
        """Drop rows already yielded by the previous pages (a shift at a page boundary)."""
        ids = {tx.id for tx in page.data}
        seen = set().union(*self._seen) if self._seen else set()
        self._seen.append(ids)
        if not seen or not (ids & seen):
            return page
        return Page(data=[tx for tx in page.data if tx.id not in seen], meta=page.meta)


class _Items:
    def __init__(self, walk: _Walk) -> None:
        self._walk = walk
        self._rows: deque[GiftcardTransaction] = deque()

    def __aiter__(self) -> _Items:
        return self

    async def __anext__(self) -> GiftcardTransaction:
        while not self._rows:
            page = await self._walk.__anext__()
            self._rows.extend(page.data)
        return self._rows.popleft()

    async def aclose(self) -> None:
        await self._walk.aclose()
