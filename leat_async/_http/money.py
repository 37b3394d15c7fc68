"""Creates and reverses whose outcome must never be lost, even when their caller goes away.

A money request runs in a task of its own and its caller awaits it through ``asyncio.shield``.
When the caller is cancelled (a task cancelled, ``asyncio.timeout``, a web framework dropping
the request):

- before the request may have left, the task is cancelled too: nothing was sent;
- after, the task runs on in the background. Its outcome (the model it made, or the error it
  ended in) is logged as a WARNING and passed to ``on_event`` as an ``orphaned`` event, and
  the client's ``aclose()`` waits for it. The caller still gets its ``CancelledError``.

Tasks still running are also what ``recover()`` waits for before it decides which transaction
a lost request made (see :meth:`MoneyTasks.running`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._api.errors import LeatAPIError, LeatError
from .._api.unknown import OutcomeUnknownError
from .._api.wire import Request
from .observe import Event, Stats, emit, event_of

__all__ = ["MoneyTasks"]

log = logging.getLogger("leat_async")
T = TypeVar("T")


class MoneyTasks:
    """The client's creates and reverses that have not finished yet."""

    def __init__(self, stats: Stats, on_event: Callable[[Event], None] | None) -> None:
        self._stats = stats
        self._on_event = on_event
        self._tasks: dict[asyncio.Task[Any], Request] = {}
        #: tasks cut short after their request may have left: the outcome they stand for
        self._cut_short: weakref.WeakKeyDictionary[asyncio.Task[Any], OutcomeUnknownError] = (
            weakref.WeakKeyDictionary()
        )

    def running(self) -> list[tuple[Request, asyncio.Task[Any]]]:
        """The requests still under way, with their tasks (to wait for; never to cancel)."""
        return [(request, task) for task, request in self._tasks.items()]

    async def run(
        self,
        request: Request,
        work: Coroutine[Any, Any, T],
        may_have_left: Callable[[], bool],
        unknown: Callable[[str], OutcomeUnknownError] | None = None,
    ) -> T:
        """Run ``work`` to its end, whatever happens to the caller (see the module).

        ``unknown(cause)``: the ``OutcomeUnknownError`` of the request, for when the task
        itself is cancelled after it may have left (the event loop stopping without
        ``aclose()``): what was sent is then reported, never lost.
        """
        task = asyncio.ensure_future(work)
        self._tasks[task] = request
        task.add_done_callback(self._forget)
        if unknown is not None:
            task.add_done_callback(
                lambda done: self._stopped(done, request, may_have_left, unknown)
            )
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() or may_have_left():
                self._orphan(task, request)
            else:
                task.cancel()
            raise

    def _stopped(
        self,
        task: asyncio.Task[Any],
        request: Request,
        may_have_left: Callable[[], bool],
        unknown: Callable[[str], OutcomeUnknownError],
    ) -> None:
        """The request's own task was cancelled (the loop is stopping) after it may have left:
        its outcome is unknown, and it is recorded as such (WARNING, what was sent)."""
        if not task.cancelled() or not may_have_left():
            return
        error = unknown("cancelled while its answer was awaited (the event loop stopped)")
        self._cut_short[task] = error
        log.warning(
            "%s %s %s was cut short by the event loop stopping (no aclose()): its outcome is "
            "unknown; sent %s at %s; recover() it with the OutcomeUnknownError on_event receives",
            request.operation,
            request.method,
            request.path,
            error.sent,
            error.sent_at.isoformat(),
        )

    async def drain(self) -> None:
        """Wait until every create and reverse has finished (``aclose()``)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._tasks.pop(task, None)

    def _orphan(self, task: asyncio.Task[Any], request: Request) -> None:
        self._stats.orphaned += 1
        task.add_done_callback(lambda done: self._report(done, request))

    def _report(self, task: asyncio.Task[Any], request: Request) -> None:
        if task.cancelled():  # the loop itself is going away
            outcome: object = self._cut_short.get(task)
            text = "cancelled before it finished: its outcome is unknown"
        elif (error := task.exception()) is not None:
            outcome, text = error, f"ended in {type(error).__name__}: {error}"
        else:
            outcome = task.result().value
            text = f"succeeded: {_name(outcome)}"
        log.warning(
            "%s %s %s finished after its caller was cancelled; it %s",
            request.operation,
            request.method,
            request.path,
            text,
        )
        attempts = outcome.attempts if isinstance(outcome, LeatError) else 1
        emit(
            self._on_event,
            event_of(
                "orphaned",
                request,
                attempts,
                cause=text,
                outcome=outcome,
                request_id=outcome.request_id if isinstance(outcome, LeatAPIError) else None,
            ),
        )


def _name(model: object) -> str:
    uuid = getattr(model, "uuid", None)
    return f"{type(model).__name__} {uuid}" if uuid else type(model).__name__
