"""Run ``leat-async`` as a user would, with a real crash or a real limit where a test asks.

``python tests/_cli_harness.py ARGS...`` is ``python -m leat_async ARGS...``, plus, from the
environment:

- ``HARNESS_KILL_AT=N``: the process SIGKILLs itself just before its N-th durable file step
  (``os.fsync``, ``os.replace``, ``os.unlink``), as a power cut or ``kill -9`` would;
- ``HARNESS_LOG=PATH``: append one line per such step (``name basename``), to pick kill points;
- ``HARNESS_DISK=BYTES``: the disk has room for this many more bytes: the write that does not
  fit fills it, then fails with ENOSPC, and so does every write after it;
- ``HARNESS_NO_ORJSON=1``: run as if orjson were not installed;
- ``HARNESS_BLOCK=a,b``: run as if the packages ``a`` and ``b`` were not installed.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import resource
import signal
import sys
from collections.abc import Callable
from typing import Any


class _Steps:
    """Counts the durable file steps; kills the process before the chosen one."""

    count = 0
    kill_at = 0
    log: str | None = None

    @classmethod
    def watch(cls, name: str) -> None:
        real: Callable[..., Any] = getattr(os, name)

        def step(*args: Any, **kwargs: Any) -> Any:
            cls.count += 1
            if cls.log is not None:
                what = args[0] if args else "?"
                if isinstance(what, int):  # fsync(fd): name its file
                    what = os.readlink(f"/proc/self/fd/{what}")
                with io.open(cls.log, "a", encoding="utf-8") as f:  # noqa: UP020 - not the full disk's
                    f.write(f"{name} {os.path.basename(os.fspath(what))}\n")
            if cls.count == cls.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        setattr(os, name, step)


class _Disk:
    left = 0


class _OnFullDisk:
    """A file opened for writing, whose writes take room from :class:`_Disk`."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def write(self, data: bytes) -> int:
        if len(data) > _Disk.left:
            self._f.write(data[: _Disk.left])
            _Disk.left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        _Disk.left -= len(data)
        return int(self._f.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _OnFullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


def _limit_disk(room: int) -> None:
    _Disk.left = room
    real_open = builtins.open

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = real_open(file, mode, *args, **kwargs)
        return _OnFullDisk(f) if set(mode) & set("wa+") else f

    builtins.open = open_


def main() -> int:
    if os.environ.get("HARNESS_NO_ORJSON"):
        sys.modules["orjson"] = None  # type: ignore[assignment]  # "import orjson" fails
    for name in filter(None, os.environ.get("HARNESS_BLOCK", "").split(",")):
        sys.modules[name] = None  # type: ignore[assignment]
    if "HARNESS_DISK" in os.environ:
        _limit_disk(int(os.environ["HARNESS_DISK"]))
    if "HARNESS_FILE_LIMIT" in os.environ:
        limit = int(os.environ["HARNESS_FILE_LIMIT"])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails rather than the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    _Steps.kill_at = int(os.environ.get("HARNESS_KILL_AT", "0"))
    _Steps.log = os.environ.get("HARNESS_LOG")
    if _Steps.kill_at or _Steps.log:
        for name in ("fsync", "replace", "unlink"):
            _Steps.watch(name)
    from leat_async.cli import main as cli

    return cli(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
