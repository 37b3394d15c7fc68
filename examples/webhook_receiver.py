"""Hear about every giftcard transaction, including those this app did not make (a charge at
the shop's till, a refund by support), from Leat's webhooks.

    LEAT_TOKEN=... LEAT_WEBHOOK_SECRET=... python examples/webhook_receiver.py --port 8081

The endpoint checks each delivery's signature before reading it, and records each transaction
once however often it is delivered (a delivery has no id, and may come twice): the
transaction's uuid is the key, and the row recorded is the one fetched from the API, not the
delivery's copy. Subscribe it once with ``client.webhook_subscriptions.create(...,
url="https://<this host>/leat/webhooks", secret=...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from leat_async import GiftcardTransaction, LeatClient, LeatError
from leat_async.webhooks import GiftcardTransactionCreated, WebhookEvent, aiohttp_handler

PATH: Final = "/leat/webhooks"
CLIENT: Final = web.AppKey("client", LeatClient)
LEDGER: Final = web.AppKey("ledger", dict[str, GiftcardTransaction])


def make_app(token: str, secret: str, *, base_url: str | None = None) -> web.Application:
    """The receiving app: ``app[LEDGER]`` maps each transaction's uuid to its row."""
    app = web.Application()
    app[LEDGER] = {}
    locks: dict[str, asyncio.Lock] = {}

    async def client_ctx(app: web.Application) -> AsyncIterator[None]:
        options = {} if base_url is None else {"base_url": base_url}
        async with LeatClient(token, **options) as client:  # type: ignore[arg-type]
            app[CLIENT] = client
            yield

    async def on_event(event: WebhookEvent) -> None:
        if not isinstance(event, GiftcardTransactionCreated) or not event.transaction_uuid:
            return  # another event type, or one that names no transaction: nothing to do
        uuid = event.transaction_uuid
        # one delivery at a time per transaction: a duplicate that arrives meanwhile waits,
        # then finds the row recorded
        async with locks.setdefault(uuid, asyncio.Lock()):
            if uuid in app[LEDGER]:
                return
            # raises on failure: the handler answers 500 and Leat delivers again
            app[LEDGER][uuid] = await app[CLIENT].giftcard_transactions.get(uuid)
        locks.pop(uuid, None)

    app.cleanup_ctx.append(client_ctx)
    app.router.add_post(PATH, aiohttp_handler(secret, on_event))
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    token, secret = os.environ.get("LEAT_TOKEN"), os.environ.get("LEAT_WEBHOOK_SECRET")
    if not token or not secret:
        print("error: set LEAT_TOKEN and LEAT_WEBHOOK_SECRET", file=sys.stderr)
        return 2
    try:
        web.run_app(make_app(token, secret), host=args.host, port=args.port, print=None)
    except (OSError, LeatError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
