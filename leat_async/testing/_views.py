"""The fake's listing views: the rows of each filter set in id and in time order, cached.

Views are kept up to date on append; the views that depend on ``created_at`` order are dropped
whenever a row arrives out of time order.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from operator import attrgetter
from typing import Final

from ._listing import ListQuery
from ._records import TransactionRecord

__all__ = ["ListViews"]

Filters = tuple[str | None, str | None, str | None]
_NO_FILTERS: Final[Filters] = (None, None, None)
_MAX_CACHED: Final = 64
_ts_of: Final = attrgetter("ts")
_ts_id: Final = attrgetter("ts", "id")


def _matches(f: Filters, tx: TransactionRecord) -> bool:
    card_hash, program_uuid, shop_uuid = f
    if card_hash is not None and tx.card.hash != card_hash:
        return False
    if shop_uuid is not None and tx.shop.uuid != shop_uuid:
        return False
    if program_uuid is not None:
        program = tx.card.program
        return program is not None and program.uuid == program_uuid
    return True


class ListViews:
    """Pages of the transactions listing, O(page + log n) when warm."""

    def __init__(
        self, transactions: list[TransactionRecord], *, unstable_ties: random.Random | None
    ) -> None:
        self.transactions = transactions  # the store's own list, in id order
        #: set: rows of one created_at second come back in a new order on every request, as
        #: MySQL may give them under ORDER BY created_at with LIMIT/OFFSET
        self.unstable_ties = unstable_ties
        # True while created_at never decreases with id, so id order is (created_at, id) order.
        self.monotone = True
        self._filtered: dict[Filters, list[TransactionRecord]] = {}
        self._by_time: dict[Filters, list[TransactionRecord]] = {}
        self._ranged: dict[tuple[Filters, int | None, int | None], list[TransactionRecord]] = {}

    def arriving(self, tx: TransactionRecord) -> None:
        """``tx`` is about to be appended to the store's rows."""
        txs = self.transactions
        if txs and tx.ts < txs[-1].ts:
            self.monotone = False

    def arriving_many(self, rows: list[TransactionRecord], *, monotone: bool) -> None:
        """``rows`` (in time order among themselves if ``monotone``) are about to be appended."""
        if rows and self.transactions and rows[0].ts < self.transactions[-1].ts:
            monotone = False
        self.monotone = self.monotone and monotone

    def invalidate(self) -> None:
        self._filtered.clear()
        self._by_time.clear()
        self._ranged.clear()

    def appended(self, tx: TransactionRecord) -> None:
        for key, rows in self._filtered.items():
            if _matches(key, tx):
                rows.append(tx)  # ids only grow, so id order holds
        self._by_time.clear()
        self._ranged.clear()

    def page(self, q: ListQuery) -> tuple[list[TransactionRecord], int]:
        """The rows of the asked page and the total matching rows: O(page + log n) when warm."""
        if q.sort is None and not self.monotone and self.unstable_ties is None:
            seq = self._id_order_in_range(q.filters, q.lo_ts, q.hi_ts)
            lo, hi = 0, len(seq)
        else:
            seq = self._time_order(q.filters)
            lo = 0 if q.lo_ts is None else bisect_left(seq, q.lo_ts, key=_ts_of)
            hi = len(seq) if q.hi_ts is None else bisect_right(seq, q.hi_ts, key=_ts_of)
            hi = max(lo, hi)
        total = hi - lo
        start = (q.page - 1) * q.per_page
        if start >= total:
            return [], total
        if q.sort == "-created_at":
            stop = hi - start
            rows = self._slice(seq, max(lo, stop - q.per_page), stop)
            rows.reverse()
        else:
            begin = lo + start
            rows = self._slice(seq, begin, min(hi, begin + q.per_page))
        return rows, total

    def _slice(self, seq: list[TransactionRecord], begin: int, end: int) -> list[TransactionRecord]:
        """``seq[begin:end]``; with unstable ties, of an order that shuffles each second anew."""
        shuffle = self.unstable_ties
        if shuffle is None or begin >= end:
            return seq[begin:end]
        # the seconds the slice touches, whole: each is shuffled, then the slice cut from them
        first = bisect_left(seq, seq[begin].ts, key=_ts_of)
        last = bisect_right(seq, seq[end - 1].ts, key=_ts_of)
        window = seq[first:last]
        runs: list[TransactionRecord] = []
        i = 0
        while i < len(window):
            j = bisect_right(window, window[i].ts, lo=i, key=_ts_of)
            run = window[i:j]
            shuffle.shuffle(run)
            runs.extend(run)
            i = j
        return runs[begin - first : end - first]

    def _id_order(self, f: Filters) -> list[TransactionRecord]:
        if f == _NO_FILTERS:
            return self.transactions
        rows = self._filtered.get(f)
        if rows is None:
            if len(self._filtered) >= _MAX_CACHED:
                self._filtered.clear()
            rows = [tx for tx in self.transactions if _matches(f, tx)]
            self._filtered[f] = rows
        return rows

    def _time_order(self, f: Filters) -> list[TransactionRecord]:
        if self.monotone:
            return self._id_order(f)
        rows = self._by_time.get(f)
        if rows is None:
            if len(self._by_time) >= _MAX_CACHED:
                self._by_time.clear()
            rows = sorted(self._id_order(f), key=_ts_id)
            self._by_time[f] = rows
        return rows

    def _id_order_in_range(
        self, f: Filters, lo: int | None, hi: int | None
    ) -> list[TransactionRecord]:
        if lo is None and hi is None:
            return self._id_order(f)
        key = (f, lo, hi)
        rows = self._ranged.get(key)
        if rows is None:
            if len(self._ranged) >= _MAX_CACHED:
                self._ranged.clear()
            low = lo if lo is not None else -(2**63)
            high = hi if hi is not None else 2**63
            rows = [tx for tx in self._id_order(f) if low <= tx.ts <= high]
            self._ranged[key] = rows
        return rows
