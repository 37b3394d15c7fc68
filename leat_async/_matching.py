"""The pure matcher of reconciliation: pair two time-sorted lists within a tolerance.

The rule, for one giftcard, shop and amount: one-to-one, within the tolerance only; the most
pairs, then the smallest sum of time differences, then earlier rows first on exact ties. It is
exact (a dynamic program over runs of times that lie within the tolerance of each other); a run
with over :data:`EXACT_LIMIT` candidate pairs falls back to a linear greedy pass that still finds
the most pairs, without the closeness rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = ["EXACT_LIMIT", "match_times"]

EXACT_LIMIT: Final = 250_000


def match_times(
    ledger: Sequence[float], transactions: Sequence[float], tolerance: float
) -> list[tuple[int, int]]:
    """Pair two ascending lists of times (seconds) by the rule above; ``(i, j)`` index pairs.

    Within ``tolerance`` only, one-to-one, the most pairs, then the closest, ties to the earlier.
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
            pairs += _match_run(run_l, run_t, ledger, transactions, tolerance)
            run_l, run_t = [], []
        (run_t if side else run_l).append(index)
        last = t
    pairs += _match_run(run_l, run_t, ledger, transactions, tolerance)
    pairs.sort()
    return pairs


def _match_run(
    li: list[int], ti: list[int], lt: Sequence[float], tt: Sequence[float], tol: float
) -> list[tuple[int, int]]:
    if not li or not ti:
        return []
    if len(li) * len(ti) > EXACT_LIMIT:
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
