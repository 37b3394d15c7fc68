"""An external sort: rows in, the same rows out in order, in bounded memory.

Rows (tuples or ints, compared as they are) collect in a buffer; a full buffer is sorted and
written to its own run file, a few thousand rows per pickled block, and the runs are merged with
:func:`heapq.merge`, reading one block of each run at a time. Runs beyond :data:`MAX_FAN_IN` are
first merged into bigger runs, so the merge's memory stays bounded however many there are. Rows
that fit in one buffer never touch the disk.

Why not ``sqlite3``: its sorter puts its spill files in the process-wide temporary directory
(not ours), it cannot report how far a sort has come, and a ``ORDER BY`` over a table costs an
insert and a fetch per row on top of the sort; sorted runs of plain tuples cost about the same,
live in our directory and count their rows.
"""

from __future__ import annotations

import heapq
import itertools
import pickle
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

__all__ = ["BLOCK_ROWS", "MAX_FAN_IN", "ExternalSorter"]

Row = TypeVar("Row", bound=tuple[Any, ...] | int)

BLOCK_ROWS: Final = 512  # rows per pickled block: the merge holds one block of every run
MAX_FAN_IN: Final = 128  # runs merged at once


class ExternalSorter(Generic[Row]):
    """Collect rows with :meth:`add`, then read them back in order with :meth:`sorted`.

    Run files are named ``<name>-<n>.run`` in ``directory``; the caller owns the directory and
    removes it (the sorter deletes its runs as it merges them). ``on_sorted(rows)`` is called
    with the number of rows each time a buffer has been sorted.
    """

    def __init__(
        self,
        directory: Path,
        *,
        name: str,
        buffer_rows: int,
        on_sorted: Callable[[int], None] | None = None,
        fan_in: int = MAX_FAN_IN,
        block_rows: int = BLOCK_ROWS,
    ) -> None:
        if buffer_rows < 1:
            raise ValueError("buffer_rows must be >= 1")
        self._fan_in = fan_in
        self._block_rows = block_rows
        self._dir = directory
        self._name = name
        self.buffer_rows = buffer_rows
        self._on_sorted = on_sorted
        self._buffer: list[Row] = []
        self._runs: list[Path] = []
        self._made = itertools.count()
        self.rows = 0

    def add(self, rows: Iterable[Row]) -> None:
        """Take rows; a full buffer is sorted and written out before this returns."""
        buffer = self._buffer
        before = len(buffer)
        buffer.extend(rows)
        self.rows += len(buffer) - before
        if len(buffer) >= self.buffer_rows:
            self._spill()

    @property
    def buffered(self) -> int:
        """Rows held in memory."""
        return len(self._buffer)

    def release(self, *, keep: int = 0) -> None:
        """Write the buffer out now, unless it is no bigger than ``keep`` and it is all there is
        (rows that never need the disk stay in memory)."""
        if self._buffer and (self._runs or len(self._buffer) > keep):
            self._spill()

    def _spill(self) -> None:
        buffer, self._buffer = self._buffer, []
        buffer.sort()
        self._runs.append(self._write(buffer))
        self._sorted(len(buffer))

    def _sorted(self, rows: int) -> None:
        if self._on_sorted is not None and rows:
            self._on_sorted(rows)

    def _write(self, rows: Iterable[Row]) -> Path:
        path = self._dir / f"{self._name}-{next(self._made)}.run"
        with path.open("wb") as f:
            it = iter(rows)
            while block := list(itertools.islice(it, self._block_rows)):
                pickle.dump(block, f, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    def adopt(self, runs: Iterable[Path], rows: int) -> None:
        """Take sorted runs written elsewhere (see :meth:`to_runs`) as this sorter's own."""
        self._runs += runs
        self.rows += rows

    def to_runs(self, most: int = 1) -> list[Path]:
        """Every row added, in at most ``most`` sorted run files, for :meth:`adopt` by a
        sorter in another process."""
        if self._buffer:
            self._spill()
        self._merge_down(max(1, most))
        return list(self._runs)

    def _merge_down(self, most: int) -> None:
        while len(self._runs) > most:  # merge the oldest into one bigger run
            take = min(self._fan_in, len(self._runs) - most + 1)
            merging, self._runs = self._runs[:take], self._runs[take:]
            self._runs.append(self._write(heapq.merge(*map(_read_run, merging))))

    def sorted(self) -> Iterator[Row]:
        """Every row added, in order (call once, after the last :meth:`add`)."""
        if not self._runs:  # it all fit in memory
            buffer, self._buffer = self._buffer, []
            buffer.sort()
            self._sorted(len(buffer))
            return iter(buffer)
        if self._buffer:
            self._spill()
        self._merge_down(self._fan_in)
        runs, self._runs = self._runs, []
        return heapq.merge(*map(_read_run, runs))


def _read_run(path: Path) -> Iterator[Any]:
    """A run's rows, one block in memory at a time; the file is deleted once read."""
    try:
        with path.open("rb") as f:
            while True:
                try:
                    block = pickle.load(f)  # noqa: S301 - our own run file, written above
                except EOFError:
                    break
                yield from block
    finally:
        path.unlink(missing_ok=True)
