"""leat-async: an asyncio client for the Leat (formerly Piggy) OAuth API, giftcard transactions.

::

    from leat_async import LeatClient, CreatedAt

    async with LeatClient(token) as client:
        tx = await client.giftcard_transactions.create(
            giftcard_uuid=card, amount_in_cents=-1250, shop_uuid=shop
        )
        async for tx in client.giftcard_transactions.list(shop_uuid=shop):
            ...

The bundled fake server for tests lives in :mod:`leat_async.testing`.
"""

# ruff: noqa: E402 - first of all, before the imports below (aiohttp alone takes ~0.2 s): when
# this process is the ``leat-async`` command, a Ctrl-C or SIGTERM during them ends it with one
# line, not a traceback. For a library user this does nothing.
from .signals import install_at_start as _install_at_start

_install_at_start()

from typing import TYPE_CHECKING

from ._api.answers import RateInfo
from ._api.convert import transaction_from_json
from ._api.errors import (
    AuthenticationError,
    GiftcardExpiredError,
    GiftcardNotFoundError,
    GiftcardNotIncrementableError,
    GiftcardProgramNotFoundError,
    IncompleteWalkError,
    InsufficientBalanceError,
    InvalidInputError,
    LeatAPIError,
    LeatConnectionError,
    LeatError,
    LeatInternalError,
    LeatTimeoutError,
    MaxAmountExceededError,
    NotLastTransactionError,
    Operation,
    RateLimitedError,
    ServiceUnavailableError,
    ShopNotFoundError,
    TransactionNotFoundError,
    WebhookError,
    WebhookPayloadError,
    WebhookSignatureError,
    WebhookSubscriptionNotFoundError,
)
from ._api.giftcard_models import Giftcard, GiftcardProgram, GiftcardProgramRef
from ._api.models import CardRef, GiftcardTransaction, Page, PageMeta, Shop
from ._api.params import CreatedAt
from ._api.unknown import AmbiguousOutcomeError, OutcomeUnknownError
from ._api.webhook_models import WebhookSubscription
from ._api.webhooks import GiftcardTransactionCreated, WebhookEvent, construct_event
from ._client import DEFAULT_BASE_URL, DEFAULT_MAX_ANSWER_BYTES, LeatClient
from ._http.observe import Event, EventKind, Stats
from ._http.pacing import LocalRateState, RateState
from ._http.recovery import GroupOutcome
from ._http.retry import RetryPolicy
from ._http.signin import ClientCredentials
from ._paging.items import ItemIterator
from ._paging.listing import Sort
from ._paging.pager import Pager
from ._paging.position import Position
from ._paging.walk import PageIterator
from ._paging.windows import merge_by_created_at, split_created_at
from ._version import __version__

if TYPE_CHECKING:
    from ._http.redis import RateStateUnavailableError, RedisRateState
    from ._http.webhook_handler import aiohttp_handler


def __getattr__(name: str) -> object:
    # the Redis home loads on first use, so "import leat_async" never needs redis-py
    if name in ("RateStateUnavailableError", "RedisRateState"):
        from ._http.redis import RateStateUnavailableError, RedisRateState

        return {
            "RateStateUnavailableError": RateStateUnavailableError,
            "RedisRateState": RedisRateState,
        }[name]
    if name == "aiohttp_handler":  # the server side loads aiohttp.web on first use only
        from ._http.webhook_handler import aiohttp_handler

        return aiohttp_handler
    raise AttributeError(f"module 'leat_async' has no attribute {name!r}")


__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_ANSWER_BYTES",
    "AmbiguousOutcomeError",
    "AuthenticationError",
    "CardRef",
    "ClientCredentials",
    "CreatedAt",
    "Event",
    "EventKind",
    "Giftcard",
    "GiftcardExpiredError",
    "GiftcardNotFoundError",
    "GiftcardNotIncrementableError",
    "GiftcardProgram",
    "GiftcardProgramNotFoundError",
    "GiftcardProgramRef",
    "GiftcardTransaction",
    "GiftcardTransactionCreated",
    "GroupOutcome",
    "IncompleteWalkError",
    "InsufficientBalanceError",
    "InvalidInputError",
    "ItemIterator",
    "LeatAPIError",
    "LeatClient",
    "LeatConnectionError",
    "LeatError",
    "LeatInternalError",
    "LeatTimeoutError",
    "LocalRateState",
    "MaxAmountExceededError",
    "NotLastTransactionError",
    "Operation",
    "OutcomeUnknownError",
    "Page",
    "PageIterator",
    "PageMeta",
    "Pager",
    "Position",
    "RateInfo",
    "RateLimitedError",
    "RateState",
    "RateStateUnavailableError",
    "RedisRateState",
    "RetryPolicy",
    "ServiceUnavailableError",
    "Shop",
    "ShopNotFoundError",
    "Sort",
    "Stats",
    "TransactionNotFoundError",
    "WebhookError",
    "WebhookEvent",
    "WebhookPayloadError",
    "WebhookSignatureError",
    "WebhookSubscription",
    "WebhookSubscriptionNotFoundError",
    "__version__",
    "aiohttp_handler",
    "construct_event",
    "merge_by_created_at",
    "split_created_at",
    "transaction_from_json",
]
