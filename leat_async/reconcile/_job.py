"""Reconciliation on disk: both inputs sorted externally, matched as they stream, in bounded memory.

A job takes ledger rows, then transactions, in chunks, turns each into a small record and sorts
the records by giftcard, shop, amount and time in an ``ExternalSorter`` (``_spill``) per side.
:meth:`ReconcileJob.finish` merges the two sorted streams through ``match_sorted``
(``_matching``) and writes the report: the discrepancies, sorted again
(on disk if need be) into the report's order: first the transactions the ledger lacks, in the
order they came, then the ledger rows Leat lacks, in ledger order.

Before any of that, it makes sure that no transaction id came twice (Leat holds each once): each
transaction's id, with a fingerprint of its payment, is sorted too, so that copies of an id end
up next to each other however far apart they came; one pass over that stream finds them in
bounded memory (about 50 bytes per id held, the buffer's worth).

Everything here is synchronous and may run in a worker thread; a long step looks at ``stop``
every few thousand rows and raises :class:`Stopped` once it is set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import IO, Final, Literal

from .. import GiftcardTransaction
from ._ledger import LedgerFields, LedgerRow, RepeatedTransactionError
from ._matching import EXACT_LIMIT, Record, match_sorted
from ._report import Discrepancy, ReconcileSummary, write_report_header, write_report_rows
from ._spill import ExternalSorter

__all__ = ["DEFAULT_MEMORY_ROWS", "Phase", "Progress", "ReconcileJob", "Stopped"]

#: records held in memory before a sorted run goes to disk (about 100 MB of them)
DEFAULT_MEMORY_ROWS: Final = 200_000

Phase = Literal["read", "sort", "match"]
#: ``progress(phase, rows_done, rows_total)``: ``rows_total`` is ``None`` while unknown. It is
#: called from the thread doing the work.
Progress = Callable[[Phase, int, "int | None"], None]

_NORM_SIZE: Final = 1 << 16  # uuids remembered in their compared form
# an id and its payment's fingerprint as one int, ``id << 64 | fingerprint``: ordered by id,
# and a third of the memory of a tuple of the two
_FP_BITS: Final = 64
_FP_MASK: Final = (1 << _FP_BITS) - 1
_Found = tuple[int, int, tuple[str | int, ...]]  # (0 unexpected | 1 missing, place, csv row)


class Stopped(Exception):
    """The job was asked to stop (its caller was cancelled)."""


class ReconcileJob:
    """One reconciliation: :meth:`add_ledger` (all of it), then :meth:`add_transactions`, then
    :meth:`finish`. Its files live in ``directory``, which the caller removes."""

    def __init__(
        self,
        directory: Path,
        *,
        tolerance: float,
        memory_rows: int = DEFAULT_MEMORY_ROWS,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        exact_limit: int = EXACT_LIMIT,
    ) -> None:
        if memory_rows < 2:
            raise ValueError("memory_rows must be >= 2")
        self._tol = tolerance
        self._exact_limit = exact_limit
        self._memory_rows = memory_rows
        self._progress = progress
        self._stop = stop or threading.Event()
        self._sorted = 0
        self._ledger: ExternalSorter[Record] = ExternalSorter(
            directory, name="ledger", buffer_rows=memory_rows, on_sorted=self._on_sorted
        )
        self._txs: ExternalSorter[Record] = ExternalSorter(
            directory, name="transactions", buffer_rows=memory_rows, on_sorted=self._on_sorted
        )
        self._found: ExternalSorter[_Found] = ExternalSorter(
            directory, name="report", buffer_rows=memory_rows // 2
        )
        self._ids: ExternalSorter[int] = ExternalSorter(
            directory, name="ids", buffer_rows=memory_rows
        )
        # each uuid as given -> as compared (ledger: stripped, lower case; Leat's: lower case)
        self._ledger_norm: dict[str, str] = {}
        self._tx_norm: dict[str, str] = {}
        self._zones: dict[tzinfo, int] = {}  # offsets of the fixed-offset zones seen
        self.ledger_rows = 0
        self.transactions = 0
        self._missing = 0
        self._unexpected = 0

    # -- reading ------------------------------------------------------------------------------

    def add_ledger(self, rows: Iterable[LedgerRow | LedgerFields]) -> int:
        """Take ledger rows; return how many."""
        before = self.ledger_rows
        self._ledger.add(self._ledger_records(rows))
        self._read()
        return self.ledger_rows - before

    def _ledger_records(self, rows: Iterable[LedgerRow | LedgerFields]) -> Iterator[Record]:
        norm, zone = self._ledger_norm, self._zone
        for place, (reference, card, shop, amount, when) in enumerate(rows, self.ledger_rows + 1):
            if when.tzinfo is None or when.utcoffset() is None:
                raise ValueError(f"ledger row {reference!r}: created_at must be timezone-aware")
            t = when.timestamp()
            yield (
                norm.get(card) or self._normal(norm, card.strip(), card),
                norm.get(shop) or self._normal(norm, shop.strip(), shop),
                amount,
                t,
                place,
                reference,
                card,
                shop,
                zone(when, t),
            )
            self.ledger_rows = place

    def end_ledger(self) -> None:
        """The ledger is complete: unless it is small, what it holds in memory goes to disk,
        and the transactions get the rest of the memory."""
        self._ledger.release(keep=self._memory_rows // 4)
        self._txs.buffer_rows = self._memory_rows - self._ledger.buffered

    def ledger_to_runs(self) -> list[Path]:
        """The ledger in sorted run files (in a worker process: see ``_ledger_worker``): merged
        into one, which spares the job a merge at the end (the worker, which reads a CSV, is
        usually done long before the transactions are)."""
        return self._ledger.to_runs(1)

    def adopt_ledger(self, runs: list[Path], rows: int) -> None:
        """Take the ledger as sorted elsewhere (:meth:`ledger_to_runs`), instead of adding it."""
        self._ledger.adopt(runs, rows)
        self.ledger_rows = rows
        self._on_sorted(rows)

    def add_transactions(self, transactions: Iterable[GiftcardTransaction]) -> int:
        """Take transactions; return how many."""
        before = self.transactions
        ids: list[int] = []
        self._txs.add(self._transaction_records(transactions, ids))
        self._ids.add(ids)
        self._read()
        return self.transactions - before

    def _transaction_records(
        self, transactions: Iterable[GiftcardTransaction], ids: list[int]
    ) -> Iterator[Record]:
        """The transactions' records; each one's id and fingerprint go to ``ids``."""
        norm, zone, note = self._tx_norm, self._zone, ids.append
        for place, tx in enumerate(transactions, self.transactions + 1):
            card, shop, when = tx.card.uuid, tx.shop.uuid, tx.created_at
            t = when.timestamp()
            payment = hash((tx.uuid, card, shop, tx.amount_in_cents, t))
            note((tx.id << _FP_BITS) | (payment & _FP_MASK))
            rec = (
                norm.get(card) or self._normal(norm, card, card) if card else "",
                norm.get(shop) or self._normal(norm, shop, shop) if shop else "",
                tx.amount_in_cents,
                t,
                place,
                tx.id,
                tx.uuid,
                card,
                shop,
                zone(when, t),
            )
            self.transactions = place
            if card and shop:
                yield rec
            else:  # old rows without uuids match nothing
                self._report(1, rec)

    @staticmethod
    def _normal(norm: dict[str, str], text: str, uuid: str) -> str:
        """``text`` in lower case, as ``uuid`` is compared; remembered in ``norm``, a bounded
        table (a ledger or a listing repeats uuids a lot, but may hold millions)."""
        if len(norm) >= _NORM_SIZE:
            norm.clear()
        normal = norm[uuid] = text.lower()
        return normal

    def ledger_read(self, rows: int) -> None:
        """Progress of a ledger read elsewhere (by a worker process)."""
        self.ledger_rows = rows
        self._read()

    def _zone(self, when: datetime, t: float) -> int | str:
        """:func:`_zone`, remembered for fixed-offset zones (not for zones with rules)."""
        tz = when.tzinfo
        known = self._zones.get(tz) if -_EXACT_SPAN < t < _EXACT_SPAN else None  # type: ignore[arg-type]
        if known is not None:
            return known
        zone = _zone(when, t)
        if isinstance(tz, timezone) and isinstance(zone, int):
            self._zones[tz] = zone
        return zone

    def _read(self) -> None:
        if self._stop.is_set():
            raise Stopped
        if self._progress is not None:
            self._progress("read", self.ledger_rows + self.transactions, None)

    def _on_sorted(self, rows: int) -> None:
        self._sorted += rows
        if self._progress is not None:
            self._progress("sort", self._sorted, None)

    # -- matching -----------------------------------------------------------------------------

    def finish(self, out: IO[str]) -> ReconcileSummary:
        """Match, write the report (its header, then its rows) to ``out``; return the counts.

        :class:`RepeatedTransactionError` if a transaction id came twice: then nothing is
        matched and nothing is written.
        """
        total = self.ledger_rows + self.transactions
        self._say("read", total, total)
        self._refuse_repeats()
        ledger, txs = self._ledger.sorted(), self._txs.sorted()
        self._say("sort", total, total)
        matched = match_sorted(
            ledger, txs, self._tol, tick=self._matching, exact_limit=self._exact_limit
        )
        for side, rec in matched:
            self._report(side, rec)
        self._say("match", total, total)
        write_report_header(out)
        write_report_rows(out, (row for _, _, row in self._found.sorted()))
        return ReconcileSummary(
            matched=self.ledger_rows - self._missing,
            missing_in_leat=self._missing,
            unexpected_in_leat=self._unexpected,
        )

    def _refuse_repeats(self) -> None:
        """Raise :class:`RepeatedTransactionError` if an id came twice: naming one that came as
        different payments if any did (the worse case), else the lowest, and counting them."""
        repeats = _repeats(self._ids.sorted(), self._stop)
        first = next(repeats, None)
        if first is None:
            return
        named, count = first, 1
        for repeat in repeats:
            count += 1
            if named[2] and not repeat[2]:
                named = repeat
        raise RepeatedTransactionError(*named, repeated_ids=count)

    def _report(self, side: int, rec: Record) -> None:
        """A discrepancy: ``side`` 0 a ledger record, 1 a transaction's."""
        amount, t, place = rec[2], rec[3], rec[4]
        if side:
            self._unexpected += 1
            id, uuid, card, shop, zone = rec[5:]
            d = Discrepancy("unexpected_in_leat", "", id, uuid, card, shop, amount, _at(t, zone))
        else:
            self._missing += 1
            reference, card, shop, zone = rec[5:]
            d = Discrepancy(
                "missing_in_leat", reference, None, None, card, shop, amount, _at(t, zone)
            )
        self._found.add([(1 - side, place, d.csv_row())])

    def _matching(self, records: int) -> None:
        if self._stop.is_set():
            raise Stopped
        self._say("match", records, self.ledger_rows + self.transactions)

    def _say(self, phase: Phase, done: int, total: int | None) -> None:
        if self._progress is not None:
            self._progress(phase, done, total)


