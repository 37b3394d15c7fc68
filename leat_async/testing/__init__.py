"""A fake Leat server (giftcard transactions and giftcards), in-process, over real loopback HTTP.

    from leat_async import LeatClient
    from leat_async.testing import FakeLeat, Fault

    async with FakeLeat(token="test-token") as fake:        # listens on 127.0.0.1, a free port
        shop = fake.add_shop(name="Krusty Krab")
        card = fake.add_card(balance_in_cents=5000)          # not reincrementable by default
        assert card.uuid is not None                         # None only for old cards (NULL)
        fake.seed(1_000)                                     # or bulk history: shops, cards, rows
        async with LeatClient(fake.token, base_url=fake.url) as client:
            tx = await client.giftcard_transactions.create(
                giftcard_uuid=card.uuid, amount_in_cents=-1000, shop_uuid=shop.uuid)
        assert card.balance_in_cents == 4000
        fake.add_fault(Fault(method="POST", drop=True, when="after"))   # lose the next answer

It serves ``/api/v3/oauth/clients/giftcard-transactions`` (list, create, get, reverse) with the
API's business rules and error codes, and the giftcard calls: ``GET /giftcards/find-one-by?hash=``
and ``GET /giftcards/{uuid}`` (unknown card: 5001), ``GET /giftcards?giftcard_program_uuid=&page=
&limit=`` (unknown program: 1100), ``POST /giftcards {giftcard_program_uuid, type: 0|1}`` (a new
card, balance 0; a bad type: 1003), ``GET /giftcard-programs``, ``POST /giftcards/{uuid}/
send-by-email`` (``fake.emails``) and the OAuth sign-in ``POST /oauth/token`` at the root
(``FakeLeat(client_id=, client_secret=)``, ``fake.token_url``, ``fake.oauth``). Cards and programs
are made with ``fake.add_card(hash=, type=, active=, program=, ...)`` and ``fake.add_program(name=,
active=, max_amount_in_cents=, expiration_days=, ...)``; ``fake.get_card_by_hash(code)`` finds one.
Every record takes ``extra={...}`` to serve the loose shapes the real API sends (``"true"`` for a
boolean, ``""`` for a date); ``FakeLeat.ABSENT`` as a value removes a key. Listings have
Laravel-style pagination; an optional fixed-window rate limit (``rate_limit=`` requests per
``rate_window`` seconds) counts authenticated requests.
``fake.requests`` records every request (never the token); ``fake.add_hook`` runs code after each
one, before its answer leaves. ``clock=`` freezes or moves time (``created_at``, expiry, ``Date``).

With pytest: ``pytest_plugins = ["leat_async.testing.pytest_plugin"]`` gives a ``leat_fake``
fixture. Standalone: ``python -m leat_async.testing --port 8080 --seed 1000``.
The fake shares no code with the client, on purpose: it is written from the API reference.
"""

from __future__ import annotations

from ._email import EmailOutbox, SentEmail
from ._faults import Fault
from ._oauth import OAuthClients
from ._records import (
    CardRecord,
    ProgramRecord,
    RecordedRequest,
    ShopRecord,
    TransactionRecord,
    UuidSentinel,
)
from ._server import FakeLeat
from ._webhooks import Delivery, DeliveryFault, SubscriptionRecord, Webhooks

__all__ = [
    "CardRecord",
    "Delivery",
    "DeliveryFault",
    "EmailOutbox",
    "FakeLeat",
    "Fault",
    "OAuthClients",
    "ProgramRecord",
    "RecordedRequest",
    "SentEmail",
    "ShopRecord",
    "SubscriptionRecord",
    "TransactionRecord",
    "UuidSentinel",
    "Webhooks",
]
