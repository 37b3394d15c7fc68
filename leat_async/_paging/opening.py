"""The first page of a walk, and the snapshot that bounds every later one.

Once the client knows the server's clock (from any earlier answer), the first page is fetched
already within the snapshot: one request. The first walk of a client reads the snapshot from its
first answer instead, and re-reads that page within it when the page could differ (see
``snapshot.may_differ``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from .._api.models import Page
from .._api.params import CreatedAt
from .._http.clock import LAG
from .listing import Source
from .position import WalkState
from .snapshot import bounded, holds_nothing, may_differ, whole_second

__all__ = ["CLOCK_LAG", "open_walk"]

T = TypeVar("T")

#: How far behind the server's ``Date`` a snapshot taken from the client's estimate of the
#: server's clock may be before the walk takes a new one: the normal lag, and a second more.
CLOCK_LAG: Final = timedelta(seconds=LAG + 1)


async def open_walk(source: Source[T], state: WalkState[T]) -> tuple[Page[T], CreatedAt | None]:
    """Fix the walk's snapshot (in ``state``) and fetch its first page: the page, and the
    ``created_at`` range every later page of the walk is asked within."""
    listing, start = source.listing, source.start
    from_clock = False
    if state.snapshot is None:
        state.snapshot = source.clock.snapshot()
        from_clock = state.snapshot is not None
    if state.snapshot is not None:
        bound = None
        if listing.created_at is not None:
            if holds_nothing(listing.range, state.snapshot):
                return listing.empty(start), None
            bound = bounded(listing.range, state.snapshot)
        reply = await source.fetch(start, bound)
        told = reply.server_date if from_clock and listing.created_at is not None else None
        if told is None or told - state.snapshot <= CLOCK_LAG:
            return reply.value, bound
        # The estimate lagged far behind the server (a machine that slept, a server clock
        # that jumped): the walk would miss what was made meanwhile. Take the snapshot this
        # answer tells, and the first page within it.
        state.snapshot = whole_second(told)
        if holds_nothing(listing.range, state.snapshot):
            return listing.empty(start), None
        bound = bounded(listing.range, state.snapshot)
        return (await source.fetch(start, bound)).value, bound
    reply = await source.fetch(start, listing.range)
    state.snapshot = snapshot = whole_second(reply.server_date or datetime.now(UTC))
    page = reply.value
    if listing.created_at is None:
        return page, None
    if holds_nothing(listing.range, snapshot):
        return listing.empty(start), None
    bound = bounded(listing.range, snapshot)
    created = [listing.created_at(item) for item in page.data]
    if bound != listing.range and may_differ(
        created,
        snapshot=snapshot,
        descending=listing.descending,
        last_page=page.meta.last_page <= start,
    ):
        page = (await source.fetch(start, bound)).value
    return page, bound
