"""One walk over a listing: a bounded prefetch window over its pages, de-duplication, proof.

Prefetched pages may complete in any order; they are yielded strictly in page order, and at most
``prefetch`` pages are fetched ahead, so memory stays flat however long the listing. The walk's
requests belong to its iterator: closing the iterator (``aclose()``, ``async with``) or
dropping it cancels them at once. What the walk has handed out lives in a :class:`WalkState`
that the pager keeps, so ``pager.position`` outlives the iterator. The walk needs nothing of the
pager: its pages come from a :class:`~leat_async._paging.listing.Source`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Generic, Self, TypeVar

from .._api.closing import AsyncClosing
from .._api.models import Page
from .._api.params import CreatedAt
from .completion import prove_complete, rows_of_second
from .listing import Source
from .opening import open_walk
from .position import Key, Position, WalkState
from .ties import Edge, Seconds

if TYPE_CHECKING:
    from .._http.outcomes import Received

__all__ = ["PageIterator"]

log = logging.getLogger("leat_async")
T = TypeVar("T")

#: Seconds fetched whole whose rows the walk keeps an eye out for later (an order that is not
#: by ``created_at`` could still show them).
_RECENT_COMPLETIONS = 4


class PageIterator(AsyncClosing, Generic[T]):
    """A walk over the pages of a listing (``pager.pages()``).

    ``position`` is exactly what it has handed out. Close it (``aclose()``, ``async with``, or
    ``contextlib.aclosing``) when leaving early: its prefetches are cancelled at once.
    """

    def __init__(self, source: Source[T], state: WalkState[T]) -> None:
        self._source = source
        self._state = state
        self._bound: CreatedAt | None = None
        self._next = source.start  # the next page number to schedule
        self._last_page: int | None = None
        self._total: int | None = None
        self._tasks: deque[tuple[int, asyncio.Task[Received[Page[T]]]]] = deque()
        self._done = False
        self._opened = False
        self._armed: asyncio.TimerHandle | None = None  # a prefetch to start if the caller yields
        listing = source.listing
        # a listing by created_at: the seconds a page boundary cuts are checked (see _ties)
        self._seconds = (
            None if listing.created_at is None else Seconds(listing.key, listing.created_at)
        )
        mark = state.edge_after  # a resumed walk's: the repeats of its edge, if known
        self._edge = None
        if mark is not None:
            second = int(mark[0].timestamp())
            self._edge = Edge(second, mark[1], mark[2] or 0, unsure=mark[2] is None)
        self._completed: deque[frozenset[Key]] = deque(maxlen=_RECENT_COMPLETIONS)
        self._handed = state.handed_before  # rows handed out in all (None: not known)

        self._again: int | None = None  # a page to ask for again (it could not be completed)
        walk = weakref.ref(self)  # pending work must not keep a dropped walk alive

        def refill(done: asyncio.Task[Received[Page[T]]]) -> None:
            # a prefetch's slot just freed: another may take it at once. Not after a failure
            # (the caller decides), nor for a task the walk has let go (closed, failed)
            it = walk()
            if it is None or done.cancelled() or done.exception() is not None:
                return
            if any(task is done for _, task in it._tasks):
                it._schedule(arm=False)

        def yielded() -> None:  # the caller awaits something of its own: prefetch meanwhile
            if (it := walk()) is not None:
                it._armed = None
                it._start(max(1, it._source.free_slots()))

        self._refill = refill
        self._yielded = yielded

    @property
    def position(self) -> Position | None:
        """What this walk has handed out (``None`` until its snapshot is fixed)."""
        return self._state.position()

    @property
    def total_drift(self) -> int:
        """Pages whose ``meta.total`` differed from the first page's."""
        return self._state.total_drift

    @property
    def left(self) -> deque[T]:
        """The rows of the page being handed out that are not handed out yet (the item walk
        takes them from here; the state reads it to know how many were handed out)."""
        return self._state.left

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Page[T]:
        if self._done:
            raise StopAsyncIteration
        try:
            page = await self._next_page()
        except BaseException as error:
            if self._again is not None:  # a page fetched but not handed out: that one again
                self._next, self._again = self._again, None
            elif self._tasks:  # asking again refetches the failed page: nothing is skipped
                self._next = self._tasks[0][0]
            self._cancel(error)
            raise
        if page is None:
            self._done = True
            self._cancel()
            raise StopAsyncIteration
        return page

    async def aclose(self) -> None:
        """End the walk: cancel its prefetches and wait until they are gone.

        A page that a one-slot walk is asking for in its reader's own task (closed from
        another task meanwhile) is not cut short: the reader gets ``StopAsyncIteration``
        when that request ends.
        """
        self._done = True
        tasks = [task for _, task in self._tasks]
        self._cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __del__(self) -> None:
        self._cancel()

    def _cancel(self, error: BaseException | None = None) -> None:
        if self._source.trace is not None:  # the walk's span ends with it (or its failure)
            self._source.trace.end(error)
        if self._armed is not None:
            self._armed.cancel()
            self._armed = None
        while self._tasks:
            _, task = self._tasks.popleft()
            if task.done():
                if not task.cancelled():
                    task.exception()  # a prefetch that failed after the walk ended: not an error
            else:
                task.cancel()

    async def _next_page(self) -> Page[T] | None:
        if not self._opened:
            page, self._bound = await open_walk(self._source, self._state)
            self._opened = True
            number = self._source.start
            self._next = number + 1
        else:
            if self._armed is not None:  # the caller never yielded: nothing was prefetched
                self._armed.cancel()
                self._armed = None
            self._schedule(arm=False)
            if self._tasks:
                number, task = self._tasks[0]
                if task.done():
                    await asyncio.sleep(0)  # a prefetched page is ready: still let others run
                page = (await task).value
                self._tasks.popleft()
            elif self._last_page is not None and self._next <= self._last_page:
                # one request at a time: the page is asked for here, in the caller's task,
                # as a plain request loop would (no task, no hand-over)
                number = self._next
                self._next = number + 1
                try:
                    page = (await self._source.fetch(number, self._bound)).value
                except BaseException:
                    self._next = number  # asking again asks for this page again
                    raise
                if self._done:  # closed meanwhile (its request was not cut short): no more
                    return None
            else:
                prove_complete(self._handed, self._state.expected)
                return None
        if not page.data:
            prove_complete(self._handed, self._state.expected)
            return None
        self._observe(page)
        self._schedule()
        try:
            return await self._hand_out(number, page)
        except BaseException:
            self._again = number
            raise

    def _observe(self, page: Page[T]) -> None:
        meta = page.meta
        if self._seconds is not None:
            # Rows created in the past during the walk only add to the total, and a first page
            # fetched before the snapshot was fixed counts rows of its second too: the lowest
            # total seen is what the walk must reach, its snapshot as it began.
            known = self._state.expected
            self._state.expected = meta.total if known is None else min(known, meta.total)
        if self._total is None:
            self._total = meta.total
        elif meta.total != self._total:
            self._state.total_drift += 1
            log.warning(
                "listing changed during the walk: total %d -> %d on page %d",
                self._total,
                meta.total,
                meta.page,
            )
            self._total = meta.total
        self._last_page = meta.last_page

    def _schedule(self, *, arm: bool = True) -> None:
        """Keep the awaited page and ``prefetch`` more requested, never past the last page,
        and only into the client's free concurrency slots: a prefetch never queues for one.

        A walk with one slot to use (``max_concurrency=1``, or a client busy with other
        work) has its next page asked for when the caller wants it, unless the caller awaits
        something of its own first (``arm``): then the page is prefetched meanwhile. So a
        caller that only iterates costs what a plain request loop costs, one that writes to a
        database between rows overlaps its writes with the next request, and walks sharing a
        busy client queue one request each.
        """
        if self._last_page is None or self._next > self._last_page or self._done:
            return
        free = self._source.free_slots()
        if self._tasks or free > 1:
            self._start(free)
        elif arm and self._armed is None:
            # a timer due at once, not call_soon: cancelled, it costs the loop no extra turn
            loop = asyncio.get_running_loop()
            self._armed = loop.call_at(loop.time(), self._yielded)

    def _start(self, count: int) -> None:
        """Request up to ``count`` more pages, within the window and the listing."""
        last = self._last_page
        if last is None or self._done:
            return
        count = min(count, self._source.prefetch + 1 - len(self._tasks), last - self._next + 1)
        loop = asyncio.get_running_loop()
        for _ in range(count):
            number = self._next
            self._next += 1
            task = loop.create_task(self._source.fetch(number, self._bound))
            task.add_done_callback(self._refill)
            self._tasks.append((number, task))

    async def _hand_out(self, number: int, page: Page[T]) -> Page[T]:
        """Record the page in the walk's state, without rows handed out before (a shift, or
        a repeat of an unstable order), with the rows of a second it hid (see ``ties``)."""
        rows: Sequence[T] = page.data
        mark = None
        if self._seconds is not None:
            cut = self._seconds.cut(rows, self._edge, last=number >= page.meta.last_page)
            if cut.complete is None and not self._completed:
                if len(cut.head) + len(cut.rest) != len(rows):  # repeats were dropped
                    rows = [*cut.head, *cut.rest]
            else:
                missing = await rows_of_second(self._source, cut.complete) if cut.complete else []
                done = frozenset().union(*self._completed)
                rows = [r for r in (*cut.head, *missing, *cut.rest) if self._key(r) not in done]
                if missing:
                    self._completed.append(frozenset(map(self._key, missing)))
            self._edge = cut.edge
            edge = cut.edge
            mark = None
            if edge is not None:
                when = datetime.fromtimestamp(edge.second, UTC)
                mark = (when, edge.keys, edge.counted)
        kept = self._state.turn(number, rows, mark)
        if self._handed is not None:
            self._handed += len(kept)
        return page if kept is page.data else Page(data=kept, meta=page.meta)

    def _key(self, item: T) -> Key:
        return self._source.listing.key(item)
