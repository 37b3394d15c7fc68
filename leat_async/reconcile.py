"""Reconcile a ledger of your own against Leat's giftcard transactions.

::

    ledger = read_ledger("ledger.csv")
    report = reconcile(ledger, read_export("transactions.jsonl"), tolerance=300)
    for row in report.discrepancies:
        ...

The matching rule. A ledger row and a transaction can match when they have the same giftcard
uuid (the transaction's ``card.uuid``), the same shop uuid and the same amount, and their
``created_at`` lie at most ``tolerance`` seconds apart. Each ledger row matches at most one
transaction and each transaction at most one ledger row. Among the candidates of one card, shop
and amount the pairing chosen is the one that

1. matches the most rows (so the report never grows because of a clumsy pairing), then
2. keeps the matched times closest (the smallest sum of time differences), then
3. on exact ties, pairs earlier ledger rows and earlier transactions first.

A greedy "each ledger row takes its nearest transaction" gets this wrong: with a tolerance of
4 s, ledger rows at 6 s and 13 s and transactions at 2 s and 9 s, the row at 6 s would take
9 s (its nearest) and leave the row at 13 s without a match; the rule above pairs 6-2 and 13-9.
The pairing is exact (a small dynamic program over time-sorted runs of candidates that lie
within the tolerance of each other); a run with over :data:`EXACT_LIMIT` candidate pairs (which
takes thousands of identical payments on one card within minutes) falls back to a linear
greedy pass that still matches the most rows, without rule 2.

An amount that differs is therefore one ``missing_in_leat`` plus one ``unexpected_in_leat``.
Transactions are streamed: only those that could match a ledger row are held, the ledger is
held in memory grouped by card, shop and amount.
"""

from __future__ import annotations

import bisect
import csv
import os
from collections.abc import AsyncIterable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple

import attrs

from . import GiftcardTransaction
from ._export_files import partial_path
from ._ledger import LEDGER_COLUMNS, InputError, LedgerRow, read_export, read_ledger
from ._matching import EXACT_LIMIT, match_times

__all__ = [
    "DEFAULT_TOLERANCE",
    "EXACT_LIMIT",
    "LEDGER_COLUMNS",
    "REPORT_COLUMNS",
    "Discrepancy",
    "InputError",
    "LedgerRow",
    "Match",
    "ReconcileReport",
    "ReconcileSummary",
    "Reconciler",
    "match_times",
    "read_export",
    "read_ledger",
    "reconcile",
    "reconcile_to_csv",
    "reconcile_to_csv_async",
]

DEFAULT_TOLERANCE: Final = 300.0  # seconds
REPORT_COLUMNS: Final = (
    "status",
    "reference",
    "transaction_id",
    "transaction_uuid",
    "giftcard_uuid",
    "shop_uuid",
    "amount_in_cents",
    "created_at",
)
Status = Literal["missing_in_leat", "unexpected_in_leat"]
_Key = tuple[str, str, int]

# Named tuples: light enough to hold a ledger of millions of rows and to make one per report row.


class Match(NamedTuple):
    ledger: LedgerRow
    transaction: GiftcardTransaction


class Discrepancy(NamedTuple):
    """One row of the report."""

    status: Status
    reference: str
    transaction_id: int | None
    transaction_uuid: str | None
    giftcard_uuid: str | None
    shop_uuid: str | None
    amount_in_cents: int
    created_at: datetime

    @classmethod
    def missing(cls, row: LedgerRow) -> Discrepancy:
        return cls(
            "missing_in_leat",
            row.reference,
            None,
            None,
            row.giftcard_uuid,
            row.shop_uuid,
            row.amount_in_cents,
            row.created_at,
        )

    @classmethod
    def unexpected(cls, tx: GiftcardTransaction) -> Discrepancy:
        return cls(
            "unexpected_in_leat",
            "",
            tx.id,
            tx.uuid,
            tx.card.uuid,
            tx.shop.uuid,
            tx.amount_in_cents,
            tx.created_at,
        )

    def csv_row(self) -> tuple[str | int, ...]:
        """The values of :data:`REPORT_COLUMNS` (``None`` as an empty cell)."""
        return (
            self.status,
            self.reference,
            "" if self.transaction_id is None else self.transaction_id,
            self.transaction_uuid or "",
            self.giftcard_uuid or "",
            self.shop_uuid or "",
            self.amount_in_cents,
            self.created_at.isoformat(),
        )


