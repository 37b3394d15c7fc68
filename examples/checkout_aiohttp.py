"""Checkout in an aiohttp web app: from the code a customer types to a charge, and refunds.

Try it against the bundled fake Leat server (no token, no network)::

    python examples/checkout_aiohttp.py --fake          # prints demo codes, serves on :8080
    curl -s localhost:8080/checkout -d '{"code":"KRABBY-1","amount_in_cents":1250,"order":"A-1"}'
    curl -s localhost:8080/orders/A-1
    curl -s localhost:8080/refund -d '{"order": "A-1"}'

Against Leat: ``LEAT_TOKEN=... python examples/checkout_aiohttp.py --shop-uuid <your shop>``.

What it shows:

- ONE ``LeatClient`` for the app's lifetime, made and closed with the app (``cleanup_ctx``);
- ``POST /checkout {code, amount_in_cents, order, partial?}``: find the card by its code, charge
  it. When the balance is short, ``"partial": true`` charges what is there (the rest is the
  caller's to collect another way); otherwise the answer is 402 and nothing is charged;
- Leat's errors mapped to HTTP answers in one place (``refusal_for``, the table in the README);
- an answer lost on the way back (``OutcomeUnknownError``): one quick ``recover(wait=False)``;
  if still unknown, answer 202 at once and settle it with ``recover()`` in a background task
  that the app keeps; ``GET /orders/{order}`` shows the outcome once it is known;
- ``POST /refund {order}``: reverse the order's transaction, with the same care;
- the order id as the app's own idempotency key: a second checkout of an order that is charged
  or still settling charges nothing and answers what the order is.

The orders live in a dict in memory to keep the example short: a real app keeps them in its
database, and writes the "charging" record before it calls Leat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from leat_async import (
    AmbiguousOutcomeError,
    GiftcardExpiredError,
    GiftcardNotFoundError,
    GiftcardTransaction,
    InsufficientBalanceError,
    LeatClient,
    LeatConnectionError,
    LeatError,
    NotLastTransactionError,
    OutcomeUnknownError,
    RateLimitedError,
    RetryPolicy,
    ServiceUnavailableError,
)

log = logging.getLogger("checkout")

# Sizing. The rate budget belongs to the token, shared by every process that uses it; Leat's own
# e-commerce plugin holds itself to 5 requests/s, so rate_limit=5 keeps us as polite. A checkout
# costs two requests (find the card, charge it): one token serves about 2.5 checkouts/s. In
# flight, 5 requests/s at 200-400 ms an answer is 1-2 requests; max_concurrency=4 lets a slow
# answer not hold up the others, without a burst of checkouts piling requests on Leat: the rest
# wait in the client, at most RetryPolicy.deadline seconds, after which the customer gets a 503
# with Retry-After rather than a spinner. (Several processes on one token: see RedisRateState.)
MAX_CONCURRENCY = 4
RATE_LIMIT = 5
CHARGE_TIMEOUT = 10.0  # seconds per attempt of a charge: then it is an unknown outcome
RETRY_AFTER_DOWN = 30  # what a 503 asks the caller to wait when Leat says nothing


@dataclass(frozen=True)
class Settings:
    token: str
    shop_uuid: str
    base_url: str = "https://api.piggy.eu"
    max_concurrency: int = MAX_CONCURRENCY
    rate_limit: int | None = RATE_LIMIT
    charge_timeout: float = CHARGE_TIMEOUT
    landing_horizon: float = 60.0  # how long a lost charge may still land (see the README)
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(deadline=15.0))


@dataclass
class Order:
    """The app's record of one order (in memory here; a database row in a real app)."""

    order: str
    code: str
    requested_in_cents: int
    partial: bool
    status: str = "charging"  # charging, pending, charged, failed, refunding, refunded
    card_uuid: str | None = None
    charged_in_cents: int = 0
    transaction_uuid: str | None = None
    refund_uuid: str | None = None
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "code"}  # a code spends the card

    def charged(self, tx: GiftcardTransaction) -> None:
        self.status, self.transaction_uuid = "charged", tx.uuid
        self.charged_in_cents = -tx.amount_in_cents

    def refunded(self, tx: GiftcardTransaction) -> None:
        self.status, self.refund_uuid = "refunded", tx.uuid


