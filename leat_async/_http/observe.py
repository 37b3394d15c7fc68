"""What the client tells its user while it works: counters, events, log lines and telemetry
(never the token: only methods and paths; telemetry in :mod:`.telemetry`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import attrs

if TYPE_CHECKING:
    from yarl import URL

    from .._api.wire import Request
    from .call import Call
    from .outcomes import Outcome
    from .telemetry import Attempt, Telemetry

__all__ = ["Event", "EventKind", "Observer", "Stats", "emit", "event_of"]

log = logging.getLogger("leat_async")

#: ``request``: an attempt is about to be sent; ``response``: it came back (or failed);
#: ``retry`` and ``pause``: what the client waits for next; ``orphaned``: a create or reverse
#: whose caller was cancelled has finished in the background (see ``Event.outcome``).
EventKind = Literal["request", "response", "retry", "pause", "orphaned"]


@attrs.define
class Stats:
    """Counters a user can read from ``client.stats``."""

    requests: int = 0  # attempts sent (or tried: a connection that could not be opened counts)
    retries: int = 0
    pauses: int = 0
    rate_limited: int = 0
    outcome_unknown: int = 0
    orphaned: int = 0  # creates and reverses finished in the background after a cancellation


@attrs.frozen
class Event:
    """Passed to ``LeatClient(on_event=...)``; never holds the token.

    ``delay``: seconds the client waits next (``retry``, ``pause``). ``cause``: why, in words.
    ``status`` and ``elapsed`` (seconds): of a ``response`` (``status`` is ``None`` when no
    answer came). ``outcome``: of an ``orphaned`` request, the model it made, or the
    :class:`~leat_async.LeatError` it ended in (an ``OutcomeUnknownError`` to ``recover()``).
    ``query``: the query's pairs, card codes as ``REDACTED``. ``request_id``: the server's
    identifier of the answer (``X-Request-Id`` or the like), when it sent one. ``sent``: of a
    create or reverse, what was asked (as ``OutcomeUnknownError.sent``; a webhook's secret
    ``[redacted]``), so an orphaned charge maps back to its order; ``None`` for reads.
    """

    kind: EventKind
    method: str
    path: str
    attempt: int
    delay: float = 0.0
    cause: str = ""
    status: int | None = None
    elapsed: float | None = None
    outcome: object = None
    query: tuple[tuple[str, str], ...] = ()
    request_id: str | None = None
    sent: Mapping[str, Any] | None = None


def event_of(kind: EventKind, request: Request, attempt: int, **more: Any) -> Event:
    """An event about ``request``, with what it asked (card codes and secrets redacted)."""
    return Event(
        kind,
        request.method,
        request.path,
        attempt,
        query=request.redacted_query(),
        sent=None if request.idempotent else MappingProxyType(request.sent()),
        **more,
    )


def emit(hook: Callable[[Event], None] | None, event: Event) -> None:
    """Call the user's hook; a hook that raises is logged, never allowed to break a request."""
    if hook is None:
        return
    try:
        hook(event)
    except Exception:
        log.exception("on_event hook raised on a %r event; ignored", event.kind)


class Observer:
    """The events, log lines and telemetry of the dispatcher's attempts."""

    __slots__ = ("_hook", "_telemetry")

    def __init__(
        self, hook: Callable[[Event], None] | None, telemetry: Telemetry | None = None
    ) -> None:
        self._hook = hook
        self._telemetry = telemetry

    def sending(self, call: Call, attempt: int, url: URL) -> Attempt | None:
        """The attempt's span (``None`` without telemetry), opened as it is sent."""
        if self._telemetry is None or call.trace is None:
            return None
        waited, call.rate_wait = call.rate_wait, 0.0
        return self._telemetry.attempt(call.trace, call.request, attempt, url, waited)

    def abandoned(self, sent: Attempt | None, error: BaseException) -> None:
        """An attempt cut short (cancelled) before it came to an outcome."""
        if sent is not None and self._telemetry is not None:
            self._telemetry.abandoned(sent, error)

    def event(
        self,
        kind: EventKind,
        request: Request,
        attempt: int,
        *,
        delay: float = 0.0,
        cause: str = "",
    ) -> None:
        if self._hook is not None:
            emit(self._hook, event_of(kind, request, attempt, delay=delay, cause=cause))

    def answered(
        self,
        request: Request,
        attempt: int,
        outcome: Outcome,
        elapsed: float,
        sent: Attempt | None = None,
    ) -> None:
        """One DEBUG line, one ``response`` event and the end of its span per attempt."""
        if sent is not None and self._telemetry is not None:
            self._telemetry.attempted(sent, outcome, elapsed)
        answer = outcome.answer
        request_id = None if answer is None else answer.request_id
        if log.isEnabledFor(logging.DEBUG):
            query = "&".join(f"{k}={v}" for k, v in request.redacted_query())
            log.debug(
                "%s %s%s attempt %d: %s in %.3f s%s",
                request.method,
                request.path,
                f"?{query}" if query else "",  # pages told apart; card codes as REDACTED
                attempt,
                outcome.short(),
                elapsed,
                f" (request id {request_id})" if request_id else "",
            )
        if self._hook is not None:
            emit(
                self._hook,
                event_of(
                    "response",
                    request,
                    attempt,
                    cause=outcome.short(),
                    status=None if answer is None else answer.status,
                    elapsed=elapsed,
                    request_id=request_id,
                ),
            )

    def retrying(self, request: Request, attempt: int, outcome: Outcome, delay: float) -> None:
        """One INFO line, one ``retry`` event and a count before the next attempt."""
        if self._telemetry is not None:
            self._telemetry.retried(request, outcome)
        self.event("retry", request, attempt, delay=delay, cause=outcome.short())
        log.info(
            "retry %s %s: %s after attempt %d, waiting %.2f s",
            request.method,
            request.path,
            outcome.short(),
            attempt,
            delay,
        )
