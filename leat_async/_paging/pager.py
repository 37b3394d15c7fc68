"""The one pager of every listing: a reusable description of a walk, generic over the item type.

A :class:`~leat_async._paging.listing.Listing` says what differs between listings (how to ask
for page N, how to read the answer, what tells two items apart, whether ``created_at``
snapshots apply); the pager and its walks (``walk``, ``items``) do the rest the same way for all
of them. See the README, "Walking the listing", for what a walk guarantees.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator, Set
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from .._api.models import Page
from .._api.params import CreatedAt
from .items import ItemIterator
from .listing import Listing, Source
from .position import EdgeMark, Key, Position, WalkState
from .snapshot import bounded, holds_nothing
from .walk import PageIterator

if TYPE_CHECKING:
    from .._http.dispatch import Dispatcher
    from .._http.outcomes import Received
    from .._http.telemetry import WalkTrace

__all__ = ["Pager"]

T = TypeVar("T")


class Pager(Generic[T]):
    """What ``client.giftcard_transactions.list(...)`` returns: a reusable walk description.

    - ``await pager``: the first page alone (one request, filters as given);
    - ``async for item in pager``: every item of every page, in order, each once;
    - ``async for page in pager.pages()``: the pages;
    - ``pager.position``: exactly what the latest walk has handed out, to checkpoint and
      resume (``list(<same filters>, resume=position)``).

    Each ``async for`` (and each ``pages()``) is a walk of its own: its own snapshot (unless
    the pager was given one, by ``resume=`` or ``snapshot=``), de-duplication and position.
    The iterators have ``aclose()`` and work as async context managers: closing one, or
    dropping it, cancels its prefetches at once.
    """

    def __init__(
        self,
        listing: Listing[T],
        *,
        dispatcher: Dispatcher,
        page: int = 1,
        prefetch: int = 0,
        snapshot: datetime | None = None,
        resume: Position | None = None,
    ) -> None:
        seen: Set[Key] = frozenset()
        # rows handed out before the walk begins: what lets it prove it is complete (on a
        # stable order, every page before the first is full)
        handed: int | None = (page - 1) * listing.per_page
        edge: EdgeMark | None = None
        expected: int | None = None
        if resume is not None:
            expected = resume.expected
            legacy = (
                resume.listing == listing.name and resume.parameters == listing.legacy_parameters
            )
            if not legacy:
                resume.check_resumes(listing.name, listing.parameters)
            page, snapshot, seen, handed = resume.page, resume.snapshot, resume.seen, resume.handed
            if resume.edge is not None:
                edge = (resume.edge, frozenset(seen), resume.edge_repeats)
        self._listing = listing
        self._dispatch = dispatcher
        self._start = page
        self._snapshot = snapshot
        self._seen = seen
        self._handed = handed
        self._edge = edge
        self._expected = expected
        self._latest = self._new_state()
        self._source = Source(
            listing=listing,
            fetch=self._fetch,
            start=page,
            prefetch=max(0, prefetch),
            free_slots=lambda: dispatcher.free_slots,
            clock=dispatcher.server_clock,
        )

    @property
    def position(self) -> Position | None:
        """Exactly what the latest walk of this pager has handed out (any moment, any row).

        Before a walk has fixed its snapshot it is ``None`` (nothing has been handed out: to
        start again, make the same pager again), or the position the pager resumes from.
        """
        return self._latest.position()

    @property
    def total_drift(self) -> int:
        """Pages of the latest walk whose ``meta.total`` differed from its first page's."""
        return self._latest.total_drift

    def __await__(self) -> Generator[Any, None, Page[T]]:
        return self._first_page().__await__()

    def pages(self) -> PageIterator[T]:
        """A new walk over the pages."""
        self._latest = state = self._new_state()
        source = self._source
        if (telemetry := self._dispatch.telemetry) is not None:  # a span for the whole walk
            walk = telemetry.walk(self._listing.name)
            source = attrs.evolve(source, fetch=partial(self._fetch, walk=walk), trace=walk)
        return PageIterator(source, state)

    def __aiter__(self) -> ItemIterator[T]:
        """A new walk over the items."""
        return ItemIterator(self.pages())

    def _new_state(self) -> WalkState[T]:
        return WalkState(
            listing=self._listing.name,
            parameters=self._listing.parameters,
            key=self._listing.key,
            start=self._start,
            snapshot=self._snapshot,
            seen=self._seen,
            handed=self._handed,
            edge=self._edge,
            expected=self._expected,
        )

    async def _first_page(self) -> Page[T]:
        listing = self._listing
        bound = listing.range
        if self._snapshot is not None and listing.created_at is not None:
            if holds_nothing(listing.range, self._snapshot):
                return listing.empty(self._start)
            bound = bounded(listing.range, self._snapshot)
        return (await self._fetch(self._start, bound)).value

    def _fetch(
        self, number: int, bound: CreatedAt | None, walk: WalkTrace | None = None
    ) -> Coroutine[Any, Any, Received[Page[T]]]:
        listing = self._listing
        return self._dispatch.send(listing.request(number, bound), listing.parse, walk=walk)
