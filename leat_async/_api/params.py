"""Checks on what the caller passes, made before anything is sent, and the ``created_at`` filter."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

__all__ = [
    "CARD_TYPES",
    "SORTS",
    "CreatedAt",
    "check_amount",
    "check_card_type",
    "check_custom_attributes",
    "check_id",
    "check_page",
    "check_sort",
]

SORTS = frozenset({"created_at", "-created_at"})
_PATH_SAFE = re.compile(r"[A-Za-z0-9-]+")


def check_id(value: object, name: str, *, in_path: bool = False) -> str:
    """A non-empty str; one that goes into a URL path may hold only letters, digits and ``-``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if in_path and not _PATH_SAFE.fullmatch(value):
        raise ValueError(f"{name} may hold only letters, digits and '-', got {value!r:.60}")
    if not in_path and (value != value.strip() or any(ord(c) < 32 for c in value)):
        raise ValueError(f"{name} must not hold whitespace at its ends or control characters")
    return value


#: JSON integers the API (PHP) and our encoders hold: signed 64 bits.
_INT64 = 2**63


#: What begins a keyed digest of a secret (see :func:`fingerprint`); no card code begins so.
FINGERPRINT = "hmac-sha256:"


def fingerprint_key(token: str) -> bytes:
    """The key of a client's fingerprints: from its token, so that a fingerprint can neither
    be reversed nor guessed (a short card code) by whoever lacks the token."""
    return hashlib.sha256(b"leat-async fingerprint\x00" + token.encode()).digest()


def fingerprint(key: bytes, secret: str) -> str:
    """A keyed digest of ``secret`` (a card's code): what may be stored where it may not."""
    digest = hmac.new(key, secret.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
    return FINGERPRINT + digest[:32]


def check_amount(value: object) -> int:
    if type(value) is not int:  # a bool is an int subclass, and not an amount
        raise TypeError(f"amount_in_cents must be an int, got {type(value).__name__}")
    if value == 0:
        raise ValueError("amount_in_cents must not be 0")
    if not -_INT64 <= value < _INT64:
        raise ValueError("amount_in_cents is beyond a 64-bit integer")
    return value


_ATTRIBUTE_TYPES = (str, int, float, bool, type(None))


def check_custom_attributes(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"custom_attributes must be a mapping, got {type(value).__name__}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"custom_attributes keys must be non-empty str, got {key!r:.40}")
        if not isinstance(item, _ATTRIBUTE_TYPES):
            raise TypeError(
                f"custom_attributes[{key!r}] must be str, int, float, bool or None, "
                f"got {type(item).__name__}"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError(f"custom_attributes[{key!r}] must be a finite number")
        if type(item) is int and not -_INT64 <= item < _INT64:
            raise ValueError(f"custom_attributes[{key!r}] is beyond a 64-bit integer")
        for text in (key, item):
            if isinstance(text, str) and not _encodable(text):
                raise ValueError(f"custom_attributes[{key!r:.40}] holds text that is not Unicode")
        out[key] = item
    return out


def _encodable(text: str) -> bool:
    """Lone surrogates cannot be sent as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: a new giftcard's ``type`` -> the number the API takes for it
CARD_TYPES = {"PHYSICAL": 0, "DIGITAL": 1}


def check_card_type(value: object) -> int:
    if not isinstance(value, str):
        raise TypeError(f'type must be "PHYSICAL" or "DIGITAL", got {type(value).__name__}')
    if value not in CARD_TYPES:
        raise ValueError(f'type must be "PHYSICAL" or "DIGITAL", got {value!r:.40}')
    return CARD_TYPES[value]


def check_page(per_page: object, page: object) -> tuple[int, int]:
    if type(per_page) is not int:
        raise TypeError(f"per_page must be an int, got {type(per_page).__name__}")
    if type(page) is not int:
        raise TypeError(f"page must be an int, got {type(page).__name__}")
    if not 1 <= per_page <= 100:
        raise ValueError(f"per_page must be between 1 and 100, got {per_page}")
    if page < 1:
        raise ValueError(f"page must be 1 or more, got {page}")
    return per_page, page


def check_sort(sort: object) -> str | None:
    if sort is not None and sort not in SORTS:
        raise ValueError(f"sort must be one of {sorted(SORTS)} or None, got {sort!r:.40}")
    return sort


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise TypeError(f"created_at {name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"created_at {name} must be timezone-aware, got a naive datetime")
    return value


def _whole_second(when: datetime, *, up: bool) -> datetime:
    """``when`` in UTC, cut to its second (``up``: the next second, if it had a fraction)."""
    utc = when.astimezone(UTC)
    whole = utc.replace(microsecond=0)
    return whole + timedelta(seconds=1) if up and whole != utc else whole


@attrs.frozen
class CreatedAt:
    """A ``created_at`` range: at most one lower bound (``gt``/``gte``), one upper (``lt``/``lte``).

    Datetimes must be timezone-aware. Sent as ``created_at[gte]=<ISO 8601>`` and so on.
    """

    gt: datetime | None = None
    gte: datetime | None = None
    lt: datetime | None = None
    lte: datetime | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("gt", "gte", "lt", "lte"):
            _aware(getattr(self, name), name)
        if self.gt is not None and self.gte is not None:
            raise ValueError("created_at takes one lower bound: gt or gte, not both")
        if self.lt is not None and self.lte is not None:
            raise ValueError("created_at takes one upper bound: lt or lte, not both")
        low, high = self.lower, self.upper
        if low is not None and high is not None:
            strict = self.gt is not None or self.lt is not None
            if low > high or (strict and low == high):
                raise ValueError(f"created_at range holds nothing: {self}")

    @property
    def lower(self) -> datetime | None:
        return self.gt if self.gt is not None else self.gte

    @property
    def upper(self) -> datetime | None:
        return self.lt if self.lt is not None else self.lte

    def query(self) -> list[tuple[str, str]]:
        """The bounds as sent: UTC whole seconds, rounded so that they mean what was asked.

        ``created_at`` is stored to the second, so a fraction can only mislead the server:
        ``gte 10:00:00.5`` is sent as ``gte 10:00:01``, ``lt 10:00:00.5`` as ``lt 10:00:01``,
        ``gt``/``lte`` round down.
        """
        return [
            (f"created_at[{name}]", _whole_second(value, up=name in ("gte", "lt")).isoformat())
            for name in ("gt", "gte", "lt", "lte")
            if (value := getattr(self, name)) is not None
        ]

    def contains(self, when: datetime) -> bool:
        return (
            (self.gt is None or when > self.gt)
            and (self.gte is None or when >= self.gte)
            and (self.lt is None or when < self.lt)
            and (self.lte is None or when <= self.lte)
        )

    def __str__(self) -> str:
        parts = [f"{k}={v.isoformat()}" for k, v in attrs.asdict(self).items() if v is not None]
        return f"CreatedAt({', '.join(parts)})"
