"""Webhook subscriptions and the fake's signed deliveries, over real sockets (issue 22, points
1 and 3). The receiver is the client's own aiohttp handler on a loopback port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

import leat_async as la
from leat_async import LeatClient
from leat_async.testing import DeliveryFault, FakeLeat, Fault
from leat_async.webhooks import GiftcardTransactionCreated, WebhookEvent, aiohttp_handler

from .conftest import ONE_TRY, TOKEN, charge

SECRET = "subscription-secret-value"
EVENT = "giftcard_transaction_created"


class Receiver:
    """An app's webhook endpoint: verifies, de-duplicates by transaction, remembers."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.processed: list[str] = []
        self.refuse = 0  # answer 500 to this many deliveries first

    async def on_event(self, event: WebhookEvent) -> None:
        if self.refuse:
            self.refuse -= 1
            raise RuntimeError("not now")
        assert isinstance(event, GiftcardTransactionCreated) and event.transaction_uuid
        if event.transaction_uuid in self.seen:
            return
        self.seen.add(event.transaction_uuid)
        self.processed.append(event.transaction_uuid)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    app = web.Application()
    rec = Receiver()
    app.router.add_post("/hooks", aiohttp_handler(SECRET, rec.on_event))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield rec, f"http://127.0.0.1:{runner.addresses[0][1]}/hooks"
    await runner.cleanup()


async def test_subscriptions_are_created_listed_updated_and_deleted(
    client: LeatClient, fake: FakeLeat
) -> None:
    made = await client.webhook_subscriptions.create(
        name="till", event_type=EVENT, url="https://shop.example/hooks", secret=SECRET
    )
    assert (made.status, made.version, made.event_type) == ("ACTIVE", "V1", EVENT)
    assert fake.webhooks.subscriptions[made.uuid].secret == SECRET
    assert [s.uuid for s in await client.webhook_subscriptions.list(event_type=EVENT)] == [
        made.uuid
    ]
    assert await client.webhook_subscriptions.list(status="INACTIVE") == []
    changed = await client.webhook_subscriptions.update(made.uuid, status="INACTIVE", name="x")
    assert (changed.status, changed.name) == ("INACTIVE", "x")
    assert (await client.webhook_subscriptions.get(made.uuid)).status == "INACTIVE"
    await client.webhook_subscriptions.delete(made.uuid)
    with pytest.raises(la.WebhookSubscriptionNotFoundError) as gone:
        await client.webhook_subscriptions.get(made.uuid)
    assert gone.value.code == 80300
    with pytest.raises(la.WebhookSubscriptionNotFoundError):
        await client.webhook_subscriptions.delete(made.uuid)


@pytest.mark.parametrize(
    "call",
    [
        {"name": "", "event_type": EVENT, "url": "https://a.example/h"},
        {"name": "n", "event_type": "giftcard_created", "url": "https://a.example/h"},
        {"name": "n", "event_type": EVENT, "url": "http://a.example/h"},
        {"name": "n", "event_type": EVENT, "url": "/relative"},
        {"name": "n", "event_type": EVENT, "url": "https://u:p@a.example/h"},
        {"name": "n", "event_type": EVENT, "url": "https://a.example/h", "secret": ""},
    ],
)
async def test_bad_subscriptions_are_refused_before_anything_is_sent(
    client: LeatClient, fake: FakeLeat, call: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"name|event_type|url|secret"):
        await client.webhook_subscriptions.create(**call)
    with pytest.raises(ValueError, match="something to change"):
        await client.webhook_subscriptions.update("abc")
    with pytest.raises(ValueError, match="status"):
        await client.webhook_subscriptions.update("abc", status="PAUSED")  # type: ignore[arg-type]
    assert fake.requests == []


async def test_a_lost_create_is_unknown_and_never_tells_the_secret(
    fake: FakeLeat, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_fault(Fault(method="POST", drop=True, when="after"))
    async with LeatClient(TOKEN, base_url=fake.url, retry=ONE_TRY, timeout=5.0) as client:
        with (
            caplog.at_level(logging.DEBUG, logger="leat_async"),
            pytest.raises(la.OutcomeUnknownError) as lost,
        ):
            await client.webhook_subscriptions.create(
                name="till", event_type=EVENT, url="https://a.example/h", secret=SECRET
            )
    error = lost.value
    assert error.operation == "webhook_subscriptions.create"
    assert error.sent["secret"] == "[redacted]" and error.sent["name"] == "till"
    for text in (str(error), repr(error), caplog.text, repr(error.sent)):
        assert SECRET not in text
    assert len(fake.webhooks.subscriptions) == 1  # it landed: list() tells
    assert sum(1 for r in fake.requests if r.method == "POST") == 1  # never resent


async def test_every_charge_and_refund_is_delivered_signed(
    client: LeatClient, fake: FakeLeat, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    await client.webhook_subscriptions.create(name="app", event_type=EVENT, url=url, secret=SECRET)
    card = fake.add_card(balance_in_cents=5000)
    shop = fake.add_shop()
    tx = await charge(client, card, shop, -1250)
    back = await client.giftcard_transactions.reverse(tx.uuid)  # type: ignore[arg-type]
    await fake.webhooks.settled()
    assert rec.processed == [tx.uuid, back.uuid]
    assert all(d.delivered and d.statuses == [200] for d in fake.webhooks.deliveries)


async def test_a_failed_delivery_is_sent_again_and_processed_once(
    client: LeatClient, fake: FakeLeat, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.refuse = 2
    await client.webhook_subscriptions.create(name="a", event_type=EVENT, url=url, secret=SECRET)
    fake.webhooks.faults.append(DeliveryFault(duplicate=True))
    tx = await charge(client, fake.add_card(balance_in_cents=900), fake.add_shop(), -100)
    await fake.webhooks.settled()
    assert rec.processed == [tx.uuid]  # delivered twice, refused twice on the way: once
    statuses = [s for d in fake.webhooks.deliveries for s in d.statuses]
    assert len(fake.webhooks.deliveries) == 2 and all(d.delivered for d in fake.webhooks.deliveries)
    assert statuses.count(500) == 2


async def test_forged_and_inactive_deliveries_change_nothing(
    client: LeatClient, fake: FakeLeat, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    made = await client.webhook_subscriptions.create(
        name="a", event_type=EVENT, url=url, secret=SECRET
    )
    fake.webhooks.faults.append(DeliveryFault(wrong_signature=True))
    card, shop = fake.add_card(balance_in_cents=900), fake.add_shop()
    await charge(client, card, shop, -100)
    await fake.webhooks.settled()
    assert rec.processed == [] and fake.webhooks.deliveries[0].statuses == [401] * 4
    await client.webhook_subscriptions.update(made.uuid, status="INACTIVE")
    await charge(client, card, shop, -100)
    await fake.webhooks.settled()
    assert len(fake.webhooks.deliveries) == 1 and rec.processed == []
