"""The aiohttp side of the fake: one catch-all handler for auth, throttle, faults and routing."""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import secrets
from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Final
from urllib.parse import parse_qsl

from aiohttp import web

from ._email import EmailOutbox
from ._errors import ApiError
from ._faults import Fault, FaultBook
from ._giftcards import giftcard_answer
from ._listing import page_meta, parse_list_query
from ._oauth import TOKEN_PATH, OAuthClients
from ._ratelimit import FixedWindow
from ._records import RecordedRequest
from ._render import Renderer
from ._store import Store
from ._webhooks import Webhooks

__all__ = ["PREFIX", "Runtime", "build_app", "parse_body", "relative_path"]

PREFIX: Final = "/api/v3/oauth/clients"
_LIST: Final = "/giftcard-transactions"
_ITEM: Final = re.compile(r"/giftcard-transactions/([^/]+)")
_REVERSE: Final = re.compile(r"/giftcard-transactions/([^/]+)/reverse")
_FORM_KEY: Final = re.compile(r"([^\[\]]+)\[([^\[\]]*)\]")

Hook = Callable[[RecordedRequest], None]


@dataclass(slots=True)
class Runtime:
    """Everything the handler reads or changes; owned by ``FakeLeat``."""

    store: Store
    token: str
    clock: Callable[[], datetime]
    monotonic: Callable[[], float]
    limiter: FixedWindow | None = None
    latency: float = 0.0
    request_ids: bool = False  # an X-Request-Id on every API answer, as a proxy may add
    faults: FaultBook = field(default_factory=FaultBook)
    #: a list keeps every request; a deque with a maxlen, the latest ones
    requests: MutableSequence[RecordedRequest] = field(default_factory=list)
    handled: int = 0  # requests handled in all, kept or not
    hooks: list[Hook] = field(default_factory=list)
    renderer: Renderer = field(default_factory=Renderer)
    webhooks: Webhooks | None = None  # set by FakeLeat
    #: the OAuth client that may sign in at ``/oauth/token`` (none: every sign-in fails)
    oauth: OAuthClients | None = None
    emails: EmailOutbox = field(default_factory=EmailOutbox)


def relative_path(path: str) -> str:
    """The path below the API prefix; a path outside the prefix is returned whole."""
    if path.startswith(PREFIX + "/") or path == PREFIX:
        return path[len(PREFIX) :]
    return path


def parse_body(content_type: str, raw: bytes) -> Any:
    """The body as Laravel reads it: JSON for a JSON content type, form fields for a form.

    Anything else (or JSON that does not parse) is no input at all: ``None``.
    """
    if not raw:
        return None
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    if content_type == "application/x-www-form-urlencoded":
        form: dict[str, Any] = {}
        for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
            m = _FORM_KEY.fullmatch(key)
            if m is None:
                form[key] = value
                continue
            nested = form.get(m[1])
            if not isinstance(nested, dict):
                nested = form[m[1]] = {}
            nested[m[2]] = value
        return form
    return None


def _redacted(body: Any) -> Any:
    """A sign-in's fields as recorded: never the client secret."""
    if not isinstance(body, dict) or "client_secret" not in body:
        return body
    return {**body, "client_secret": "***"}


def _dump(body: Any) -> bytes:
    return json.dumps(body).encode()