def _repeats(ids: Iterator[int], stop: threading.Event) -> Iterator[tuple[int, int, bool]]:
    """``(id, copies, same_payment)`` for each id that comes more than once in ``ids`` (sorted
    ``id << 64 | fingerprint`` values: an id's copies are adjacent, ordered by fingerprint)."""
    it = iter(ids)
    value = next(it, None)
    if value is None:
        return
    last, first, copies, same = value >> _FP_BITS, value & _FP_MASK, 1, True
    for n, value in enumerate(it, 1):
        if not n & 8191 and stop.is_set():
            raise Stopped
        id = value >> _FP_BITS
        if id == last:
            copies += 1
            same = same and value & _FP_MASK == first
            continue
        if copies > 1:
            yield last, copies, same
        last, first, copies, same = id, value & _FP_MASK, 1, True
    if copies > 1:
        yield last, copies, same


_EXACT_SPAN: Final = 2.0**32  # seconds from 1970 within which a float holds every microsecond
_ZONES: dict[int, timezone] = {0: UTC}


def _zone(when: datetime, t: float) -> int | str:
    """What :func:`_at` needs to give ``when`` back exactly: its UTC offset in seconds, or
    (for an offset with microseconds, or a time too far out) its ISO text."""
    offset = when.utcoffset()
    if offset is None or offset.microseconds or not -_EXACT_SPAN < t < _EXACT_SPAN:
        return when.isoformat()
    return offset.days * 86_400 + offset.seconds


def _at(t: float, zone: int | str) -> datetime:
    if isinstance(zone, str):
        return datetime.fromisoformat(zone)
    tz = _ZONES.get(zone) or _ZONES.setdefault(zone, timezone(timedelta(seconds=zone)))
    return datetime.fromtimestamp(t, tz)
