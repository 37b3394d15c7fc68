"""Validation of a create body and the giftcard business rules (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ._errors import leat_error, validation_error
from ._records import CardRecord

__all__ = ["CARD_TYPES", "CreateInput", "check_amount", "validate_create", "validate_create_card"]

_INT: Final = re.compile(r"-?[0-9]{1,18}")
#: ``type`` of a new giftcard as sent (an int, or its digit from a form) -> as a card shows it
CARD_TYPES: Final = {0: "PHYSICAL", 1: "DIGITAL", "0": "PHYSICAL", "1": "DIGITAL"}


@dataclass(frozen=True, slots=True)
class CreateInput:
    giftcard_uuid: str
    amount_in_cents: int
    shop_uuid: str
    custom_attributes: dict[str, Any] | None


def _label(name: str) -> str:
    return name.replace("_", " ")


def _required_str(data: Mapping[str, Any], name: str, errors: dict[str, list[str]]) -> str:
    value = data.get(name)
    if value is None or value == "":
        errors[name] = [f"The {_label(name)} field is required."]
        return ""
    if not isinstance(value, str):
        errors[name] = [f"The {_label(name)} must be a string."]
        return ""
    return value


def _amount(data: Mapping[str, Any], errors: dict[str, list[str]]) -> int:
    name = "amount_in_cents"
    value = data.get(name)
    if value is None or value == "":
        errors[name] = [f"The {_label(name)} field is required."]
        return 0
    # Laravel's integer rule: an int, or a string of one (form bodies); never a bool or a float.
    if isinstance(value, bool) or not isinstance(value, int | str):
        errors[name] = [f"The {_label(name)} must be an integer."]
        return 0
    if isinstance(value, str):
        if not _INT.fullmatch(value):
            errors[name] = [f"The {_label(name)} must be an integer."]
            return 0
        value = int(value)
    if value == 0:
        errors[name] = [f"The selected {_label(name)} is invalid."]
    return value


def validate_create(body: Any) -> CreateInput:
    """Check the create body; raise a 1003 ``ApiError`` listing every bad field."""
    data: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    errors: dict[str, list[str]] = {}
    giftcard_uuid = _required_str(data, "giftcard_uuid", errors)
    amount = _amount(data, errors)
    shop_uuid = _required_str(data, "shop_uuid", errors)
    custom = data.get("custom_attributes")
    if custom is not None and not isinstance(custom, Mapping):
        errors["custom_attributes"] = ["The custom attributes must be an array."]
    if errors:
        raise validation_error(errors)
    return CreateInput(
        giftcard_uuid=giftcard_uuid,
        amount_in_cents=amount,
        shop_uuid=shop_uuid,
        custom_attributes=dict(custom) if isinstance(custom, Mapping) else None,
    )


def validate_create_card(body: Any) -> tuple[str, str]:
    """Check a new giftcard's body; its program uuid and its type (``"PHYSICAL"``/``"DIGITAL"``).

    Raises a 1003 ``ApiError`` listing every bad field. ``type`` is 0 or 1 (or "0"/"1" from a
    form); a bool, a float or anything else is refused.
    """
    data: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    errors: dict[str, list[str]] = {}
    program_uuid = _required_str(data, "giftcard_program_uuid", errors)
    kind = data.get("type")
    plain = isinstance(kind, int | str) and not isinstance(kind, bool)
    card_type = CARD_TYPES.get(kind) if plain else None
    if kind is None or kind == "":
        errors["type"] = ["The type field is required."]
    elif card_type is None:
        errors["type"] = ["The selected type is invalid."]
    if errors or card_type is None:
        raise validation_error(errors)
    return program_uuid, card_type


def check_amount(card: CardRecord, amount: int, now: datetime, *, refund: bool = False) -> None:
    """Raise the ``ApiError`` the real server gives when ``amount`` may not land on ``card``.

    Order: expired 5002, cannot be incremented 5006 (skipped for a refund, i.e. the reversal of
    a redemption), max amount 5008, insufficient balance 5003.
    """
    if card.expires_at is not None and card.expires_at <= now:
        raise leat_error(5002)
    if amount > 0 and not refund and not card.reincrementable:
        raise leat_error(5006)
    new_balance = card.balance_in_cents + amount
    cap = card.max_amount_in_cents
    if amount > 0 and cap is not None and new_balance > cap:
        raise leat_error(5008)
    if new_balance < 0:
        raise leat_error(5003)
