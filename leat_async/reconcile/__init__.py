"""Reconcile a ledger of your own against Leat's giftcard transactions.

::

    # any size, in bounded memory: the report goes to a CSV file
    summary = reconcile_to_csv(read_ledger("ledger.csv"), read_export("tx.jsonl"), "report.csv")

    # the same from async code, e.g. straight from a listing (files are read off the loop)
    async with LeatClient(token) as client:
        pager = client.giftcard_transactions.list(shop_uuid=shop, created_at=period)
        summary = await reconcile_to_csv_async(read_ledger("shop.csv"), pager, "report.csv")

    # small inputs, in memory: every match and every discrepancy as objects
    report = reconcile(ledger_rows, transactions, tolerance=300)

The matching rule. A ledger row and a transaction can match when they have the same giftcard
uuid (the transaction's ``card.uuid``; compared without regard to case), the same shop uuid and
the same amount, and their ``created_at`` lie at most ``tolerance`` seconds apart. Each ledger
row matches at most one transaction and each transaction at most one ledger row. Among the
candidates of one card, shop and amount the pairing chosen is the one that

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

Leat holds each transaction once, so a transaction id that comes twice (two overlapping exports
joined, the same file given twice) is refused with :class:`RepeatedTransactionError`, an
:class:`InputError`, before anything is matched or written: matching both copies would hide a
payment the ledger books twice, and when the copies differ no rule can tell which one is Leat's.

The report (:data:`REPORT_COLUMNS`) lists the transactions no ledger row matched
(``unexpected_in_leat``) in the order they came, then the ledger rows no transaction matched
(``missing_in_leat``) in ledger order. The CSV functions sort both inputs on disk (in a
temporary directory, removed however the job ends) and match them as they stream, so memory
stays bounded (about 200 MB) whatever the size and order of the inputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import tempfile
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

from .. import GiftcardTransaction
from ..export import partial_path
from ..files import OutputBusyError, destination, one_writer, open_stream
from ._job import DEFAULT_MEMORY_ROWS, Phase, Progress, ReconcileJob
from ._ledger import (
    LEDGER_COLUMNS,
    InputError,
    LedgerRow,
    RepeatedTransactionError,
    read_export,
    read_ledger,
)
from ._ledger_worker import WORKER_MIN_BYTES, LedgerWorker
from ._matching import EXACT_LIMIT, match_times, tolerance_seconds
from ._memory import DEFAULT_TOLERANCE, Reconciler, ReconcileReport, reconcile
from ._report import REPORT_COLUMNS, Discrepancy, Match, ReconcileSummary

__all__ = [
    "DEFAULT_MEMORY_ROWS",
    "DEFAULT_TOLERANCE",
    "EXACT_LIMIT",
    "LEDGER_COLUMNS",
    "REPORT_COLUMNS",
    "WORKER_MIN_BYTES",
    "Discrepancy",
    "InputError",
    "LedgerRow",
    "Match",
    "OutputBusyError",
    "Phase",
    "Progress",
    "ReconcileReport",
    "ReconcileSummary",
    "Reconciler",
    "RepeatedTransactionError",
    "match_times",
    "read_export",
    "read_ledger",
    "reconcile",
    "reconcile_to_csv",
    "reconcile_to_csv_async",
]

T = TypeVar("T")
Report = str | os.PathLike[str] | IO[str]
#: ledger rows, or the path of a ledger CSV
Ledger = Iterable[LedgerRow] | AsyncIterable[LedgerRow] | str | os.PathLike[str]
_CHUNK = 4096  # rows taken from an input per step (per trip to a worker thread)


def reconcile_to_csv(
    ledger_rows: Iterable[LedgerRow] | str | os.PathLike[str],
    transactions: Iterable[GiftcardTransaction],
    report: Report,
    *,
    tolerance: float | timedelta = DEFAULT_TOLERANCE,
    tmp_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    memory_rows: int = DEFAULT_MEMORY_ROWS,
    exact_limit: int = EXACT_LIMIT,
) -> ReconcileSummary:
    """Reconcile in bounded memory, writing the discrepancies to a CSV report.

    ``ledger_rows`` are rows, or the path of a ledger CSV. ``report`` is a path (written beside
    it, renamed into place when complete; nothing is left on failure; through a symlink, its
    target) or an open text file (written, not closed; nothing is written to it unless the job
    succeeds); a path to a named pipe or a device is written as such a file. While the job
    writes a report file it holds an OS lock on ``REPORT.lock`` beside it: another job for the
    same report raises :class:`OutputBusyError` before it touches anything. Sorted runs go to a
    temporary directory in ``tmp_dir`` (default: the system's), removed however the job ends.
    ``progress(phase, rows, total)`` hears of each phase ("read", "sort", "match");
    ``memory_rows`` bounds the rows held in memory (about 500 bytes each; and as many
    transaction ids, about 50 bytes each); ``exact_limit``: the most candidate pairs of one run
    of times matched exactly (a longer run: the greedy pass, see :func:`match_times`). A
    transaction id that comes twice raises :class:`RepeatedTransactionError` before anything
    is written.
    """
    seconds = tolerance_seconds(tolerance)
    with _report_file(report) as out, _workspace(tmp_dir) as directory:
        job = ReconcileJob(
            directory,
            tolerance=seconds,
            memory_rows=memory_rows,
            progress=progress,
            exact_limit=exact_limit,
        )
        ledger = iter(
            read_ledger(ledger_rows) if isinstance(ledger_rows, str | os.PathLike) else ledger_rows
        )
        while job.add_ledger(itertools.islice(ledger, _CHUNK)):
            pass
        job.end_ledger()
        txs = iter(transactions)
        while job.add_transactions(itertools.islice(txs, _CHUNK)):
            pass
        return job.finish(out)


async def reconcile_to_csv_async(
    ledger_rows: Ledger,
    transactions: AsyncIterable[GiftcardTransaction] | Iterable[GiftcardTransaction],
    report: Report,
    *,
    tolerance: float | timedelta = DEFAULT_TOLERANCE,
    tmp_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    memory_rows: int = DEFAULT_MEMORY_ROWS,
    exact_limit: int = EXACT_LIMIT,
    worker_min_bytes: int = WORKER_MIN_BYTES,
) -> ReconcileSummary:
    """:func:`reconcile_to_csv` for async code: many jobs can share one client and one loop.

    ``ledger_rows`` is an iterable (like :func:`read_ledger`), an async iterable, or the path
    of a ledger CSV (one of ``worker_min_bytes`` or more is then read and sorted by a worker
    process, on another core, while the transactions come in); ``transactions`` a pager
    (``client.giftcard_transactions.list(...)``), any async iterable, or an iterable (like
    :func:`read_export`). Everything that touches files or takes CPU time (reading a plain
    iterable, sorting, writing runs, matching, writing the report) runs in a worker thread, a
    few thousand rows per trip, so the event loop and the client's pacing are never held up.
    Cancelling the task stops the job within a few thousand rows and removes its files.
    """
    seconds = tolerance_seconds(tolerance)
    stop = threading.Event()
    async with contextlib.AsyncExitStack() as files:  # the report first: it may be locked
        opened = await files.enter_async_context(_opened(report))
        out = files.enter_context(_report_file(opened))
        directory = files.enter_context(_workspace(tmp_dir))
        worker = await _ledger_worker(ledger_rows, directory, memory_rows, worker_min_bytes)
        job = ReconcileJob(
            directory,
            tolerance=seconds,
            memory_rows=memory_rows if worker is None else memory_rows - memory_rows // 2,
            progress=progress,
            stop=stop,
            exact_limit=exact_limit,
        )
        sorted_ledger: asyncio.Task[tuple[list[Path], int]] | None = None
        try:
            if worker is None:
                ledger = await _in_thread(stop, _ledger_source, ledger_rows)
                async for rows in _chunks(ledger, stop):
                    await _in_thread(stop, job.add_ledger, rows)
                await _in_thread(stop, job.end_ledger)
            else:
                sorted_ledger = asyncio.create_task(
                    worker.result(lambda: job.ledger_read(worker.rows))
                )
            async for txs in _chunks(transactions, stop):
                if sorted_ledger is not None and sorted_ledger.done():
                    sorted_ledger.result()  # the worker failed: no need to read further
                await _in_thread(stop, job.add_transactions, txs)
            if sorted_ledger is not None:
                job.adopt_ledger(*await sorted_ledger)
            return await _in_thread(stop, job.finish, out)
        finally:
            if sorted_ledger is not None:
                sorted_ledger.cancel()
                if sorted_ledger.done() and not sorted_ledger.cancelled():
                    sorted_ledger.exception()  # seen (another error is on its way out)
            if worker is not None:
                await asyncio.shield(worker.stop())


async def _ledger_worker(
    ledger: object, directory: Path, memory_rows: int, min_bytes: int
) -> LedgerWorker | None:
    """A worker process for a big ledger file, started; ``None`` for anything else."""
    if not isinstance(ledger, str | os.PathLike):
        return None
    size = await asyncio.to_thread(os.path.getsize, ledger)
    if size < min_bytes:
        return None
    await asyncio.to_thread(read_ledger, ledger)  # its header, checked now
    worker = LedgerWorker(Path(ledger), directory, memory_rows // 2)
    await worker.start()
    return worker


def _ledger_source(ledger: Ledger) -> Iterable[LedgerRow] | AsyncIterable[LedgerRow]:
    """Rows as they are; a path's rows from :func:`read_ledger` (which reads its header now)."""
    return read_ledger(ledger) if isinstance(ledger, str | os.PathLike) else ledger


async def _chunks(
    source: Iterable[T] | AsyncIterable[T], stop: threading.Event
) -> AsyncIterator[list[T]]:
    """Lists of up to :data:`_CHUNK` items; a plain iterable is read in a worker thread."""
    if isinstance(source, AsyncIterable):
        chunk: list[T] = []
        async for item in source:
            chunk.append(item)
            if len(chunk) >= _CHUNK:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
        return
    it = iter(source)
    while chunk := await _in_thread(stop, _take, it):
        yield chunk


def _take(it: Iterator[T]) -> list[T]:
    return list(itertools.islice(it, _CHUNK))


async def _in_thread(stop: threading.Event, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in the loop's default executor. If we are cancelled meanwhile, the thread
    is told to stop and waited for, so the job's files are not removed under its feet."""
    future = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.wait([future])
        if not future.cancelled():
            future.exception()  # retrieved: the job's Stopped is expected
        raise


@contextlib.contextmanager
def _workspace(tmp_dir: str | os.PathLike[str] | None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(
        prefix="leat-reconcile-", dir=tmp_dir, ignore_cleanup_errors=True
    ) as name:
        yield Path(name)


@contextlib.asynccontextmanager
async def _opened(report: Report) -> AsyncIterator[Report]:
    """``report``, but a path to a pipe or a device opened (without holding up the loop: a
    pipe may wait for its reader), and closed again at the end."""
    if not isinstance(report, str | os.PathLike) or destination(report).stream is None:
        yield report
        return
    raw = await open_stream(Path(report))
    with io.TextIOWrapper(raw, encoding="utf-8", newline="") as out:
        yield out


@contextlib.contextmanager
def _report_file(report: Report) -> Iterator[IO[str]]:
    """Where the job writes its report (the header too, once the inputs are checked); a path
    appears only when complete (a pipe's or a device's gets the rows as they come)."""
    if not isinstance(report, str | os.PathLike):
        yield report
        report.flush()
        return
    target = destination(report)
    if target.stream is not None:
        with open(target.path, "w", newline="", encoding="utf-8") as f, _report_file(f) as out:
            yield out
        return
    partial = partial_path(target.path)
    with one_writer(target.path, shown=report):
        try:
            with partial.open("w", newline="", encoding="utf-8") as f:
                yield f
            os.replace(partial, target.path)
        finally:
            partial.unlink(missing_ok=True)
