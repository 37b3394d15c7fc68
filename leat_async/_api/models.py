"""The attrs models the API's answers are structured into (see ``_convert``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import attrs

__all__ = ["CardRef", "GiftcardTransaction", "Page", "PageMeta", "Shop"]


@attrs.define(slots=True)
class CardRef:
    """The giftcard a transaction belongs to. Old rows have ``uuid=None``."""

    id: int
    uuid: str | None


@attrs.define(slots=True)
class Shop:
    id: int
    uuid: str | None
    name: str


@attrs.define(slots=True)
class GiftcardTransaction:
    """One giftcard transaction. Money is always ``int`` cents; ``created_at`` is timezone-aware.

    ``type`` is kept as the server sent it (only ``"STANDARD"`` is documented); ``settlements``
    keeps whatever JSON the server sent, since its shape is undocumented.
    """

    id: int
    uuid: str | None
    amount_in_cents: int
    type: str
    settled: bool
    card: CardRef
    shop: Shop
    settlements: tuple[Any, ...]
    created_at: datetime


@attrs.define(slots=True)
class PageMeta:
    """A page's place in its listing. ``limit`` is the page size (``per_page`` says the same);
    ``viewing_from``/``viewing_to`` are ``None`` on an empty page and for listings that do not
    send them.
    """

    page: int
    limit: int
    viewing_from: int | None
    viewing_to: int | None
    last_page: int
    total: int

    @property
    def per_page(self) -> int:
        return self.limit


T = TypeVar("T")


@attrs.define(slots=True)
class Page(Generic[T]):
    """One page of a listing: ``Page[GiftcardTransaction]`` for the transactions."""

    data: Sequence[T]
    meta: PageMeta


# The annotations are strings here (PEP 563); cattrs before 26.1 resolves them on first use by
# calling attrs.resolve_types on what it was asked for, which fails for Page[Item] (a generic
# alias is not a class). Resolved once here, they are types and cattrs never has to.
attrs.resolve_types(Page)
