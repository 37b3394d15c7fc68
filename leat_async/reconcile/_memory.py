"""Reconciliation in memory: the ledger held grouped by card, shop and amount, transactions
streamed past it (those a ledger row could match are held until the end).

It returns every match as well as every discrepancy, and it is the reference the on-disk job
(:mod:`leat_async.reconcile._job`) is tested against: both pair rows by the rule in
:mod:`leat_async.reconcile`'s docstring, and both refuse a transaction id that comes twice. Its
memory grows with the ledger (about 1 KB a row) and, by the set of ids seen, with the
transactions (about 60 bytes each).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import attrs

from .. import GiftcardTransaction
from ._ledger import LedgerRow, RepeatedTransactionError
from ._matching import EXACT_LIMIT, match_times, tolerance_seconds
from ._report import Discrepancy, Match, ReconcileSummary

__all__ = ["DEFAULT_TOLERANCE", "ReconcileReport", "Reconciler", "reconcile"]

DEFAULT_TOLERANCE = 300.0  # seconds
_Key = tuple[str, str, int]


@attrs.frozen
class ReconcileReport:
    matches: Sequence[Match]
    discrepancies: Sequence[Discrepancy]
    summary: ReconcileSummary


_Held = tuple[float, int, Any]  # time, place in the stream, the transaction (or what's needed)


class Reconciler:
    """Streaming reconciliation: the ledger up front, then transactions one at a time.

    ::

        rec = Reconciler(ledger, tolerance=300)
        for tx in transactions:
            if (d := rec.feed(tx)) is not None:
                write(d)              # a transaction no ledger row can match
        for d in rec.finish():
            write(d)
        rec.summary, rec.matches

    Only transactions within reach of a ledger row are held until :meth:`finish`. With
    ``keep_matches=False`` only what their report row needs is held, and ``matches`` stays
    empty. :meth:`feed` raises :class:`~leat_async.reconcile.RepeatedTransactionError` for a
    transaction id it was fed before: what it returned until then is not a report.
    """

    def __init__(
        self,
        ledger: Iterable[LedgerRow],
        *,
        tolerance: float | timedelta = DEFAULT_TOLERANCE,
        keep_matches: bool = True,
        exact_limit: int = EXACT_LIMIT,
    ) -> None:
        self._tol = tolerance_seconds(tolerance)
        self._exact_limit = exact_limit
        self._keep = keep_matches
        norm: dict[str, str] = {}  # one lower-case string per uuid, shared by every row
        groups: dict[_Key, list[tuple[float, int, LedgerRow]]] = {}
        count = 0
        for count, row in enumerate(ledger, 1):
            when = row.created_at
            if when.tzinfo is None or when.utcoffset() is None:
                raise ValueError(f"ledger row {row.reference!r}: created_at must be timezone-aware")
            card, shop = row.giftcard_uuid, row.shop_uuid
            key = (
                norm.get(card) or norm.setdefault(card, card.strip().lower()),
                norm.get(shop) or norm.setdefault(shop, shop.strip().lower()),
                row.amount_in_cents,
            )
            item = (when.timestamp(), count, row)
            group = groups.get(key)
            if group is None:
                groups[key] = [item]
            else:
                group.append(item)
        for group in groups.values():
            if len(group) > 1:
                group.sort(key=_time_then_place)
        self._groups = groups
        self._held: dict[int, list[_Held]] = {}
        self._ids: set[int] = set()
        self._ledger_rows = count
        self._seq = 0
        self._unexpected = 0
        self._matched = 0
        self._finished = False
        self.matches: list[Match] = []

    def feed(self, tx: GiftcardTransaction) -> Discrepancy | None:
        """Take one transaction; return it as ``unexpected_in_leat`` if nothing can match it."""
        if self._finished:
            raise RuntimeError("this Reconciler is finished")
        ids = self._ids
        if tx.id in ids:
            raise RepeatedTransactionError(tx.id)
        ids.add(tx.id)
        self._seq += 1
        card, shop = tx.card.uuid, tx.shop.uuid
        if card and shop:
            key = (card.lower(), shop.lower(), tx.amount_in_cents)
            group = self._groups.get(key)
            if group is not None:
                t = tx.created_at.timestamp()
                i = bisect.bisect_left(group, t - self._tol, key=_time)
                if i < len(group) and group[i][0] <= t + self._tol:
                    self._hold(group, t, tx)
                    return None
        self._unexpected += 1
        return Discrepancy.unexpected(tx)

    def _hold(
        self, group: list[tuple[float, int, LedgerRow]], t: float, tx: GiftcardTransaction
    ) -> None:
        held: Any = tx
        if not self._keep:  # just what its report row needs, sharing the ledger's strings
            card, shop, row = tx.card.uuid, tx.shop.uuid, group[0][2]
            held = (
                tx.id,
                tx.uuid,
                row.giftcard_uuid if card == row.giftcard_uuid else card,
                row.shop_uuid if shop == row.shop_uuid else shop,
                tx.created_at,
            )
        # by the group's identity: the key made for this lookup need not be kept
        self._held.setdefault(id(group), []).append((t, self._seq, held))

    def finish(self) -> Iterator[Discrepancy]:
        """Pair what was held; yield the rest: held transactions left over, then ledger rows."""
        self._finished = True
        missing: list[tuple[int, LedgerRow]] = []
        leftover: list[tuple[int, Discrepancy]] = []
        held_by_key, self._held = self._held, {}
        for key, group in self._groups.items():
            held = held_by_key.get(id(group)) or []
            if len(held) > 1:
                held.sort(key=_time_then_place)
            pairs = self._pair(group, held)
            self._matched += len(pairs)
            if self._keep:
                self.matches += [Match(group[i][2], held[j][2]) for i, j in pairs]
            if len(pairs) < len(group):
                used = {i for i, _ in pairs}
                missing += [(s, r) for i, (_, s, r) in enumerate(group) if i not in used]
            if len(pairs) < len(held):
                used = {j for _, j in pairs}
                leftover += [
                    (s, self._unheld(key, x)) for j, (_, s, x) in enumerate(held) if j not in used
                ]
        leftover.sort(key=_first)
        missing.sort(key=_first)
        self._unexpected += len(leftover)
        for _, d in leftover:
            yield d
        for _, row in missing:
            yield Discrepancy.missing(row)

    @staticmethod
    def _unheld(key: _Key, held: Any) -> Discrepancy:
        if isinstance(held, GiftcardTransaction):
            return Discrepancy.unexpected(held)
        id, uuid, card, shop, created_at = held
        return Discrepancy("unexpected_in_leat", "", id, uuid, card, shop, key[2], created_at)

    def _pair(
        self, group: Sequence[tuple[float, int, Any]], held: Sequence[_Held]
    ) -> list[tuple[int, int]]:
        if not held:
            return []
        if len(group) == 1:  # the usual case: the nearest; on a tie the earlier
            t = group[0][0]
            best = min(range(len(held)), key=lambda j: abs(held[j][0] - t))
            return [(0, best)]
        times, held_times = [g[0] for g in group], [h[0] for h in held]
        return match_times(times, held_times, self._tol, exact_limit=self._exact_limit)

    @property
    def summary(self) -> ReconcileSummary:
        """The counts; final once :meth:`finish` has been consumed."""
        return ReconcileSummary(
            matched=self._matched,
            missing_in_leat=self._ledger_rows - self._matched,
            unexpected_in_leat=self._unexpected,
        )


def _time(item: tuple[float, int, Any]) -> float:
    return item[0]


def _time_then_place(item: tuple[float, int, Any]) -> tuple[float, int]:
    return item[0], item[1]


def _first(item: tuple[int, Any]) -> int:
    return item[0]


def reconcile(
    ledger_rows: Iterable[LedgerRow],
    transactions: Iterable[GiftcardTransaction],
    *,
    tolerance: float | timedelta = DEFAULT_TOLERANCE,
    exact_limit: int = EXACT_LIMIT,
) -> ReconcileReport:
    """Reconcile in memory: every match and every discrepancy, by the module's rule
    (``exact_limit``: as :func:`match_times`)."""
    rec = Reconciler(ledger_rows, tolerance=tolerance, exact_limit=exact_limit)
    found = [d for tx in transactions if (d := rec.feed(tx)) is not None]
    found += rec.finish()
    return ReconcileReport(matches=rec.matches, discrepancies=found, summary=rec.summary)
