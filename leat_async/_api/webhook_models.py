"""The model of a webhook subscription (structured by ``convert``, loosely like the giftcards)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import attrs

__all__ = ["EVENT_TYPES", "WebhookSubscription"]

#: The event types a subscription can watch (Leat's documented list).
EVENT_TYPES: Final = frozenset(
    {
        "contact_created",
        "contact_updated",
        "credit_reception_created",
        "prepaid_transaction_created",
        "giftcard_transaction_created",
        "voucher_created",
        "voucher_updated",
        "voucher_redeemed",
        "form_submission_completed",
        "referral_completed",
        "contact_identifier_created",
        "reward_updated",
        "promotion_updated",
    }
)


@attrs.define(slots=True)
class WebhookSubscription:
    """A webhook subscription. Its secret is never returned by the API, nor kept here.

    ``status``: ``"ACTIVE"`` or ``"INACTIVE"``; ``properties``: the attributes a
    ``contact_updated`` subscription watches, as the server sent them (``None`` if absent).
    """

    uuid: str
    name: str
    event_type: str
    url: str
    status: str
    version: str | None = None
    created_at: datetime | None = None
    properties: Any = None
