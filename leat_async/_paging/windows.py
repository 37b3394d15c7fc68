"""Split a ``created_at`` range into windows, and merge walks of windows back into one order.

Large walks shard well by time: each window is an independent, stable listing that a task or a
process can walk on its own (and resume on its own).
"""

from __future__ import annotations

import heapq
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Iterator
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from .._api.models import GiftcardTransaction
from .._api.params import CreatedAt

__all__ = ["merge_by_created_at", "split_created_at"]


def split_created_at(start: datetime, end: datetime, step: timedelta) -> list[CreatedAt]:
    """Half-open windows ``[start, start+step), ...`` up to ``end`` (exclusive), in order.

    Every instant of ``[start, end)`` falls in exactly one window, so walking every window
    yields every row of the range once.
    """
    if step <= timedelta(0):
        raise ValueError("step must be a positive timedelta")
    CreatedAt(gte=start, lt=end)  # the same checks as any range: aware, non-empty
    return list(_windows(start, end, step))


def _windows(start: datetime, end: datetime, step: timedelta) -> Iterator[CreatedAt]:
    low = start
    while low < end:
        high = min(low + step, end)
        yield CreatedAt(gte=low, lt=high)
        low = high


async def merge_by_created_at(
    *walks: AsyncIterable[GiftcardTransaction], descending: bool = False
) -> AsyncGenerator[GiftcardTransaction, None]:
    """Merge walks that are each sorted by ``created_at`` into one sorted walk (ties by id).

    ``walks``: pagers (each walked once) or any async iterables of transactions. Holds one row
    per walk at a time; the walks are consumed one row ahead each, in turn. Closing the merge
    (or leaving it early) closes the walks it started.
    """
    sign = -1 if descending else 1
    iterators = [aiter(walk) for walk in walks]
    heap: list[tuple[float, int, int, GiftcardTransaction]] = []

    async def push(index: int) -> None:
        try:
            tx = await anext(iterators[index])
        except StopAsyncIteration:
            return
        heapq.heappush(heap, (sign * tx.created_at.timestamp(), sign * tx.id, index, tx))

    try:
        for index in range(len(iterators)):
            await push(index)
        while heap:
            _, _, index, tx = heapq.heappop(heap)
            yield tx
            await push(index)
    finally:
        for walk, iterator in zip(walks, iterators, strict=True):
            if iterator is not walk and isinstance(iterator, _Closable):
                await iterator.aclose()


@runtime_checkable
class _Closable(Protocol):
    def aclose(self) -> Awaitable[object]: ...
