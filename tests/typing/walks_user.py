"""A user's walk code, type-checked by mypy and pyright (strict) in ``tests/test_typing.py``.

Never run: it only has to type-check, as a user's own code would against the public API.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import datetime

from leat_async import (
    GiftcardTransaction,
    ItemIterator,
    LeatClient,
    Page,
    PageIterator,
    Position,
    Sort,
    merge_by_created_at,
)


async def nightly(client: LeatClient, saved: str | None, newest_first: bool) -> int:
    resume = Position.from_dict(json.loads(saved)) if saved else None
    sort: Sort = "-created_at" if newest_first else "created_at"
    pager = client.giftcard_transactions.list(shop_uuid="s", sort=sort, resume=resume)
    cents = 0
    async with contextlib.aclosing(aiter(pager)) as rows:
        async for tx in rows:
            cents += tx.amount_in_cents
            position = pager.position or rows.position
            if position is not None:
                bound: datetime = position.snapshot
                json.dumps({"at": position.to_dict(), "bound": bound.isoformat()})
    async with contextlib.aclosing(pager.pages()) as pages:
        async for page in pages:
            txs: Sequence[GiftcardTransaction] = page.data
            cents += len(txs) + page.meta.per_page
    walk: PageIterator[GiftcardTransaction] = pager.pages()
    async with walk:
        first_page: Page[GiftcardTransaction] = await pager
        cents += first_page.meta.total
    items: ItemIterator[GiftcardTransaction] = aiter(pager)
    await items.aclose()
    return cents


async def merged(client: LeatClient) -> list[int]:
    gtx = client.giftcard_transactions
    shops = [gtx.list(shop_uuid=s, sort="created_at") for s in ("a", "b")]
    async with contextlib.aclosing(merge_by_created_at(*shops, aiter(shops[0]))) as txs:
        return [tx.id async for tx in txs]
