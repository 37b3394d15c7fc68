"""Receiving Leat's webhooks: check a delivery's signature, then read its event.

::

    from leat_async.webhooks import GiftcardTransactionCreated, construct_event

    event = construct_event(raw_body, request.headers.get("Signature"), secret)
    if isinstance(event, GiftcardTransactionCreated) and event.transaction_uuid:
        # a delivery carries no id and may come twice: key the work on the transaction's
        # uuid, claimed atomically (a unique key in your database), so a repeat is a no-op
        if await claim(event.transaction_uuid):
            tx = await client.giftcard_transactions.get(event.transaction_uuid)
            ...

``raw_body`` is the request's bytes as received (not re-encoded JSON). A missing or wrong
signature is :class:`WebhookSignatureError` (the body is not read), a signed body that is not an
event :class:`WebhookPayloadError`; neither holds the secret. With aiohttp,
:func:`aiohttp_handler` does it all: ``app.router.add_post("/leat", aiohttp_handler(secret,
on_event))``. Subscriptions are managed with ``client.webhook_subscriptions``.
"""

from __future__ import annotations

from ._api.errors import WebhookError, WebhookPayloadError, WebhookSignatureError
from ._api.webhooks import (
    GIFTCARD_TRANSACTION_CREATED,
    GiftcardTransactionCreated,
    WebhookEvent,
    construct_event,
    sign,
)
from ._http.webhook_handler import DEFAULT_MAX_DELIVERY_BYTES, aiohttp_handler

__all__ = [
    "DEFAULT_MAX_DELIVERY_BYTES",
    "GIFTCARD_TRANSACTION_CREATED",
    "GiftcardTransactionCreated",
    "WebhookError",
    "WebhookEvent",
    "WebhookPayloadError",
    "WebhookSignatureError",
    "aiohttp_handler",
    "construct_event",
    "sign",
]
