"""Where one export run writes: the partial file beside FILE (or a stream), and its life.

A run's rows go to ``FILE.partial``, opened at the first row (so a run that fails before it
leaves nothing behind), checkpointed every so often, and committed in an order that a crash
between any two steps cannot confuse:

1. the partial file is flushed and fsynced;
2. the checkpoint is marked ``done`` with the final length;
3. ``FILE.partial`` is renamed to ``FILE``;
4. whatever follows the rename (an incremental export records how far FILE now goes);
5. the checkpoint is removed.

:func:`plan_run` reads what a crash left: a ``done`` checkpoint without its partial file,
beside a FILE of the recorded length, means steps 3 and 4 happened (or only 4 is missing).
File work that may take a while (opening, copying, fsync, the rename) runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Literal, Protocol, TypeVar

import attrs

from .. import GiftcardTransaction, Position
from ._checkpoints import (
    CheckpointError,
    Progress,
    checkpoint_path,
    fsync_dir,
    partial_path,
    read_checkpoint,
    write_atomically,
)
from ._formats import Codec

__all__ = [
    "Encode",
    "FileOutput",
    "Output",
    "Plan",
    "Start",
    "StreamOutput",
    "in_thread",
    "plan_run",
    "size_of",
    "tidy_complete",
]

T = TypeVar("T")
#: a page of transactions to the bytes that go into the file
Encode = Callable[[Sequence[GiftcardTransaction]], bytes]
#: how a run's partial file begins: empty (a header), the last run's partial file, a copy of FILE
Start = Literal["new", "resume", "copy"]


async def in_thread(fn: Callable[[], T], *, undo: Callable[[T], None] | None = None) -> T:
    """``fn()`` in a thread. Cancelled meanwhile, it still waits for the thread (which touches
    the files and cannot be stopped), undoes its result if asked, then lets the cancel through.
    """
    job = asyncio.ensure_future(asyncio.to_thread(fn))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        result = await job
        if undo is not None:
            undo(result)
        raise


# -- what the files beside FILE say ------------------------------------------------------------


@attrs.frozen
class Plan:
    """``progress``: an unfinished run to go on with (None: start afresh). ``complete``: that
    run had already renamed its file to FILE; only its tidying is left."""

    progress: Progress | None = None
    complete: bool = False


def size_of(path: Path) -> int | None:
    """``path``'s length in bytes; 0 for a directory (a dataset, which a checkpoint does not
    measure); None when there is nothing."""
    try:
        st = path.stat()
        return 0 if stat.S_ISDIR(st.st_mode) else st.st_size
    except FileNotFoundError:
        return None


def plan_run(target: Path, job: dict[str, Any], *, resume: bool, incremental: bool) -> Plan:
    """What the files beside ``target`` say this run must do; removes a checkpoint that
    nothing depends on. ``resume``: the caller wants to go on (an incremental run always does).
    """
    checkpoint, partial = checkpoint_path(target), partial_path(target)
    go_on = resume or incremental
    if not checkpoint.exists():
        if resume:
            raise CheckpointError(f"nothing to resume: {checkpoint} does not exist")
        return Plan()
    if partial.exists() and not go_on:
        raise CheckpointError(
            f"an unfinished export of {target} is in the way ({checkpoint.name}): "
            "resume it (--resume), or delete it and its .partial file to start over"
        )
    try:
        progress = read_checkpoint(checkpoint, job if go_on else None)
    except CheckpointError:
        if go_on:
            raise
        progress = None  # unreadable, and no partial file it could vouch for
    if progress is not None and go_on and progress.incremental != incremental:
        kind = "an incremental" if progress.incremental else "a plain"
        flag = "with --incremental" if progress.incremental else "with --resume"
        raise CheckpointError(f"{checkpoint} is {kind} export's: run it {flag}, or delete it")
    if partial.exists():
        return Plan(progress)
    if progress is not None and progress.done and size_of(target) == progress.length:
        if go_on:
            return Plan(progress, complete=True)
    elif resume:
        raise CheckpointError(f"nothing to resume: {partial} does not exist")
    checkpoint.unlink(missing_ok=True)  # stale: a fresh run replaces FILE anyway
    return Plan()


def tidy_complete(target: Path, after_rename: Callable[[], None]) -> None:
    """Steps 4 and 5 of a commit whose rename a crash interrupted after."""
    after_rename()
    checkpoint_path(target).unlink(missing_ok=True)
    fsync_dir(target.parent)


# -- a run's output ---------------------------------------------------------------------------


class FileOutput:
    """The partial file of one run: opened at the first row, saved, committed or abandoned.

    With a ``codec``, the bytes are compressed (a slow one's in a thread: the codecs let go of
    the GIL), and a member ends at every checkpoint: ``progress.length`` is always where one
    ended.
    """

    def __init__(
        self,
        target: Path,
        progress: Progress,
        *,
        start: Start,
        encode: Encode,
        header: bytes = b"",
        codec: Codec | None = None,
        checkpoint_every: float = 1.0,
    ) -> None:
        self.target = target
        self.progress = progress
        self._partial, self._checkpoint = partial_path(target), checkpoint_path(target)
        self._start = start
        self._encode = encode
        self._header = header
        self._codec = codec
        self._written = progress.length  # bytes in the partial file, ended member or not
        self._every = checkpoint_every
        self._out: IO[bytes] | None = None
        self._saved_at = time.monotonic()
        # rows of the last checkpoint that holds; None: nothing on disk is this run's yet
        self._saved: int | None = progress.rows if start == "resume" else None
        self._committing = False

    @property
    def saved_rows(self) -> int | None:
        return self._saved

    @property
    def opened(self) -> bool:
        """Whether this run has touched the partial file yet."""
        return self._out is not None

    async def write(self, rows: Sequence[GiftcardTransaction], position: Position) -> None:
        """Append one page's rows (maybe none: every row was left out) and note the position."""
        if rows:
            blob = self._encode(rows)
            if self._out is None:
                await self._open()
            if self._codec is None or not self._codec.slow:
                self._put(blob)  # buffered (zstd: compressed too), well under a millisecond
            else:
                await in_thread(lambda: self._put(blob))  # gzip: about a millisecond a page
        state = self.progress
        if self._codec is None:
            state.length = self._written
        state.rows += len(rows)
        state.next_page, state.snapshot = position.page, position.snapshot
        state.position = position
        if self._out is not None and time.monotonic() - self._saved_at >= self._every:
            self._end_member()
            copy = attrs.evolve(state)
            await in_thread(lambda: self._sync(copy))
            self._saved_at = time.monotonic()

    def _put(self, blob: bytes, out: IO[bytes] | None = None) -> None:
        out = out or self._out
        assert out is not None
        if self._codec is not None:
            blob = self._codec.compress(blob)
        out.write(blob)
        self._written += len(blob)

    def _end_member(self, out: IO[bytes] | None = None, *, last: bool = False) -> None:
        """Complete the compressed member: the file up to here is whole (no codec: always)."""
        out = out or self._out
        assert out is not None
        if self._codec is not None:
            tail = self._codec.end(last=last and self._written == 0)
            out.write(tail)
            self._written += len(tail)
        self.progress.length = self._written

    async def _open(self) -> None:
        def undo(out: IO[bytes]) -> None:
            self._out = out
            self.abandon()

        self._out = await in_thread(self._open_now, undo=undo)

    def _open_now(self) -> IO[bytes]:
        state, partial = self.progress, self._partial
        fresh = self._start != "resume"  # then the partial file is this run's to remove
        try:
            if self._start == "copy":
                shutil.copyfile(self.target, partial)
            out = open(partial, "wb" if self._start == "new" else "r+b")  # noqa: SIM115
        except FileNotFoundError:
            if fresh:
                raise
            raise CheckpointError(f"nothing to resume: {partial} does not exist") from None
        except BaseException:
            self._remove(partial, fresh)
            raise
        try:
            if self._start == "new":
                self._written = 0
                self._put(self._header, out)
                self._end_member(out)
            else:
                size = os.fstat(out.fileno()).st_size
                if size < state.length or (self._start == "copy" and size != state.length):
                    raise CheckpointError(
                        f"{partial} has {size} bytes, its checkpoint says {state.length}; "
                        "delete it and the checkpoint to start over"
                    )
                out.truncate(state.length)  # a torn page after the last checkpoint goes
                out.seek(state.length)
                self._written = state.length
            if fresh:
                self._sync(attrs.evolve(state), out)
        except BaseException:
            out.close()
            self._remove(partial, fresh)
            raise
        return out  # closed by commit or abandon

    @staticmethod
    def _remove(partial: Path, fresh: bool) -> None:
        if fresh:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)

    def _sync(self, state: Progress, out: IO[bytes] | None = None) -> None:
        """Flush the rows, then record them."""
        out = out or self._out
        assert out is not None
        out.flush()
        os.fsync(out.fileno())
        write_atomically(self._checkpoint, state.dump())
        self._saved = state.rows

    async def commit(self, after_rename: Callable[[], None]) -> None:
        """The five steps of the module's docstring; ``after_rename`` is step 4."""
        if self._out is None:
            await self._open()  # nothing was written: the file is its header (or FILE's copy)
        out = self._out
        assert out is not None
        self._end_member(last=True)
        done = attrs.evolve(self.progress, done=True)

        def commit_now() -> None:
            out.flush()
            os.fsync(out.fileno())
            out.close()
            write_atomically(self._checkpoint, done.dump())
            os.replace(self._partial, self.target)
            fsync_dir(self.target.parent)
            tidy_complete(self.target, after_rename)

        self._committing = True  # from here a failure must not re-checkpoint
        await in_thread(commit_now)

    def abandon(self) -> None:
        """After a failure: record the last complete page if possible, keep what a resume needs.

        If the rows cannot be flushed (a full disk), the last checkpoint stays: its length still
        marks a complete page, and a resume cuts the partial file back to it. When no checkpoint
        holds a row of this run, there is nothing to resume: both files go.
        """
        out = self._out
        if out is None or out.closed or self._committing:
            return
        try:
            self._end_member()
            self._sync(attrs.evolve(self.progress))
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError, ValueError):
                out.close()
        if self._start != "resume" and self._saved == self.progress.base_rows:
            with contextlib.suppress(OSError):
                self._checkpoint.unlink(missing_ok=True)
                self._partial.unlink(missing_ok=True)


