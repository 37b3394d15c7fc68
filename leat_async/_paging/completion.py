"""How a walk makes sure it handed out every row once: a cut second fetched whole, and the count
at its end (see ``ties`` for when a second must be fetched whole)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from .._api.errors import IncompleteWalkError
from .._api.params import CreatedAt
from .listing import Source
from .position import Key
from .ties import Edge

__all__ = ["PASSES", "prove_complete", "rows_of_second"]

T = TypeVar("T")

#: Times a second holding more rows than a page is fetched whole before the walk gives up
#: proving it saw every row of it (each pass: its pages, in a new order on an unstable server).
PASSES: Final = 4


async def rows_of_second(source: Source[T], edge: Edge) -> list[T]:
    """The rows of ``edge``'s second that the walk has not seen: the second fetched whole
    (one page, if it holds no more rows than a page; else its pages, until every row of it
    has been seen, at most ``PASSES`` times)."""
    key = source.listing.key
    start = datetime.fromtimestamp(edge.second, UTC)
    window = CreatedAt(gte=start, lt=start + timedelta(seconds=1))
    found: dict[Key, T] = {}
    # a live walk's edge holds that second's rows alone; a resumed one's, all it had seen
    known = set() if edge.unsure else set(edge.keys)
    total = 0
    for _ in range(PASSES):
        number, last = 1, 1
        while number <= last:
            page = (await source.fetch(number, window)).value
            for item in page.data:
                found.setdefault(key(item), item)
            total, last = page.meta.total, page.meta.last_page
            number += 1
        if len(known.union(found)) >= total:
            break
    if len(known.union(found)) < total:
        raise IncompleteWalkError(
            f"cannot prove the walk saw every row once: {total} rows were created in the "
            f"second {start.isoformat()}, more than a page holds (per_page "
            f"{source.listing.per_page}), and the server returns them in a new order "
            f"on every request ({len(found)} seen in {PASSES} passes); walk a narrower "
            "range or try again",
            second=start,
            expected=total,
            handed=len(found),
        )
    return [item for k, item in found.items() if k not in edge.keys]


def prove_complete(handed: int | None, expected: int | None) -> None:
    """The walk ended: it must have handed out as many rows as its snapshot holds
    (``None``: not known, nothing to prove)."""
    if handed is None or expected is None or handed >= expected:
        return
    raise IncompleteWalkError(
        f"the walk handed out {handed} rows, but the listing holds {expected} within its "
        "snapshot: rows before its position went missing (rows deleted meanwhile, or an "
        "unstable order); walk it again from the start",
        expected=expected,
        handed=handed,
    )
