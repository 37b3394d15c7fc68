"""Seconds that a page boundary cuts: how a walk knows it lost no row to an unstable order.

Rows of one ``created_at`` second compare equal, and a server may return them in any order, a
new one on every request (MySQL under ``ORDER BY created_at`` with ``LIMIT/OFFSET``). A second
whose rows straddle a page boundary is then split at random by each of the two requests: the
pages may share rows and miss as many others. Each page holds a fixed number of the second's
rows, so every repeat of one of them is exactly one row of that second lost: counting the
repeats within the second tells whether it must be fetched whole, and a second that no
boundary cut, or that came with no repeat, costs nothing (pure: no I/O).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Generic, TypeVar

import attrs

from .position import Key

__all__ = ["Cut", "Edge", "Seconds"]

T = TypeVar("T")


@attrs.frozen
class Edge:
    """The second a walk's latest rows belong to, which the next page may go on with.

    ``keys``: every row of it seen so far (after a resume: every key the position holds);
    ``repeats``: rows of it that a later page repeated (as many were lost); ``unsure``: the
    walk resumed inside it, so its losses cannot be counted.
    """

    second: int  # epoch seconds
    keys: frozenset[Key]
    repeats: int = 0
    unsure: bool = False

    @property
    def counted(self) -> int | None:
        """Its repeats, if they could be counted (as a position keeps them)."""
        return None if self.unsure else self.repeats

    @property
    def lossy(self) -> bool:
        return self.repeats > 0 or self.unsure


@attrs.frozen
class Cut(Generic[T]):
    """A page read against the edge: ``head`` (new rows going on with the edge's second),
    ``complete`` (a second that ended with losses: fetch it whole and hand out its missing
    rows before ``rest``), ``rest`` (the page's other rows) and ``edge`` (where the walk
    stands after the page)."""

    head: list[T]
    complete: Edge | None
    rest: list[T]
    edge: Edge | None


class Seconds(Generic[T]):
    """Reads pages in walk order, second by second (``key`` and ``created_at`` of a row)."""

    def __init__(self, key: Callable[[T], Key], created_at: Callable[[T], datetime]) -> None:
        self._key = key
        self._created_at = created_at

    def second(self, item: T) -> int:
        return int(self._created_at(item).timestamp() // 1)

    def cut(self, rows: Sequence[T], edge: Edge | None, *, last: bool) -> Cut[T]:
        """Read the next page's ``rows`` (as fetched); ``last``: no page follows it."""
        head: list[T] = []
        i = 0
        if edge is not None:
            seen, repeats = set(edge.keys), edge.repeats
            while i < len(rows) and self.second(rows[i]) == edge.second:
                key = self._key(rows[i])
                if key in seen:
                    repeats += 1
                else:
                    seen.add(key)
                    head.append(rows[i])
                i += 1
            edge = attrs.evolve(edge, keys=frozenset(seen), repeats=repeats)
        rest = list(rows[i:])
        complete: Edge | None = None
        if edge is not None and (rest or last):  # the edge's second ends on this page
            complete, edge = (edge if edge.lossy else None), None
        if rest and not last:
            second, keys = self.second(rest[-1]), []
            for row in reversed(rest):  # the page's last second: the next page may go on with it
                if self.second(row) != second:
                    break
                keys.append(self._key(row))
            edge = Edge(second, frozenset(keys))
        return Cut(head, complete, rest, edge)
