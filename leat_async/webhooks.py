"""Receiving Leat's webhooks: check a delivery's signature, then read its event.

::

    from leat_async.webhooks import GiftcardTransactionCreated, construct_event

    event = construct_event(raw_body, request.headers.get("Signature"), secret)
    if isinstance(event, GiftcardTransactionCreated) and event.transaction_uuid:
        if not already_done(event.transaction_uuid):  # a delivery may come twice
            tx = await client.giftcard_transactions.get(event.transaction_uuid)
            ...

With aiohttp, :func:`aiohttp_handler` does it all: ``app.router.add_post("/leat",
aiohttp_handler(secret, on_event))``. Subscriptions are managed with
``client.webhook_subscriptions``.
"""

from __future__ import annotations

from ._api.webhooks import (
    GIFTCARD_TRANSACTION_CREATED,
    GiftcardTransactionCreated,
    WebhookError,
    WebhookEvent,
    WebhookPayloadError,
    WebhookSignatureError,
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