SETTINGS = web.AppKey("settings", Settings)
CLIENT = web.AppKey("leat_client", LeatClient)
ORDERS = web.AppKey("orders", dict[str, Order])
BACKGROUND = web.AppKey("background", set[asyncio.Task[Any]])


class Refusal(Exception):
    """An answer other than success: its HTTP status, an error word, and extra JSON fields."""

    def __init__(self, status: int, error: str, retry_after: int | None = None, **extra: Any):
        super().__init__(error)
        self.status, self.error, self.retry_after, self.extra = status, error, retry_after, extra

    def response(self) -> web.Response:
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        body = {"error": self.error, **self.extra}
        return web.json_response(body, status=self.status, headers=headers)


def refusal_for(error: LeatError) -> Refusal:
    """Leat's errors as HTTP answers: the one table of the app (README: "Checkout in a web app")."""
    match error:
        case GiftcardNotFoundError():
            return Refusal(404, "unknown_code")
        case GiftcardExpiredError():
            return Refusal(410, "expired")
        case InsufficientBalanceError():  # the balance changed since we looked: look again
            return Refusal(402, "insufficient_balance")
        case RateLimitedError(retry_after=wait):
            return Refusal(429, "rate_limited", retry_after=math.ceil(wait or 1))
        case ServiceUnavailableError() | LeatConnectionError():  # timeouts included
            return Refusal(503, "leat_unavailable", retry_after=RETRY_AFTER_DOWN)
        case _:  # anything else is ours or Leat's to fix, not the customer's: log it
            log.error("Leat answered unexpectedly: %s", error)
            return Refusal(502, "leat_error", code=getattr(error, "code", None))


# -- the app and its lifetime ----------------------------------------------------------------


def make_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[ORDERS] = {}
    app[BACKGROUND] = set()
    app.cleanup_ctx.append(leat_client)
    app.router.add_post("/checkout", checkout)
    app.router.add_post("/refund", refund)
    app.router.add_get("/orders/{order}", show_order)
    return app


async def leat_client(app: web.Application) -> AsyncIterator[None]:
    """One client for the app's lifetime. On shutdown: first the app's own background work
    (it uses the client), then ``aclose()``, which waits for charges still under way."""
    s = app[SETTINGS]
    async with LeatClient(
        s.token,
        base_url=s.base_url,
        max_concurrency=s.max_concurrency,
        rate_limit=s.rate_limit,
        retry=s.retry,
        landing_horizon=s.landing_horizon,
    ) as client:
        app[CLIENT] = client
        yield
        await wait_for_background(app)


