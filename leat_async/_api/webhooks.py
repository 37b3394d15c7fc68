"""Leat's webhook deliveries, checked and read (pure: no I/O).

A delivery is a ``POST`` of ``{"type": "<event_type>", "data": {...}}`` whose ``Signature`` header
is the lowercase hex HMAC-SHA256 of the raw body, keyed with the subscription's secret. The
signature is checked, in constant time, before a byte of the body is parsed: a forged delivery
is refused without being read. Deliveries carry no id and no timestamp, and one may arrive twice:
an app that acts on them keys its work on the transaction's uuid (see the README, "Webhooks").
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from .convert import transaction_from_json
from .errors import WebhookPayloadError, WebhookSignatureError
from .models import GiftcardTransaction
from .wire import parse_json

__all__ = [
    "GIFTCARD_TRANSACTION_CREATED",
    "GiftcardTransactionCreated",
    "WebhookEvent",
    "construct_event",
    "sign",
    "webhook_key",
]

GIFTCARD_TRANSACTION_CREATED: Final = "giftcard_transaction_created"
_HEX_DIGITS: Final = 64  # a SHA-256 digest in hex


@attrs.frozen
class WebhookEvent:
    """One delivery: its ``type`` (the subscription's event type) and its ``data`` (read-only;
    left out of the repr, as it may hold a customer's details)."""

    type: str
    data: Mapping[str, Any] = attrs.field(factory=lambda: MappingProxyType({}), repr=False)


@attrs.frozen(kw_only=True)
class GiftcardTransactionCreated(WebhookEvent):
    """``giftcard_transaction_created``: a transaction was made, by this app or another (a
    shop's till, a refund by support).

    ``transaction_uuid``: from ``data.giftcard_transaction.uuid``, else ``data.uuid`` (``None``
    when the delivery names none). ``transaction``: the row, when the delivery holds a whole
    one that reads as the API's; else ``None``. The payload is not documented by Leat: fetch
    ``client.giftcard_transactions.get(event.transaction_uuid)`` for the authoritative row.
    """

    transaction_uuid: str | None = None
    transaction: GiftcardTransaction | None = attrs.field(default=None, repr=False)


def sign(body: bytes, secret: str | bytes) -> str:
    """The ``Signature`` Leat sends with ``body`` (lowercase hex HMAC-SHA256)."""
    return hmac.new(webhook_key(secret), body, hashlib.sha256).hexdigest()


def construct_event(body: bytes, signature: str | None, secret: str | bytes) -> WebhookEvent:
    """The event a delivery carries, once its ``signature`` proves it is Leat's.

    ``body``: the request's raw bytes, exactly as received (not re-encoded JSON);
    ``signature``: its ``Signature`` header (hex, either case); ``secret``: the subscription's.
    Raises :class:`WebhookSignatureError` (the body is not read) or :class:`WebhookPayloadError`.
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"body must be the raw bytes received, got {type(body).__name__}")
    key = webhook_key(secret)
    raw = bytes(body)
    given = _signature(signature)
    expected = hmac.new(key, raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given):
        raise WebhookSignatureError("the delivery's Signature is not its body's: refused unread")
    return _event(raw)


def webhook_key(secret: str | bytes) -> bytes:
    """The HMAC key of a subscription's secret (``TypeError``/``ValueError`` if unusable)."""
    if isinstance(secret, str):
        secret = secret.encode()
    if not isinstance(secret, bytes):
        raise TypeError(f"secret must be a str or bytes, got {type(secret).__name__}")
    if not secret:
        raise ValueError("secret must not be empty")
    return secret


def _signature(signature: str | None) -> str:
    if signature is None or not isinstance(signature, str):
        raise WebhookSignatureError("the delivery has no Signature header: refused unread")
    text = signature.strip().lower()
    if len(text) != _HEX_DIGITS or text.strip("0123456789abcdef"):
        raise WebhookSignatureError(
            "the delivery's Signature is not a hex HMAC-SHA256 digest: refused unread"
        )
    return text


def _event(raw: bytes) -> WebhookEvent:
    try:
        doc = parse_json(raw)
    except ValueError as exc:
        raise WebhookPayloadError(f"a signed delivery that is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str) or not doc["type"]:
        raise WebhookPayloadError("a signed delivery that is not a JSON object with a 'type'")
    data = doc.get("data", {})
    if not isinstance(data, dict):
        raise WebhookPayloadError("a signed delivery whose 'data' is not a JSON object")
    kind: str = doc["type"]
    frozen = MappingProxyType(data)
    if kind != GIFTCARD_TRANSACTION_CREATED:
        return WebhookEvent(type=kind, data=frozen)
    row = data.get("giftcard_transaction")
    uuid = _uuid(row.get("uuid") if isinstance(row, dict) else None) or _uuid(data.get("uuid"))
    return GiftcardTransactionCreated(
        type=kind, data=frozen, transaction_uuid=uuid, transaction=_transaction(row)
    )


def _uuid(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _transaction(row: object) -> GiftcardTransaction | None:
    if not isinstance(row, dict):
        return None
    try:
        return transaction_from_json(row)
    except ValueError:  # only uuids, or a shape of its own: the app fetches the row
        return None
