"""The attrs models of the giftcard endpoints (structured by ``_convert``, like ``_models``).

These endpoints are looser than the transactions API: booleans arrive as ``true`` or as
``"true"``, dates as null, ``""`` or not at all, and most program fields may be missing. The
converter reads those; money stays strict ``int`` cents.
"""

from __future__ import annotations

from datetime import datetime

import attrs

__all__ = ["Giftcard", "GiftcardProgram", "GiftcardProgramRef"]


@attrs.define(slots=True)
class GiftcardProgramRef:
    """The program a giftcard belongs to, as the card shows it; either field may be missing."""

    uuid: str | None = None
    name: str | None = None


@attrs.define(slots=True)
class Giftcard:
    """One giftcard. ``hash`` is the code printed on the card or in its QR code.

    ``amount_in_cents`` is the balance (``int`` cents). ``type`` is kept as the server sent it
    (``"PHYSICAL"`` or ``"DIGITAL"`` are documented). ``expiration_date`` is timezone-aware, or
    ``None`` for a card that does not expire. The localised ``display_amount`` text is ignored.
    """

    uuid: str | None  # an old card may have none (as on old transactions): not chargeable here
    hash: str
    type: str
    amount_in_cents: int
    active: bool
    upgradeable: bool
    expiration_date: datetime | None = None
    giftcard_program: GiftcardProgramRef | None = None
    id: int | None = None


@attrs.define(slots=True)
class GiftcardProgram:
    """A giftcard program; every field but ``uuid`` and ``name`` may be missing (``None``)."""

    uuid: str
    name: str
    active: bool | None = None
    max_amount_in_cents: int | None = None
    min_amount_in_cents: int | None = None
    expiration_days: int | None = None
    calculator_flow: str | None = None
    card_count: int | None = None
    id: int | None = None
