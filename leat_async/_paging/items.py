"""The walk over the items of a listing: rows handed out one at a time from the pages' walk."""

from __future__ import annotations

from collections import deque
from typing import Generic, Self, TypeVar

from .._api.closing import AsyncClosing
from .position import Position
from .walk import PageIterator

__all__ = ["ItemIterator"]

T = TypeVar("T")


class ItemIterator(AsyncClosing, Generic[T]):
    """A walk over the items of a listing (``aiter(pager)``, ``async for item in pager``).

    ``position`` is exactly what it has handed out, after any item. Close it (``aclose()``,
    ``async with``, or ``contextlib.aclosing``) when leaving early: its prefetches are
    cancelled at once.
    """

    __slots__ = ("_left", "_pages")

    def __init__(self, pages: PageIterator[T]) -> None:
        self._pages = pages
        # the state reads how many are left to know how many were handed out
        self._left = pages.left

    @property
    def position(self) -> Position | None:
        """What this walk has handed out (``None`` until its snapshot is fixed)."""
        return self._pages.position

    @property
    def total_drift(self) -> int:
        """Pages whose ``meta.total`` differed from the first page's."""
        return self._pages.total_drift

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        try:
            return self._left.popleft()
        except IndexError:
            return await self._turn_page()

    async def _turn_page(self) -> T:
        left = self._left
        while not left:
            left.extend((await self._pages.__anext__()).data)
        return left.popleft()

    async def aclose(self) -> None:
        """End the walk: cancel its prefetches and wait until they are gone."""
        self._left = deque()  # hand out nothing more (the state keeps what was left: position)
        await self._pages.aclose()
