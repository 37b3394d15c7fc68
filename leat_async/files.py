"""Where a job's output goes, and one writer at a time for it.

:func:`destination` says what a path leads to. A regular file (or none yet) is written the
usual way: beside it a partial file, renamed over it when complete; through a symlink that is
the link's target (the link stays a link). A named pipe or a character device (``/dev/stdout``,
``/dev/null``) is never replaced: it is written as a stream, as ``-o -`` is. Anything else (a
directory, a socket, a block device, a symlink loop) is refused with ``ValueError``.

:func:`one_writer` holds an OS lock (``flock``) on ``FILE.lock`` beside a regular file for as
long as a job writes it and the files beside it: a second job that wants the same file gets
:class:`OutputBusyError` at once, before it touches anything. The kernel lets go of the lock
when the process ends, however it ends, so a crash never leaves a stale lock (at most the
empty lock file, which the next run takes and removes). Where there is no ``fcntl`` (Windows)
there is no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

import attrs

__all__ = [
    "Destination",
    "OutputBusyError",
    "destination",
    "lock_path",
    "one_writer",
    "open_stream",
]

#: ``flock(fd)``, exclusive, without waiting (BlockingIOError when held); None: no locks here
_flock: Callable[[int], None] | None
try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock; one writer is up to the caller
    _flock = None
else:

    def _flock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


_READER_POLL: Final = 0.05  # seconds between looks for the reader of a named pipe


class OutputBusyError(OSError):
    """Another process is writing this output (an export, an ``--incremental`` run or a
    reconcile report) right now: wait for it to end, or write elsewhere."""


@attrs.frozen
class Destination:
    """``path``: the regular file to replace (symlinks followed), or the stream as given."""

    path: Path
    stream: str | None = None  # what kind of stream ("a named pipe"); None: a regular file


def destination(path: str | os.PathLike[str]) -> Destination:
    """What writing to ``path`` means (see the module's docstring); ``ValueError`` when it
    cannot be written at all."""
    if not os.fspath(path):
        raise ValueError("the output path is empty")
    try:
        mode: int | None = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet (a link to nothing)
        mode = None
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise ValueError(f"{os.fspath(path)} is a loop of symbolic links") from None
    if mode is None or stat.S_ISREG(mode):
        return Destination(Path(os.path.realpath(path)))
    if stat.S_ISFIFO(mode):
        return Destination(Path(path), "a named pipe")
    if stat.S_ISCHR(mode):
        return Destination(Path(path), "a character device")
    kind = "a directory" if stat.S_ISDIR(mode) else _odd_kind(mode)
    raise ValueError(
        f"{os.fspath(path)} is {kind}: give a regular file, a named pipe or - (standard output)"
    )


def _odd_kind(mode: int) -> str:
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a block device" if stat.S_ISBLK(mode) else "not a regular file"


async def open_stream(path: Path) -> io.BufferedWriter:
    """A named pipe or a device, open for writing. A pipe without a reader yet is waited for
    without holding up the event loop (and the wait can be cancelled)."""
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: a pipe that nobody reads yet
                raise
            await asyncio.sleep(_READER_POLL)  # the kernel gives no notice when a reader comes
            continue
        os.set_blocking(fd, True)
        return os.fdopen(fd, "wb")  # an fd, already open: the caller closes it


def lock_path(target: Path) -> Path:
    """The lock file of the output ``target`` (a regular file's real path)."""
    return target.with_name(target.name + ".lock")


@contextlib.contextmanager
def one_writer(target: Path, *, shown: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Hold the lock of ``target`` for the ``with`` block, else raise :class:`OutputBusyError`
    (naming ``shown``, the path as the caller gave it). The lock file is removed on the way
    out, while still locked."""
    if _flock is None:  # pragma: no cover - Windows
        yield
        return
    lock = lock_path(target)
    fd = _take(lock, _flock, os.fspath(shown if shown is not None else target))
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for the message of whoever comes next
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)  # first: whoever opened it meanwhile sees it gone, and tries again
        os.close(fd)


def _take(lock: Path, flock: Callable[[int], None], shown: str) -> int:
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            flock(fd)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise OutputBusyError(
                f"{shown} is being written by another process{pid}: wait for it to end, "
                "or write to another file",
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            here = os.stat(lock)
        except FileNotFoundError:
            here = None
        mine = os.fstat(fd)
        if here is not None and (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino):
            return fd
        os.close(fd)  # the last holder removed this file as we opened it: take the new one
