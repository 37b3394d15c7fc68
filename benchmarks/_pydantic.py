"""The baseline a user would write instead of leat-async: pydantic v2 models mirroring ours.

Same fields and types as ``leat_async._api.models`` (nullable uuids, an aware ``created_at``,
settlements kept as they arrive); pydantic's default (lax) configuration, as users write it.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel

__all__ = ["PydCardRef", "PydGiftcardTransaction", "PydPage", "PydPageMeta", "PydShop"]


class PydCardRef(BaseModel):
    id: int
    uuid: str | None


class PydShop(BaseModel):
    id: int
    uuid: str | None
    name: str


class PydGiftcardTransaction(BaseModel):
    id: int
    uuid: str | None
    amount_in_cents: int
    type: str
    settled: bool
    card: PydCardRef
    shop: PydShop
    settlements: tuple[Any, ...]
    created_at: AwareDatetime


class PydPageMeta(BaseModel):
    page: int
    limit: int
    viewing_from: int | None
    viewing_to: int | None
    last_page: int
    total: int


class PydPage(BaseModel):
    data: list[PydGiftcardTransaction]
    meta: PydPageMeta
