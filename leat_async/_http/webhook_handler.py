"""An aiohttp handler that receives Leat's webhook deliveries (the server side of webhooks)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from .._api.errors import WebhookPayloadError, WebhookSignatureError
from .._api.webhooks import WebhookEvent, construct_event, webhook_key

__all__ = ["DEFAULT_MAX_DELIVERY_BYTES", "aiohttp_handler"]

log = logging.getLogger("leat_async")

#: The largest delivery the handler reads: a transaction's delivery is a few kB.
DEFAULT_MAX_DELIVERY_BYTES: Final = 1 * 2**20

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def aiohttp_handler(
    secret: str | bytes,
    on_event: Callable[[WebhookEvent], Awaitable[object]],
    *,
    max_bytes: int = DEFAULT_MAX_DELIVERY_BYTES,
) -> Handler:
    """A handler for ``app.router.add_post(path, handler)``.

    It answers 401 to a missing or wrong signature and 400 to a signed body that is not an
    event (``on_event`` is not called for either), 413 to a body over ``max_bytes`` (not read
    past the cap), 200 once ``await on_event(event)`` returned, and 500 when it raised, so that
    Leat delivers it again: ``on_event`` must be safe to run twice for one delivery.
    """
    key = webhook_key(secret)
    if not callable(on_event):
        raise TypeError(f"on_event must be an async function, got {type(on_event).__name__}")
    if type(max_bytes) is not int or max_bytes <= 0:
        raise ValueError(f"max_bytes must be an int > 0, got {max_bytes!r}")

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > max_bytes:
            return _answer(413, "delivery too large")
        body = bytearray()
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > max_bytes:
                return _answer(413, "delivery too large")
        try:
            event = construct_event(bytes(body), request.headers.get("Signature"), key)
        except WebhookSignatureError:
            return _answer(401, "bad signature")
        except WebhookPayloadError:
            return _answer(400, "not an event")
        try:
            await on_event(event)
        except Exception:
            log.exception("the webhook handler's on_event raised on a %r delivery", event.type)
            return _answer(500, "not processed")
        return _answer(200, "success")

    return handle


def _answer(status: int, text: str) -> web.Response:
    return web.json_response({"status": text}, status=status)
