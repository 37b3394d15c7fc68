"""OpenTelemetry traces and metrics of the client's calls (the ``leat-async[otel]`` extra).

A call is an INTERNAL span named for the method called (``giftcard_transactions.create``); each
HTTP attempt of it is a CLIENT span under it with the HTTP semantic conventions' attributes
(``http.request.method``, ``server.address``, ``server.port``, ``url.template``, ``url.full``,
``http.response.status_code``, ``error.type``, ``http.request.resend_count``) and the seconds it
waited for the rate limit (``leat.rate_limit.wait_s``). A walk is one span
(``giftcard_transactions.list``) whose page fetches' attempts are its children.

The parent of an attempt is carried explicitly (a :class:`CallTrace` on the dispatcher's call),
never read from whatever task runs the attempt: creates and reverses run in tasks of their own,
a walk's prefetches in theirs, and an attempt may wait for a slot behind other calls.

No report holds the token (headers are never read) or a card code: ``url.template`` has no
query, ``url.full`` has each card code as ``REDACTED``, and messages are scrubbed of them (no
stack traces: a chained exception's text is not ours to vouch for). Metrics:
``http.client.request.duration`` (s), ``leat.client.retries``, ``leat.client.rate_limited``
(429 answers) and ``leat.client.rate_limit.wait`` (s).

opentelemetry is imported only when a client is made; without it :meth:`Telemetry.start`
gives ``None`` and the dispatcher does what it did before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, TypeVar

from yarl import URL

from .._api.wire import API_PREFIX, Request
from .outcomes import Failure, Outcome

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider
    from opentelemetry.util.types import AttributeValue

__all__ = ["Attempt", "CallTrace", "Telemetry", "WalkTrace"]

T = TypeVar("T")

SCOPE: Final = "leat_async"
SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.26.0"
#: the semantic conventions' advice for ``http.client.request.duration`` (seconds)
DURATION_BUCKETS: Final = (
    *(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75),
    *(1.0, 2.5, 5.0, 7.5, 10.0),
)
#: a call's span name where the operation's own name is not the method's
_CALL_NAMES: Final = {
    "get": "giftcard_transactions.get",
    "list": "giftcard_transactions.list",
    "create": "giftcard_transactions.create",
    "reverse": "giftcard_transactions.reverse",
    "giftcards.find": "giftcards.find_by_hash",
}
_FAILURES: Final = {
    Failure.CONNECT: "connect",
    Failure.TIMEOUT: "timeout",
    Failure.DISCONNECTED: "disconnected",
}
_MOST_ROUTES: Final = 256  # endpoints are few; a bound all the same

Attributes = Mapping[str, "AttributeValue"]


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "REDACTED")
    return text


def error_type(outcome: Outcome) -> str | None:
    """``error.type`` of an attempt: the status of an error answer, else how it failed."""
    answer = outcome.answer
    if answer is None:
        return _FAILURES.get(outcome.failure or Failure.DISCONNECTED, "disconnected")
    if answer.status >= 400:
        return str(answer.status)
    if answer.error is not None:  # a 2xx the client cannot read (larger than it reads)
        return type(answer.error).__name__
    return None


class _Route:
    """One endpoint as telemetry names it: span name, attributes, metric attributes."""

    __slots__ = ("_outcomes", "attributes", "name")

    def __init__(self, method: str, template: str, server: Attributes) -> None:
        self.name: str = f"{method} {template}"
        self.attributes: Attributes = {
            "http.request.method": method,
            **server,
            "url.template": template,
        }
        self._outcomes: dict[tuple[int | None, str | None], Attributes] = {}

    def measured(self, status: int | None, error: str | None) -> Attributes:
        """The attributes of a measurement with this status and error (made once each)."""
        found = self._outcomes.get((status, error))
        if found is None:
            made = dict(self.attributes)
            if status is not None:
                made["http.response.status_code"] = status
            if error is not None:
                made["error.type"] = error
            if len(self._outcomes) < 64:
                self._outcomes[status, error] = made
            found = made
        return found


class CallTrace:
    """One call's place in the trace: the context its attempts are children of, and the name
    of its own span (``None`` for a walk's page: the walk's span is the parent)."""

    __slots__ = ("attempts", "context", "name")

    def __init__(self, context: Context, name: str | None) -> None:
        self.context: Context = context
        self.name: str | None = name
        self.attempts: int = 0


class Attempt:
    """One attempt's CLIENT span, to end once the attempt has come to something."""

    __slots__ = ("route", "secrets", "span")

    def __init__(self, span: Span, route: _Route, secrets: tuple[str, ...]) -> None:
        self.span: Span = span
        self.route: _Route = route
        self.secrets: tuple[str, ...] = secrets


