"""The one pager of every listing: a reusable description of a walk, generic over the item type.

A :class:`Listing` says what differs between listings (how to ask for page N, how to read the
answer, what tells two items apart, whether ``created_at`` snapshots apply); the pager and its
walks (:mod:`._walk`) do the rest the same way for all of them. See the README, "Walking the
listing", for what a walk guarantees.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator, Set
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import attrs

from ._models import Page, PageMeta
from ._params import CreatedAt
from ._position import EdgeMark, Key, Position, WalkState
from ._snapshot import bounded, holds_nothing
from ._walk import ItemIterator, PageIterator
from ._wire import Request

if TYPE_CHECKING:
    from ._dispatch import Dispatcher, Reply

__all__ = ["Listing", "Pager", "Sort", "check_walk"]

T = TypeVar("T")

#: The orders the transactions listing can be sorted in.
Sort = Literal["created_at", "-created_at"]


@attrs.frozen(kw_only=True)
class Listing(Generic[T]):
    """What the pager needs to know about one paginated endpoint, and the caller's filters.

    - ``name``, ``parameters``: name the listing and its filters in a :class:`Position`;
    - ``request(page, bound)``: the request for page ``page``, within the ``created_at`` range
      ``bound`` (``None``: no range; always ``None`` for listings without ``created_at``);
    - ``parse(body)``: a 2xx answer's body as a ``Page[T]`` (``ValueError`` if it is not one);
    - ``key(item)``: what tells two items apart (for de-duplication and positions);
    - ``created_at(item)``: when an item was created, for listings filtered by ``created_at``:
      their walks are snapshots. ``None``: no such filter, and the walk is not bounded;
    - ``range``: the caller's ``created_at`` filter; ``descending``: newest first;
    - ``legacy_parameters``: how positions of an earlier version named these filters (a card's
      code itself, before fingerprints), still accepted by ``resume=``.
    """

    name: str
    parameters: tuple[tuple[str, str], ...]
    per_page: int
    request: Callable[[int, CreatedAt | None], Request]
    parse: Callable[[bytes], Page[T]]
    key: Callable[[T], Key]
    created_at: Callable[[T], datetime] | None = None
    range: CreatedAt | None = None
    descending: bool = False
    legacy_parameters: tuple[tuple[str, str], ...] | None = None  # resumable too (older names)

    def empty(self, number: int) -> Page[T]:
        """The page of a walk whose range holds nothing (no request is made for it)."""
        meta = PageMeta(
            page=number,
            limit=self.per_page,
            viewing_from=None,
            viewing_to=None,
            last_page=1,
            total=0,
        )
        return Page(data=[], meta=meta)


def check_walk(
    *,
    page: int,
    prefetch: int | None,
    resume: Position | None,
    snapshot: datetime | None = None,
) -> None:
    """The walk options every listing takes, checked before anything is sent."""
    if resume is not None and not isinstance(resume, Position):
        raise TypeError(f"resume must be a Position, got {type(resume).__name__}")
    if resume is not None and (page != 1 or snapshot is not None):
        raise ValueError("resume= gives the page and the snapshot: leave page= and snapshot=")
    if prefetch is not None and (type(prefetch) is not int or prefetch < 0):
        raise ValueError(f"prefetch must be an int >= 0, got {prefetch!r}")


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
        self._prefetch = max(0, prefetch)
        self._snapshot = snapshot
        self._seen = seen
        self._handed = handed
        self._edge = edge
        self._expected = expected
        self._latest = self._new_state()

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
        return PageIterator(self, state)

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

    def _fetch(self, number: int, bound: CreatedAt | None) -> Coroutine[Any, Any, Reply[Page[T]]]:
        listing = self._listing
        return self._dispatch.send(listing.request(number, bound), listing.parse)
