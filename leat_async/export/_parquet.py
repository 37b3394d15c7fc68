"""Parquet exports: typed columns in zstd row groups, resumable although Parquet is written whole.

A Parquet file is readable only once its footer is written, so a crashed one holds nothing a
resume could use. Instead, a run writes *parts*: every checkpoint (or every :data:`ROW_GROUP`
rows) the rows since the last one become a small finished Parquet file in the directory
``FILE.partial/``, fsynced, and then the checkpoint counts it. A resume removes any part the
checkpoint does not count and goes on. The commit assembles the parts (after ``FILE``'s own
row groups, for an incremental run) into one file, row group by row group, so memory stays
bounded whatever the size; then, as for the other formats: checkpoint ``done`` with the
assembled size, rename over ``FILE``, tidy.

Needs pyarrow (``leat-async[parquet]``), imported when a Parquet export starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Final

import attrs
import pyarrow as pa
import pyarrow.parquet as pq

from .. import GiftcardTransaction, Position
from ._arrow_rows import DICTIONARY_COLUMNS, SCHEMA, table_of
from ._checkpoints import (
    CheckpointError,
    Progress,
    checkpoint_path,
    fsync_dir,
    partial_path,
    write_atomically,
)
from ._output import Start, in_thread, tidy_complete

__all__ = [
    "ROW_GROUP",
    "ParquetOutput",
    "fsync_file",
    "read_row_groups",
    "read_transactions",
    "write_part",
]

#: the most rows in one part, and so in one row group of the file
ROW_GROUP: Final = 16_384  # a part's rows in memory stay well under 128 MiB with pyarrow's
_ASSEMBLED: Final = "assembled.parquet"


def write_part(table: pa.Table, path: Path) -> None:
    """A part: dictionaries where they pay but no compression, since the assembly reads it
    again at once (and writes the zstd row groups); a dataset's parts are its files,
    compressed."""
    pq.write_table(table, path, compression="none", use_dictionary=DICTIONARY_COLUMNS)


def _release() -> None:
    """Give what Arrow's allocator keeps back to the system: peak memory stays one part's."""
    pa.default_memory_pool().release_unused()


def read_row_groups(path: Path) -> Iterator[pa.Table]:
    """A Parquet file's row groups, one at a time."""
    with pq.ParquetFile(path) as file:
        for i in range(file.num_row_groups):
            yield file.read_row_group(i, use_threads=False)


def read_transactions(path: str | os.PathLike[str]) -> Iterator[GiftcardTransaction]:
    """The transactions of a Parquet export, a row group at a time (``ValueError`` if it is
    not one)."""
    from .. import transaction_from_json

    for group in read_row_groups(Path(path)):
        for r in group.to_pylist():
            yield transaction_from_json(
                {
                    "id": r["id"],
                    "uuid": r["uuid"],
                    "amount_in_cents": r["amount_in_cents"],
                    "type": r["type"],
                    "settled": r["settled"],
                    "card": {"id": r["card_id"], "uuid": r["card_uuid"]},
                    "shop": {"id": r["shop_id"], "uuid": r["shop_uuid"], "name": r["shop_name"]},
                    "settlements": json.loads(r["settlements"] or "[]"),
                    "created_at": r["created_at"].isoformat(),
                }
            )


def _part(directory: Path, n: int) -> Path:
    return directory / f"part-{n:06d}.parquet"


