"""Pure decisions about a walk's snapshot bound (no I/O).

A walk is a snapshot: it sees the rows created before one whole second that the server has left
behind, because ``created_at`` is stored to the second and rows of a later second could still
arrive and shift the pages. A caller's upper bound that is already in the past is kept as it
is; one in the future is cut at the snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from .._api.params import CreatedAt

__all__ = ["bounded", "holds_nothing", "may_differ", "range_parameters", "whole_second"]


def whole_second(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(microsecond=0)


def holds_nothing(created_at: CreatedAt | None, snapshot: datetime) -> bool:
    """The caller's lower bound is at or after the snapshot: nothing can be in the walk."""
    lower = created_at.lower if created_at is not None else None
    return lower is not None and lower >= snapshot


def bounded(created_at: CreatedAt | None, snapshot: datetime) -> CreatedAt:
    """The caller's range, cut at the snapshot unless the caller's own upper bound is earlier."""
    given = created_at or CreatedAt()
    if (given.lt is not None and given.lt <= snapshot) or (
        given.lte is not None and given.lte < snapshot
    ):
        return given
    return CreatedAt(gt=given.gt, gte=given.gte, lt=snapshot)


def may_differ(
    created: Sequence[datetime], *, snapshot: datetime, descending: bool, last_page: bool
) -> bool:
    """Could a first page fetched without the snapshot bound differ from the same page within it?

    Only the first walk of a client that has not yet seen the server's clock asks this: it
    learns the snapshot from the ``Date`` of that very page. The server ran its query a moment
    before it stamped ``Date``: rows made in between, and rows of the snapshot's own second,
    sort first in a descending walk and fall on this page when it is the last one; in any
    other case they come after it. An empty listing is taken as it is (one request): a row that
    slipped into those milliseconds arrived after the walk began.
    """
    if any(when >= snapshot for when in created):
        return True
    return bool(created) and (descending or last_page)


def range_parameters(created_at: CreatedAt | None) -> tuple[tuple[str, str], ...]:
    """The caller's range as it names a listing in a position: UTC, whatever zone was given."""
    if created_at is None:
        return ()
    return tuple(
        (f"created_at[{name}]", when.astimezone(UTC).isoformat())
        for name in ("gt", "gte", "lt", "lte")
        if (when := getattr(created_at, name)) is not None
    )
