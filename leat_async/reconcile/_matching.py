"""The pure matcher of reconciliation: pair two time-sorted lists within a tolerance.

The rule, for one giftcard, shop and amount: one-to-one, within the tolerance only; the most
pairs, then the smallest sum of time differences, then earlier rows first on exact ties. It is
exact (a dynamic program over runs of times that lie within the tolerance of each other); a run
with over :data:`EXACT_LIMIT` candidate pairs falls back to a linear greedy pass that still finds
the most pairs, without the closeness rule.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any, Final

__all__ = ["EXACT_LIMIT", "Record", "match_sorted", "match_times", "tolerance_seconds"]

EXACT_LIMIT: Final = 250_000


def tolerance_seconds(tolerance: float | timedelta) -> float:
    """The tolerance as seconds; ``ValueError`` unless it is a number (or timedelta) >= 0."""
    value = tolerance.total_seconds() if isinstance(tolerance, timedelta) else tolerance
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"tolerance must be a number of seconds >= 0, got {tolerance!r}")
    return float(value)


def match_times(
    ledger: Sequence[float],
    transactions: Sequence[float],
    tolerance: float,
    *,
    exact_limit: int = EXACT_LIMIT,
) -> list[tuple[int, int]]:
    """Pair two ascending lists of times (seconds) by the rule above; ``(i, j)`` index pairs.

    Within ``tolerance`` only, one-to-one, the most pairs, then the closest, ties to the earlier.
    A run of more than ``exact_limit`` candidate pairs is paired by the greedy pass.
    """
    events = sorted(
        [(t, 0, i) for i, t in enumerate(ledger)] + [(t, 1, j) for j, t in enumerate(transactions)]
    )
    pairs: list[tuple[int, int]] = []
    run_l: list[int] = []
    run_t: list[int] = []
    last: float | None = None
    for t, side, index in events:
        # a gap over the tolerance splits the line into runs that cannot match across
        if last is not None and t - last > tolerance:
            pairs += _match_run(run_l, run_t, ledger, transactions, tolerance, exact_limit)
            run_l, run_t = [], []
        (run_t if side else run_l).append(index)
        last = t
    pairs += _match_run(run_l, run_t, ledger, transactions, tolerance, exact_limit)
    pairs.sort()
    return pairs


def _match_run(
    li: list[int],
    ti: list[int],
    lt: Sequence[float],
    tt: Sequence[float],
    tol: float,
    limit: int,
) -> list[tuple[int, int]]:
    if not li or not ti:
        return []
    if len(li) * len(ti) > limit:
        return _greedy(li, ti, lt, tt, tol)
    a = [lt[i] for i in li]
    b = [tt[j] for j in ti]
    n, m = len(a), len(b)
    # best[i][j]: (pairs, -total distance) using the first i ledger times and first j tx times;
    # an optimal pairing never crosses (swapping crossed pairs is never worse), hence this DP
    best = [[(0, 0.0)] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        row, above = best[i], best[i - 1]
        ai = a[i - 1]
        for j in range(1, m + 1):
            score = max(above[j], row[j - 1])
            d = abs(ai - b[j - 1])
            if d <= tol:
                diag = above[j - 1]
                pair = (diag[0] + 1, diag[1] - d)
                if pair > score:
                    score = pair
            row[j] = score
    out: list[tuple[int, int]] = []
    i, j = n, m
    while i and j:
        here = best[i][j]
        if here == best[i][j - 1]:  # leave the later transaction unmatched: ties go earlier
            j -= 1
        elif here == best[i - 1][j]:
            i -= 1
        else:
            out.append((li[i - 1], ti[j - 1]))
            i -= 1
            j -= 1
    return out


def _greedy(
    li: list[int], ti: list[int], lt: Sequence[float], tt: Sequence[float], tol: float
) -> list[tuple[int, int]]:
    """Each ledger time in order takes the earliest free transaction within reach: most pairs."""
    out: list[tuple[int, int]] = []
    j = 0
    for i in li:
        while j < len(ti) and tt[ti[j]] < lt[i] - tol:
            j += 1
        if j < len(ti) and tt[ti[j]] <= lt[i] + tol:
            out.append((i, ti[j]))
            j += 1
    return out


# -- the streaming form: two sorted streams, one group within the tolerance at a time ----------

#: ``(giftcard, shop, amount, time, place, *payload)``: a ledger row or a transaction, keyed
#: and ordered by its first five fields (``place`` is its position in its own input, unique there)
Record = tuple[Any, ...]


def match_sorted(
    ledger: Iterator[Record],
    transactions: Iterator[Record],
    tolerance: float,
    *,
    tick: Callable[[int], None] | None = None,
    every: int = 8192,
    exact_limit: int = EXACT_LIMIT,
) -> Iterator[tuple[int, Record]]:
    """Match two streams sorted by their first five fields; yield what is left unmatched.

    Yields ``(0, ledger_record)`` and ``(1, transaction_record)``. The pairing is the one that
    :func:`match_times` (and a group with a single ledger row: its nearest transaction) makes
    over the whole of each giftcard, shop and amount, but only one run of times within the
    tolerance of each other is held at a time, and a run beyond ``exact_limit`` pairs is
    matched by the greedy pass as it streams, so memory stays bounded whatever the inputs.
    ``tick(records_read)`` is called about every ``every`` records (for progress, or to stop).
    """
    lh, th = _Head(ledger), _Head(transactions)
    mark = every
    while lh.rec is not None or th.rec is not None:
        if tick is not None and lh.count + th.count >= mark:
            tick(lh.count + th.count)
            mark += every
        lr, tr = lh.rec, th.rec
        if (
            lr is not None
            and tr is not None
            and lr[0] == tr[0]
            and lr[1] == tr[1]
            and lr[2] == tr[2]
        ):
            la, ta = lh.after, th.after
            if (la is None or la[0] != lr[0] or la[1] != lr[1] or la[2] != lr[2]) and (
                ta is None or ta[0] != tr[0] or ta[1] != tr[1] or ta[2] != tr[2]
            ):
                lh.pop()  # the usual group: one of each; a match when within reach
                th.pop()
                t = tr[3]
                if not t - tolerance <= lr[3] <= t + tolerance:
                    yield 0, lr
                    yield 1, tr
                continue
            yield from _match_group(lh, th, tr[:3], tolerance, exact_limit)
        elif tr is None or (lr is not None and lr[:3] < tr[:3]):
            yield from ((0, r) for r in lh.take_group())
        else:
            yield from ((1, r) for r in th.take_group())


class _Head:
    """A stream with its next record (:attr:`rec`) and the one after (:attr:`after`) in view."""

    __slots__ = ("_it", "after", "count", "rec")

    def __init__(self, it: Iterator[Record]) -> None:
        self._it = it
        self.count = 0  # records popped
        self.rec: Record | None = next(it, None)
        self.after: Record | None = next(it, None)

    def pop(self) -> Record:
        rec = self.rec
        assert rec is not None
        self.count += 1
        self.rec = after = self.after
        self.after = None if after is None else next(self._it, None)
        return rec

    def has(self, key: tuple[str, str, int]) -> bool:
        rec = self.rec
        return rec is not None and rec[0] == key[0] and rec[1] == key[1] and rec[2] == key[2]

    def take_group(self) -> Iterator[Record]:
        rec = self.rec
        assert rec is not None
        key = rec[:3]
        while self.has(key):
            yield self.pop()


def _match_group(
    lh: _Head, th: _Head, key: tuple[str, str, int], tol: float, limit: int
) -> Iterator[tuple[int, Record]]:
    second = lh.after
    if second is None or second[:3] != key:  # one ledger row: the nearest within reach
        first = lh.pop()
        a = first[3]
        best: Record | None = None
        for r in th.take_group():
            t = r[3]
            if t - tol <= a <= t + tol and (best is None or abs(t - a) < abs(best[3] - a)):
                if best is not None:
                    yield 1, best
                best = r
            else:
                yield 1, r
        if best is None:
            yield 0, first
        return
    # the events of the group in time order, ledger first on equal times; a transaction that
    # no ledger row can reach is left out of the runs (the in-memory matcher never holds it)
    run = _Run(tol, limit)
    prev: float | None = None  # the time of the last ledger row
    while lh.has(key) or th.has(key):
        lr = lh.rec if lh.has(key) else None
        tr = th.rec if th.has(key) else None
        if tr is None or (lr is not None and lr[3] <= tr[3]):
            rec = lh.pop()
            yield from run.add(0, rec)
            prev = rec[3]
            continue
        rec = th.pop()
        t = rec[3]
        if (prev is not None and prev >= t - tol) or (lr is not None and lr[3] <= t + tol):
            yield from run.add(1, rec)
        else:
            yield 1, rec
    yield from run.close()


class _Run:
    """The events of one run (times each within the tolerance of the previous), matched when
    it ends: exactly while small, by the streaming greedy pass once over ``limit`` pairs."""

    def __init__(self, tol: float, limit: int) -> None:
        self._tol = tol
        self._limit = limit
        self._last: float | None = None
        self._sides: tuple[list[Record], list[Record]] = ([], [])
        self._greedy: _GreedyRun | None = None

    def add(self, side: int, rec: Record) -> Iterator[tuple[int, Record]]:
        t = rec[3]
        if self._last is not None and t - self._last > self._tol:
            yield from self.close()
        self._last = t
        if self._greedy is not None:
            yield from self._greedy.add(side, rec)
            return
        ledger, txs = self._sides
        self._sides[side].append(rec)
        # over the limit, or bound to be once the other side has a row (if it never has one,
        # nothing matches either way): switch, replaying the run so far in order
        limit = self._limit
        if len(ledger) * len(txs) > limit or max(len(ledger), len(txs)) > limit:
            self._greedy = _GreedyRun(self._tol)
            events = sorted(
                [(r[3], 0, r[4], r) for r in ledger] + [(r[3], 1, r[4], r) for r in txs]
            )
            self._sides = ([], [])
            for _, s, _, r in events:
                yield from self._greedy.add(s, r)

    def close(self) -> Iterator[tuple[int, Record]]:
        greedy, self._greedy = self._greedy, None
        ledger, txs = self._sides
        self._sides = ([], [])
        self._last = None
        if greedy is not None:
            yield from greedy.close()
            return
        if not ledger or not txs:
            yield from ((0, r) for r in ledger)
            yield from ((1, r) for r in txs)
            return
        pairs = _match_run(
            list(range(len(ledger))),
            list(range(len(txs))),
            [r[3] for r in ledger],
            [r[3] for r in txs],
            self._tol,
            self._limit,
        )
        used_l = {i for i, _ in pairs}
        used_t = {j for _, j in pairs}
        yield from ((0, r) for i, r in enumerate(ledger) if i not in used_l)
        yield from ((1, r) for j, r in enumerate(txs) if j not in used_t)


class _GreedyRun:
    """:func:`_greedy` as a stream: each ledger time in order takes the earliest free
    transaction within reach. Holds only what lies within the tolerance of the newest event."""

    def __init__(self, tol: float) -> None:
        self._tol = tol
        self._free: deque[Record] = deque()  # transactions not taken (only while none wait)
        self._waiting: deque[Record] = deque()  # ledger rows with no transaction yet

    def add(self, side: int, rec: Record) -> Iterator[tuple[int, Record]]:
        tol, free, waiting = self._tol, self._free, self._waiting
        t = rec[3]
        # what nothing from now on can reach goes at once (times never go back)
        while free and free[0][3] < t - tol:
            yield 1, free.popleft()
        while waiting and not t <= waiting[0][3] + tol:
            yield 0, waiting.popleft()
        if side == 0:
            if free:
                free.popleft()
            else:
                waiting.append(rec)
            return
        if waiting:
            waiting.popleft()
        else:
            free.append(rec)

    def close(self) -> Iterator[tuple[int, Record]]:
        yield from ((0, r) for r in self._waiting)
        yield from ((1, r) for r in self._free)
        self._waiting.clear()
        self._free.clear()
