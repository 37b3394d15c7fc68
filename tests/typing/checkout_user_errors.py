"""What a type checker must refuse in a user's checkout code (``tests/test_typing.py``)."""

from __future__ import annotations

from leat_async import Event, LeatClient, OutcomeUnknownError


async def wrong(client: LeatClient, lost: OutcomeUnknownError, event: Event) -> None:
    await client.giftcard_transactions.recover(lost, wait="no")  # E: not a bool
    await client.giftcard_transactions.create(
        giftcard_uuid="c",
        amount_in_cents="12",  # E: money is an int
        shop_uuid="s",
    )
    print(event.kind == "orphan")  # E: no such kind
