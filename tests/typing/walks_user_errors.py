"""What mypy must refuse in a user's walk code (``tests/test_typing.py``). Never run."""

from __future__ import annotations

from leat_async import LeatClient


async def typos(client: LeatClient) -> None:
    client.giftcard_transactions.list(sort="created")  # E: a sort that does not exist
    pager = client.giftcard_transactions.list()
    print(pager.position.page)  # E: None before a walk fixes its snapshot
