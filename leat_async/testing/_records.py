"""Plain records held by the fake server, and their JSON as the API reference shows it.

Written from the API reference alone: nothing here is shared with the client's models.
"""

from __future__ import annotations

import enum
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "ABSENT",
    "NULL",
    "Absent",
    "CardRecord",
    "DerivedUuids",
    "ProgramRecord",
    "RecordedRequest",
    "ShopRecord",
    "TransactionRecord",
    "UuidSentinel",
    "card_json",
    "format_ts",
    "program_json",
    "shop_json",
    "to_ts",
    "transaction_json",
]


class UuidSentinel(enum.Enum):
    """``FakeLeat.NULL``: pass it as ``uuid=`` to model an old row whose uuid is JSON null."""

    NULL = "NULL"


NULL: Final = UuidSentinel.NULL


class Absent(enum.Enum):
    """``FakeLeat.ABSENT``: as a value in ``extra=``, it removes that key from the JSON."""

    ABSENT = "ABSENT"


ABSENT: Final = Absent.ABSENT
_VARIANT: Final = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


@dataclass(slots=True, eq=False)
class ShopRecord:
    """A shop. Compared by identity."""

    id: int
    uuid: str
    name: str


@dataclass(slots=True, eq=False)
class ProgramRecord:
    """A giftcard program. Compared by identity; its ``card_count`` is counted when rendered.

    ``extra`` keys are merged into its JSON last (they may override, ``ABSENT`` removes).
    """

    id: int
    uuid: str
    name: str
    active: bool = True
    max_amount_in_cents: int | None = None
    min_amount_in_cents: int | None = None
    expiration_days: int | None = None
    calculator_flow: str | None = None
    extra: dict[str, Any] | None = None


@dataclass(slots=True, eq=False)
class CardRecord:
    """A giftcard. ``balance_in_cents`` and ``last_transaction`` change as transactions land.

    Its JSON shows ``reincrementable`` as ``upgradeable`` and ``expires_at`` as
    ``expiration_date``; ``extra`` keys are merged last (they may override, ``ABSENT`` removes).
    """

    id: int
    uuid: str | None
    hash: str
    balance_in_cents: int
    program: ProgramRecord | None
    reincrementable: bool
    max_amount_in_cents: int | None
    expires_at: datetime | None
    last_transaction: TransactionRecord | None = field(default=None, repr=False)
    type: str = "PHYSICAL"
    active: bool = True
    extra: dict[str, Any] | None = None


class DerivedUuids:
    """Uuids of seeded rows, computed from the row id when asked instead of stored.

    A million stored uuid strings would cost ~130 MB and over a second to make. A derived uuid
    looks like any uuid4; its last group is the id xor a per-seed mask, so it can be inverted.
    """

    __slots__ = ("_hasher", "_mask")

    def __init__(self, key: bytes, mask: int) -> None:
        self._hasher = hashlib.blake2b(key=key, digest_size=10)  # copied: cheaper than re-keying
        self._mask = mask & 0xFFFF_FFFF_FFFF

    def make(self, tx_id: int) -> str:
        hasher = self._hasher.copy()
        hasher.update(tx_id.to_bytes(8, "big"))
        h = hasher.hexdigest()
        tail = (tx_id ^ self._mask) & 0xFFFF_FFFF_FFFF
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{tail:012x}"

    def id_of(self, uuid: str) -> int | None:
        """The id whose derived uuid ``uuid`` would be, if it has the shape of one."""
        if len(uuid) != 36 or uuid[23] != "-":
            return None
        try:
            return int(uuid[24:], 16) ^ self._mask
        except ValueError:
            return None


