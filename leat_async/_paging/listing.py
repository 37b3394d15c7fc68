"""What a walk walks: one paginated endpoint with the caller's filters, and where its pages come
from (a :class:`Source`, so that a walk needs nothing of the pager that made it).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import attrs

from .._api.models import Page, PageMeta
from .._api.params import CreatedAt
from .._api.wire import Request
from .position import Key, Position

if TYPE_CHECKING:
    from .._http.clock import ServerClock
    from .._http.outcomes import Received
    from .._http.telemetry import WalkTrace

__all__ = ["Listing", "Sort", "Source", "check_walk"]

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


@attrs.frozen(kw_only=True)
class Source(Generic[T]):
    """Where one walk's pages come from, and how far it may reach ahead.

    - ``fetch(number, bound)``: page ``number`` within the ``created_at`` range ``bound``;
    - ``start``: the first page of the walk; ``prefetch``: pages it may ask for ahead;
    - ``free_slots()``: the client's concurrency slots that no request holds or waits for;
    - ``clock``: the client's estimate of the server's clock (for the walk's snapshot);
    - ``trace``: the walk's trace, ended with the walk (``None``: no telemetry).
    """

    listing: Listing[T]
    fetch: Callable[[int, CreatedAt | None], Coroutine[Any, Any, Received[Page[T]]]]
    start: int
    prefetch: int
    free_slots: Callable[[], int]
    clock: ServerClock
    trace: WalkTrace | None = None