def _json_response(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return web.Response(status=status, body=body, headers=all_headers)


def _route(
    rt: Runtime, method: str, path: str, query: Sequence[tuple[str, str]], body: Any
) -> tuple[int, bytes]:
    try:
        answer = (
            _transactions(rt, method, path, query, body)
            or rt.emails.answer(rt.store.cards_by_uuid, method, path, body)
            or giftcard_answer(rt.store, method, path, query, body)
        )
        if answer is None and rt.webhooks is not None:
            hooked = rt.webhooks.answer(method, path, query, body)
            answer = None if hooked is None else (hooked[0], _dump(hooked[1]))
    except ApiError as err:
        return err.status, _dump(err.body)
    return answer or (404, _dump({"message": "Not found."}))


def _transactions(
    rt: Runtime, method: str, path: str, query: Sequence[tuple[str, str]], body: Any
) -> tuple[int, bytes] | None:
    store, render = rt.store, rt.renderer
    if path == _LIST:
        if method == "GET":
            q = parse_list_query(query)
            rows, total = store.list_page(q)
            meta = page_meta(total=total, per_page=q.per_page, page=q.page, count=len(rows))
            return 200, render.page(rows, meta)
        if method == "POST":
            return 200, _made(rt, render.single(store.create(body)))
    elif method == "GET" and (m := _ITEM.fullmatch(path)):
        return 200, render.single(store.get(m[1]))
    elif method == "POST" and (m := _REVERSE.fullmatch(path)):
        return 200, _made(rt, render.single(store.reverse(m[1])))
    return None


def _made(rt: Runtime, answer: bytes) -> bytes:
    """A transaction was made: its subscribers hear of it (after the answer is on its way)."""
    if rt.webhooks is not None and rt.webhooks.subscriptions:
        rt.webhooks.transaction_made(json.loads(answer)["data"])
    return answer


class Handler:
    """The one request handler; its ``handle`` method is mounted on every path and method."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        token = credentials.strip()
        if hmac.compare_digest(token.encode(), self.rt.token.encode()):
            return True
        return self.rt.oauth is not None and self.rt.oauth.accepts(token)

    def _date(self) -> str:
        return format_datetime(self.rt.clock().astimezone(UTC), usegmt=True)

    def _fault_response(self, fault: Fault) -> web.Response:
        status, headers, payload = fault.render()
        return web.Response(status=status, body=payload, headers=headers)

    async def _api(
        self, method: str, path: str, query: Sequence[tuple[str, str]], body: Any, ok: bool
    ) -> web.Response:
        rt = self.rt
        if path == TOKEN_PATH and method == "POST":  # at the root; the sign-in needs no token
            oauth = rt.oauth or OAuthClients(None, None, expires_in=0, monotonic=rt.monotonic)
            return _json_response(*oauth.answer(body))
        headers = {"X-Request-Id": secrets.token_hex(8)} if rt.request_ids else {}
        if not ok:
            if rt.latency:
                await asyncio.sleep(rt.latency)
            return _json_response(401, _dump({"message": "Unauthenticated."}), headers)
        if rt.limiter is not None:
            verdict = rt.limiter.hit(rt.token, rt.monotonic())
            headers["X-RateLimit-Limit"] = str(verdict.limit)
            headers["X-RateLimit-Remaining"] = str(verdict.remaining)
            if verdict.retry_after is not None:
                headers["Retry-After"] = str(verdict.retry_after)
                reset = int(rt.clock().timestamp()) + verdict.retry_after
                headers["X-RateLimit-Reset"] = str(reset)
                if rt.latency:
                    await asyncio.sleep(rt.latency)
                return _json_response(429, _dump({"message": "Too Many Attempts."}), headers)
        if rt.latency:
            await asyncio.sleep(rt.latency)
        status, payload = _route(rt, method, path, query, body)
        return _json_response(status, payload, headers)

    async def _answer(
        self,
        fault: Fault | None,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Any,
        ok: bool,
    ) -> web.Response | None:
        """The answer to send, or ``None`` to drop the connection."""
        if fault is not None and fault.when == "before":
            await fault.wait()
            if fault.drop:
                return None
            if fault.answers:
                return self._fault_response(fault)
        response = await self._api(method, path, query, body, ok)
        if fault is not None and fault.when == "after":
            await fault.wait()
            if fault.drop:
                return None
            if fault.answers:
                return self._fault_response(fault)
        if fault is not None and fault.headers:
            response.headers.update(fault.headers)
        return response

    async def handle(self, request: web.Request) -> web.StreamResponse:
        rt = self.rt
        at = rt.monotonic()
        method = request.method
        path = relative_path(request.path)
        query = list(request.query.items())
        body = parse_body(request.content_type, await request.read())
        ok = self._authorized(request)
        partner_id = request.headers.get("X-Partner-ID")
        fault = rt.faults.take(method, path, query)

        def record(status: int) -> RecordedRequest:
            kept = _redacted(body) if path == TOKEN_PATH else body
            rec = RecordedRequest(method, path, query, kept, ok, status, at, partner_id)
            rt.requests.append(rec)
            rt.handled += 1
            return rec

        try:
            response = await self._answer(fault, method, path, query, body, ok)
        except asyncio.CancelledError:
            record(0)
            raise
        if response is None:
            rec = record(0)
            if request.transport is not None:
                request.transport.close()
            for hook in list(rt.hooks):
                hook(rec)
            return web.Response(status=204)  # never sent: the connection is closed
        response.headers["Date"] = self._date()
        rec = record(response.status)
        for hook in list(rt.hooks):
            hook(rec)
        return response


def build_app(rt: Runtime) -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", Handler(rt).handle)
    return app