def spawn(app: web.Application, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """A task the app keeps (a bare create_task may be garbage-collected mid-way)."""
    task = asyncio.get_running_loop().create_task(work)
    app[BACKGROUND].add(task)
    task.add_done_callback(app[BACKGROUND].discard)
    return task


async def wait_for_background(app: web.Application) -> None:
    """Until every charge, refund and settle the app started has finished."""
    while app[BACKGROUND]:
        await asyncio.gather(*app[BACKGROUND], return_exceptions=True)


async def run_shielded(
    app: web.Application, work: Coroutine[Any, Any, web.Response]
) -> web.Response:
    """Run a handler's money work in a task of the app: should the handler be cancelled (the
    customer's connection dropped, with ``handler_cancellation=True``), the order's record is
    still brought to its end."""
    return await asyncio.shield(spawn(app, work))


# -- handlers ----------------------------------------------------------------------------------


async def checkout(request: web.Request) -> web.Response:
    app = request.app
    try:
        body = await request.json()
        code, amount = body["code"].strip(), body["amount_in_cents"]
        order_id, partial = body["order"], body.get("partial", False)
        valid = type(amount) is int and amount > 0 and isinstance(order_id, str) and order_id
        if not (valid and code and isinstance(partial, bool)):
            raise ValueError
    except (ValueError, KeyError, TypeError, AttributeError):
        return Refusal(400, "bad_request", need="code, amount_in_cents > 0, order").response()
    orders = app[ORDERS]
    known = orders.get(order_id)
    if known is not None and known.status != "failed":  # never charge an order twice
        busy = known.status in ("charging", "pending")
        return web.json_response(known.as_json(), status=202 if busy else 200)
    order = orders[order_id] = Order(order_id, code, amount, partial)
    return await run_shielded(app, charge(app, order))


async def charge(app: web.Application, order: Order) -> web.Response:
    client, s = app[CLIENT], app[SETTINGS]
    try:
        card = await client.giftcards.find_by_hash(order.code)
        if card.uuid is None or not card.active:  # an old card without a uuid cannot be charged
            raise Refusal(422, "card_not_usable")
        amount = order.requested_in_cents
        if card.amount_in_cents < amount:
            if not order.partial or card.amount_in_cents <= 0:
                raise Refusal(402, "insufficient_balance", balance_in_cents=card.amount_in_cents)
            amount = card.amount_in_cents  # partial: what is there; the caller collects the rest
        order.card_uuid = card.uuid
        tx = await client.giftcard_transactions.create(
            giftcard_uuid=card.uuid,
            amount_in_cents=-amount,
            shop_uuid=s.shop_uuid,
            custom_attributes={"order": order.order},  # for reconciling by order later
            timeout=s.charge_timeout,
        )
    except OutcomeUnknownError as lost:
        return await answer_unknown(app, order, lost)
    except (Refusal, LeatError) as error:
        refusal = error if isinstance(error, Refusal) else refusal_for(error)
        order.status, order.detail = "failed", refusal.error  # nothing was charged
        return refusal.response()
    order.charged(tx)
    return web.json_response(order.as_json())


async def refund(request: web.Request) -> web.Response:
    app = request.app
    try:
        order = app[ORDERS].get((await request.json())["order"])
    except (ValueError, KeyError, TypeError):
        return Refusal(400, "bad_request", need="order").response()
    if order is None:
        return Refusal(404, "unknown_order").response()
    if order.status == "refunded":
        return web.json_response(order.as_json())  # refunded before: the same answer again
    if order.status != "charged" or order.transaction_uuid is None:
        return Refusal(409, "not_refundable", order_status=order.status).response()
    order.status = "refunding"
    return await run_shielded(app, reverse(app, order, order.transaction_uuid))


async def reverse(app: web.Application, order: Order, uuid: str) -> web.Response:
    try:
        tx = await app[CLIENT].giftcard_transactions.reverse(
            uuid, timeout=app[SETTINGS].charge_timeout
        )
    except OutcomeUnknownError as lost:
        return await answer_unknown(app, order, lost)
    except NotLastTransactionError:  # Leat reverses only a card's latest transaction
        order.status = "charged"
        return Refusal(409, "not_last_transaction").response()
    except LeatError as error:
        order.status = "charged"
        return refusal_for(error).response()
    order.refunded(tx)
    return web.json_response(order.as_json())


async def show_order(request: web.Request) -> web.Response:
    order = request.app[ORDERS].get(request.match_info["order"])
    if order is None:
        return Refusal(404, "unknown_order").response()
    return web.json_response(order.as_json())


# -- unknown outcomes: answer now, settle in the background --------------------------------------


async def answer_unknown(
    app: web.Application, order: Order, lost: OutcomeUnknownError
) -> web.Response:
    """A charge or refund whose answer was lost: one quick search, else 202 and settle later."""
    gtx = app[CLIENT].giftcard_transactions
    try:
        tx = await gtx.recover(lost, wait=False)
    except LeatError:  # still unknown (it may land later), or Leat unreachable for the search
        order.status, order.detail = "pending", "the outcome is being settled"
        spawn(app, settle(app, order, lost))
        return web.json_response(order.as_json(), status=202)
    apply_outcome(order, lost, tx)
    return web.json_response(order.as_json(), status=200 if tx is not None else 503)


async def settle(app: web.Application, order: Order, lost: OutcomeUnknownError) -> None:
    """Until the lost request's deadline, ``recover()`` looks for what it did."""
    for attempt in range(5):
        try:
            tx = await app[CLIENT].giftcard_transactions.recover(lost)
        except AmbiguousOutcomeError as group:  # look-alikes: which one landed is not known
            surely = "charged" if group.landed_for_certain else "perhaps charged"
            order.detail = (
                f"{surely}: {group.landed} of {len(group.requests)} identical requests landed; "
                "settle the group with recover_group() or reconcile it"
            )
            return  # stays "pending": never guessed
        except LeatError as error:  # the search itself failed: Leat is down; try again
            log.warning("settling order %s: %s; trying again", order.order, error)
            await asyncio.sleep(2**attempt)
            continue
        apply_outcome(order, lost, tx)
        return
    order.detail = "still unknown: reconcile it (leat-async reconcile)"  # stays "pending"


def apply_outcome(order: Order, lost: OutcomeUnknownError, tx: GiftcardTransaction | None) -> None:
    """Record what a lost charge or refund turned out to have done."""
    if lost.operation == "create":
        if tx is None:
            order.status, order.detail = "failed", "not charged (the request never landed)"
        else:
            order.charged(tx)
            order.detail = None
    elif tx is None:
        order.status, order.detail = "charged", "not refunded (the request never landed)"
    else:
        order.refunded(tx)
        order.detail = None


# -- the command line ------------------------------------------------------------------------------


async def serve(settings: Settings, host: str, port: int, ready: Callable[[str], None]) -> None:
    runner = web.AppRunner(make_app(settings))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    ready(f"http://{host}:{runner.addresses[0][1]}")  # the port, even for --port 0
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows' loop
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await stop.wait()  # until SIGTERM (a container stopping) or Ctrl-C
    finally:
        await runner.cleanup()  # background settles, then the client (it waits for charges)


async def serve_fake(host: str, port: int) -> None:
    """The bundled fake Leat server, a shop and a few demo cards, then the app against it."""
    from datetime import UTC, datetime, timedelta

    from leat_async.testing import FakeLeat

    async with FakeLeat() as fake:  # its well-known test token
        shop = fake.add_shop(name="Krusty Krab")
        fake.add_card(balance_in_cents=5000, hash="KRABBY-1")
        fake.add_card(balance_in_cents=800, hash="KRABBY-2")
        yesterday = datetime.now(UTC) - timedelta(days=1)
        fake.add_card(balance_in_cents=5000, hash="EXPIRED-1", expires_at=yesterday)
        print("demo codes: KRABBY-1 (50.00), KRABBY-2 (8.00), EXPIRED-1", flush=True)
        settings = Settings(fake.token, shop.uuid, base_url=fake.url)
        await serve(settings, host, port, lambda url: print(f"serving on {url}", flush=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fake", action="store_true", help="run against the bundled fake Leat")
    parser.add_argument("--shop-uuid", help="the shop the charges are made in")
    parser.add_argument("--base-url", default="https://api.piggy.eu")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.fake:
        job = serve_fake(args.host, args.port)
    else:
        token = os.environ.get("LEAT_TOKEN")
        if not token or not args.shop_uuid:
            parser.error("set LEAT_TOKEN in the environment and give --shop-uuid (or use --fake)")
        settings = Settings(token, args.shop_uuid, base_url=args.base_url)
        job = serve(settings, args.host, args.port, lambda url: print(f"serving on {url}"))
    try:
        asyncio.run(job)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
