"""A user's checkout code, type-checked by mypy and pyright (strict) in tests/test_typing.py.

Never run: it only has to type-check, as a user's own code would against the public API.
"""

from __future__ import annotations

import asyncio
import logging
import pickle

from leat_async import (
    Event,
    EventKind,
    Giftcard,
    GiftcardTransaction,
    InsufficientBalanceError,
    LeatAPIError,
    LeatClient,
    Operation,
    OutcomeUnknownError,
    RateInfo,
    RetryPolicy,
)

log = logging.getLogger("shop")
ORPHANS: list[GiftcardTransaction | OutcomeUnknownError] = []


def on_event(event: Event) -> None:
    kind: EventKind = event.kind
    if kind == "orphaned":
        if isinstance(event.outcome, (GiftcardTransaction, OutcomeUnknownError)):
            ORPHANS.append(event.outcome)
    elif kind == "response" and event.status is not None and event.elapsed is not None:
        log.debug("%s %s: %d in %.3f s", event.method, event.path, event.status, event.elapsed)


async def charge(client: LeatClient, code: str, cents: int, shop: str) -> str:
    card: Giftcard = await client.giftcards.find_by_hash(code, timeout=2.0)
    if card.uuid is None:
        return "this card cannot be charged online"
    gtx = client.giftcard_transactions
    try:
        tx = await gtx.create(
            giftcard_uuid=card.uuid, amount_in_cents=-cents, shop_uuid=shop, timeout=5
        )
    except InsufficientBalanceError as refused:
        return f"declined ({refused.code}, request {refused.request_id})"
    except OutcomeUnknownError as lost:
        operation: Operation = lost.operation
        blob: bytes = pickle.dumps(lost)  # for a recovery worker
        try:
            found = await gtx.recover(lost, wait=False)
        except OutcomeUnknownError:
            return f"pending: {operation}, {len(blob)} bytes queued until {lost.deadline}"
        return "not charged" if found is None else f"charged {found.uuid}"
    except LeatAPIError as other:
        return f"{other.status}: {other.headers.get('Retry-After', '-')}"
    return f"charged {tx.uuid} at {tx.created_at.isoformat()}"


async def main(token: str) -> None:
    policy = RetryPolicy(deadline=10.0)
    async with LeatClient(
        token, retry=policy, on_event=on_event, landing_horizon=60.0, trust_env=True
    ) as client:
        print(await charge(client, "ABC+123 x", 1250, "shop-uuid"))
        programs = await client.giftcard_programs.list()
        print([p.name for p in programs], client.stats.orphaned)
    info = RateInfo(limit=10, remaining=3)
    print(info.remaining)


asyncio.run(main("token"))