class Telemetry:
    """The client's tracer and instruments (providers: the given ones, else the global)."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        base_url: URL,
        version: str,
    ) -> None:
        from opentelemetry import context, metrics, trace  # the extra, only when a client is made

        self._tracer = trace.get_tracer(SCOPE, version, tracer_provider, schema_url=SCHEMA_URL)
        meter = metrics.get_meter(SCOPE, version, meter_provider, schema_url=SCHEMA_URL)
        self._duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._retries = meter.create_counter(
            "leat.client.retries", unit="{retry}", description="Attempts followed by another."
        )
        self._limited = meter.create_counter(
            "leat.client.rate_limited", unit="{response}", description="HTTP 429 answers."
        )
        self._waited = meter.create_counter(
            "leat.client.rate_limit.wait",
            unit="s",
            description="Seconds attempts waited for the rate limit before they were sent.",
        )
        self._current = context.get_current
        self._attach, self._detach = context.attach, context.detach
        self._in_context = trace.set_span_in_context
        self._client, self._internal = trace.SpanKind.CLIENT, trace.SpanKind.INTERNAL
        self._status, self._error = trace.Status, trace.StatusCode.ERROR
        self._server: Attributes = {
            "server.address": base_url.host or "",
            "server.port": base_url.port or 443,
        }
        self._prefix = base_url.path.rstrip("/") + API_PREFIX
        self._routes: dict[tuple[str, str], _Route] = {}

    @classmethod
    def start(
        cls,
        *,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        base_url: URL,
        version: str,
    ) -> Telemetry | None:
        """The client's telemetry; ``None`` when opentelemetry is not installed."""
        try:
            return cls(
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
                base_url=base_url,
                version=version,
            )
        except ImportError:
            if tracer_provider is not None or meter_provider is not None:
                raise
            return None

    def call(self, request: Request, walk: WalkTrace | None) -> CallTrace:
        """Where ``request``'s attempts go in the trace: fixed in the caller's task."""
        if walk is not None:
            return CallTrace(walk.context(request), None)
        return CallTrace(self._current(), _CALL_NAMES.get(request.operation, request.operation))

    async def traced(self, trace: CallTrace, request: Request, work: Awaitable[T]) -> T:
        """Await ``work`` (the call's attempts) under the call's own span, if it has one.

        The span opens in the task that runs the call, when it begins: a money call whose
        task is cancelled before it begins leaves no span open.
        """
        if trace.name is None:  # a walk's page: the walk's span is the parent
            return await work
        parent = trace.context
        span = self._tracer.start_span(trace.name, context=parent, kind=self._internal)
        trace.context = self._in_context(span, parent)
        try:
            done = await work
        except BaseException as error:
            self._end_call(span, trace, request, error)
            raise
        self._end_call(span, trace, request, None)
        return done

    def _end_call(
        self, span: Span, trace: CallTrace, request: Request, error: BaseException | None
    ) -> None:
        if span.is_recording():
            span.set_attribute("leat.attempts", trace.attempts)
        self.finish(span, error, request.secrets())

    def finish(self, span: Span, error: BaseException | None, secrets: Sequence[str]) -> None:
        """End a call's or a walk's span; an exception (not a cancellation) marks it failed."""
        if isinstance(error, Exception) and span.is_recording():
            kind = type(error)
            module = "leat_async" if kind.__module__.startswith("leat_async.") else kind.__module__
            message = _scrub(str(error), secrets)
            span.set_attribute("error.type", kind.__name__)
            span.add_event(
                "exception",
                {"exception.type": f"{module}.{kind.__qualname__}", "exception.message": message},
            )
            span.set_status(self._status(self._error, message))
        span.end()

    def attempt(
        self, trace: CallTrace, request: Request, number: int, url: URL, rate_wait: float
    ) -> Attempt:
        """Open the CLIENT span of attempt ``number`` (about to be sent to ``url``)."""
        route = self._route(request)
        trace.attempts = number
        span = self._tracer.start_span(
            route.name, context=trace.context, kind=self._client, attributes=route.attributes
        )
        if rate_wait > 0:
            self._waited.add(rate_wait, route.attributes)
        secrets = request.secrets()
        if span.is_recording():
            full = url.with_query(request.redacted_query()) if secrets else url
            extra: dict[str, AttributeValue] = {"url.full": str(full)}
            if number > 1:
                extra["http.request.resend_count"] = number - 1
            if rate_wait > 0:
                extra["leat.rate_limit.wait_s"] = rate_wait
            span.set_attributes(extra)
        return Attempt(span, route, secrets)

    def attempted(self, attempt: Attempt, outcome: Outcome, elapsed: float) -> None:
        """Measure what the attempt came to and end its span."""
        answer = outcome.answer
        status = None if answer is None else answer.status
        error = error_type(outcome)
        route = attempt.route
        self._duration.record(elapsed, route.measured(status, error))
        if status == 429:
            self._limited.add(1, route.attributes)
        span = attempt.span
        if span.is_recording():
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if error is not None:
                span.set_attribute("error.type", error)
                span.set_status(self._status(self._error, _scrub(outcome.short(), attempt.secrets)))
        span.end()

    def abandoned(self, attempt: Attempt, error: BaseException) -> None:
        """An attempt that raised instead of coming to an outcome (a cancellation)."""
        if attempt.span.is_recording():
            attempt.span.set_attribute("error.type", type(error).__name__)
        self.finish(attempt.span, error, attempt.secrets)

    def retried(self, request: Request, outcome: Outcome) -> None:
        status = None if outcome.answer is None else outcome.answer.status
        self._retries.add(1, self._route(request).measured(status, error_type(outcome)))

    async def around(self, name: str, work: Awaitable[T]) -> T:
        """Await ``work`` under a span of its own that the calls it makes are children of
        (``recover()``: its searches)."""
        span = self._tracer.start_span(name, context=self._current(), kind=self._internal)
        token = self._attach(self._in_context(span))
        try:
            done = await work
        except BaseException as error:
            self.finish(span, error, ())
            raise
        finally:
            self._detach(token)
        self.finish(span, None, ())
        return done

    def walk(self, listing: str) -> WalkTrace:
        """The trace of one walk over ``listing`` (its span opens with its first request)."""
        return WalkTrace(self, listing.replace("-", "_") + ".list")

    def open_walk(self, name: str) -> tuple[Span, Context]:
        parent = self._current()
        span = self._tracer.start_span(name, context=parent, kind=self._internal)
        return span, self._in_context(span, parent)

    def _route(self, request: Request) -> _Route:
        key = (request.method, request.template)
        route = self._routes.get(key)
        if route is None:
            route = _Route(request.method, self._prefix + key[1], self._server)
            if len(self._routes) < _MOST_ROUTES:
                self._routes[key] = route
        return route


class WalkTrace:
    """One walk's span: opened by its first page's request, ended with the walk (a walk that
    fails ends its span; asked again, it opens another)."""

    __slots__ = ("_context", "_name", "_pages", "_secrets", "_span", "_telemetry")

    def __init__(self, telemetry: Telemetry, name: str) -> None:
        self._telemetry, self._name = telemetry, name
        self._span: Span | None = None
        self._context: Context | None = None
        self._pages = 0
        self._secrets: tuple[str, ...] = ()  # the card code the walk filters by, if any

    def context(self, request: Request) -> Context:
        """The context the attempts of a page's ``request`` are children of (the walk's)."""
        if self._context is None:
            self._span, self._context = self._telemetry.open_walk(self._name)
            self._secrets = request.secrets()
        self._pages += 1
        return self._context

    def end(self, error: BaseException | None = None) -> None:
        span, self._span, self._context = self._span, None, None
        if span is not None:
            if span.is_recording():
                span.set_attribute("leat.walk.requests", self._pages)
            self._pages = 0
            self._telemetry.finish(span, error, self._secrets)
