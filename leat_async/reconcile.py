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
import json
import os
from collections.abc import AsyncIterable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, NoReturn

import attrs

from . import CardRef, GiftcardTransaction, Shop
from .export import parse_datetime

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
EXACT_LIMIT: Final = 250_000
LEDGER_COLUMNS: Final = ("reference", "giftcard_uuid", "shop_uuid", "amount_in_cents", "created_at")
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

try:
    import orjson

    _loads: Any = orjson.loads
except ImportError:  # pragma: no cover - orjson is the optional "fast" extra
    _loads = json.loads


# Named tuples: light enough to hold a ledger of millions of rows and to make one per report row.


class LedgerRow(NamedTuple):
    """One row of your ledger: a payment you expect Leat to have recorded.

    ``created_at`` must be timezone-aware (:class:`Reconciler` refuses a naive one).
    """

    reference: str
    giftcard_uuid: str
    shop_uuid: str
    amount_in_cents: int
    created_at: datetime


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


# -- the pure matcher -------------------------------------------------------------------------


def match_times(
    ledger: Sequence[float], transactions: Sequence[float], tolerance: float
) -> list[tuple[int, int]]:
    """Pair two ascending lists of times (seconds) by the module's rule; ``(i, j)`` index pairs.

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
        self._tmp = self._target.with_name(self._target.name + ".partial")

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


# -- reading files ----------------------------------------------------------------------------


class InputError(ValueError):
    """A ledger or export file that cannot be read as one; the text names the file and line."""


def read_ledger(path: str | os.PathLike[str]) -> list[LedgerRow]:
    """Read a ledger CSV with the columns :data:`LEDGER_COLUMNS` (others are ignored).

    ``created_at`` is ISO 8601; a date, or a time without a zone, is UTC. Raises
    :class:`InputError` naming the line of the first bad row.
    """
    rows: list[LedgerRow] = []
    shared: dict[str, str] = {}  # one string object per uuid: a ledger repeats them a lot
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [name.strip() for name in next(reader, [])]
        absent = [c for c in LEDGER_COLUMNS if c not in header]
        if absent:
            raise InputError(f"{path}: the ledger lacks the column(s) {', '.join(absent)}")
        at = [header.index(c) for c in LEDGER_COLUMNS]
        width = max(at) + 1
        for record in reader:
            if not record:
                continue
            try:
                if len(record) < width:
                    raise ValueError(f"{len(record)} columns, expected {len(header)}")
                ref, card, shop, amount, when = (record[i].strip() for i in at)
                rows.append(
                    LedgerRow(
                        ref,
                        shared.setdefault(card, card) if card else _empty("giftcard_uuid"),
                        shared.setdefault(shop, shop) if shop else _empty("shop_uuid"),
                        _cents(amount),
                        parse_datetime(when) if when else _empty("created_at"),
                    )
                )
            except ValueError as exc:
                raise InputError(f"{path} line {reader.line_num}: {exc}") from None
    return rows


def _empty(column: str) -> NoReturn:
    raise ValueError(f"{column} is empty")


def _cents(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"amount_in_cents {text!r:.30} is not a whole number of cents") from None


def read_export(path: str | os.PathLike[str]) -> Iterator[GiftcardTransaction]:
    """Stream the transactions of an export file: JSONL, or CSV when the name ends in ``.csv``.

    Raises :class:`InputError` at the first line that is not a transaction.
    """
    if str(path).lower().endswith(".csv"):
        return _read_export_csv(path)
    return _read_export_jsonl(path)


def _read_export_jsonl(path: str | os.PathLike[str]) -> Iterator[GiftcardTransaction]:
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                doc = _loads(line)
                card, shop = doc["card"], doc["shop"]
                yield _transaction(
                    doc["id"],
                    doc["uuid"],
                    doc["amount_in_cents"],
                    doc.get("type", "STANDARD"),
                    doc.get("settled", False),
                    CardRef(_int(card["id"]), _opt_str(card["uuid"])),
                    Shop(_int(shop["id"]), _opt_str(shop["uuid"]), str(shop.get("name", ""))),
                    tuple(doc.get("settlements") or ()),
                    doc["created_at"],
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"{path} line {number}: not a transaction ({_why(exc)})") from None


def _read_export_csv(path: str | os.PathLike[str]) -> Iterator[GiftcardTransaction]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for r in reader:
            try:
                yield _transaction(
                    int(r["id"]),
                    r["uuid"] or None,
                    int(r["amount_in_cents"]),
                    r["type"],
                    r["settled"] == "true",
                    CardRef(int(r["card_id"]), r["card_uuid"] or None),
                    Shop(int(r["shop_id"]), r["shop_uuid"] or None, r["shop_name"]),
                    (),
                    r["created_at"],
                )
            except (KeyError, TypeError, ValueError) as exc:
                where = f"{path} line {reader.line_num}"
                raise InputError(f"{where}: not a transaction ({_why(exc)})") from None


def _transaction(
    id: Any,
    uuid: Any,
    amount: Any,
    type: Any,
    settled: Any,
    card: CardRef,
    shop: Shop,
    settlements: tuple[Any, ...],
    created_at: Any,
) -> GiftcardTransaction:
    when = datetime.fromisoformat(created_at) if isinstance(created_at, str) else None
    if when is None or when.tzinfo is None:
        raise ValueError(f"created_at {created_at!r:.40} is not an ISO 8601 time with a zone")
    return GiftcardTransaction(
        id=_int(id),
        uuid=_opt_str(uuid),
        amount_in_cents=_int(amount),
        type=str(type),
        settled=bool(settled),
        card=card,
        shop=shop,
        settlements=settlements,
        created_at=when,
    )


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {value!r:.30}")
    return value


def _opt_str(value: Any) -> str | None:
    if value is not None and type(value) is not str:
        raise TypeError(f"expected a string or null, got {value!r:.30}")
    return value


def _why(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r} field"
    return str(exc) or type(exc).__name__
