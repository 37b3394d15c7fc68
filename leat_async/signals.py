"""How the ``leat-async`` command stops: SIGINT (Ctrl-C) and SIGTERM (systemd, Kubernetes,
``timeout``) alike, at any moment, with one line on stderr and never a traceback.

One handler for both signals, in one of three stages:

- **start-up**, from the first line of ``leat_async/__init__.py`` when this process is the
  command (:func:`install_at_start`: ``python -m leat_async`` or the ``leat-async`` script),
  until :func:`take_over`: nothing exists yet that needs cleaning up, so the process ends at
  once, 128 + the signal. (The interpreter's own start-up, before any of our code, is the
  only moment left to Python's default.)
- **the command** (:func:`take_over`, by ``main``): outside an event loop the signal raises
  :class:`Interrupted`, a ``KeyboardInterrupt``, where the code is, and its ``with`` and
  ``finally`` blocks clean up. Inside :func:`run_job` it cancels the job's task instead (an
  exception raised between two statements of asyncio's own code could break the loop), as
  ``asyncio.run`` does for SIGINT; the job cleans up as for any cancellation, then
  :func:`run_job` raises :class:`Interrupted`. A second signal while it cleans up (a person
  who will not wait, or a write stuck on a pipe nobody reads) ends the process at once,
  saying that it did not clean up.
- **decided** (:func:`decided`): the outcome is known; a signal ends the process at once
  with that status.

This module imports only the standard library's lightest parts: it runs before the rest.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

__all__ = ["Interrupted", "decided", "install_at_start", "run_job", "take_over"]

T = TypeVar("T")
PROG: Final = "leat-async"
SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
_WORDS: Final[dict[int, str]] = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


class Interrupted(KeyboardInterrupt):
    """The command was stopped by ``signum``; it exits with :attr:`status`."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def status(self) -> int:
        return 128 + self.signum  # 130 for SIGINT, 143 for SIGTERM, as a shell reports them

    @property
    def word(self) -> str:
        return _WORDS.get(self.signum, "stopped")


class _Stage:
    name = "start-up"  # "start-up" | "command" | "decided"
    status = 0  # decided: the exit status
    #: while a job runs in run_job: what a signal does instead of raising
    stop: Callable[[int], None] | None = None


def _handle(signum: int, frame: Any) -> None:
    if _Stage.name == "decided":
        _exit_now(_Stage.status)
    if _Stage.name == "start-up":
        _say_now(Interrupted(signum).word)
        os._exit(128 + signum)
    if _Stage.stop is not None:
        _Stage.stop(signum)
        return
    raise Interrupted(signum)


def _say_now(line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"{PROG}: {line}\n".encode())


def _exit_now(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def _install() -> None:
    for signum in SIGNALS:
        with contextlib.suppress(ValueError):  # not the main thread: leave the signals alone
            signal.signal(signum, _handle)


def install_at_start() -> None:
    """From ``leat_async/__init__.py``: the start-up stage, when this process is the command."""
    if _started_as_command():
        _install()


def _started_as_command() -> bool:
    argv = sys.argv
    if argv[:1] == ["-m"]:  # ``python -m ...`` is looking for its module: which one?
        args = sys.orig_argv
        pairs = itertools.pairwise(args)
        return "-mleat_async" in args or any(
            a.startswith("-") and a.endswith("m") and b == "leat_async" for a, b in pairs
        )
    return bool(argv) and os.path.basename(argv[0]) == PROG  # the console script


def take_over() -> None:
    """From ``main``: the command stage (signals raise :class:`Interrupted`)."""
    _Stage.name, _Stage.stop = "command", None
    _install()


def decided(status: int) -> int:
    """From here the exit status is ``status``: a signal while the process winds down (closing
    connections, joining threads) ends it at once with that status, not with another one."""
    _Stage.name, _Stage.status = "decided", status
    return status


def run_job(job: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(job)``, where SIGINT and SIGTERM cancel the job; then, once it has cleaned
    up, :class:`Interrupted` is raised. A job that ended before the cancel reached it keeps
    its own outcome."""
    import asyncio

    got: list[int] = []  # the signal that stopped the job
    task: list[asyncio.Task[Any]] = []

    def stop(signum: int) -> None:
        running = bool(task) and not task[0].done()
        if got:
            if running:  # a second signal while the job cleans up: the user will not wait
                _say_now(f"{Interrupted(signum).word} again: stopped at once, not cleaned up")
                _exit_now(128 + signum)
            return
        got.append(signum)
        if running:
            with contextlib.suppress(RuntimeError):  # the loop closed: the task is done
                task[0].get_loop().call_soon_threadsafe(task[0].cancel)

    async def guarded() -> tuple[T] | None:
        me = asyncio.current_task()
        assert me is not None
        task.append(me)
        if got:  # stopped before the job began
            job.close()
            return None
        try:
            return (await job,)
        except asyncio.CancelledError:
            if got:
                return None
            raise

    _Stage.stop = stop
    try:
        outcome = asyncio.run(guarded())
    finally:
        _Stage.stop = None
    if outcome is None:
        raise Interrupted(got[0])
    return outcome[0]