@attrs.frozen
class ReconcileSummary:
    matched: int
    missing_in_leat: int
    unexpected_in_leat: int

    @property
    def clean(self) -> bool:
        """Everything matched."""
        return not (self.missing_in_leat or self.unexpected_in_leat)


@attrs.frozen
class ReconcileReport:
    matches: Sequence[Match]
    discrepancies: Sequence[Discrepancy]
    summary: ReconcileSummary


# -- streaming reconciliation -----------------------------------------------------------------


def _seconds(tolerance: float | timedelta) -> float:
    value = tolerance.total_seconds() if isinstance(tolerance, timedelta) else tolerance
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"tolerance must be a number of seconds >= 0, got {tolerance!r}")
    return float(value)


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
    empty.
    """

    def __init__(
        self,
        ledger: Iterable[LedgerRow],
        *,
        tolerance: float | timedelta = DEFAULT_TOLERANCE,
        keep_matches: bool = True,
    ) -> None:
        self._tol = _seconds(tolerance)
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
        return match_times([g[0] for g in group], [h[0] for h in held], self._tol)

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
) -> ReconcileReport:
    """Reconcile in memory: every match and every discrepancy, by the module's rule."""
    rec = Reconciler(ledger_rows, tolerance=tolerance)
    found = [d for tx in transactions if (d := rec.feed(tx)) is not None]
    found += rec.finish()
    return ReconcileReport(matches=rec.matches, discrepancies=found, summary=rec.summary)


def reconcile_to_csv(
    ledger_rows: Iterable[LedgerRow],
    transactions: Iterable[GiftcardTransaction],
    report_path: str | os.PathLike[str],
    *,
    tolerance: float | timedelta = DEFAULT_TOLERANCE,
) -> ReconcileSummary:
    """Reconcile, streaming the discrepancies to a CSV report (:data:`REPORT_COLUMNS`).

    The report is written beside ``report_path`` and renamed into place when complete. Its
    rows: transactions that nothing can match, as they are read; then the other unmatched
    transactions; then the ledger rows missing in Leat.
    """
    with _ReportFile(report_path, ledger_rows, tolerance) as report:
        for tx in transactions:
            report.feed(tx)
    return report.summary


async def reconcile_to_csv_async(
    ledger_rows: Iterable[LedgerRow],
    transactions: AsyncIterable[GiftcardTransaction],
    report_path: str | os.PathLike[str],
    *,
    tolerance: float | timedelta = DEFAULT_TOLERANCE,
) -> ReconcileSummary:
    """:func:`reconcile_to_csv` for an async source, like ``client.giftcard_transactions.list()``.

    The report is written in the loop, a row at a time (buffered).
    """
    with _ReportFile(report_path, ledger_rows, tolerance) as report:
        async for tx in transactions:
            report.feed(tx)
    return report.summary


class _ReportFile:
    def __init__(
        self,
        path: str | os.PathLike[str],
        ledger_rows: Iterable[LedgerRow],
        tolerance: float | timedelta,
    ) -> None:
        self._rec = Reconciler(ledger_rows, tolerance=tolerance, keep_matches=False)
        self._target = Path(path)
        self._tmp = partial_path(self._target)

    def __enter__(self) -> _ReportFile:
        self._file = open(self._tmp, "w", newline="", encoding="utf-8")
        self._out = csv.writer(self._file, lineterminator="\n")
        self._out.writerow(REPORT_COLUMNS)
        return self

    def feed(self, tx: GiftcardTransaction) -> None:
        if (d := self._rec.feed(tx)) is not None:
            self._out.writerow(d.csv_row())

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                self._out.writerows(d.csv_row() for d in self._rec.finish())
            self._file.close()
            if exc_type is None:
                os.replace(self._tmp, self._target)
        finally:
            if exc_type is not None or self._tmp.exists():
                self._file.close()
                self._tmp.unlink(missing_ok=True)

    @property
    def summary(self) -> ReconcileSummary:
        return self._rec.summary