class StreamOutput:
    """Rows to a stream as they arrive (``-o -``): no partial file, no checkpoint."""

    def __init__(
        self,
        stream: IO[bytes],
        progress: Progress,
        *,
        encode: Encode,
        header: bytes = b"",
        codec: Codec | None = None,
    ) -> None:
        self.progress = progress
        self._stream = stream
        self._encode = encode
        self._header = header
        self._codec = codec

    def _put(self, blob: bytes, *, last: bool = False) -> None:
        if self._header:
            blob, self._header = self._header + blob, b""
        if self._codec is not None:
            blob = self._codec.compress(blob) + (self._codec.end(last=True) if last else b"")
        if blob:
            self._stream.write(blob)
            self._stream.flush()  # a reader downstream sees each page as it arrives

    async def write(self, rows: Sequence[GiftcardTransaction], position: Position) -> None:
        self._put(self._encode(rows) if rows else b"")
        self.progress.rows += len(rows)
        self.progress.next_page = position.page

    async def commit(self, after_rename: Callable[[], None]) -> None:
        self._put(b"", last=True)

    def abandon(self) -> None:
        pass

    @property
    def saved_rows(self) -> int | None:
        return None

    @property
    def opened(self) -> bool:
        return True


class Output(Protocol):
    """What a run writes to: :class:`FileOutput` or :class:`StreamOutput`."""

    progress: Progress

    @property
    def saved_rows(self) -> int | None: ...

    @property
    def opened(self) -> bool: ...

    async def write(self, rows: Sequence[GiftcardTransaction], position: Position) -> None: ...

    async def commit(self, after_rename: Callable[[], None]) -> None: ...

    def abandon(self) -> None: ...