class TransactionRecord:
    """A giftcard transaction. ``ts`` is ``created_at`` in whole seconds since the epoch.

    Mutable (``settled``, ``settlements`` and ``extra`` may be changed by tests, even in place;
    the other fields are rendered once and cached, see ``_render``); compared by identity.
    ``uuid`` is ``None`` for an old row whose uuid is JSON null.
    """

    __slots__ = (
        "_uuid",
        "amount_in_cents",
        "card",
        "custom_attributes",
        "extra",
        "id",
        "settled",
        "settlements",
        "shop",
        "ts",
        "type",
    )

    def __init__(
        self,
        id: int,
        uuid: str | DerivedUuids | None,
        amount_in_cents: int,
        type: str,
        settled: bool,
        card: CardRecord,
        shop: ShopRecord,
        settlements: tuple[Mapping[str, Any], ...],
        ts: int,
        extra: dict[str, Any] | None = None,
        custom_attributes: dict[str, Any] | None = None,
    ) -> None:
        self.id: int = id
        self._uuid: str | DerivedUuids | None = uuid
        self.amount_in_cents: int = amount_in_cents
        self.type: str = type
        self.settled: bool = settled
        self.card: CardRecord = card
        self.shop: ShopRecord = shop
        self.settlements: tuple[Mapping[str, Any], ...] = settlements
        self.ts: int = ts
        self.extra: dict[str, Any] | None = extra
        self.custom_attributes: dict[str, Any] | None = custom_attributes

    @property
    def uuid(self) -> str | None:
        u = self._uuid
        if u is None or isinstance(u, str):
            return u
        return u.make(self.id)

    def uuid_source(self) -> str | DerivedUuids | None:
        return self._uuid

    @property
    def created_at(self) -> datetime:
        """``created_at`` as an aware UTC datetime (whole seconds)."""
        return datetime.fromtimestamp(self.ts, UTC)

    def __repr__(self) -> str:
        return (
            f"TransactionRecord(id={self.id}, uuid={self.uuid!r}, "
            f"amount_in_cents={self.amount_in_cents}, type={self.type!r}, "
            f"settled={self.settled}, card_id={self.card.id}, shop_id={self.shop.id}, "
            f"created_at={format_ts(self.ts)!r})"
        )


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake saw it. Never holds the Authorization header or the token.

    ``path`` is relative to the API prefix ``/api/v3/oauth/clients`` (for example
    ``/giftcard-transactions/abc/reverse``); a path outside the prefix is kept whole.
    ``query`` is decoded as the server reads it (a literal ``+`` is a space). ``json`` is the
    parsed body (JSON, or a dict of form fields), ``None`` without one. ``status`` is the status
    answered, 0 when the connection was dropped. ``at`` is the monotonic clock at arrival.
    ``partner_id``: the ``X-Partner-ID`` header, ``None`` without one. A sign-in at
    ``/oauth/token`` is recorded too (its ``json``: the fields, ``client_secret`` as ``***``).
    """

    method: str
    path: str
    query: list[tuple[str, str]]
    json: Any
    authorized: bool
    status: int
    at: float
    partner_id: str | None = None


def to_ts(value: datetime) -> int:
    """Whole seconds since the epoch of an aware datetime (microseconds truncated)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got {value!r}")
    return int(value.replace(microsecond=0).timestamp())


def format_ts(ts: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS+00:00`` in UTC, as the API renders ``created_at``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


def _with_extra(out: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """``extra`` merged into ``out``: its keys override, and an ``ABSENT`` value removes one."""
    for key, value in (extra or {}).items():
        if value is ABSENT:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def shop_json(shop: ShopRecord) -> dict[str, Any]:
    return {"id": shop.id, "uuid": shop.uuid, "name": shop.name}


def transaction_json(tx: TransactionRecord, *, echo: bool = False) -> dict[str, Any]:
    """The transaction as the API shows it, ``extra`` merged last (see ``_with_extra``).

    ``echo``: with the ``custom_attributes`` it was made with (``[]`` for none, as PHP
    writes an empty array), as a server that echoes them would.
    """
    out: dict[str, Any] = {
        "id": tx.id,
        "uuid": tx.uuid,
        "amount_in_cents": tx.amount_in_cents,
        "type": tx.type,
        "settled": tx.settled,
        "card": {"id": tx.card.id, "uuid": tx.card.uuid},
        "shop": shop_json(tx.shop),
        "settlements": [dict(s) for s in tx.settlements],
        "created_at": format_ts(tx.ts),
    }
    if echo:
        out["custom_attributes"] = dict(tx.custom_attributes) if tx.custom_attributes else []
    return _with_extra(out, tx.extra)


def card_json(card: CardRecord) -> dict[str, Any]:
    """The giftcard as the giftcard endpoints show it, ``extra`` merged last."""
    program = card.program
    expires = card.expires_at
    out: dict[str, Any] = {
        "uuid": card.uuid,
        "hash": card.hash,
        "type": card.type,
        "amount_in_cents": card.balance_in_cents,
        "active": card.active,
        "upgradeable": card.reincrementable,
        "expiration_date": None if expires is None else format_ts(to_ts(expires)),
        "giftcard_program": None
        if program is None
        else {"uuid": program.uuid, "name": program.name},
        "id": card.id,
    }
    return _with_extra(out, card.extra)


def program_json(program: ProgramRecord, card_count: int) -> dict[str, Any]:
    """The giftcard program as ``/giftcard-programs`` shows it, ``extra`` merged last."""
    out: dict[str, Any] = {
        "uuid": program.uuid,
        "name": program.name,
        "active": program.active,
        "max_amount_in_cents": program.max_amount_in_cents,
        "min_amount_in_cents": program.min_amount_in_cents,
        "expiration_days": program.expiration_days,
        "calculator_flow": program.calculator_flow,
        "card_count": card_count,
        "id": program.id,
    }
    return _with_extra(out, program.extra)