class ParquetOutput:
    """One run's Parquet parts in ``FILE.partial/``: saved, assembled, or abandoned.

    What a part is, and what the commit makes of the parts, are its hooks (``_hold``,
    ``_take``, ``_write_parts``, ``_check_parts``, ``_put_in_place``): a partitioned dataset
    (``export/_dataset.py``) overrides them.

    A part is saved in the output's own thread while the walk goes on (one save in flight; the
    next, the commit and an abandon wait for it), so the walk does not stand still while
    Arrow writes.
    """

    def __init__(
        self, target: Path, progress: Progress, *, start: Start, checkpoint_every: float = 1.0
    ) -> None:
        self.target = target
        self.progress = progress
        self._dir, self._checkpoint = partial_path(target), checkpoint_path(target)
        self._start = start
        self._every = checkpoint_every
        # a page each, made Arrow's at once: Python's objects would take 4x the memory (a thread
        # of their own to convert them was slower: the conversion holds the GIL)
        self._tables: list[pa.Table] = []
        self._pending = 0  # rows held, not in a part yet
        self._opened = False
        self._saved_at = time.monotonic()
        self._saved: int | None = progress.rows if start == "resume" else None
        self._committing = False
        self._broken = False  # a save failed: the last checkpoint that held must stay
        self._saver: ThreadPoolExecutor | None = None  # one save at a time, behind the walk
        self._saving: Future[None] | None = None  # the save in flight (or the last one)

    @property
    def saved_rows(self) -> int | None:
        return self._saved

    @property
    def opened(self) -> bool:
        return self._opened

    async def write(self, rows: Sequence[GiftcardTransaction], position: Position) -> None:
        if rows:
            if not self._opened:
                await self._open()
            self._hold(rows)
            self._pending += len(rows)
        state = self.progress
        state.rows += len(rows)
        state.next_page, state.snapshot = position.page, position.snapshot
        state.position = position
        due = time.monotonic() - self._saved_at >= self._every
        if self._opened and (self._pending >= ROW_GROUP or due):
            await self._caught_up()  # the save before: one part in flight at a time
            self._save_behind(*self._take())
            self._saved_at = time.monotonic()

    # -- the hooks --------------------------------------------------------------------------

    def _hold(self, rows: Sequence[GiftcardTransaction]) -> None:
        """Keep a page's rows until the next part."""
        self._tables.append(table_of(rows))

    def _take(self) -> tuple[Any, Progress]:
        """The held rows, and the checkpoint that counts them once they are parts."""
        tables, self._tables = self._tables, []
        if self._pending:
            self.progress.parts += 1
        self._pending = 0
        return tables, attrs.evolve(self.progress)

    def _write_parts(self, taken: Any, state: Progress) -> None:
        """The held rows as the checkpoint's last part, durably."""
        if taken:
            path = _part(self._dir, state.parts)
            write_part(pa.concat_tables(taken).combine_chunks(), path)
            taken.clear()
            _release()
            fsync_file(path)
            fsync_dir(self._dir)

    def _check_parts(self, parts: int) -> None:
        """On a resume: the parts the checkpoint counts are there, and nothing else is."""
        directory = self._dir
        missing = [n for n in range(1, parts + 1) if not _part(directory, n).is_file()]
        if missing:
            raise CheckpointError(
                f"{directory} lacks part {missing[0]} of the {parts} its checkpoint counts; "
                "delete it and the checkpoint to start over"
            )
        counted = {_part(directory, n).name for n in range(1, parts + 1)}
        for extra in directory.iterdir():  # written after the last checkpoint: written again
            if extra.name not in counted:
                extra.unlink()

    def _put_in_place(self, state: Progress) -> None:
        """The commit's file steps, the parts all saved: assemble, rename."""
        assembled = self._dir / _ASSEMBLED
        if not state.done:
            state.length = self._assemble(assembled, state)
            state.done = True
            write_atomically(self._checkpoint, state.dump())
        self.progress.length, self.progress.done = state.length, True  # for after_rename
        if assembled.exists():  # else a crash came after the rename: it is FILE now
            os.replace(assembled, self.target)
            fsync_dir(self.target.parent)

    # -- the life of a run ----------------------------------------------------------------------

    async def _open(self) -> None:
        def undo(_: None) -> None:  # cancelled while opening: as after any failure
            self._opened = True
            self.abandon()

        await in_thread(self._open_now, undo=undo)
        self._opened = True

    def _open_now(self) -> None:
        if self._start != "resume":
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir.mkdir()
            self._save(None, attrs.evolve(self.progress))
            return
        if not self._dir.is_dir():
            raise CheckpointError(f"nothing to resume: {self._dir} does not exist")
        self._check_parts(self.progress.parts)

    def _save(self, taken: Any, state: Progress) -> None:
        """Write the held rows as parts (if any), then the checkpoint that counts them."""
        try:
            if taken is not None:
                self._write_parts(taken, state)
            write_atomically(self._checkpoint, state.dump())
        except BaseException:
            self._broken = True  # a part may be missing or half written: count no more
            raise
        self._saved = state.rows

    def _save_behind(self, taken: Any, state: Progress) -> None:
        """Start saving, in the output's thread, while the walk goes on."""
        if self._saver is None:
            self._saver = ThreadPoolExecutor(1, thread_name_prefix="leat-async-parquet")
        self._saving = self._saver.submit(self._save, taken, state)

    async def _caught_up(self) -> None:
        """Wait for the save in flight; raise its failure. Cancelled, the save goes on (the
        abandon waits for it)."""
        if self._saving is not None:
            await asyncio.shield(asyncio.wrap_future(self._saving))

    def _stop_saving(self) -> None:
        """Wait for the save in flight (blocking: a failure's path); let the thread go."""
        if self._saving is not None:
            wait([self._saving])
        if self._saver is not None:
            self._saver.shutdown(wait=False)
            self._saver = None

    async def commit(self, after_rename: Callable[[], None]) -> None:
        """Save the last part, put the file (or the files) in place, tidy."""
        if not self._opened and not self.progress.done:
            await self._open()  # nothing was written: an empty file (or FILE's rows again)
        await self._caught_up()
        self._stop_saving()
        taken, state = self._take()
        self._committing = True  # from here a failure must not re-checkpoint

        def tidy() -> None:
            after_rename()
            shutil.rmtree(self._dir, ignore_errors=True)

        def commit_now() -> None:
            if not state.done:
                self._save(taken, state)
            self._put_in_place(state)
            tidy_complete(self.target, tidy)

        await in_thread(commit_now)

    def _assemble(self, assembled: Path, state: Progress) -> int:
        """FILE's row groups (an incremental run's), then the parts', into one file."""
        sources = [self.target] if state.base_rows else []
        sources += [_part(self._dir, n) for n in range(1, state.parts + 1)]
        with pq.ParquetWriter(
            assembled, SCHEMA, compression="zstd", use_dictionary=DICTIONARY_COLUMNS
        ) as writer:
            groups: list[pa.Table] = []  # small parts make row groups of about ROW_GROUP rows
            held = 0
            for source in sources:
                for group in read_row_groups(source):
                    groups.append(group)
                    held += group.num_rows
                    if held >= ROW_GROUP:
                        writer.write_table(pa.concat_tables(groups))
                        groups, held = [], 0
                        _release()
            if groups or not sources:
                writer.write_table(pa.concat_tables(groups) if groups else SCHEMA.empty_table())
        fsync_file(assembled)
        return assembled.stat().st_size

    def abandon(self) -> None:
        """After a failure: save the held rows as parts if possible, keep what a resume needs;
        when no checkpoint holds a row of this run, remove the directory and checkpoint."""
        if not self._opened or self._committing:
            return
        self._stop_saving()
        if not self._broken:
            with contextlib.suppress(OSError, ValueError, pa.ArrowException):
                self._save(*self._take())
        if self._start != "resume" and self._saved in (None, self.progress.base_rows):
            with contextlib.suppress(OSError):
                self._checkpoint.unlink(missing_ok=True)
                shutil.rmtree(self._dir, ignore_errors=True)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
